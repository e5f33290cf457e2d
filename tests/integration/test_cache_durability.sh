#!/usr/bin/env bash
# test_cache_durability.sh - the write-back cache's crash promise on a real Ceph
# RGW (tests/integration/rgw.sh), docs/DURABILITY.md:
#   LUN 0: s3 + cache_size + cache_dir     LUN 1: s3 + cache_size, no cache_dir
#   1. write pattern A, SYNCHRONIZE CACHE (qemu-io flush), write pattern B (acknowledged,
#      not flushed), kill -9 the daemon by PID while the initiator is still connected.
#   2. restart with the same options: LUN 0 holds A and B (the journal in cache_dir was
#      recovered), LUN 1 holds A (every flushed block).
#   3. clean stop (flush), then a fresh daemon WITHOUT any cache option reads the same
#      data straight from S3: what was recovered reached the bucket.
#   4. a cache_dir belonging to another volume is refused, naming both volume ids.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io iscsi-inq curl stdbuf

IQN=iqn.2026-11.io.s3tgt:cache-dur
MIB=1048576
TMO=180
BUCKET=s3tgt-cache-dur

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
BASE0="s3://$BUCKET/dur0?size=64M&chunk_size=1M&$OPTS"
BASE1="s3://$BUCKET/dur1?size=64M&chunk_size=1M&$OPTS"
# writeback_age=600: nothing is written back on its own before the kill
CACHE="cache_size=32M&writeback_age=600000"
LUN0="0=$BASE0&$CACHE&cache_dir=$T_DIR/cache0"
LUN1="1=$BASE1&$CACHE"


# Pattern A (flushed): 8 pieces over chunks 0-15, some partial, some whole chunks.
A_OFF=(0 $((MIB + 4096)) $((3 * MIB)) $((5 * MIB + 512)) $((8 * MIB)) $((11 * MIB + 65536)) $((13 * MIB)) $((15 * MIB + 1024)))
A_LEN=(65536 8192 $((2 * MIB)) 4096 $MIB 131072 $((MIB / 2)) 3072)
# Pattern B (acknowledged, never flushed): other places, also inside chunks A touched.
B_OFF=($((20 * MIB)) $((MIB + 65536)) $((24 * MIB + 512)) $((30 * MIB)) $((40 * MIB + 4096)))
B_LEN=($((2 * MIB)) 4096 1536 $MIB 262144)

cmds_write() { # PAT OFFS LENS
	local -n offs=$2 lens=$3
	local i
	for i in "${!offs[@]}"; do echo "write -P $1 ${offs[$i]} ${lens[$i]}"; done
}
cmds_read() { # PAT OFFS LENS
	local -n offs=$2 lens=$3
	local i
	for i in "${!offs[@]}"; do echo "read -P $1 ${offs[$i]} ${lens[$i]}"; done
}

start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "$LUN0" --lun "$LUN1" ||
	die "s3tgtd did not start"
for lun in 0 1; do
	url=$(lun_url $IQN $lun)
	mapfile -t wa < <(cmds_write 0xa1 A_OFF A_LEN)
	mapfile -t wb < <(cmds_write 0xb2 B_OFF B_LEN)
	# qemu-io defaults to write-through (a flush after every write) and flushes
	# when it closes the image: so -t writeback, and B is written by an
	# initiator that is still connected (sleeping) when the daemon dies.
	( timeout $TMO stdbuf -oL qemu-io -t writeback -f raw "${wa[@]/#/-c}" -c flush "${wb[@]/#/-c}" -c "sleep 600000" \
		"$url" >"$T_DIR/writer$lun.log" 2>&1 || true ) &
	T_PIDS+=($!)
	eval "W$lun=$!"
done
acked() { [ "$(grep -c '^wrote' "$T_DIR/writer$1.log")" -eq $((${#A_OFF[@]} + ${#B_OFF[@]})) ]; }
wait_for 120 "every write acknowledged on both LUNs" eval "acked 0 && acked 1" || true
check "all writes acknowledged on both LUNs (A flushed, B not)" acked 0
check "LUN 1 writes acknowledged" acked 1
log "kill -9 daemon PID $DAEMON_PID"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
# shellcheck disable=SC2154
kill "$W0" "$W1" 2>/dev/null || true

# LUN 1 has no cache_dir, so nothing proves the restarted daemon is the lease
# holder that died: the operator says so with break_lease=1 (docs/DURABILITY.md).
start_daemon --port "$DAEMON_PORT" --target "$IQN" --state-dir "$T_DIR/state" --lun "$LUN0" \
	--lun "$LUN1&break_lease=1" || die "s3tgtd did not restart after kill -9"
check "restart recovered dirty chunks from cache_dir" grep -q "recovered [0-9]* dirty chunks" "$DAEMON_LOG"
mapfile -t ra < <(cmds_read 0xa1 A_OFF A_LEN)
mapfile -t rb < <(cmds_read 0xb2 B_OFF B_LEN)
check "LUN 0 (cache_dir): every flushed block survived kill -9" qio "$(lun_url $IQN 0)" "${ra[@]}"
check "LUN 0 (cache_dir): every acknowledged unflushed block survived kill -9" qio "$(lun_url $IQN 0)" "${rb[@]}"
check "LUN 1 (no cache_dir): every flushed block survived kill -9" qio "$(lun_url $IQN 1)" "${ra[@]}"
# Control: without cache_dir the unflushed partial write in chunk 24 was only in RAM,
# so the test really killed the daemon with acknowledged, unflushed data.
check "control: LUN 1 (no cache_dir) lost its unflushed write in chunk 24" \
	qio "$(lun_url $IQN 1)" "read -P 0 $((24 * MIB + 512)) 1536"
check "daemon stops cleanly (flush)" stop_daemon

# 3. the bucket itself, without any cache
start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$BASE0" --lun "1=$BASE1" ||
	die "plain S3 daemon did not start"
check "S3 without cache, LUN 0: flushed data" qio "$(lun_url $IQN 0)" "${ra[@]}"
check "S3 without cache, LUN 0: recovered unflushed data" qio "$(lun_url $IQN 0)" "${rb[@]}"
check "S3 without cache, LUN 1: flushed data" qio "$(lun_url $IQN 1)" "${ra[@]}"
check "plain daemon stops cleanly" stop_daemon

# 4. cache_dir of volume dur0 offered to volume dur1
refused_other_volume() {
	if start_daemon --target "$IQN" --state-dir "$T_DIR/state" \
		--lun "0=$BASE1&$CACHE&cache_dir=$T_DIR/cache0"; then
		stop_daemon || true
		return 1
	fi
	grep -q "belongs to volume" "$DAEMON_LOG" && grep -q "this LUN is volume" "$DAEMON_LOG"
}
check "a cache_dir of another volume is refused naming both ids" refused_other_volume
finish
