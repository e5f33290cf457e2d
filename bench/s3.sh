#!/usr/bin/env bash
# s3.sh - S3 store benchmark: raw RGW, s3tgtd's S3 LUN with and without the
# write-back cache, tgt's file store and s3backer, in one run on one Ceph RGW.
#
# usage: bench/s3.sh [-o FILE.md] [-r REPS] [-m MIB] [-T LIST] [-P]
#   -o FILE   also write the markdown report to FILE   [$BUILD/bench-s3-results.md]
#   -r REPS   runs per figure; the table shows the median      [3]
#   -m MIB    MiB moved by one sequential run (multiple of 4)  [256]
#   -T LIST   what to measure     [raw,lun,cache,tgt,s3backer,count]
#   -P        pin RGW (all its processes) to CPU 0 and everything else (curl,
#             s3tgtd, the initiators, tgt, s3backer) to the other CPUs, as if
#             S3 ran on other machines: the client side's CPU cost no longer
#             takes from RGW's. Needs at least 2 CPUs and taskset.
# Environment: S3TGTD (daemon binary) [build/s3tgtd], BUILD [build].
#
# The RGW is tests/integration/rgw.sh's (Ceph RGW 16.2, memstore OSD: objects
# in RAM), started at the beginning and stopped at the end by its PIDs.
# Everything talks to 127.0.0.1. Figures (MB/s = 10^6 bytes/s):
#   raw       4 MiB PUT then GET of 128 objects at concurrency 16: one curl
#             process, --parallel over keep-alive connections, SigV4 signed by
#             curl (libcurl, HTTP/1.1: the transport the store itself uses).
#             This is the ceiling for everything else. Also 1 MiB ranged
#             GETs at concurrency 8: what the uncached LUN sends for 1 MiB QD8
#             reads (it fetches only the bytes asked for).
#   paired    the cells with an aim are also compared with one raw pass of
#             the same kind run just before each of their runs, which takes
#             RGW's drift during the run out of the ratio.
#   lun       s3://...?chunk_size=4M, no cache: 1 MiB sequential write and read
#             QD8, 4 MiB chunk-aligned sequential write QD8 (also with
#             sign_payload=1), 4 KiB random write QD32 (bounded to 256
#             requests: each is a 4 MiB GET + PUT).
#   cache     the same volume type with cache_size=1G, cache_dir in /dev/shm:
#             1 MiB sequential write QD8, timed until the last write is
#             acknowledged (data in the cache: qemu-img bench's figure) and
#             until QEMU's SYNCHRONIZE CACHE at close completed (data in S3:
#             wall time of the process less that of a one-request run); cold read 1 MiB QD8 (fresh daemon, empty cache_dir, so
#             every chunk is a GET); 4 KiB random write QD32 over a 256 MiB LUN
#             written once before (working set in cache).
#   tgt       tgt's rdwr file store on /dev/shm, same 256 MiB 4 KiB random write.
#   s3backer  Debian's s3backer (FUSE, 4 MiB blocks, its block cache on), dd
#             bs=4M: write (+ unmount, which uploads what the cache holds) and
#             cold read (remounted, iflag=direct).
#   count     S3 requests for 1 GiB written sequentially (1 MiB QD8) through a
#             fresh cached LUN, from the RGW access log (beast lines, debug
#             rgw 1): PUTs per chunk, GETs.
# Initiator: qemu-img bench (libiscsi, cache=none); sequential = step BS; random
# = step BS x 100003 (prime) modulo the LUN size, as bench/run.sh.
# Bounded: every run has a timeout; a full run takes about 4 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
S3TGTD=${S3TGTD:-$BUILD/s3tgtd}
RGW=$ROOT/tests/integration/rgw.sh
OUT=""
REPS=3
MIB=256
WHAT=raw,lun,cache,tgt,s3backer,count
PIN=0
while getopts "o:r:m:T:Ph" o; do
	case $o in
	o) OUT=$OPTARG ;; r) REPS=$OPTARG ;; m) MIB=$OPTARG ;; T) WHAT=$OPTARG ;; P) PIN=1 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ -n "$OUT" ] || OUT=$BUILD/bench-s3-results.md
[[ $MIB =~ ^[0-9]+$ ]] && [ $((MIB % 4)) -eq 0 ] && [ "$MIB" -ge 16 ] && [ "$MIB" -le 1024 ] ||
	{ echo "s3.sh: -m wants a multiple of 4 from 16 to 1024" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")"
want() { [[ ,$WHAT, == *,$1,* ]]; }

IQN=iqn.2026-11.io.s3tgt:s3bench
BUCKET=s3bench
MB=1048576
RAND_MIB=256  # working set of the 4 KiB random writes (LUN size)
COUNT_MIB=1024
RAW_OBJS=128
BENCH_TIMEOUT=120
# Every write run writes a byte pattern no earlier run wrote (1..255, never 0):
# an all-zero chunk is stored as no object at all, and rewriting a chunk with
# the bytes it already holds may cost a layer nothing, which would flatter it.
BENCH_PATTERN=0
next_pattern() { BENCH_PATTERN=$((BENCH_PATTERN % 255 + 1)); }
WORK=$(mktemp -d /dev/shm/s3tgt-s3bench.XXXXXX)
PIDS=()
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

S3B_PID="" RGW_UP=0
cleanup() {
	if [ -n "$S3B_PID" ] && is_alive "$S3B_PID"; then
		fusermount -u "$WORK/mnt" 2>/dev/null || true
		wait_gone "$S3B_PID" 30 || kill -KILL "$S3B_PID" 2>/dev/null || true
	fi
	bench_stop_pids
	[ "$RGW_UP" = 1 ] && "$RGW" stop "$WORK/rgw" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

for c in qemu-img curl radosgw; do
	command -v $c >/dev/null || { say "$c missing (scripts/install-deps.sh bench)"; exit 2; }
done
[ -x "$S3TGTD" ] || { say "no s3tgtd at $S3TGTD (build it, or set S3TGTD)"; exit 2; }

T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
"$RGW" start "$WORK/rgw" >"$WORK/rgw-start.log" 2>&1 || { cat "$WORK/rgw-start.log" >&2; exit 1; }
RGW_UP=1
# shellcheck disable=SC1091
. "$WORK/rgw/s3.env"
RGW_LOG=$WORK/rgw/log/client.rgw.a.log
"$RGW" mkbucket "$WORK/rgw" "$BUCKET"
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
unset AWS_SESSION_TOKEN AWS_PROFILE || true
S3OPTS="chunk_size=4M&endpoint=$S3_ENDPOINT&path_style=1&region=us-east-1"
say "RGW at $S3_ENDPOINT (pids $S3_PIDS)"
PINNED=""
if [ "$PIN" = 1 ]; then
	[ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] && command -v taskset >/dev/null || { say "-P needs 2 CPUs and taskset"; exit 2; }
	# shellcheck disable=SC2086 # a list of PIDs
	for p in $S3_PIDS; do taskset -a -p -c 0 "$p" >/dev/null; done
	# every process this script starts from now on inherits its affinity
	taskset -p -c "1-$(($(getconf _NPROCESSORS_ONLN) - 1))" $$ >/dev/null
	PINNED=" RGW pinned to CPU 0, everything else to CPUs 1-$(($(getconf _NPROCESSORS_ONLN) - 1)) (-P);"
	say "pinned:$PINNED"
fi

declare -A R   # figure -> median value
declare -A RUNS # figure -> all runs
mbps() { awk -v b="$1" -v t="$2" 'BEGIN { if (t < 0.001) t = 0.001; printf "%.0f", b / t / 1e6 }'; }
now() { date +%s.%N; }
record() { # FIGURE VALUES...
	local f=$1
	shift
	if [ $# -eq 0 ]; then R[$f]=error; return; fi
	R[$f]=$(printf '%s\n' "$@" | median)
	RUNS[$f]="$*"
	say "   $f: ${R[$f]} (runs: $*)"
}

# ---- CPU accounting ----------------------------------------------------------------
# RGW, s3tgtd and the initiator share this host's CPUs, so when they are all
# busy a figure is bounded by the CPU time each GB costs all of them together.
# cpu_begin / cpu_end FIGURE BYTES around a measurement add up, per figure, the
# ticks of RGW (the mon, OSD and radosgw PIDs), of s3tgtd, of everything else
# (the initiator or curl, softirq, kernel threads) and idle ticks, from
# /proc/stat and /proc/PID/stat. The report divides them by the bytes moved.
HZ=$(getconf CLK_TCK)
declare -A CPUT # figure -> "bytes rgw s3tgtd other idle" (bytes, clock ticks)
pid_ticks() { # PID... -> utime + stime of those still running, in ticks
	local p t=0 x
	for p in "$@"; do
		# fields after "PID (comm) ": utime and stime are the 12th and 13th
		x=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || x=0
		t=$((t + ${x:-0}))
	done
	echo "$t"
}
cpu_snap() { # -> busy idle rgw s3tgtd (ticks, all CPUs)
	# shellcheck disable=SC2086 # S3_PIDS is a list
	echo "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)" \
		"$(pid_ticks $S3_PIDS)" "$(pid_ticks ${S3_PID:-})"
}
CPU0=()
cpu_begin() { read -ra CPU0 <<<"$(cpu_snap)"; }
cpu_end() { # FIGURE BYTES (S3_PID must be the one cpu_begin saw)
	local a o busy rgw tgt
	read -ra a <<<"$(cpu_snap)"
	read -ra o <<<"${CPUT[$1]:-0 0 0 0 0}"
	busy=$((a[0] - CPU0[0])) rgw=$((a[2] - CPU0[2])) tgt=$((a[3] - CPU0[3]))
	CPUT[$1]="$((o[0] + $2)) $((o[1] + rgw)) $((o[2] + tgt)) $((o[3] + busy - rgw - tgt)) $((o[4] + a[1] - CPU0[1]))"
}

# ---- 1. raw RGW ---------------------------------------------------------------
# curl 7.88's --aws-sigv4 signs no x-amz-content-sha256, which RGW requires.
S3CURL=(curl -sS --no-progress-meter --max-time 120 --aws-sigv4 "aws:amz:us-east-1:s3"
	--user "$S3_KEY:$S3_SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
# raw_phase put|get|getrange -> MB/s of one pass over RAW_OBJS objects: whole
# 4 MiB PUTs or GETs at concurrency 16, or (getrange) the uncached LUN's request
# shape for 1 MiB QD8 reads: 1 MiB ranged GETs at concurrency 8.
raw_phase() {
	local cfg=$WORK/raw-$1.cfg i r t0 t1 bad ok=200 par=16 n=$RAW_OBJS bytes=$((RAW_OBJS * 4 * MB))
	: >"$cfg"
	for ((i = 0; i < RAW_OBJS; i++)); do
		if [ "$1" = getrange ]; then
			for r in 0 1 2 3; do
				echo "url = \"$S3_ENDPOINT/$BUCKET/raw/$i\""
				echo "range = \"$((r * MB))-$(((r + 1) * MB - 1))\""
				echo 'output = "/dev/null"'
			done
			continue
		fi
		echo "url = \"$S3_ENDPOINT/$BUCKET/raw/$i\""
		[ "$1" = put ] && echo "upload-file = \"$WORK/obj4m\""
		echo 'output = "/dev/null"'
	done >>"$cfg"
	[ "$1" = getrange ] && { ok=206 par=8 n=$((RAW_OBJS * 4)); }
	t0=$(now)
	timeout 300 "${S3CURL[@]}" --parallel --parallel-max $par --parallel-immediate \
		-w '%{http_code}\n' -K "$cfg" >"$WORK/raw.codes" 2>>"$WORK/raw.err" || true
	t1=$(now)
	bad=$(grep -cv "^$ok\$" "$WORK/raw.codes" || true)
	[ "$bad" = 0 ] && [ "$(wc -l <"$WORK/raw.codes")" = "$n" ] ||
		{ say "raw $1: $bad bad answers: $(sort "$WORK/raw.codes" | uniq -c | tr '\n' ' ')"; return 1; }
	mbps $bytes "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}
if want raw; then
	say "== raw RGW: 4 MiB objects, concurrency 16"
	head -c $((4 * MB)) /dev/urandom >"$WORK/obj4m"
	for op in put get getrange; do
		v=()
		cpu_begin
		for ((i = 0; i < REPS; i++)); do
			if x=$(raw_phase $op); then v+=("$x"); fi
		done
		cpu_end "raw/$op" $((${#v[@]} * RAW_OBJS * 4 * MB))
		record "raw/$op" "${v[@]}"
	done
fi

# ---- s3tgtd cells ---------------------------------------------------------------
# RGW's own speed drifts during a run (raw GET passes of one run differ by up to
# 20 %), so a ratio to the raw phase at the start also measures that drift. The
# cells with an aim are therefore also paired: PAIR=put|get runs one raw pass of
# that kind just before each run of the cell, recorded as FIGURE/ceiling, and the
# report gives the ratio to those passes too. CPU accounting covers the cell's runs
# only, not the paired passes.
PAIR=""
pair_raw() { # FIGURE: one raw pass of kind $PAIR into PAIRED[FIGURE]
	local x
	[ -n "$PAIR" ] && want raw || return 0
	x=$(raw_phase "$PAIR") && PAIRED[$1]+="$x "
}
declare -A PAIRED # figure -> raw passes run just before its runs
record_pair() { # FIGURE
	# shellcheck disable=SC2086 # a list of numbers
	[ -z "${PAIRED[$1]:-}" ] || record "$1/ceiling" ${PAIRED[$1]}
}
# cell FIGURE URL rw bs qd step count [qemu-img bench options] -> R[FIGURE] (MB/s,
# or IOPS for 4 KiB), REPS runs; a run that fails is left out
cell() {
	local f=$1 url=$2 rw=$3 bs=$4 qd=$5 step=$6 count=$7 t v=() i
	shift 7
	for ((i = 0; i < REPS; i++)); do
		pair_raw "$f"
		next_pattern
		cpu_begin
		t=$(bench_once "$url" "$rw" "$bs" "$qd" "$step" "$count" "$@") && [ -n "$t" ] || continue
		cpu_end "$f" $((bs * count))
		if [ "$bs" -ge $MB ]; then v+=("$(mbps $((bs * count)) "$t")")
		else v+=("$(awk -v c="$count" -v t="$t" 'BEGIN { printf "%.0f", c / t }')"); fi
	done
	record "$f" "${v[@]}"
	record_pair "$f"
}
lun_start() { # LOGNAME URI
	local i
	s3tgtd_start "$WORK/$1.log" --target "$IQN" --state-dir "$WORK/state" --no-api --lun "0=$2"
	URL="iscsi://127.0.0.1:$S3_PORT/$IQN/0"
	# A cached LUN makes its RAM resident in the background after start (about 1 s per
	# GiB): a long-running daemon has long finished, so the figures wait for it too.
	[[ $2 == *cache_size=* ]] || return 0
	for ((i = 0; i < 600; i++)); do
		grep -q "cache memory resident" "$WORK/$1.log" && return 0
		sleep 0.1
	done
	say "$1: cache memory not resident after 60 s; measuring anyway"
}
RSTEP=$((4096 * 100003))

if want lun; then
	say "== s3tgtd S3 LUN, no cache (chunk_size=4M)"
	lun_start lun "s3://$BUCKET/nocache?size=1G&$S3OPTS"
	cell lun/seqwrite1m "$URL" write $MB 8 $MB "$MIB"
	PAIR=get cell lun/seqread1m "$URL" read $MB 8 $MB "$MIB"
	PAIR=put cell lun/seqwrite4m "$URL" write $((4 * MB)) 8 $((4 * MB)) $((MIB / 4))
	cell lun/randwrite4k "$URL" write 4096 32 $RSTEP 256
	s3tgtd_stop 60
	lun_start lun-signed "s3://$BUCKET/nocache?size=1G&$S3OPTS&sign_payload=1"
	cell lun/seqwrite4m-signed "$URL" write $((4 * MB)) 8 $((4 * MB)) $((MIB / 4))
	s3tgtd_stop 60
fi

CACHE="cache_size=1G"
if want cache; then
	say "== s3tgtd S3 LUN with cache ($CACHE, cache_dir in /dev/shm)"
	lun_start cache "s3://$BUCKET/cached?size=1G&$S3OPTS&$CACHE&cache_dir=$WORK/cache-w"
	# qemu-img bench stops its clock when the last write completes (data in
	# the cache); QEMU then flushes at close (SYNCHRONIZE CACHE: data in S3)
	# and exits. So the process's wall time, less that of a one-request read
	# (login, logout, no flush), is the time until the data is in S3.
	idle=()
	for ((i = 0; i < 3; i++)); do
		t0=$(now)
		bench_once "$URL" read $MB 1 $MB 1 >/dev/null
		idle+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')")
	done
	IDLE=$(printf '%s\n' "${idle[@]}" | median)
	v=() vf=()
	for ((i = 0; i < REPS; i++)); do
		PAIR=put pair_raw cache/seqwrite1m-flush
		next_pattern
		t0=$(now)
		t=$(bench_once "$URL" write $MB 8 $MB "$MIB") && [ -n "$t" ] || continue
		wall=$(awk -v a="$t0" -v b="$(now)" -v i="$IDLE" 'BEGIN { print b - a - i }')
		v+=("$(mbps $((MIB * MB)) "$t")")
		vf+=("$(mbps $((MIB * MB)) "$wall")")
	done
	record cache/seqwrite1m-flush "${vf[@]}"
	record_pair cache/seqwrite1m-flush
	record cache/seqwrite1m-ack "${v[@]}"
	s3tgtd_stop 120
	v=()
	for ((i = 0; i < REPS; i++)); do
		# a clean stop left cache_dir clean: a new empty one makes every read a GET
		rm -rf "$WORK/cache-w"
		PAIR=get pair_raw cache/coldread1m
		lun_start cache "s3://$BUCKET/cached?size=1G&$S3OPTS&$CACHE&cache_dir=$WORK/cache-w"
		cpu_begin
		if t=$(bench_once "$URL" read $MB 8 $MB "$MIB") && [ -n "$t" ]; then
			v+=("$(mbps $((MIB * MB)) "$t")")
			cpu_end cache/coldread1m $((MIB * MB))
		fi
		s3tgtd_stop 120
	done
	record cache/coldread1m "${v[@]}"
	record_pair cache/coldread1m

	lun_start cache-rand "s3://$BUCKET/rand?size=${RAND_MIB}M&$S3OPTS&$CACHE&cache_dir=$WORK/cache-r"
	next_pattern
	bench_once "$URL" write $MB 8 $MB $RAND_MIB >/dev/null # QEMU flushes at close
	cell cache/randwrite4k "$URL" write 4096 32 $RSTEP $((RAND_MIB * 256))
	s3tgtd_stop 120
fi

if want tgt && command -v tgtd >/dev/null; then
	say "== tgt rdwr file store (/dev/shm, ${RAND_MIB} MiB)"
	fallocate -l $((RAND_MIB * MB)) "$WORK/tgt.img"
	tgt_start "1=rdwr:$WORK/tgt.img"
	cell tgt/randwrite4k "iscsi://127.0.0.1:$TGT_PORT/$IQN/1" write 4096 32 $RSTEP $((RAND_MIB * 256))
	tgt_stop
	rm -f "$WORK/tgt.img"
fi

# ---- s3backer -----------------------------------------------------------------------
S3B_NOTE=""
s3b_mount() {
	s3backer -f --accessId="$S3_KEY" --accessKey="$S3_SECRET" --baseURL="$S3_ENDPOINT/" \
		--blockSize=4M --size=1G --listBlocks --timeout=60 s3backer "$WORK/mnt" \
		>>"$WORK/s3backer.log" 2>&1 </dev/null &
	S3B_PID=$!
	PIDS+=("$S3B_PID")
	local i
	for ((i = 0; i < 100; i++)); do
		[ -f "$WORK/mnt/file" ] && return 0
		is_alive "$S3B_PID" || { tail -n 5 "$WORK/s3backer.log" >&2; return 1; }
		sleep 0.1
	done
	return 1
}
s3b_umount() { # fusermount -u makes s3backer write its dirty blocks, then exit
	fusermount -u "$WORK/mnt"
	wait_gone "$S3B_PID" 300 || { say "s3backer $S3B_PID did not exit: SIGKILL"; kill -KILL "$S3B_PID"; }
	wait "$S3B_PID" 2>/dev/null || true
}
if want s3backer; then
	say "== s3backer $(dpkg-query -W -f='${Version}' s3backer 2>/dev/null || echo -) (FUSE, 4 MiB blocks, block cache on)"
	if ! command -v s3backer >/dev/null; then
		S3B_NOTE="s3backer not installed (scripts/install-deps.sh bench): not measured."
	elif [ ! -c /dev/fuse ] || ! command -v fusermount >/dev/null; then
		S3B_NOTE="no FUSE in this environment (/dev/fuse or fusermount missing): s3backer not measured."
	else
		mkdir -p "$WORK/mnt"
		"$RGW" mkbucket "$WORK/rgw" s3backer
		head -c $((MIB * MB)) /dev/urandom >"$WORK/src.bin"
		vw=() va=() vr=()
		for ((i = 0; i < REPS; i++)); do
			s3b_mount || { S3B_NOTE="s3backer did not mount: see its log"; break; }
			t0=$(now)
			timeout 300 dd if="$WORK/src.bin" of="$WORK/mnt/file" bs=4M count=$((MIB / 4)) conv=fsync,notrunc status=none ||
				{ S3B_NOTE="s3backer: dd write failed"; s3b_umount; break; }
			t1=$(now)
			s3b_umount
			t2=$(now)
			va+=("$(mbps $((MIB * MB)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")")
			vw+=("$(mbps $((MIB * MB)) "$(awk -v a="$t0" -v b="$t2" 'BEGIN { print b - a }')")")
			s3b_mount || { S3B_NOTE="s3backer did not mount: see its log"; break; }
			t0=$(now)
			timeout 300 dd if="$WORK/mnt/file" of="$WORK/back.bin" bs=4M count=$((MIB / 4)) iflag=direct status=none ||
				{ S3B_NOTE="s3backer: dd read failed"; s3b_umount; break; }
			t1=$(now)
			vr+=("$(mbps $((MIB * MB)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")")
			s3b_umount
			cmp -s "$WORK/src.bin" "$WORK/back.bin" || { S3B_NOTE="s3backer read back different data"; break; }
		done
		rm -f "$WORK/src.bin" "$WORK/back.bin"
		record s3backer/write "${vw[@]}"
		record s3backer/write-ack "${va[@]}"
		record s3backer/coldread "${vr[@]}"
	fi
	[ -z "$S3B_NOTE" ] || say "$S3B_NOTE"
fi

# ---- S3 requests per GiB written ------------------------------------------------
# rgw_reqs PREFIX FROMLINE METHOD -> requests on PREFIX/chunks/ in the access log
rgw_reqs() {
	tail -n +"$2" "$RGW_LOG" | grep -c "\"$3 /$BUCKET/$1/chunks/" || true
}
if want count; then
	say "== S3 requests for $COUNT_MIB MiB written sequentially through a cached LUN"
	lun_start count "s3://$BUCKET/count?size=${COUNT_MIB}M&$S3OPTS&$CACHE&cache_dir=$WORK/cache-c"
	L0=$(($(wc -l <"$RGW_LOG") + 1))
	next_pattern
	bench_once "$URL" write $MB 8 $MB $COUNT_MIB >/dev/null # QEMU flushes at close
	s3tgtd_stop 120
	sleep 2 # RGW writes its log from a thread
	R[count/put]=$(rgw_reqs count "$L0" PUT)
	R[count/get]=$(rgw_reqs count "$L0" GET)
	R[count/other]=$(tail -n +"$L0" "$RGW_LOG" | grep -E 'beast: .*"[A-Z]+ /' |
		grep -cvE "\"(PUT|GET) /$BUCKET/count/chunks/" || true)
	say "   PUT ${R[count/put]} GET ${R[count/get]} other ${R[count/other]} for $((COUNT_MIB / 4)) chunks"
	R[count/otherlist]=$(tail -n +"$L0" "$RGW_LOG" | grep -E 'beast: .*"[A-Z]+ /' |
		grep -vE "\"(PUT|GET) /$BUCKET/count/chunks/" |
		sed -n 's/.*"\([A-Z][A-Z]*\) \(\/[^ ?]*\).*/\1 \2/p' | sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2 " " $3, $1 }' || true)
fi

# ---- report --------------------------------------------------------------------------
T_TOTAL=$(($(date +%s) - T_START))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
val() { # FIGURE UNIT
	local x=${R[$1]:-}
	[ -n "$x" ] || { echo "-"; return; }
	[ "$x" = error ] && { echo "error"; return; }
	echo "$x $2"
}
ratio() { # A B -> A/B
	local a=${R[$1]:-} b=${R[$2]:-}
	[[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ && $b != 0 ]] || { echo "-"; return; }
	awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'
}
cpu_row() { # FIGURE -> a row of the CPU table, if the figure was measured
	local c
	read -ra c <<<"${CPUT[$1]:-0}"
	[ "${c[0]}" -gt 0 ] || return 0
	awk -v f="$1" -v b="${c[0]}" -v hz="$HZ" -v r="${c[1]}" -v t="${c[2]}" -v o="${c[3]}" -v i="${c[4]}" \
		'BEGIN { g = b / 1e9 * hz; printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", f, r / g, t / g, o / g, (r + t + o) / g, i / g }'
}
row() { # LABEL FIGURE UNIT RATIO-TO-FIGURE COMPARED-WITH AIM
	local r="-"
	[ -n "$4" ] && r=$(ratio "$2" "$4")
	printf '| %s | %s | %s | %s | %s |\n' "$1" "$(val "$2" "$3")" "$r" "$5" "$6"
}
{
	echo "Run $(date -u +%F) on $(machine); $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM;"
	echo "radosgw $(dpkg-query -W -f='${Version}' radosgw 2>/dev/null || echo -) (memstore OSD), qemu-img $(qemu-img --version | sed -n 's/.*version \([^ ]*\).*/\1/p'), tgt $(dpkg-query -W -f='${Version}' tgt 2>/dev/null || echo -), s3backer $(dpkg-query -W -f='${Version}' s3backer 2>/dev/null || echo -);"
	echo "\`bench/s3.sh -r $REPS -m $MIB -T $WHAT$([ "$PIN" = 1 ] && echo " -P")\`: median of $REPS runs, $MIB MiB per sequential run; MB/s = 10^6 bytes/s; total $T_TOTAL s;$PINNED"
	echo "load average before the run: $LOAD0, after: $LOAD1."
	echo
	echo "| figure | result | ratio | ratio to | aim |"
	echo "|---|---|---|---|---|"
	row "raw RGW PUT 4 MiB, concurrency 16 (curl)" raw/put MB/s raw/put "raw PUT" "ceiling"
	row "raw RGW GET 4 MiB, concurrency 16 (curl)" raw/get MB/s raw/get "raw GET" "ceiling"
	row "raw RGW ranged GET 1 MiB, concurrency 8 (curl; the uncached LUN's requests)" raw/getrange MB/s raw/get "raw GET" ""
	row "S3 LUN, no cache: seq write 1 MiB QD8" lun/seqwrite1m MB/s raw/put "raw PUT" ""
	row "S3 LUN, no cache: seq write 4 MiB QD8 (chunk-aligned)" lun/seqwrite4m MB/s raw/put "raw PUT" "≥ 0.90"
	row "S3 LUN, no cache: seq write 4 MiB QD8, paired (raw PUT pass just before each run)" lun/seqwrite4m MB/s lun/seqwrite4m/ceiling "paired raw PUT ($(val lun/seqwrite4m/ceiling MB/s))" "≥ 0.90"
	row "S3 LUN, no cache: seq write 4 MiB QD8, sign_payload=1 (SHA-256 of every body)" lun/seqwrite4m-signed MB/s raw/put "raw PUT" ""
	row "S3 LUN, no cache: seq read 1 MiB QD8" lun/seqread1m MB/s raw/get "raw GET" "≥ 0.90"
	row "S3 LUN, no cache: seq read 1 MiB QD8, against the same requests raw" lun/seqread1m MB/s raw/getrange "raw ranged GET" ""
	row "S3 LUN, no cache: seq read 1 MiB QD8, paired (raw GET pass just before each run)" lun/seqread1m MB/s lun/seqread1m/ceiling "paired raw GET ($(val lun/seqread1m/ceiling MB/s))" "≥ 0.90"
	row "S3 LUN, no cache: random write 4 KiB QD32" lun/randwrite4k IOPS "" "" ""
	row "cached S3 LUN: seq write 1 MiB QD8 + SYNCHRONIZE CACHE" cache/seqwrite1m-flush MB/s raw/put "raw PUT" "≥ 0.90"
	row "cached S3 LUN: seq write + SYNCHRONIZE CACHE, paired (raw PUT pass just before each run)" cache/seqwrite1m-flush MB/s cache/seqwrite1m-flush/ceiling "paired raw PUT ($(val cache/seqwrite1m-flush/ceiling MB/s))" "≥ 0.90"
	row "cached S3 LUN: seq write 1 MiB QD8 (acknowledged from cache)" cache/seqwrite1m-ack MB/s raw/put "raw PUT" ""
	row "cached S3 LUN: cold read 1 MiB QD8 (empty cache)" cache/coldread1m MB/s raw/get "raw GET" "≥ 0.90"
	row "cached S3 LUN: cold read, paired (raw GET pass just before each run)" cache/coldread1m MB/s cache/coldread1m/ceiling "paired raw GET ($(val cache/coldread1m/ceiling MB/s))" "≥ 0.90"
	row "cached S3 LUN: random write 4 KiB QD32 (${RAND_MIB} MiB, in cache)" cache/randwrite4k IOPS tgt/randwrite4k "tgt file" "≥ 1"
	row "tgt rdwr file store (/dev/shm): random write 4 KiB QD32" tgt/randwrite4k IOPS "" "" ""
	row "s3backer: write dd bs=4M + unmount (data in S3)" s3backer/write MB/s raw/put "raw PUT" ""
	row "s3backer: write dd bs=4M conv=fsync (acknowledged)" s3backer/write-ack MB/s raw/put "raw PUT" ""
	row "s3backer: cold read dd bs=4M iflag=direct" s3backer/coldread MB/s raw/get "raw GET" ""
	printf '| %s | %s vs %s | %s | %s | %s |\n' "cached S3 LUN vs s3backer: write, data in S3" \
		"$(val cache/seqwrite1m-flush MB/s)" "$(val s3backer/write MB/s)" \
		"$(ratio cache/seqwrite1m-flush s3backer/write)" "s3backer" "≥ 3"
	printf '| %s | %s vs %s | %s | %s | %s |\n' "cached S3 LUN vs s3backer: cold read" \
		"$(val cache/coldread1m MB/s)" "$(val s3backer/coldread MB/s)" \
		"$(ratio cache/coldread1m s3backer/coldread)" "s3backer" "≥ 3"
	if [ -n "${R[count/put]:-}" ]; then
		echo "| S3 requests, $COUNT_MIB MiB sequential write (1 MiB QD8) through a cached LUN, $((COUNT_MIB / 4)) chunks | ${R[count/put]} chunk PUTs, ${R[count/get]} chunk GETs, ${R[count/other]} other | $(awk -v p="${R[count/put]}" -v c=$((COUNT_MIB / 4)) 'BEGIN { printf "%.3f", p / c }') | PUTs per chunk | ≤ 1.05, 0 GETs |"
	fi
	echo
	echo "Where the CPU goes: CPU-seconds per GB (10^9 bytes) moved, summed over all runs of the"
	echo "figure, on this host's $(getconf _NPROCESSORS_ONLN) CPUs (RGW = its mon, OSD and radosgw; other = the initiator"
	echo "or curl, softirq, kernel threads). Busy + idle = $(getconf _NPROCESSORS_ONLN) x the wall time per GB."
	echo
	echo "| figure | RGW | s3tgtd | other | busy | idle |"
	echo "|---|---|---|---|---|---|"
	for f in raw/put raw/get raw/getrange lun/seqwrite4m lun/seqread1m cache/coldread1m; do
		cpu_row "$f"
	done
	echo "Runs: $(for f in "${!RUNS[@]}"; do echo "$f=[${RUNS[$f]}]"; done | sort | tr '\n' ' ')"
	[ -z "$S3B_NOTE" ] || { echo; echo "$S3B_NOTE"; }
} | tee "$OUT"
say "report written to $OUT"
