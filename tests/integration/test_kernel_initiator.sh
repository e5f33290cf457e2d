#!/usr/bin/env bash
# test_kernel_initiator.sh - the Linux kernel's own iSCSI initiator (iscsi_tcp via
# iscsid/iscsiadm) in a throw-away QEMU guest (TCG software emulation) against
# a 1 GiB thin file LUN of s3tgtd. Runs the guest twice: without digests and
# with HeaderDigest=DataDigest=CRC32C.
# The guest (tests/integration/kernel/init): SendTargets discovery (TPGT must
# be 1), login, ext4 mkfs, 64 MiB + small files with sha256 sums, e2fsck,
# remount + verify, rm + fstrim, e2fsck + verify, logout.
# The host checks that fstrim reached the store: the LUN file's allocated
# blocks (stat %b), sampled while the guest pauses before fstrim, shrink by at
# least half the deleted file's size.
# QEMU's user-mode network maps the guest's 10.0.2.2 to the host's 127.0.0.1;
# no packet leaves the QEMU process.
# The guest kernel + initramfs are built once into $S3TGT_BUILD/kinit
# (kernel/build-guest.sh, apt-get download + dpkg -x, nothing installed).
# Environment: KINIT_TIMEOUT seconds per guest run [300].
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need setpriv qemu-system-x86_64 apt-get dpkg depmod modprobe cpio iscsi-inq stat

GUEST_TMO=${KINIT_TIMEOUT:-300}
IQN=iqn.2026-11.io.s3tgt:kernel
MB=64
KDIR=$S3TGT_BUILD/kinit
IMG=$T_DIR/lun0.img

log "building/reusing the guest in $KDIR"
timeout 900 "$S3TGT_SRC/tests/integration/kernel/build-guest.sh" "$KDIR" || die "guest build failed"

start_daemon --target "$IQN" --state-dir "$T_DIR/state" \
	--lun "0=file:$IMG?size=1G&thin=1" || die "s3tgtd did not start"
check "LUN 0 answers INQUIRY" inq_ok "$(lun_url $IQN 0)"

alloc_kib() { echo $(($(stat -c '%b * %B' "$IMG") / 1024)); }

run_guest() { # DIGEST
	local digest=$1 glog=$T_DIR/guest-$1.log pre="" post qpid i rc=0 res
	log "booting guest (digest $digest, limit ${GUEST_TMO}s), console log $glog"
	: >"$glog"
	setpriv --pdeathsig KILL -- timeout -k 10 "$GUEST_TMO" setpriv --pdeathsig KILL -- qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 1024 -smp 2 \
		-display none -monitor none -serial stdio -no-reboot \
		-kernel "$KDIR/vmlinuz" -initrd "$KDIR/initrd.gz" \
		-append "console=ttyS0 quiet panic=1 tgt_iqn=$IQN tgt_port=$DAEMON_PORT ini_iqn=$T_INITIATOR kinit_mb=$MB kinit_digest=$digest kinit_trim_pause=5" \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
		</dev/null >"$glog" 2>&1 &
	qpid=$!
	T_PIDS+=("$qpid")
	# sample the allocation while the guest waits after "KINIT PRE-TRIM"
	while is_alive "$qpid"; do
		if [ -z "$pre" ] && grep -qa 'KINIT PRE-TRIM' "$glog"; then
			pre=$(alloc_kib)
			log "allocated before fstrim: $pre KiB"
		fi
		sleep 0.2
	done
	wait "$qpid" || rc=$?
	post=$(alloc_kib)
	tr -d '\r' <"$glog" | grep -a '^KINIT' | sed 's/^/    /'
	res=$(tr -d '\r' <"$glog" | grep -a '^KINIT RESULT:' | tail -n 1)
	if [ -z "$res" ]; then
		log "no result line (qemu exit $rc$([ "$rc" = 124 ] && echo ', time limit hit')); console tail:"
		tr -d '\r' <"$glog" | tail -n 30 | sed 's/^/    /'
	fi
	check_eq "digest $digest: kernel initiator round trip" "KINIT RESULT: PASS" "$res"
	if [ -n "$pre" ]; then
		log "allocated after fstrim and logout: $post KiB"
		if [ $((pre - post)) -ge $((MB * 1024 / 2)) ]; then
			pass "digest $digest: fstrim reached the store (allocation $pre -> $post KiB)"
		else
			fail "digest $digest: fstrim did not free space in the LUN file ($pre -> $post KiB)"
		fi
	else
		fail "digest $digest: guest never reached the fstrim step"
	fi
	check "digest $digest: daemon alive after the guest" daemon_alive
}

run_guest None
run_guest CRC32C
check "daemon stops cleanly on SIGTERM" stop_daemon
finish
