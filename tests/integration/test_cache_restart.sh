#!/usr/bin/env bash
# test_cache_restart.sh - cache_dir keeps clean chunks across a clean restart, and
# never serves them once the volume may have changed (docs/DURABILITY.md), on a real
# Ceph RGW (tests/integration/rgw.sh). Requests are counted in RGW's access log.
#   1. a cache-less daemon writes chunks 0-15; a cached daemon reads them (fills)
#      and writes chunks 20-23, then stops cleanly: it says it kept them.
#   2. restart: the kept chunks are cached again; reading all of them gives the
#      right data with no GET of any chunk object.
#   3. a cache-less daemon (another lease holder) rewrites chunk 3: the cached
#      daemon's next start does not use its kept chunks and reads the new data.
#   4. a kept chunk damaged on disk is refused (CRC) and read from S3; kill -9 after
#      a start that used a snapshot: the next start uses none (the snapshot was
#      retired when the volume was opened), data still right.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io curl

IQN=iqn.2026-11.io.s3tgt:cache-restart
MIB=1048576
TMO=120
BUCKET=s3tgt-cache-restart

rgw_up "$BUCKET"
RGW_LOG=$RGW_DIR/log/client.rgw.a.log
BASE="s3://$BUCKET/warm?size=64M&chunk_size=1M&endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
CACHED="$BASE&cache_size=32M&cache_dir=$T_DIR/cache"

pat() { printf '0x%02x' $((0x10 + $1)); } # pattern of chunk i
serve() { # URI: (re)start the daemon with it as LUN 0 at $URL
	start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$1" || die "s3tgtd did not start: $1"
	URL=$(lun_url $IQN 0)
}
log_mark() { wc -l <"$RGW_LOG"; }
chunk_gets_since() { # LINE: GETs of chunk objects logged after line LINE
	sleep 1 # RGW writes its log from a thread
	tail -n +"$(($1 + 1))" "$RGW_LOG" | grep -c "\"GET /$BUCKET/warm/chunks/" || true
}
reads=() writes=()
for i in $(seq 0 15); do
	writes+=("write -P $(pat "$i") $((i * MIB)) $MIB")
	reads+=("read -P $(pat "$i") $((i * MIB)) $MIB")
done
for i in 20 21 22 23; do reads+=("read -P $(pat "$i") $((i * MIB)) $MIB"); done

# 1. chunks 0-15 in S3, read into the cache; 20-23 written through it
serve "$BASE"
check "cache-less daemon writes chunks 0-15" qio "$URL" "${writes[@]}"
check "cache-less daemon stops" stop_daemon
serve "$CACHED"
check "cached daemon writes chunks 20-23" \
	qio "$URL" "write -P $(pat 20) $((20 * MIB)) $MIB" "write -P $(pat 21) $((21 * MIB)) $MIB" \
	"write -P $(pat 22) $((22 * MIB)) $MIB" "write -P $(pat 23) $((23 * MIB)) $MIB"
check "cached daemon reads chunks 0-15 and 20-23" qio "$URL" "${reads[@]}"
check "cached daemon stops cleanly" stop_daemon
check "clean close says it kept the clean chunks" grep -qE "[0-9]+ clean chunks kept in .* for the next start" "$DAEMON_LOG"

# 2. restart: no GET for what was kept
serve "$CACHED"
check "restart caches the kept chunks again" grep -qE "[0-9]+ clean chunks kept in .* are cached again" "$DAEMON_LOG"
L0=$(log_mark)
check "after the restart every chunk reads back right" qio "$URL" "${reads[@]}"
check_eq "GETs of chunk objects for those reads" 0 "$(chunk_gets_since "$L0")"
check "cached daemon stops cleanly again" stop_daemon

# 3. another writer in between: the kept chunks must not be served
serve "$BASE"
check "another (cache-less) daemon rewrites chunk 3" qio "$URL" "write -P 0x77 $((3 * MIB)) $MIB"
check "the other daemon stops" stop_daemon
serve "$CACHED"
check "restart after another writer says the kept chunks are not used" \
	grep -q "clean chunks kept in .* are not used" "$DAEMON_LOG"
L0=$(log_mark)
check "chunk 3 reads the other daemon's data, not the kept copy" qio "$URL" "read -P 0x77 $((3 * MIB)) $MIB"
gets=$(chunk_gets_since "$L0")
check "and it was read from S3 ($gets GETs)" test "$gets" -ge 1
check "the other chunks still read back right" qio "$URL" "${reads[@]:0:3}" "${reads[@]:4}"
check "cached daemon stops cleanly (a new snapshot)" stop_daemon

# 4. a damaged kept chunk, then a crash after a start that used a snapshot.
# cache.dat: a 4 KiB file header, then per slot a 4 KiB header and the chunk.
printf '\xff\x00\xff' | dd of="$T_DIR/cache/cache.dat" bs=1 seek=$((8192 + 100)) conv=notrunc status=none
serve "$CACHED"
check "the new snapshot is used" grep -qE "are cached again" "$DAEMON_LOG"
check "the damaged kept chunk in slot 0 is refused" grep -q "in slot 0 is damaged" "$DAEMON_LOG"
check "every chunk still reads back right" qio "$URL" "read -P 0x77 $((3 * MIB)) $MIB" "${reads[@]:0:3}" "${reads[@]:4}"
log "kill -9 daemon PID $DAEMON_PID"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
serve "$CACHED"
no_snapshot() { ! grep -qE "are cached again|are not used" "$DAEMON_LOG"; }
check "after kill -9 no snapshot is offered (retired at the previous open)" no_snapshot
check "data right after the crash" qio "$URL" "read -P 0x77 $((3 * MIB)) $MIB" "${reads[@]:0:3}" "${reads[@]:4}"
check "daemon stops cleanly" stop_daemon
finish
