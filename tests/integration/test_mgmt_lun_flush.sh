#!/usr/bin/env bash
# test_mgmt_lun_flush.sh - deleting a LUN (or its target) through the API must
# not lose writes that a write-back cache acknowledged but has not stored yet:
# the delete flushes the store (STORE_OP_FLUSH) before closing it and only then
# answers. A cached `dir` LUN with a long writeback_age keeps the data dirty in
# RAM (s3tgt_cache_dirty_bytes > 0 in /metrics); after the delete, the same URI
# re-created reads the pattern back. Also: the delete answers only once the
# store is closed, so the re-create does not collide with the volume lease.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mgmt_lib.sh"
need curl qemu-io

IQN=iqn.2026-11.io.s3tgt:lun-flush
VOL=$T_DIR/vol
# writeback_age: 10 minutes, so nothing but a flush writes the data back
URI="dir:$VOL?size=64M&cache_size=16M&writeback_age=600000"
TMO=60

# qemu flushes on close unless its cache mode is "unsafe": with -t unsafe no
# SYNCHRONIZE CACHE is sent, so the written data stays dirty in our cache.
QIO_OPTS=(-t unsafe)
# metric NAME LUN: value of NAME{target="$IQN",lun="LUN"} in /metrics (empty if absent)
metric() {
	curl -s --max-time 10 --unix-socket "$SOCK" http://localhost/metrics |
		awk -v k="$1{target=\"$IQN\",lun=\"$2\"}" '$1 == k { print $2 }'
}

start_mgmt_daemon || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)

check_api "create target" 201 POST /v1/targets "{\"name\":\"$IQN\"}"
check_api "create cached dir LUN 0" 201 POST "/v1/targets/$IQN/luns" "{\"lun\":0,\"uri\":\"$URI\"}"
check "write pattern 0x5c (128 KiB at 3 MiB + 4 KiB) and read it back" \
	qio "$URL" "write -P 0x5c $((3 * 1048576 + 4096)) 131072" "read -P 0x5c $((3 * 1048576 + 4096)) 131072"
dirty=$(metric s3tgt_cache_dirty_bytes 0)
check "the written data is still dirty in the cache ($dirty bytes)" test "${dirty:-0}" -ge 131072
check_api "delete LUN 0" 204 DELETE "/v1/targets/$IQN/luns/0"
check "the daemon logged no data loss" eval "! grep -q 'that data is lost' '$DAEMON_LOG'"
check_api "re-create LUN 0 with the same URI" 201 POST "/v1/targets/$IQN/luns" "{\"lun\":0,\"uri\":\"$URI\"}"
check "pattern reads back after delete and re-create" \
	qio "$URL" "read -P 0x5c $((3 * 1048576 + 4096)) 131072" "read -P 0 0 $((3 * 1048576 + 4096))"

# the same through a target delete (its LUNs are flushed before the reply)
check "write pattern 0xa7 at 20 MiB" qio "$URL" "write -P 0xa7 $((20 * 1048576)) 65536"
dirty=$(metric s3tgt_cache_dirty_bytes 0)
check "dirty again ($dirty bytes)" test "${dirty:-0}" -ge 65536
check_api "delete target" 204 DELETE "/v1/targets/$IQN"
check_api "re-create target" 201 POST /v1/targets "{\"name\":\"$IQN\"}"
check_api "re-create LUN 0" 201 POST "/v1/targets/$IQN/luns" "{\"lun\":0,\"uri\":\"$URI\"}"
check "both patterns read back after target delete and re-create" \
	qio "$URL" "read -P 0xa7 $((20 * 1048576)) 65536" "read -P 0x5c $((3 * 1048576 + 4096)) 131072"

check "daemon stops cleanly" stop_daemon
finish
