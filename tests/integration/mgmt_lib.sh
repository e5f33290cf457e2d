# mgmt_lib.sh - helpers for the management API tests (sourced after lib.sh).
#
# start_mgmt_daemon [ARGS...]: start s3tgtd with --config $CFG --api-socket $SOCK
# (plus ARGS) and wait until the API answers.
# api METHOD PATH [BODY]: one request over the Unix socket; sets API_STATUS and
# API_BODY.  cli ARGS...: the s3tgt CLI against $SOCK.

CFG=${CFG:-$T_DIR/s3tgtd.json}
SOCK=${SOCK:-$T_DIR/api.sock}
CLI=${S3TGT_CLI:-$S3TGT_BUILD/s3tgt}
API_STATUS=""
API_BODY=""

api() {
	local method=$1 path=$2 body=${3:-} out
	out=$T_DIR/api.out
	if [ -n "$body" ]; then
		API_STATUS=$(curl -s -o "$out" -w '%{http_code}' --max-time 30 --unix-socket "$SOCK" \
			-X "$method" -H 'Content-Type: application/json' --data-binary "$body" \
			"http://localhost$path") || API_STATUS=000
	else
		API_STATUS=$(curl -s -o "$out" -w '%{http_code}' --max-time 30 --unix-socket "$SOCK" \
			-X "$method" "http://localhost$path") || API_STATUS=000
	fi
	API_BODY=$(cat "$out" 2>/dev/null || true)
}

# check_api "what" STATUS METHOD PATH [BODY]: request and compare the status
check_api() {
	local what=$1 want=$2
	shift 2
	api "$@"
	if [ "$API_STATUS" = "$want" ]; then
		pass "$what ($want)"
	else
		fail "$what: expected $want, got $API_STATUS: $API_BODY"
	fi
}

# json_get EXPR: jq-less JSON field extraction with Debian's python3
json_get() {
	/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "null"); print(eval(sys.argv[1]))' "$1"
}

api_up() {
	curl -s --max-time 2 --unix-socket "$SOCK" http://localhost/v1/version 2>/dev/null | grep -q '"api"'
}

start_mgmt_daemon() {
	start_daemon --config "$CFG" --api-socket "$SOCK" "$@" || return 1
	wait_for 60 "the API socket" api_up && return 0
	log "API socket $SOCK does not answer; log tail:"
	tail -n 20 "$DAEMON_LOG" | sed 's/^/    /'
	return 1
}

restart_mgmt_daemon() {
	restart_daemon || return 1
	wait_for 60 "the API socket" api_up
}

cli() { "$CLI" --socket "$SOCK" "$@"; }
export CLI SOCK
export -f cli

# sessions_of IQN: number of sessions logged in to IQN
sessions_of() {
	api GET /v1/sessions
	echo "$API_BODY" | json_get "len([s for s in d if s['target'] == '$1' and not s['discovery']])"
}

# wait_sessions IQN N [SECS]: wait until IQN has N sessions
wait_sessions() {
	local i
	for ((i = 0; i < ${3:-20} * 10; i++)); do
		[ "$(sessions_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# hold_session URL [SECS]: a background qemu-io keeps a session logged in; sets HOLD_PID
hold_session() {
	qemu-io -f raw -c "sleep $((${2:-60} * 1000))" "$1" >"$T_DIR/hold.$$.log" 2>&1 &
	HOLD_PID=$!
	T_PIDS+=("$HOLD_PID")
}
