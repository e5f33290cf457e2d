# shellcheck shell=bash
# lib.sh - shell functions shared by bench/run.sh and bench/s3.sh (sourced).
#
# The caller defines WORK (scratch directory), IQN, and an array PIDS that its
# EXIT trap stops (bench_stop_pids); every process these functions start is
# appended to PIDS and stopped by its PID only.

say() { echo "bench: $*" >&2; }

is_alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
wait_gone() { # PID SECS -> 0 if it exited in time
	local i
	for ((i = 0; i < $2 * 10; i++)); do is_alive "$1" || return 0; sleep 0.1; done
	return 1
}
bench_stop_pids() { # TERM, then KILL after 5 s, every PID in PIDS still alive
	local p
	for p in "${PIDS[@]}"; do
		if is_alive "$p"; then
			kill -TERM "$p" 2>/dev/null || true
			wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true
		fi
	done
}

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		[ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ] && { echo "$p"; return; }
	done
}
wait_listen() { # PORT PID
	local i
	for ((i = 0; i < 100; i++)); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return 0
		is_alive "$2" || return 1
		sleep 0.1
	done
	return 1
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# machine() prints "N vCPU <model>, Linux <release>" for report headers (N online
# CPUs, not those this process may use: bench/s3.sh -P narrows its own affinity)
machine() {
	echo "$(getconf _NPROCESSORS_ONLN) vCPU $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)"
}

# ---- s3tgtd -------------------------------------------------------------------
S3_PID="" S3_PORT=""
s3tgtd_start() { # LOG ARGS... (everything after --listen, e.g. --target, --lun)
	local log=$1
	shift
	S3_PORT=$(free_port)
	"$S3TGTD" --listen "127.0.0.1:$S3_PORT" "$@" >"$log" 2>&1 </dev/null &
	S3_PID=$!
	PIDS+=("$S3_PID")
	wait_listen "$S3_PORT" "$S3_PID" || { tail -n 20 "$log" >&2; return 1; }
	sleep 0.5
}
s3tgtd_stop() { # SECS to wait for a clean exit (a cached LUN flushes first) [20]
	kill -TERM "$S3_PID"
	wait_gone "$S3_PID" "${1:-20}" || { say "s3tgtd $S3_PID did not exit after SIGTERM: SIGKILL"; kill -KILL "$S3_PID"; }
	wait "$S3_PID" 2>/dev/null || true
}

# ---- tgt (Linux STGT) ---------------------------------------------------------
TGT_PID="" TGT_PORT="" TGT_CTL=""
tgtadm_() { timeout 20 tgtadm -C "$TGT_CTL" --lld iscsi "$@"; }
tgt_start() { # LUN=BSTYPE:PATH... (LUN 0 is tgt's controller; data LUNs from 1)
	local i kv spec lun
	TGT_PORT=$(free_port)
	TGT_CTL=$((TGT_PORT % 1000 + 2000)) # selects /var/run/tgtd/socket.N; no other tgtd is touched
	# -f: foreground, so $! is tgtd itself and can be stopped by PID
	setsid tgtd -f -C "$TGT_CTL" --iscsi "portal=127.0.0.1:$TGT_PORT" >"$WORK/tgtd.log" 2>&1 </dev/null &
	TGT_PID=$!
	PIDS+=("$TGT_PID")
	wait_listen "$TGT_PORT" "$TGT_PID" || { tail -n 20 "$WORK/tgtd.log" >&2; return 1; }
	for ((i = 0; i < 100; i++)); do tgtadm_ --mode target --op show >/dev/null 2>&1 && break; sleep 0.1; done
	tgtadm_ --mode target --op new --tid 1 --targetname "$IQN"
	for spec in "$@"; do
		lun=${spec%%=*}
		spec=${spec#*=}
		tgtadm_ --mode logicalunit --op new --tid 1 --lun "$lun" --backing-store "${spec#*:}" --bstype "${spec%%:*}"
	done
	# tgt's default 8 KiB data segment halves its 1 MiB writes: use the
	# settings that suit large I/O
	for kv in MaxRecvDataSegmentLength=262144 MaxXmitDataSegmentLength=262144 \
		FirstBurstLength=262144 MaxBurstLength=1048576; do
		tgtadm_ --mode target --op update --tid 1 --name "${kv%%=*}" --value "${kv#*=}"
	done
	tgtadm_ --mode target --op bind --tid 1 -I ALL
}
tgt_stop() {
	# tgtd ignores SIGTERM: delete the target, then ask this tgtd (its own
	# control socket) to exit; SIGKILL that PID only as a fallback
	tgtadm_ --mode target --op delete --force --tid 1 >/dev/null 2>&1 || true
	timeout 20 tgtadm -C "$TGT_CTL" --op delete --mode system >/dev/null 2>&1 || true
	wait_gone "$TGT_PID" 10 || { say "tgtd $TGT_PID still alive: SIGKILL"; kill -KILL "$TGT_PID"; }
	wait "$TGT_PID" 2>/dev/null || true
	rm -f "/var/run/tgtd/socket.$TGT_CTL" "/var/run/tgtd/socket.$TGT_CTL.lock"
}

# ---- qemu-img bench -----------------------------------------------------------
# bench_once URL rw bs qd step count [extra qemu-img bench options] -> seconds
# Initiator: QEMU's libiscsi driver, cache=none. BENCH_TIMEOUT bounds one run.
# qemu-img bench writes zeroes unless given a pattern; a store that keeps no
# object for an all-zero chunk needs BENCH_PATTERN (a byte value) set.
bench_once() {
	local url=$1 rw=$2 bs=$3 qd=$4 step=$5 count=$6 w=() out
	shift 6
	if [ "$rw" = write ]; then
		w=(-w)
		[ -z "${BENCH_PATTERN:-}" ] || w+=(--pattern="$BENCH_PATTERN")
	fi
	out=$(timeout -k 5 "${BENCH_TIMEOUT:-120}" qemu-img bench -f raw -t none "${w[@]}" \
		-c "$count" -d "$qd" -s "$bs" -S "$step" "$@" "$url" 2>&1) || { say "qemu-img bench failed: $out"; return 1; }
	sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p' <<<"$out"
}
