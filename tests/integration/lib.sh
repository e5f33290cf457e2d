# shellcheck shell=bash
# lib.sh - shared helpers for tests/integration/test_*.sh (sourced, not run).
#
# Environment (set by ctest, see CMakeLists.txt):
#   S3TGTD        path of the daemon binary under test
#   S3TGT_BUILD   build directory (per-test scratch dirs and result files go here)
#   S3TGT_SRC     source tree
# Optional:
#   S3TGT_ITEST_KEEP=1          keep the per-test scratch dir even on success
#   S3TGT_ITEST_LUN_OFFSET=N    added to every LUN number put into an iscsi:// URL.
#                               Only for running the harness against a reference
#                               target whose LUN 0 is a controller (tgt: N=1).
#
# Everything listens and connects on 127.0.0.1 only. The EXIT trap stops only
# the processes this script started (by PID), never anything found by name.
set -euo pipefail

: "${S3TGTD:?S3TGTD must point at the s3tgtd binary}"
: "${S3TGT_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${S3TGT_BUILD:=$S3TGT_SRC/build}"
[ -x "$S3TGTD" ] || { echo "S3TGTD=$S3TGTD is not an executable" >&2; exit 1; }

T_NAME=$(basename "$0" .sh)
T_HOST=127.0.0.1
T_INITIATOR=iqn.2026-11.io.s3tgt:itest-init1
# shellcheck disable=SC2034  # used by the sourcing scripts
T_INITIATOR2=iqn.2026-11.io.s3tgt:itest-init2
T_LUN_OFFSET=${S3TGT_ITEST_LUN_OFFSET:-0}
mkdir -p "$S3TGT_BUILD/itest"
T_DIR=$(mktemp -d "$S3TGT_BUILD/itest/$T_NAME.XXXXXX")
T_PASS=0
T_FAIL=0
T_PIDS=()          # every background process this script started
DAEMON_PID=""
DAEMON_PORT=""
DAEMON_LOG=""
DAEMON_ARGS=()

log() { printf '[%s %s] %s\n' "$T_NAME" "$(date +%T)" "$*"; }

# ---- assertions ----------------------------------------------------------
pass() { T_PASS=$((T_PASS + 1)); log "PASS: $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); log "FAIL: $*"; }

# check "what is checked" cmd args...  -> runs the command, records pass/fail
check() {
	local what=$1 rc=0
	shift
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then pass "$what"; else fail "$what (exit $rc)"; fi
	return 0
}

# check_eq "what" expected actual
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}

# closing line of every test script; exit status reflects the counters
finish() {
	echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
}

# abort the whole test (setup problems): prints, counts one failure, exits
die() {
	fail "$*"
	finish || true
	exit 1
}

# ---- processes -----------------------------------------------------------
is_alive() { # PID: true while running and not a zombie
	kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_pid PID [SECS]: SIGTERM, wait up to SECS (default 15), then SIGKILL that PID.
# Sets STOP_RC to the exit status (128+signal when killed).
stop_pid() {
	local pid=$1 secs=${2:-15} i
	STOP_RC=0
	if is_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < secs * 10; i++)); do
			is_alive "$pid" || break
			sleep 0.1
		done
		if is_alive "$pid"; then
			log "PID $pid still alive ${secs}s after SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
	local rc=$? pid
	for pid in "${T_PIDS[@]}"; do
		is_alive "$pid" && stop_pid "$pid" 5
	done
	if [ "$rc" -eq 0 ] && [ "${S3TGT_ITEST_KEEP:-0}" != 1 ]; then
		rm -rf "$T_DIR"
	else
		echo "$T_NAME: logs and scratch files kept in $T_DIR" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# qio URL "cmd"...: qemu-io (options from the QIO_OPTS array, e.g. (-d unmap))
# runs the commands on one session; fails on any error or pattern mismatch.
QIO_OPTS=()
qio() {
	local url=$1 out args=() c
	shift
	for c in "$@"; do args+=(-c "$c"); done
	out=$(timeout "${TMO:-120}" qemu-io -f raw "${QIO_OPTS[@]}" "${args[@]}" "$url" 2>&1) ||
		{ echo "$out" >&2; return 1; }
	if grep -qiE 'fail|error|mismatch' <<<"$out"; then
		echo "$out" >&2
		return 1
	fi
}

# ---- a real S3 server -----------------------------------------------------
RGW=$S3TGT_SRC/tests/integration/rgw.sh
RGW_DIR=$T_DIR/rgw
# rgw_up BUCKET: start a Ceph RGW for this test (rgw.sh: loopback, free ports),
# stopped by the PIDs rgw.sh recorded before cleanup() runs; create BUCKET; load
# S3_ENDPOINT, S3_KEY, S3_SECRET, S3_REGION, S3_PIDS and export the credentials
# for the daemon's AWS credential chain.
rgw_up() {
	trap 'rc=$?; "$RGW" stop "$RGW_DIR" >/dev/null 2>&1 || true; (exit $rc); cleanup' EXIT
	"$RGW" start "$RGW_DIR" >"$T_DIR/rgw-start.log" 2>&1 || die "RGW did not start (see $T_DIR/rgw-start.log)"
	# shellcheck disable=SC1091
	. "$RGW_DIR/s3.env"
	"$RGW" mkbucket "$RGW_DIR" "$1" >/dev/null || die "cannot create bucket $1"
	export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
	unset AWS_SESSION_TOKEN AWS_PROFILE || true
}

# free_port: print a TCP port on 127.0.0.1 that nothing uses (any state)
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 30000))
		[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	echo "free_port: no free port found" >&2
	return 1
}

port_listens() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# start_daemon [--port P] ARGS...: runs $S3TGTD --listen 127.0.0.1:PORT ARGS in the
# background. Sets DAEMON_PID, DAEMON_PORT, DAEMON_LOG. Waits (120 s max) until
# the port listens; returns 1 with the log tail if the daemon dies or never listens.
# The same PORT and ARGS are remembered for restart_daemon. Without --port, a
# port another test took between free_port and the daemon's bind (tests may
# run side by side) is retried on another port.
start_daemon() {
	local try rc
	if [ "${1:-}" = --port ]; then
		start_daemon_on "$2" "${@:3}"
		return
	fi
	for try in 1 2 3 4 5; do
		rc=0
		start_daemon_on "$(free_port)" "$@" || rc=$?
		[ $rc = 0 ] || grep -q 'Address already in use' "$DAEMON_LOG" || return $rc
		[ $rc = 0 ] && return 0
		log "port $DAEMON_PORT was taken meanwhile (try $try): another port"
	done
	return 1
}

start_daemon_on() { # PORT ARGS...
	local i j port=$1
	shift
	DAEMON_PORT=$port
	DAEMON_ARGS=("$@")
	DAEMON_LOG=$T_DIR/s3tgtd.$port.$(date +%s%N).log
	log "start: $S3TGTD --listen $T_HOST:$port $*"
	# pdeathsig: if this script is killed outright (ctest timeout), the daemon
	# still gets SIGTERM; setpriv execs, so $! is the daemon itself
	setpriv --pdeathsig TERM -- "$S3TGTD" --listen "$T_HOST:$port" "$@" >"$DAEMON_LOG" 2>&1 </dev/null &
	DAEMON_PID=$!
	T_PIDS+=("$DAEMON_PID")
	for ((i = 0; i < 1200; i++)); do
		if ! is_alive "$DAEMON_PID"; then
			wait "$DAEMON_PID" 2>/dev/null || true
			log "daemon died during start-up; log tail:"
			tail -n 30 "$DAEMON_LOG" | sed 's/^/    /'
			return 1
		fi
		if port_listens "$port"; then
			# the daemon prints its iscsi:// URL once its targets are set up;
			# tolerate a daemon that does not (stdout buffered) after 3 s
			for ((j = 0; j < 30; j++)); do
				grep -q 'iscsi://' "$DAEMON_LOG" && break
				sleep 0.1
			done
			log "daemon PID $DAEMON_PID listens on $T_HOST:$port"
			return 0
		fi
		sleep 0.1
	done
	log "daemon PID $DAEMON_PID did not listen on $port within 120 s; log tail:"
	tail -n 30 "$DAEMON_LOG" | sed 's/^/    /'
	return 1
}

# stop_daemon [SECS]: SIGTERM the current daemon, wait, SIGKILL if needed.
# Returns 0 only if it exited 0 and its log shows no sanitizer report.
# shellcheck disable=SC2120  # SECS is optional
stop_daemon() {
	local secs=${1:-20}
	[ -n "$DAEMON_PID" ] || return 0
	stop_pid "$DAEMON_PID" "$secs"
	log "daemon PID $DAEMON_PID exited with status $STOP_RC"
	DAEMON_PID=""
	if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$DAEMON_LOG"; then
		log "sanitizer report in $DAEMON_LOG:"
		grep -m 5 -A 10 -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$DAEMON_LOG" | sed 's/^/    /'
		return 1
	fi
	[ "$STOP_RC" -eq 0 ]
}

# restart_daemon: stop and start again with the same port and arguments;
# fails if the stop was unclean, but starts the daemon again regardless
restart_daemon() {
	local args=("${DAEMON_ARGS[@]}") rc=0
	stop_daemon 20 || rc=1
	start_daemon --port "$DAEMON_PORT" "${args[@]}" || return 1
	return $rc
}

daemon_alive() { [ -n "$DAEMON_PID" ] && is_alive "$DAEMON_PID"; }

# lun_url IQN LUN: iscsi:// URL of that LUN on the current daemon
lun_url() { echo "iscsi://$T_HOST:$DAEMON_PORT/$1/$(($2 + T_LUN_OFFSET))"; }

# inq_ok URL: a fresh session answers a standard INQUIRY
inq_ok() { timeout -k 2 20 iscsi-inq -i "$T_INITIATOR" "$1" >/dev/null 2>&1; }

# wait_for SECS WHAT CMD...: run CMD every 0.2 s until it succeeds; after SECS
# (a hang guard, not a measure of speed) log what was awaited and return 1.
wait_for() {
	local secs=$1 what=$2 end
	shift 2
	end=$(($(date +%s) + secs))
	until "$@"; do
		if [ "$(date +%s)" -ge "$end" ]; then
			log "gave up after ${secs}s waiting for: $what"
			return 1
		fi
		sleep 0.2
	done
}

need() { # need CMD...: die unless every command exists
	local c
	for c in "$@"; do command -v "$c" >/dev/null || die "missing tool '$c' (scripts/install-deps.sh test)"; done
}
