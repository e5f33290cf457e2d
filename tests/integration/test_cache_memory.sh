#!/usr/bin/env bash
# test_cache_memory.sh - the cache's memory bound (issue 5, docs/DURABILITY.md
# "Memory"): under a 384 MiB sequential write stream into a cached S3 LUN with
# cache_size=32M, the daemon's resident memory exceeds that of the same daemon
# serving the volume without a cache (idle) by at most
#   cache_size + (cache_uploads + max(4, 2*cache_prefetch)) chunks      (the cache)
#   + max_inflight chunks                                               (chunk store)
#   + 64 MiB slack (S3 client, iSCSI buffers, sanitizer bookkeeping)
# although the stream is 12x the cache. The cache's RAM is made resident after
# open ("cache memory resident" in the log): RSS shows it before any I/O. Data
# is then read back to show the writes went through the cache to S3.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io iscsi-inq curl

IQN=iqn.2026-11.io.s3tgt:cache-mem
MIB=1048576
TMO=600
BUCKET=s3tgt-cache-mem
STREAM=384

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
BASE="s3://$BUCKET/mem?size=512M&chunk_size=1M&max_inflight=16&$OPTS"
URI="$BASE&cache_size=32M&cache_uploads=8&cache_prefetch=4"
BOUND_MIB=$((32 + 8 + 8 + 16 + 64))
CACHE_MIB=$((32 + 8 + 8))

# A small ASan quarantine so that freed memory is not counted as growth.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$BASE" || die "s3tgtd did not start"
check "uncached LUN answers INQUIRY" inq_ok "$(lun_url $IQN 0)"
idle=$(rss_kib)
check "uncached daemon stops" stop_daemon

start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$URI" || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)
check "LUN answers INQUIRY" inq_ok "$URL"
resident() { grep -q "cache memory resident: $CACHE_MIB MiB" "$DAEMON_LOG"; }
check "the cache's $CACHE_MIB MiB are made resident after open" \
	wait_for 120 "the cache's memory made resident" resident
ready=$(rss_kib)
check "RSS shows them before any I/O ($(((ready - idle) / 1024)) MiB above the uncached daemon)" \
	test $(((ready - idle) / 1024)) -ge $((CACHE_MIB * 9 / 10))
(
	while :; do rss_kib; sleep 0.2; done
) >"$T_DIR/rss.log" 2>/dev/null &
SAMPLER=$!
T_PIDS+=("$SAMPLER")
check "write a ${STREAM} MiB stream (12x cache_size)" \
	timeout $TMO qemu-io -t writeback -f raw -c "write -P 0x6d 0 $((STREAM * MIB))" -c flush "$URL"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
peak=$(sort -n "$T_DIR/rss.log" | tail -1)
grow=$(((peak - idle) / 1024))
log "RSS uncached idle $((idle / 1024)) MiB, peak $((peak / 1024)) MiB, growth $grow MiB (bound $BOUND_MIB MiB)"
check "RSS growth $grow MiB <= $BOUND_MIB MiB" test "$grow" -le "$BOUND_MIB"
readback() {
	local out
	out=$(timeout $TMO qemu-io -f raw -c "read -P 0x6d 0 $((STREAM * MIB))" "$URL" 2>&1) || return 1
	! grep -qiE 'fail|error|mismatch' <<<"$out"
}
check "the stream reads back" readback
check "daemon stops cleanly" stop_daemon
finish
