#!/usr/bin/env bash
# test_cache_stop_outage.sh - SIGTERM while S3 is unreachable. The daemon must
# not hang on S3: the final flush gives up after flush_timeout, uploads still
# retrying are cancelled (the data stays in cache_dir), releasing the volume
# lease is tried for 5 s, and the daemon exits with status 1 (not everything is
# in S3) and no sanitizer report. Once S3 is back, the same configuration
# recovers every acknowledged write: the cached LUN takes its own lease back and
# uploads its dirty chunks; the uncached LUN, whose lease could not be released,
# opens with break_lease=1 (docs/DURABILITY.md). Before the stop, a third LUN
# is deleted through the API while its lease renewal is retrying: the delete
# completes, the daemon keeps serving while that lease's release is retried in
# the background, and the stop that follows waits for that release.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io iscsi-inq curl

IQN=iqn.2026-11.io.s3tgt:stop-outage
BUCKET=s3tgt-stop-outage
MIB=1048576

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
# leases renewed every 2 s, so a renewal is soon retrying once RGW is down
RENEW="lease_renew_ms=2000"
CACHED="s3://$BUCKET/c?size=64M&chunk_size=1M&$OPTS&$RENEW&cache_size=32M&cache_dir=$T_DIR/cache&flush_timeout=5"
PLAIN="s3://$BUCKET/p?size=16M&chunk_size=1M&$OPTS&$RENEW"
DOOMED="s3://$BUCKET/d?size=16M&chunk_size=1M&$OPTS&$RENEW"
SOCK=$T_DIR/api.sock

start_daemon --target "$IQN" --lun "0=$CACHED" --lun "1=$PLAIN" --lun "2=$DOOMED" \
	--api-socket "$SOCK" || die "s3tgtd did not start"
check "uncached LUN written while S3 is up" \
	qemu-io -f raw -c "write -P 0x3c 0 $((2 * MIB))" "$(lun_url $IQN 1)"
check "radosgw stopped" "$RGW" stop-rgw "$RGW_DIR"
# qemu-io flushes at exit; with S3 down that flush fails after flush_timeout,
# but every write before it was acknowledged into the cache
qemu-io -t writeback -f raw -c "write -P 0x5a 0 $((8 * MIB))" -c "write -P 0xa5 $((40 * MIB)) 12288" \
	"$(lun_url $IQN 0)" >"$T_DIR/writer.log" 2>&1 || true
check_eq "writes acknowledged into the cache" 2 "$(grep -c '^wrote' "$T_DIR/writer.log" || true)"

# LUN 2 sends nothing but its lease renewals: once its S3 retry counter moves,
# a renewal is retrying (and so are the other LUNs', renewed as often)
lun2_retrying() {
	curl -s --max-time 10 --unix-socket "$SOCK" http://localhost/metrics |
		awk '/^s3tgt_s3_retries_total\{/ && /lun="2"/ && $NF > 0 { ok = 1 } END { exit !ok }'
}
check "LUN 2's lease renewal is retrying" wait_for 120 "a retried S3 request of LUN 2" lun2_retrying
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 --unix-socket "$SOCK" \
	-X DELETE "http://localhost/v1/targets/$IQN/luns/2") || status=000
check_eq "LUN 2 deleted through the API during the outage" 204 "$status"
# the release is tried for 5 s without stalling the loop: LUN 0 answers meanwhile
released() { grep -q '/d?size=16M.*could not release the lease' "$DAEMON_LOG"; }
sleep 0.5
check "daemon serves LUN 0 while LUN 2's lease release is retried" inq_ok "$(lun_url $IQN 0)"
check "... before that release has given up" bash -c "! grep -q '/d?size=16M.*could not release the lease' '$DAEMON_LOG'"

# SIGTERM while LUN 2's release is still being retried: the stop waits for it
t0=$(date +%s)
stop_pid "$DAEMON_PID" 90
took=$(($(date +%s) - t0))
log "daemon exited with status $STOP_RC after ${took}s"
DAEMON_PID=""
check_eq "exit status says the final flush failed" 1 "$STOP_RC"
# bound: flush_timeout 5 s + 2 lease releases of 5 s, far below the 120 s retry deadline
check "no wait for the S3 retry deadline" test "$took" -lt 60
check "no sanitizer report" \
	bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$DAEMON_LOG'"
check "LUN 2: its retrying renewal was completed at close" \
	grep -qE 'PUT s3://[^ ]*/d/lease failed: (Operation canceled|Input/output error)' "$DAEMON_LOG"
check "LUN 2: its background lease release finished before the exit" released
check "log: dirty chunks kept in cache_dir" grep -q 'dirty chunks; they are kept in' "$DAEMON_LOG"
check_eq "log: no lease released (LUN 2 at its delete, LUNs 0 and 1 at the stop)" 3 \
	"$(grep -c 'could not release the lease' "$DAEMON_LOG" || true)"
check "log: no deferred close" bash -c "! grep -q 'lower requests in flight' '$DAEMON_LOG'"

check "radosgw started again" "$RGW" start-rgw "$RGW_DIR"
if start_daemon --target "$IQN" --lun "0=$CACHED" --lun "1=$PLAIN"; then
	stop_daemon
	fail "uncached LUN opened although its lease was never released"
else
	check "uncached LUN refused: lease still held" grep -q 'break_lease=1' "$DAEMON_LOG"
fi
start_daemon --target "$IQN" --lun "0=$CACHED" --lun "1=$PLAIN&break_lease=1" ||
	die "restart with break_lease=1 failed"
check "cached LUN took its own lease back" grep -q 'taking back our own lease' "$DAEMON_LOG"
check "cached LUN recovered its dirty chunks" grep -q 'recovered [0-9]* dirty chunks' "$DAEMON_LOG"
check "cached LUN: acknowledged writes read back" \
	qemu-io -f raw -c "read -P 0x5a 0 $((8 * MIB))" -c "read -P 0xa5 $((40 * MIB)) 12288" \
	"$(lun_url $IQN 0)"
check "uncached LUN: data intact" qemu-io -f raw -c "read -P 0x3c 0 $((2 * MIB))" "$(lun_url $IQN 1)"
check "daemon stops cleanly with S3 up" stop_daemon

# what was recovered is in S3 itself, not only in cache_dir
start_daemon --target "$IQN" --lun "0=s3://$BUCKET/c?size=64M&chunk_size=1M&$OPTS" ||
	die "plain daemon did not start"
check "recovered data read from S3 without the cache" \
	qemu-io -f raw -c "read -P 0x5a 0 $((8 * MIB))" -c "read -P 0xa5 $((40 * MIB)) 12288" \
	"$(lun_url $IQN 0)"
check "plain daemon stops cleanly" stop_daemon

# An LU deleted just before SIGTERM, with S3 down: its lease release goes on in
# the background, and the stop waits for it (up to 5 s) instead of exiting with
# the store half closed (LeakSanitizer would report it).
start_daemon --target "$IQN" --lun "0=ram:?size=1M" --lun "1=s3://$BUCKET/e?size=16M&chunk_size=1M&$OPTS" \
	--api-socket "$SOCK" || die "s3tgtd did not start"
check "radosgw stopped once more" "$RGW" stop-rgw "$RGW_DIR"
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 --unix-socket "$SOCK" \
	-X DELETE "http://localhost/v1/targets/$IQN/luns/1") || status=000
check_eq "LUN 1 deleted through the API" 204 "$status"
sleep 0.3
check "daemon stops cleanly right after the delete" stop_daemon 30
check "the background release ended before the exit" \
	grep -q '/e?size=16M.*could not release the lease' "$DAEMON_LOG"
finish
