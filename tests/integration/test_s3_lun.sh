#!/usr/bin/env bash
# test_s3_lun.sh - a chunked `s3` LUN on a real Ceph RGW (tests/integration/rgw.sh),
# through the real daemon and QEMU's libiscsi driver, checked by listing the bucket:
#   1. qemu-img round trip of 64 MiB random data (sha256); 64 objects with the
#      documented keys; manifest object present.
#   2. A chunk overwritten with zeros has no object; UNMAP of whole chunks deletes
#      their objects; a partial UNMAP reads back zeros. A 16-chunk UNMAP is sent
#      as batched DeleteObjects (POST ?delete in RGW's access log, no single
#      DELETE) and leaves no object for those chunks.
#   3. Multi-chunk writes and concurrent overlapping writes verified by pattern.
#   4. Restart: data intact; writes with sign_payload=1 (signed bodies) read
#      back. chunk_size mismatch and a bad sign_payload refused, named.
#   5. Wrong secret and missing bucket: the daemon exits non-zero at LU open with
#      a message naming the problem.
#   6. RGW stopped during I/O then restarted: the daemon survives, and data
#      written after recovery reads back.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io iscsi-inq sha256sum curl

RGW_LOG=$RGW_DIR/log/client.rgw.a.log
IQN=iqn.2026-11.io.s3tgt:s3-lun
MIB=1048576
SIZE=$((64 * MIB))
TMO=180
BUCKET=s3tgt-itest
PREFIX=vol1

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
URI="s3://$BUCKET/$PREFIX?size=64M&chunk_size=1M&$OPTS&retry_deadline_ms=60000"

# curl 7.88 --aws-sigv4 neither adds x-amz-content-sha256 nor sorts the query:
# send the header ourselves and keep query parameters sorted and encoded.
s3curl() { curl -sS --max-time 60 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_KEY:$S3_SECRET" \
	-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"; }
# list_keys: every key under $PREFIX/chunks/ (fewer than 1000 here: one page)
list_keys() {
	s3curl "$S3_ENDPOINT/$BUCKET?list-type=2&prefix=$PREFIX%2Fchunks%2F" |
		grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/'
}
nchunks() { list_keys | wc -l; }
chunk_key() { printf '%s/chunks/%016x' "$PREFIX" "$1"; }
has_chunk() { list_keys | grep -qx "$(chunk_key "$1")"; }
no_chunk() { ! has_chunk "$1"; }
has_manifest() { [ "$(s3curl -o /dev/null -w '%{http_code}' "$S3_ENDPOINT/$BUCKET/$PREFIX/manifest")" = 200 ]; }

QIO_OPTS=(-d unmap)
lun_sum() {
	rm -f "$T_DIR/back.img"
	timeout $TMO qemu-img convert -f raw -O raw "$1" "$T_DIR/back.img" || return 1
	sha256sum <"$T_DIR/back.img" | cut -d' ' -f1
}
local_write() { # pattern offset length: apply to the expected image
	timeout $TMO qemu-io -f raw -c "write -P $1 $2 $3" "$T_DIR/expect.img" >/dev/null
}

head -c "$SIZE" /dev/urandom >"$T_DIR/expect.img"
start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$URI" || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)

# 1. round trip and object layout
check "manifest object exists" has_manifest
check_eq "new volume has no chunk objects" 0 "$(nchunks)"
check "qemu-img convert 64 MiB random image onto the S3 LUN" \
	timeout $TMO qemu-img convert -n -f raw -O raw "$T_DIR/expect.img" "$URL"
check_eq "sha256 read back equals source" "$(sha256sum <"$T_DIR/expect.img" | cut -d' ' -f1)" \
	"$(lun_sum "$URL" || echo read-failed)"
check_eq "64 chunk objects" 64 "$(nchunks)"
check "first key is $(chunk_key 0)" has_chunk 0
check "last key is $(chunk_key 63)" has_chunk 63

# 2. zero chunks and UNMAP
check "write zeros over chunk 5" qio "$URL" "write -P 0 $((5 * MIB)) $MIB"
check "all-zero chunk 5 has no object" no_chunk 5
local_write 0 $((5 * MIB)) $MIB
check "UNMAP chunks 8-9" qio "$URL" "discard $((8 * MIB)) $((2 * MIB))"
no_chunks_8_9() { ! list_keys | grep -qE '/000000000000000[89]$'; }
check "unmapped chunks 8 and 9 have no object" no_chunks_8_9
local_write 0 $((8 * MIB)) $((2 * MIB))
check "partial UNMAP inside chunk 12 reads zeros" \
	qio "$URL" "discard $((12 * MIB + 4096)) 65536" "read -P 0 $((12 * MIB + 4096)) 65536"
local_write 0 $((12 * MIB + 4096)) 65536
check "partially unmapped chunk 12 keeps its object" has_chunk 12
check_eq "61 chunk objects remain" 61 "$(nchunks)"

# rgw_count FROMLINE REGEX: access-log requests (beast lines) since FROMLINE
rgw_count() { tail -n +"$1" "$RGW_LOG" | grep 'beast: ' | grep -cE "$2" || true; }
L0=$(($(wc -l <"$RGW_LOG") + 1))
check "UNMAP chunks 14-29 (16 whole chunks) reads back zeros" \
	qio "$URL" "discard $((14 * MIB)) $((16 * MIB))" "read -P 0 $((14 * MIB)) $((16 * MIB))"
local_write 0 $((14 * MIB)) $((16 * MIB))
no_chunks_14_29() {
	local c
	for c in $(seq 14 29); do no_chunk "$c" || return 1; done
}
check "unmapped chunks 14-29 have no object" no_chunks_14_29
check_eq "45 chunk objects remain" 45 "$(nchunks)"
# RGW logs from a thread: wait for the POST to show up.
for _ in $(seq 50); do
	[ "$(rgw_count "$L0" "\"POST /$BUCKET\?delete")" -gt 0 ] && break
	sleep 0.1
done
NPOST=$(rgw_count "$L0" "\"POST /$BUCKET\?delete")
NDEL=$(rgw_count "$L0" "\"DELETE /$BUCKET/$PREFIX/chunks/")
log "16-chunk UNMAP: $NPOST POST ?delete, $NDEL single DELETE"
check "16-chunk UNMAP used batched DeleteObjects (POST /$BUCKET?delete)" test "$NPOST" -ge 1
check_eq "16-chunk UNMAP sent no single-object DELETE" 0 "$NDEL"

# 3. multi-chunk and concurrent writes
check "multi-chunk write (3.5 MiB, unaligned) and read back" \
	qio "$URL" "write -P 0x5a $((30 * MIB + 1536)) $((3 * MIB + 524288))" \
	"read -P 0x5a $((30 * MIB + 1536)) $((3 * MIB + 524288))"
local_write 0x5a $((30 * MIB + 1536)) $((3 * MIB + 524288))
cmds=()
for i in $(seq 0 15); do
	cmds+=("aio_write -P $(printf '0x%02x' $((0x40 + i))) $((40 * MIB + i * 196608 + 512)) 196608")
done
cmds+=("aio_flush")
check "16 concurrent aio_writes sharing chunks 40-43" qio "$URL" "${cmds[@]}"
for i in $(seq 0 15); do
	pat=$(printf '0x%02x' $((0x40 + i)))
	off=$((40 * MIB + i * 196608 + 512))
	check "piece $i reads back $pat" qio "$URL" "read -P $pat $off 196608"
	local_write "$pat" "$off" 196608
done
# Byte-overlapping concurrent writes: the overlap must hold one whole write's data.
check "2 concurrent overlapping aio_writes" qio "$URL" \
	"aio_write -P 0x71 $((48 * MIB)) $((2 * MIB))" "aio_write -P 0x72 $((49 * MIB)) $((2 * MIB))" \
	"aio_flush"
check "non-overlapping head keeps 0x71" qio "$URL" "read -P 0x71 $((48 * MIB)) $MIB"
check "non-overlapping tail keeps 0x72" qio "$URL" "read -P 0x72 $((50 * MIB)) $MIB"
overlap_ok() {
	qio "$URL" "read -P 0x71 $((49 * MIB)) $MIB" 2>/dev/null || qio "$URL" "read -P 0x72 $((49 * MIB)) $MIB"
}
check "overlap holds exactly one write's data" overlap_ok
# Make the expected image deterministic again.
check "rewrite the overlap" qio "$URL" "write -P 0x72 $((48 * MIB)) $((3 * MIB))"
local_write 0x72 $((48 * MIB)) $((3 * MIB))
EXPECT_SUM=$(sha256sum <"$T_DIR/expect.img" | cut -d' ' -f1)
check_eq "whole-LUN sha256 after all changes" "$EXPECT_SUM" "$(lun_sum "$URL" || echo read-failed)"

# 4. persistence and manifest mismatch
check "daemon stops cleanly and restarts" restart_daemon
check_eq "content persists across restart" "$EXPECT_SUM" "$(lun_sum "$URL" || echo read-failed)"
check "daemon stops cleanly" stop_daemon

# sign_payload=1: SHA-256-signed PUT bodies (the default is UNSIGNED-PAYLOAD with
# x-amz-checksum-crc32c); RGW verifies the signed hash, so a wrong one would fail.
start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$URI&sign_payload=1" ||
	die "s3tgtd did not start with sign_payload=1"
URL=$(lun_url $IQN 0)
check "writes with sign_payload=1 (whole and partial chunks)" \
	qio "$URL" "write -P 0x3c $((20 * MIB)) $((2 * MIB))" "write -P 0x3d $((23 * MIB + 8192)) 4096"
local_write 0x3c $((20 * MIB)) $((2 * MIB))
local_write 0x3d $((23 * MIB + 8192)) 4096
EXPECT_SUM=$(sha256sum <"$T_DIR/expect.img" | cut -d' ' -f1)
check_eq "whole-LUN sha256 with signed payloads" "$EXPECT_SUM" "$(lun_sum "$URL" || echo read-failed)"
check "daemon stops cleanly" stop_daemon

refused() { # URI pattern...: the daemon must fail to start and log every pattern
	local p
	if start_daemon --target "$IQN" --state-dir "$T_DIR/state2" --lun "0=$1"; then
		stop_daemon || true
		return 1
	fi
	shift
	for p in "$@"; do grep -qi -- "$p" "$DAEMON_LOG" || { log "log lacks '$p'"; return 1; }; done
}
check "chunk_size=2M on a 1M volume refused naming 2097152 and 1048576" \
	refused "s3://$BUCKET/$PREFIX?chunk_size=2M&$OPTS" 2097152 1048576

check "sign_payload=2 refused naming the option" refused "$URI&sign_payload=2" "sign_payload"

# 5. credentials and bucket errors at LU open
check "missing bucket refused with a message naming it" \
	refused "s3://no-such-bucket-s3tgt/v?size=16M&$OPTS" no-such-bucket-s3tgt "not exist\|nosuchbucket\|no such bucket"
wrong_secret() {
	local rc=0
	AWS_SECRET_ACCESS_KEY=wrong-$S3_SECRET refused "s3://$BUCKET/vol2?size=16M&$OPTS" \
		"denied\|signature\|credential\|secret" || rc=1
	return $rc
}
check "wrong secret refused with a message about credentials" wrong_secret
check "the refusals left no object under vol2" \
	test "$(s3curl "$S3_ENDPOINT/$BUCKET?list-type=2&prefix=vol2%2F" | grep -c '<Key>' || true)" = 0

# 6. RGW outage during I/O
start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$URI" || die "s3tgtd did not restart"
URL=$(lun_url $IQN 0)
# A writer loop keeps requests in flight across the whole outage.
(
	while [ ! -e "$T_DIR/stop-io" ]; do
		timeout $TMO qemu-io -f raw -c "write -P 0x33 $((16 * MIB)) $((8 * MIB))" "$URL" ||
			echo "WRITE-FAILED"
	done
) >"$T_DIR/outage-io.log" 2>&1 &
IO_PID=$!
T_PIDS+=("$IO_PID")
sleep 1
check "radosgw stopped during I/O" "$RGW" stop-rgw "$RGW_DIR"
sleep 3
check "daemon alive while S3 is down" daemon_alive
check "radosgw restarted" "$RGW" start-rgw "$RGW_DIR"
sleep 2
touch "$T_DIR/stop-io"
check "writer loop finished (no hang)" wait "$IO_PID"
# Evidence that the outage hit in-flight I/O: a write stalled for seconds
# (retried until RGW came back) or failed with a CHECK CONDITION.
# qemu-io prints "ops; 00.07 sec" or, past a few seconds, "ops; 0:00:12.32".
slowest=$(awk -F'ops; ' 'NF > 1 { split($2, w, " "); n = split(w[1], t, ":"); v = 0
	for (i = 1; i <= n; i++) v = v * 60 + t[i]; print v }' "$T_DIR/outage-io.log" | sort -n | tail -1)
nfail=$(grep -c WRITE-FAILED "$T_DIR/outage-io.log" || true)
log "outage: slowest write ${slowest:-?} s, failed writes $nfail"
outage_hit() { [ "$nfail" -gt 0 ] || awk -v s="${slowest:-0}" 'BEGIN { exit !(s >= 1.5) }'; }
check "writes in flight during the outage were retried (stalled) or failed cleanly" outage_hit
check "daemon survived the outage" daemon_alive
check "write after recovery" qio "$URL" "write -P 0x44 $((16 * MIB)) $((8 * MIB))"
check "read after recovery" qio "$URL" "read -P 0x44 $((16 * MIB)) $((8 * MIB))"
check "daemon stops cleanly" stop_daemon
finish
