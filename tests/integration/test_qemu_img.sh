#!/usr/bin/env bash
# test_qemu_img.sh - data integrity through QEMU's libiscsi block driver.
#   LUN 0: 64 MiB RAM LUN, LUN 1: 64 MiB thin file LUN.
#   1. qemu-img convert a 64 MiB random image onto each LUN and back; sha256 equal.
#   2. qemu-io writes of patterns at offsets and lengths that are not
#      block- or chunk-aligned and straddle 1/4 MiB boundaries, read back with
#      'read -P'; the same writes applied to a local copy give the expected
#      whole-LUN sha256.
#   3. file LUN: stop and restart the daemon; the LUN content is unchanged.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io iscsi-inq sha256sum

IQN=iqn.2026-11.io.s3tgt:qemu-img
SIZE=$((64 * 1048576))
TMO=120

# writes: "pattern offset length" (bytes; unaligned on purpose)
WRITES=(
	"0x11 $((4 * 1048576 - 512)) 1024"
	"0x22 $((8 * 1048576 - 100)) 300"
	"0x33 $((1048576 + 7)) $((2 * 1048576 + 13))"
	"0x44 $((32 * 1048576 - 65536 - 1)) $((131072 + 2))"
	"0x55 $((SIZE - 4096 - 3)) $((4096 + 3))"
	"0x66 1 511"
)

head -c "$SIZE" /dev/urandom >"$T_DIR/src.img"
SRC_SUM=$(sha256sum <"$T_DIR/src.img" | cut -d' ' -f1)
cp "$T_DIR/src.img" "$T_DIR/expect.img"
for w in "${WRITES[@]}"; do
	read -r pat off len <<<"$w"
	timeout $TMO qemu-io -f raw -c "write -P $pat $off $len" "$T_DIR/expect.img" >/dev/null
done
EXPECT_SUM=$(sha256sum <"$T_DIR/expect.img" | cut -d' ' -f1)

start_daemon --target "$IQN" --state-dir "$T_DIR/state" \
	--lun "0=ram:?size=$SIZE" \
	--lun "1=file:$T_DIR/lun1.img?size=$SIZE&thin=1" || die "s3tgtd did not start"

lun_sum() { # URL -> sha256 of the whole LUN read back with qemu-img convert
	rm -f "$T_DIR/back.img"
	timeout $TMO qemu-img convert -f raw -O raw "$1" "$T_DIR/back.img" || return 1
	sha256sum <"$T_DIR/back.img" | cut -d' ' -f1
}

qemu_io_ok() { # URL "qemu-io command": run it, fail on any error or pattern mismatch
	local out
	out=$(timeout $TMO qemu-io -f raw -c "$2" "$1" 2>&1) || { echo "$out" >&2; return 1; }
	if grep -qiE 'fail|error|mismatch' <<<"$out"; then
		echo "$out" >&2
		return 1
	fi
}

for lun in 0 1; do
	url=$(lun_url $IQN $lun)
	check "LUN $lun: qemu-img convert 64 MiB random image onto $url" \
		timeout $TMO qemu-img convert -n -f raw -O raw "$T_DIR/src.img" "$url"
	check_eq "LUN $lun: sha256 read back equals source" "$SRC_SUM" "$(lun_sum "$url" || echo read-failed)"
	for w in "${WRITES[@]}"; do
		read -r pat off len <<<"$w"
		check "LUN $lun: qemu-io write -P $pat $off $len" qemu_io_ok "$url" "write -P $pat $off $len"
	done
	for w in "${WRITES[@]}"; do
		read -r pat off len <<<"$w"
		check "LUN $lun: qemu-io read -P $pat $off $len" qemu_io_ok "$url" "read -P $pat $off $len"
	done
	check_eq "LUN $lun: whole-LUN sha256 after qemu-io writes" "$EXPECT_SUM" "$(lun_sum "$url" || echo read-failed)"
done

check "daemon stops cleanly on SIGTERM (restart)" restart_daemon
url=$(lun_url $IQN 1)
check "file LUN answers INQUIRY after restart" inq_ok "$url"
check_eq "file LUN: content persists across restart" "$EXPECT_SUM" "$(lun_sum "$url" || echo read-failed)"
check "daemon alive at the end" daemon_alive
check "daemon stops cleanly on SIGTERM" stop_daemon
finish
