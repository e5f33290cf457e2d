#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages s3tgt needs to build, test
# and benchmark. Idempotent: installs only what is missing, so `make run` and
# `make test` can call it every time at almost no cost.
#
# usage: install-deps.sh [build|test|bench]   (default: test, which includes build)
set -euo pipefail

what=${1:-test}

build=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
	libisal-dev liburing-dev libcurl4-openssl-dev libssl-dev libjansson-dev
	libmicrohttpd-dev libxml2-dev libcmocka-dev valgrind)
# Real initiators and a real S3 server for the integration tests; the kernel
# initiator test boots a Debian kernel under QEMU (packages downloaded, not installed).
test=(libiscsi-bin qemu-utils qemu-block-extra qemu-system-x86 kmod cpio e2fsprogs curl
	ceph-mon ceph-osd radosgw ceph-common uuid-runtime python3-boto3)
bench=(tgt s3backer fuse3 iperf3)

pkgs=("${build[@]}")
case $what in
build) ;;
test) pkgs+=("${test[@]}") ;;
bench) pkgs+=("${test[@]}" "${bench[@]}") ;;
*) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
