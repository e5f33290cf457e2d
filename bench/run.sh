#!/usr/bin/env bash
# run.sh - block I/O benchmark of s3tgtd against tgt (Linux STGT) on this host.
#
# usage: bench/run.sh [-o FILE.md] [-r REPS] [-d SECS] [-T s3tgtd,tgt,iperf]
#   -o FILE   also write the markdown report to FILE  [$BUILD/bench-results.md]
#   -r REPS   runs per cell; the table shows the median            [3]
#   -d SECS   target duration of one run (request count calibrated) [2]
#   -T LIST   what to measure                          [s3tgtd,tgt,iperf]
# Environment: S3TGTD (daemon binary) [build/s3tgtd], BUILD [build].
#
# Initiator: qemu-img bench (QEMU's libiscsi block driver, cache=none), one
# process per run, on 127.0.0.1. Targets (all LUNs 1 GiB, on tmpfs or RAM):
#   s3tgtd ram   ram:?size=1G
#   s3tgtd file  file:/dev/shm/...?size=1G  (fallocate'd before start)
#   tgt null     bs-type null (discards writes, reads zeroes: protocol cost only)
#   tgt file     bs-type rdwr on a fallocate'd /dev/shm file
# tgt runs with the data segment settings that suit 1 MiB I/O:
#   MaxRecvDataSegmentLength=MaxXmitDataSegmentLength=FirstBurstLength=262144,
#   MaxBurstLength=1048576 (tgt's 8 KiB default segment halves its 1 MiB writes).
# Matrix: 4 KiB "random" read/write at QD1 and QD32, 1 MiB sequential read/write
# at QD8. qemu-img bench has no random mode: it advances by a fixed step (-S,
# < 2^31) modulo the image size. A step of BS*100003 (a prime, so for a 1 GiB
# LUN every 4 KiB block is visited once per cycle) puts consecutive requests
# ~400 MB apart: no locality, no merging. Sequential = step BS.
# Each cell: a calibration run (min(64 MiB, 2000 requests)) sets the request
# count for ~SECS seconds, then REPS timed runs; the median is reported.
# iperf3: one TCP stream over loopback, the ceiling for any iSCSI target here.
# WARNING: write cells overwrite the LUNs (scratch files only).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
S3TGTD=${S3TGTD:-$BUILD/s3tgtd}
OUT=""
REPS=3
DUR=2
WHAT=s3tgtd,tgt,iperf
while getopts "o:r:d:T:h" o; do
	case $o in
	o) OUT=$OPTARG ;; r) REPS=$OPTARG ;; d) DUR=$OPTARG ;; T) WHAT=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ -n "$OUT" ] || OUT=$BUILD/bench-results.md
mkdir -p "$(dirname "$OUT")"
want() { [[ ,$WHAT, == *,$1,* ]]; }

IQN=iqn.2026-11.io.s3tgt:bench
SIZE=$((1024 * 1048576))
CELLS=(randread:4096:1 randwrite:4096:1 randread:4096:32 randwrite:4096:32 seqread:1048576:8 seqwrite:1048576:8)
WORK=$(mktemp -d /dev/shm/s3tgt-bench.XXXXXX)
PIDS=()
. "$ROOT/bench/lib.sh"
cleanup() {
	bench_stop_pids
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- targets ----------------------------------------------------------------
run_s3tgtd_start() {
	fallocate -l $SIZE "$WORK/s3tgtd-lun1.img"
	s3tgtd_start "$WORK/s3tgtd.log" --target "$IQN" --state-dir "$WORK/state" \
		--lun "0=ram:?size=$SIZE" --lun "1=file:$WORK/s3tgtd-lun1.img?size=$SIZE"
}
run_tgt_start() {
	fallocate -l $SIZE "$WORK/tgt-lun2.img"
	# LUN 1: null (discards writes, reads zeroes); LUN 2: rdwr on the file
	tgt_start 1=null:/dev/null "2=rdwr:$WORK/tgt-lun2.img"
}

# ---- measurement ------------------------------------------------------------
BENCH_TIMEOUT=$((DUR * 20 + 60))
declare -A RES # "label/cell" -> median IOPS
measure() { # LABEL URL
	local label=$1 url=$2 cell name bs qd rw step c0 t0 count t vals
	say "== $label ($url)"
	for cell in "${CELLS[@]}"; do
		IFS=: read -r name bs qd <<<"$cell"
		case $name in
		rand*) step=$((bs * 100003)); [ "$step" -lt 2147483648 ] || step=$((bs * 7)) ;;
		*) step=$bs ;;
		esac
		rw=${name#rand}; rw=${rw#seq}
		c0=$((64 * 1048576 / bs)); [ $c0 -le 2000 ] || c0=2000; [ $c0 -ge $((8 * qd)) ] || c0=$((8 * qd))
		t0=$(bench_once "$url" "$rw" "$bs" "$qd" "$step" "$c0") || { RES[$label/$cell]=error; continue; }
		count=$(awk -v c=$c0 -v t="$t0" -v d="$DUR" 'BEGIN { if (t < 0.001) t = 0.001; n = int(c * d / t); print (n < c ? c : n) }')
		vals=()
		for ((i = 0; i < REPS; i++)); do
			t=$(bench_once "$url" "$rw" "$bs" "$qd" "$step" "$count") || continue
			vals+=("$(awk -v c="$count" -v t="$t" 'BEGIN { printf "%.0f", c / t }')")
		done
		if [ ${#vals[@]} -eq 0 ]; then RES[$label/$cell]=error; continue; fi
		RES[$label/$cell]=$(printf '%s\n' "${vals[@]}" | median)
		say "   $name bs=$bs qd=$qd: ${RES[$label/$cell]} IOPS (runs: ${vals[*]}, $count req/run)"
	done
}

IPERF=""
measure_iperf() {
	local port vals=() spid g i
	for ((i = 0; i < REPS; i++)); do
		port=$(free_port)
		iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
		spid=$!
		PIDS+=("$spid")
		wait_listen "$port" "$spid" || continue
		g=$(timeout $((DUR + 20)) iperf3 -c 127.0.0.1 -p "$port" -t "$DUR" -J 2>/dev/null |
			/usr/bin/python3 -c 'import json, sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))') || g=""
		wait_gone "$spid" 5 || kill -KILL "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		[ -n "$g" ] && vals+=("$g")
	done
	[ ${#vals[@]} -gt 0 ] && IPERF=$(printf '%s\n' "${vals[@]}" | median)
	say "iperf3 loopback: ${IPERF:-error} Gbit/s (runs: ${vals[*]:-})"
}

# ---- run ----------------------------------------------------------------------
command -v qemu-img >/dev/null || { say "qemu-img missing (scripts/install-deps.sh bench)"; exit 2; }
T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
HAVE_S3=0
if want s3tgtd; then
	if [ -x "$S3TGTD" ]; then
		run_s3tgtd_start || { say "s3tgtd did not start"; exit 1; }
		measure "s3tgtd ram" "iscsi://127.0.0.1:$S3_PORT/$IQN/0"
		measure "s3tgtd file" "iscsi://127.0.0.1:$S3_PORT/$IQN/1"
		s3tgtd_stop 20
		HAVE_S3=1
	else
		say "no s3tgtd at $S3TGTD: its columns stay empty"
	fi
fi
HAVE_TGT=0
if want tgt; then
	command -v tgtd >/dev/null || { say "tgtd missing (scripts/install-deps.sh bench)"; exit 2; }
	run_tgt_start || { say "tgtd did not start"; exit 1; }
	measure "tgt null" "iscsi://127.0.0.1:$TGT_PORT/$IQN/1"
	measure "tgt file" "iscsi://127.0.0.1:$TGT_PORT/$IQN/2"
	tgt_stop
	HAVE_TGT=1
fi
want iperf && command -v iperf3 >/dev/null && measure_iperf

# ---- report -------------------------------------------------------------------
cellv() { # label cell -> IOPS, or "-" ; MB/s added for 1 MiB cells
	local v=${RES[$1/$2]:-}
	[ -n "$v" ] || { echo "-"; return; }
	[ "$v" = error ] && { echo "error"; return; }
	case $2 in
	seq*) awk -v v="$v" -v b="${2#*:}" 'BEGIN { split(b, x, ":"); printf "%d (%.0f MB/s)", v, v * x[1] / 1e6 }' ;;
	*) echo "$v" ;;
	esac
}
ratio() { # a b
	local a=${RES[$1/$3]:-} b=${RES[$2/$3]:-}
	[[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] || { echo "-"; return; }
	awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'
}
{
	echo "Run $(date -u +%F) on $(getconf _NPROCESSORS_ONLN) vCPU $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r);"
	echo "qemu-img $(qemu-img --version | sed -n 's/.*version \([^ ]*\).*/\1/p'), tgt $(dpkg-query -W -f='${Version}' tgt 2>/dev/null || echo -);"
	echo "median of $REPS runs of ~${DUR} s each; IOPS (MB/s = 10^6 bytes/s); total $(($(date +%s) - T_START)) s;"
	echo "load average before the run: $LOAD0."
	echo
	echo "| test | BS | QD | s3tgtd ram | tgt null | ratio | s3tgtd file | tgt file | ratio |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for cell in "${CELLS[@]}"; do
		IFS=: read -r name bs qd <<<"$cell"
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$([ "$bs" = 4096 ] && echo 4KiB || echo 1MiB)" "$qd" \
			"$(cellv "s3tgtd ram" "$cell")" "$(cellv "tgt null" "$cell")" "$(ratio "s3tgtd ram" "tgt null" "$cell")" \
			"$(cellv "s3tgtd file" "$cell")" "$(cellv "tgt file" "$cell")" "$(ratio "s3tgtd file" "tgt file" "$cell")"
	done
	echo
	if [ -n "$IPERF" ]; then
		echo "TCP ceiling (iperf3, 1 stream, 127.0.0.1): $IPERF Gbit/s = $(awk -v g="$IPERF" 'BEGIN { printf "%.0f", g * 1e9 / 8 / 1e6 }') MB/s."
	fi
	[ "$HAVE_S3" = 1 ] || echo "s3tgtd figures: pending first run."
	[ "$HAVE_TGT" = 1 ] || echo "tgt figures: not measured in this run."
} | tee "$OUT"
say "report written to $OUT"
