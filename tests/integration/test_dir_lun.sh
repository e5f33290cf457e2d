#!/usr/bin/env bash
# test_dir_lun.sh - a chunked `dir` LUN through the real daemon and QEMU's
# libiscsi driver, checked at the object level (docs/OBJECT-FORMAT.md):
#   1. qemu-img round trip of 64 MiB random data (sha256); 64 chunk files of 1 MiB
#      with the documented keys and file header; a manifest naming the geometry.
#   2. A chunk overwritten with zeros has no file; UNMAP (qemu-io discard) of whole
#      chunks deletes their files, a partial UNMAP keeps the file and reads zeros.
#   3. Concurrent writes to the same chunks (qemu-io aio_write) verified by pattern.
#   4. Restart: data intact. Reopen with another chunk_size: refused, naming both.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io iscsi-inq sha256sum

IQN=iqn.2026-11.io.s3tgt:dir-lun
MIB=1048576
SIZE=$((64 * MIB))
TMO=120
VOL=$T_DIR/vol
URI="dir:$VOL?size=64M&chunk_size=1M"

QIO_OPTS=(-d unmap)

lun_sum() {
	rm -f "$T_DIR/back.img"
	timeout $TMO qemu-img convert -f raw -O raw "$1" "$T_DIR/back.img" || return 1
	sha256sum <"$T_DIR/back.img" | cut -d' ' -f1
}

chunk_file() { printf '%s/chunks/%016x' "$VOL" "$1"; }
nchunks() { find "$VOL/chunks" -maxdepth 1 -type f ! -name '.*' | wc -l; }
has_chunk() { [ -f "$(chunk_file "$1")" ]; }
no_chunk() { [ ! -e "$(chunk_file "$1")" ]; }

head -c "$SIZE" /dev/urandom >"$T_DIR/expect.img"
start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=$URI" || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)

# 1. round trip and object layout
check_eq "empty volume has no chunk objects" 0 "$(nchunks)"
check "manifest exists" test -f "$VOL/manifest"
check "qemu-img convert 64 MiB random image onto the dir LUN" \
	timeout $TMO qemu-img convert -n -f raw -O raw "$T_DIR/expect.img" "$URL"
check_eq "sha256 read back equals source" "$(sha256sum <"$T_DIR/expect.img" | cut -d' ' -f1)" \
	"$(lun_sum "$URL" || echo read-failed)"
check_eq "64 chunk objects of 1 MiB" 64 "$(nchunks)"
check "documented key chunks/0000000000000000 and ...003f" \
	test -f "$VOL/chunks/0000000000000000" -a -f "$VOL/chunks/000000000000003f"
check_eq "object file header magic" S3TGTOB1 "$(head -c 8 "$(chunk_file 7)")"
check_eq "object file = 4096-byte header + 1 MiB body" $((4096 + MIB)) "$(stat -c %s "$(chunk_file 7)")"
check "manifest records chunk_size" grep -q '"chunk_size": 1048576' "$VOL/manifest"
check "manifest records size" grep -q "\"size\": $SIZE" "$VOL/manifest"

# 2. zero chunks and UNMAP
check "write zeros over chunk 5" qio "$URL" "write -P 0 $((5 * MIB)) $MIB"
check "all-zero chunk 5 has no object" no_chunk 5
dd if=/dev/zero of="$T_DIR/expect.img" bs=$MIB seek=5 count=1 conv=notrunc status=none
check "UNMAP chunks 8-9 (qemu-io discard)" qio "$URL" "discard $((8 * MIB)) $((2 * MIB))"
check "unmapped chunk 8 has no object" no_chunk 8
check "unmapped chunk 9 has no object" no_chunk 9
dd if=/dev/zero of="$T_DIR/expect.img" bs=$MIB seek=8 count=2 conv=notrunc status=none
check "partial UNMAP inside chunk 12" qio "$URL" "discard $((12 * MIB + 256 * 1024)) $((256 * 1024))"
check "partially unmapped chunk 12 keeps its object" has_chunk 12
check "partially unmapped range reads zeros" \
	qio "$URL" "read -P 0 $((12 * MIB + 256 * 1024)) $((256 * 1024))"
dd if=/dev/zero of="$T_DIR/expect.img" bs=$((256 * 1024)) seek=$((12 * 4 + 1)) count=1 \
	conv=notrunc status=none
check_eq "61 chunk objects remain" 61 "$(nchunks)"

# 3. concurrent writes into the same chunks (interleaved 192 KiB pieces, unaligned
# offsets, spanning chunk boundaries): every piece must survive the RMWs.
cmds=()
for i in $(seq 0 15); do
	off=$((20 * MIB + i * 196608 + 512))
	pat=$(printf '0x%02x' $((0x40 + i)))
	cmds+=("aio_write -P $pat $off 196608")
done
cmds+=("aio_flush")
check "16 concurrent aio_writes into chunks 20-23" qio "$URL" "${cmds[@]}"
for i in $(seq 0 15); do
	off=$((20 * MIB + i * 196608 + 512))
	pat=$(printf '0x%02x' $((0x40 + i)))
	check "piece $i reads back pattern $pat" qio "$URL" "read -P $pat $off 196608"
	timeout $TMO qemu-io -f raw -c "write -P $pat $off 196608" "$T_DIR/expect.img" >/dev/null
done
EXPECT_SUM=$(sha256sum <"$T_DIR/expect.img" | cut -d' ' -f1)
check_eq "whole-LUN sha256 after all changes" "$EXPECT_SUM" "$(lun_sum "$URL" || echo read-failed)"

# 4. persistence and manifest mismatch
check "daemon stops cleanly and restarts" restart_daemon
check "LUN answers INQUIRY after restart" inq_ok "$URL"
check_eq "content persists across restart" "$EXPECT_SUM" "$(lun_sum "$URL" || echo read-failed)"
check "daemon stops cleanly" stop_daemon

refused() { # start with a conflicting URI: the daemon must exit and name both values
	if start_daemon --target "$IQN" --state-dir "$T_DIR/state2" --lun "0=$1"; then
		stop_daemon || true
		return 1
	fi
	grep -q "$2" "$DAEMON_LOG" && grep -q "$3" "$DAEMON_LOG"
}
check "chunk_size=2M on a 1M volume refused naming 2097152 and 1048576" \
	refused "dir:$VOL?chunk_size=2M" 2097152 1048576
check "size=32M on a 64M volume refused" refused "dir:$VOL?size=32M" 33554432 67108864
check_eq "objects untouched by refused opens" 61 "$(nchunks)"
finish
