#!/usr/bin/env bash
# test_bad_input.sh - malformed and hostile input must not crash s3tgtd.
# bad_input.py (a minimal iSCSI client, RFC 7143) sends one case per run:
# garbage bytes, absurd DataSegmentLength / TotalAHSLength, logins with
# unknown, duplicate, invalid or missing keys, an unknown target, a bad
# version, SCSI and Text PDUs before login, unsupported SCSI opcodes (expect
# CHECK CONDITION / ILLEGAL REQUEST / 20h 00h), a READ beyond the end, a LUN
# that does not exist, an unknown iSCSI opcode, PDUs cut short followed by a
# disconnect, and a burst of short-lived connections.
# After every case: the daemon process is alive and a fresh iscsi-inq works.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need iscsi-inq /usr/bin/python3

IQN=iqn.2026-11.io.s3tgt:bad-input
PY=$S3TGT_SRC/tests/integration/bad_input.py

start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "0=ram:?size=64M" || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)
check "INQUIRY works before the first case" inq_ok "$URL"

mapfile -t CASES < <(/usr/bin/python3 "$PY" --list)
for c in "${CASES[@]}"; do
	log "case $c"
	check "$c: target reacts as expected" \
		timeout -k 2 60 /usr/bin/python3 "$PY" "$T_HOST" "$DAEMON_PORT" "$IQN" "$((0 + T_LUN_OFFSET))" "$c"
	if ! daemon_alive; then
		fail "$c: daemon died"
		tail -n 30 "$DAEMON_LOG" | sed 's/^/    /'
		die "daemon gone, remaining cases not run"
	fi
	check "$c: daemon alive and a fresh iscsi-inq works" inq_ok "$URL"
done
check "daemon stops cleanly on SIGTERM" stop_daemon
finish
