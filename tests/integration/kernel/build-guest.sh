#!/usr/bin/env bash
# build-guest.sh OUTDIR - build (once, cached) the kernel-initiator test guest:
#   OUTDIR/vmlinuz     Debian's kernel (the linux-image-amd64 dependency)
#   OUTDIR/initrd.gz   busybox-static + open-iscsi (iscsid, iscsiadm) + e2fsprogs
#                      + the modules for virtio-net, iscsi_tcp, sd_mod, ext4, crc32c
#                      + tests/integration/kernel/init as /init
# Packages are fetched with `apt-get download` and unpacked with dpkg -x into
# OUTDIR (nothing is installed; the host kernel is untouched). The result is
# reused while OUTDIR/stamp matches this script, the /init and the kernel version.
set -euo pipefail
OUT=${1:?usage: build-guest.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "build-guest.sh: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
stamp="$(cat "$0" "$HERE/init" | sha256sum | cut -d' ' -f1) $kpkg"
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.gz" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

debs=$OUT/debs x=$OUT/unpacked r=$OUT/root
mkdir -p "$debs"
for p in "$kpkg" busybox-static open-iscsi libisns0 libopeniscsiusr; do
	ls "$debs/${p}_"*.deb >/dev/null 2>&1 && continue
	(cd "$debs" && timeout 300 apt-get download "$p" >/dev/null 2>&1) || { echo "build-guest.sh: apt-get download $p failed" >&2; exit 1; }
done
rm -rf "$x" "$r"
mkdir -p "$x"
for p in "$debs"/*.deb; do dpkg -x "$p" "$x"; done
kver=$(find "$x/lib/modules" -mindepth 1 -maxdepth 1 -printf "%f\n" | head -n 1)
[ -f "$x/boot/vmlinuz-$kver" ] || { echo "build-guest.sh: no kernel image in $kpkg" >&2; exit 1; }
depmod -b "$x" "$kver"

mkdir -p "$r"/{bin,dev,proc,sys,run,tmp,mnt,etc/iscsi,var/lib/iscsi,lib/x86_64-linux-gnu,lib64}
ln -s bin "$r/sbin"
cp "$x/bin/busybox" "$r/bin/"
for a in $("$x/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
# real programs (and their shared libraries) replace busybox applets
for b in "$x/sbin/iscsid" "$x/sbin/iscsiadm" /sbin/mke2fs /sbin/e2fsck; do
	rm -f "$r/bin/$(basename "$b")"
	cp "$b" "$r/bin/"
	LD_LIBRARY_PATH=$x/usr/lib/x86_64-linux-gnu ldd "$b" | while read -r l1 l2 l3 _; do
		if [ "$l2" = "=>" ] && [ "$l3" = not ]; then
			echo "build-guest.sh: $b needs $l1 (not found)" >&2
			exit 1
		elif [ "$l2" = "=>" ] && [ "${l3#/}" != "$l3" ]; then
			cp -L "$l3" "$r/lib/x86_64-linux-gnu/$l1"
		elif [ "${l1#/lib64/}" != "$l1" ]; then
			cp -L "$l1" "$r/lib64/"
		fi
	done
done
cp /etc/mke2fs.conf "$r/etc/" 2>/dev/null || true
# iscsid answers iscsiadm only if the peer uid resolves to "root"
echo 'root:x:0:0:root:/:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
sed 's|^iscsid.startup = .*|iscsid.startup = /bin/true|' "$x/etc/iscsi/iscsid.conf" >"$r/etc/iscsi/iscsid.conf"
for b in "iscsiadm -V" "iscsid -v" "mke2fs -V" "e2fsck -V"; do
	# shellcheck disable=SC2086
	chroot "$r" /bin/$b >/dev/null 2>&1 || { echo "build-guest.sh: '$b' does not run in the initramfs" >&2; exit 1; }
done

# module closure in load order
: >"$r/etc/kinit-modules"
for m in virtio_pci virtio_net crc32c_generic crc32c-intel libcrc32c scsi_mod sd_mod iscsi_tcp ext4; do
	modprobe -d "$x" -S "$kver" --show-depends "$m" 2>/dev/null | while read -r w ko _; do
		[ "$w" = insmod ] || continue
		rel=${ko#"$x"}
		mkdir -p "$r/$(dirname "$rel")"
		cp "$ko" "$r/$rel"
		grep -qxF "$rel" "$r/etc/kinit-modules" || echo "$rel" >>"$r/etc/kinit-modules"
	done
done
cp "$HERE/init" "$r/init"
chmod 755 "$r/init"
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) >"$OUT/initrd.gz.tmp"
mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"
cp "$x/boot/vmlinuz-$kver" "$OUT/vmlinuz"
rm -rf "$x" "$r"
echo "$stamp" >"$OUT/stamp"
echo "build-guest.sh: built $OUT/initrd.gz ($(du -h "$OUT/initrd.gz" | cut -f1)), kernel $kver" >&2
