#!/usr/bin/env bash
# test_nop_keepalive.sh - target-initiated NOP-In keepalive (RFC 7143 11.19),
# s3tgtd started with --nop-interval 1 --nop-timeout 2:
#   a. qemu-io (libiscsi answers NOP-Ins itself) writes a pattern, idles 6 s,
#      reads it back: one login only, pings were sent and answered, no drop.
#   b. nop_client.py answers every ping for 9 s: the connection stays and a
#      SCSI command still works on it.
#   c. nop_client.py logs in and goes silent: one ping, then the target closes
#      the connection interval + timeout after login, and its log says why.
#   d. out-of-range values are refused, naming the option or the config field.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need qemu-io iscsi-inq /usr/bin/python3

IQN=iqn.2026-11.io.s3tgt:nop-keepalive
PY=$S3TGT_SRC/tests/integration/nop_client.py
INTERVAL=1
TIMEOUT=2
TMO=60

count() { # PATTERN: matching lines in the daemon log so far
	grep -c -- "$1" "$DAEMON_LOG" || true
}

start_daemon --target "$IQN" --lun "0=ram:?size=16M" --state-dir "$T_DIR/state" \
	--nop-interval $INTERVAL --nop-timeout $TIMEOUT --debug iscsi || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)

# a. a real initiator idle for 3 x (interval + timeout)
logins0=$(count "logged in to $IQN")
answered0=$(count "NOP-In ping TTT .* answered")
out=$(timeout $TMO qemu-io -f raw -c "write -P 0x5a 0 65536" -c "sleep 6000" \
	-c "read -P 0x5a 0 65536" "$URL" 2>&1) || true
if grep -q "read 65536/65536 bytes" <<<"$out" && ! grep -qiE "fail|error|mismatch" <<<"$out"; then
	pass "qemu-io: pattern written, 6 s idle, read back intact"
else
	fail "qemu-io: write / idle / read"
	sed 's/^/    /' <<<"$out"
fi
check_eq "qemu-io: one login (no drop and reconnect)" 1 $(($(count "logged in to $IQN") - logins0))
answered=$(($(count "NOP-In ping TTT .* answered") - answered0))
if [ "$answered" -ge 3 ]; then
	pass "qemu-io: libiscsi answered $answered NOP-In pings"
else
	fail "qemu-io: only $answered NOP-In pings answered (expected >= 3)"
fi
check_eq "qemu-io: no connection dropped for silence" 0 "$(count "dropping the connection")"

# b. a raw initiator that answers every ping
check "raw client answering pings keeps its connection" \
	timeout $TMO /usr/bin/python3 "$PY" "$T_HOST" "$DAEMON_PORT" "$IQN" $INTERVAL $TIMEOUT answer
check_eq "answering client: no connection dropped" 0 "$(count "dropping the connection")"

# c. a raw initiator that logs in and goes silent
check "silent client: one ping, dropped interval + timeout after login" \
	timeout $TMO /usr/bin/python3 "$PY" "$T_HOST" "$DAEMON_PORT" "$IQN" $INTERVAL $TIMEOUT silent
sleep 0.5
if grep -q "nop-client on $IQN: nothing received within $TIMEOUT s of NOP-In ping" "$DAEMON_LOG"; then
	pass "daemon log says why the silent client was dropped"
else
	fail "no drop reason in the daemon log"
	tail -n 20 "$DAEMON_LOG" | sed 's/^/    /'
fi
check "daemon alive and a fresh iscsi-inq works" inq_ok "$URL"
check "daemon stops cleanly on SIGTERM" stop_daemon

# d. bad values
bad_arg() { # EXPECTED-IN-MESSAGE ARGS...: s3tgtd refuses to start and names the option
	local want=$1 msg rc=0
	shift
	msg=$(timeout 20 "$S3TGTD" --listen "$T_HOST:$(free_port)" --no-api "$@" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] && grep -q -- "$want" <<<"$msg" || { echo "exit $rc: $msg" >&2; return 1; }
}
check "--nop-interval 3601 refused" bad_arg "--nop-interval" \
	--target "$IQN" --lun "0=ram:?size=1M" --nop-interval 3601
check "--nop-timeout -1 refused" bad_arg "--nop-timeout" \
	--target "$IQN" --lun "0=ram:?size=1M" --nop-timeout -1
echo '{ "nop_interval": 15, "nop_timeout": "30", "targets": [] }' >"$T_DIR/bad.json"
check "config nop_timeout as a string refused" bad_arg "nop_timeout" --config "$T_DIR/bad.json"
echo '{ "nop_interval": 99999, "targets": [] }' >"$T_DIR/bad2.json"
check "config nop_interval out of range refused" bad_arg "nop_interval" --config "$T_DIR/bad2.json"
finish
