#!/usr/bin/env bash
# test_cache_outage.sh - S3 unreachable under a write stream (issue 5): radosgw is
# stopped once a stream of 1 MiB writes to a cached S3 LUN is under way and
# started again after 20 more writes were acknowledged. While the cache has room the initiator sees no error (writes land in
# the cache, uploads retry with backoff); the stream's final flush completes once
# RGW is back. A second outage covers shutdown with a lease renewal retrying. Then
# a fresh daemon WITHOUT the cache (another lease holder) reads every piece from S3.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io iscsi-inq curl stdbuf

IQN=iqn.2026-11.io.s3tgt:cache-outage
MIB=1048576
TMO=300
BUCKET=s3tgt-cache-outage
NPIECES=60 # one 1 MiB write every 0.4 s: the stream outlasts the outage

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
BASE="s3://$BUCKET/out?size=128M&chunk_size=1M&$OPTS"
# 96 MiB of cache holds the whole stream; flush_timeout covers the outage;
# the lease is renewed every 2 s, so the second outage below can be short.
URI="$BASE&cache_size=96M&cache_dir=$T_DIR/cache&flush_timeout=120&lease_renew_ms=2000"

pat() { printf '0x%02x' $((0x20 + $1 % 200)); }
off() { echo $(($1 * 2 * MIB + ($1 % 3) * 4096)); } # every other chunk, some unaligned

start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$URI" || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)
cmds=()
for ((i = 0; i < NPIECES; i++)); do
	cmds+=(-c "write -P $(pat $i) $(off $i) $MIB" -c "sleep 400")
done
( timeout $TMO stdbuf -oL qemu-io -t writeback -f raw "${cmds[@]}" -c flush "$URL" \
	>"$T_DIR/writer.log" 2>&1; echo "EXIT $?" >>"$T_DIR/writer.log" ) &
WPID=$!
T_PIDS+=("$WPID")
wrote() { # writes acknowledged so far
	local n
	n=$(grep -c '^wrote' "$T_DIR/writer.log" 2>/dev/null) || true
	echo "${n:-0}"
}
wrote_at_least() { [ "$(wrote)" -ge "$1" ]; }
check "the stream is under way" wait_for 120 "the first acknowledged write" wrote_at_least 1
check "radosgw stopped during the write stream" "$RGW" stop-rgw "$RGW_DIR"
t0=$(date +%s)
before=$(wrote)
# 20 writes (8 s of the stream): long enough for uploads to fail and back off
check "writes kept completing while S3 was down" \
	wait_for 240 "20 writes acknowledged while RGW is down" wrote_at_least $((before + 20))
log "writes acknowledged while RGW was down for $(($(date +%s) - t0)) s: $(($(wrote) - before))"
check "daemon alive during the outage" daemon_alive
check "radosgw restarted" "$RGW" start-rgw "$RGW_DIR"
check "write stream and its final flush finished" wait "$WPID"
check "no initiator-visible error in the stream" \
	bash -c "! grep -qiE 'fail|error' '$T_DIR/writer.log' && grep -q '^EXIT 0' '$T_DIR/writer.log'"
check_eq "every write acknowledged" "$NPIECES" "$(wrote)"

# Shutdown during a second outage, long enough (> lease_renew_ms, 2 s) that a
# lease renewal is retrying when SIGTERM arrives. Closing must cancel that renewal
# at once (not wait out its 120 s retry deadline), free it, and then write the
# release, which retries for 5 s and goes through once RGW is back 1 s later.
# Otherwise the lease stays "held" and the daemon below is refused (and ASan
# reports the renewal leaked).
check "radosgw stopped again, for 6 s" "$RGW" stop-rgw "$RGW_DIR"
sleep 5
( sleep 1; "$RGW" start-rgw "$RGW_DIR" ) >"$T_DIR/rgw-restart.log" 2>&1 &
RPID=$!
T_PIDS+=("$RPID")
check "daemon stops cleanly with a lease renewal outstanding" stop_daemon 60
check "radosgw restarted" wait "$RPID"
check "the outstanding renewal was completed at close" \
	grep -qE 'PUT s3://[^ ]*/lease failed: (Operation canceled|Input/output error)' "$DAEMON_LOG"

start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$BASE" || die "plain daemon did not start"
reads=()
for ((i = 0; i < NPIECES; i++)); do
	reads+=(-c "read -P $(pat $i) $(off $i) $MIB")
done
verify() {
	local out
	out=$(timeout $TMO qemu-io -f raw "${reads[@]}" "$(lun_url $IQN 0)" 2>&1) || return 1
	! grep -qiE 'fail|error|mismatch' <<<"$out"
}
check "all $NPIECES pieces read back from S3 through a daemon without cache" verify
check "plain daemon stops cleanly" stop_daemon
finish
