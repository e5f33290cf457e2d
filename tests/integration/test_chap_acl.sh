#!/usr/bin/env bash
# test_chap_acl.sh - login security with libiscsi initiators (issue 4):
#   CHAP one-way: right secret logs in; wrong and missing secrets are refused
#   (authentication failure), and the log never shows the secret.
#   Mutual CHAP: libiscsi checks the target with target_user/target_password;
#   a wrong target secret makes the initiator give up.
#   ACL: a target with an ACL is hidden from other initiators in SendTargets
#   and refuses their logins; the listed initiator sees it and logs in.
#   Restart: CHAP and ACL are still enforced (restored from the config file).
#   Target delete while a session is logged in: 409 without force; with force
#   the session is logged out first and the target is gone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mgmt_lib.sh"
need curl iscsi-inq iscsi-ls qemu-io

IQN=iqn.2026-11.io.s3tgt:secure
OPEN=iqn.2026-11.io.s3tgt:open
SECRET=alicesecret123
TSECRET=targetsecret456

# inq_as INITIATOR URL: a fresh session answers INQUIRY
inq_as() { timeout -k 2 20 iscsi-inq -i "$1" "$2" >/dev/null 2>&1; }
chap_url() { # USER SECRET LUN [QUERY]
	echo "iscsi://$1%$2@$T_HOST:$DAEMON_PORT/$IQN/$3${4:+?$4}"
}
discovered_by() { # INITIATOR: target names SendTargets returns
	timeout -k 2 20 iscsi-ls -i "$1" "iscsi://$T_HOST:$DAEMON_PORT" 2>/dev/null | sed -n 's/^Target:\([^ ]*\).*/\1/p'
}

start_mgmt_daemon || die "s3tgtd with --api-socket did not start"
cli target create "$IQN" >/dev/null
cli target create "$OPEN" >/dev/null
cli lun create "$IQN" 0 "ram:?size=8M" >/dev/null
cli lun create "$OPEN" 0 "ram:?size=8M" >/dev/null

check "no CHAP: plain login works" inq_as "$T_INITIATOR" "$(lun_url $IQN 0)"

# one-way CHAP
check "chap set" cli chap set "$IQN" alice "$SECRET"
check "right secret logs in" inq_as "$T_INITIATOR" "$(chap_url alice $SECRET 0)"
check "wrong secret refused" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR' '$(chap_url alice wrongsecret99 0)' >/dev/null 2>&1"
check "wrong user refused" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR' '$(chap_url mallory $SECRET 0)' >/dev/null 2>&1"
check "missing secret refused" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR' '$(lun_url $IQN 0)' >/dev/null 2>&1"
check "failure logged as authentication failure" grep -qE 'status 0x0201|authentication' "$DAEMON_LOG"
check "secret never logged" bash -c "! grep -q '$SECRET' '$DAEMON_LOG'"
check "other target unaffected" inq_as "$T_INITIATOR" "$(lun_url $OPEN 0)"

# mutual CHAP
check "chap set --mutual" cli chap set "$IQN" alice "$SECRET" --mutual tgt "$TSECRET"
check "mutual: right secrets log in" inq_as "$T_INITIATOR" "$(chap_url alice $SECRET 0 "target_user=tgt&target_password=$TSECRET")"
check "mutual: initiator refuses a target with the wrong secret" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR' '$(chap_url alice $SECRET 0 "target_user=tgt&target_password=wrongsecret000")' >/dev/null 2>&1"
check "mutual: one-way still accepted" inq_as "$T_INITIATOR" "$(chap_url alice $SECRET 0)"
check "mutual secret never logged" bash -c "! grep -q '$TSECRET' '$DAEMON_LOG'"

# ACL
check "acl add" cli acl add "$IQN" "$T_INITIATOR"
check_eq "allowed initiator discovers the target" yes "$(discovered_by "$T_INITIATOR" | grep -qx "$IQN" && echo yes || echo no)"
check_eq "other initiator does not see it" no "$(discovered_by "$T_INITIATOR2" | grep -qx "$IQN" && echo yes || echo no)"
check_eq "other initiator still sees the open target" yes "$(discovered_by "$T_INITIATOR2" | grep -qx "$OPEN" && echo yes || echo no)"
check "allowed initiator logs in" inq_as "$T_INITIATOR" "$(chap_url alice $SECRET 0)"
check "other initiator refused even with the secret" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR2' '$(chap_url alice $SECRET 0)' >/dev/null 2>&1"
check "acl network mismatch refuses" cli acl add "$IQN" --network 10.0.0.0/8
check "initiator from outside the network refused" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR' '$(chap_url alice $SECRET 0)' >/dev/null 2>&1"
check "acl network 127/8" cli acl add "$IQN" --network 127.0.0.0/8
check "initiator inside a listed network logs in" inq_as "$T_INITIATOR" "$(chap_url alice $SECRET 0)"

# restart: still enforced
restart_mgmt_daemon || die "restart failed"
check "after restart: right secret logs in" inq_as "$T_INITIATOR" "$(chap_url alice $SECRET 0)"
check "after restart: missing secret refused" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR' '$(lun_url $IQN 0)' >/dev/null 2>&1"
check "after restart: ACL refuses others" bash -c "! timeout -k 2 20 iscsi-inq -i '$T_INITIATOR2' '$(chap_url alice $SECRET 0)' >/dev/null 2>&1"
check_eq "after restart: hidden from others" no "$(discovered_by "$T_INITIATOR2" | grep -qx "$IQN" && echo yes || echo no)"

# target delete while logged in
hold_session "$(lun_url $OPEN 0)" 60
check "held session logged in" wait_sessions "$OPEN" 1
check_api "delete with a session is 409" 409 DELETE "/v1/targets/$OPEN"
check "CLI delete without --force fails" bash -c "! cli target delete '$OPEN' 2>/dev/null"
check "LUN delete while in use is 409" bash -c "! cli lun delete '$OPEN' 0 2>/dev/null"
check "CLI delete --force" cli target delete "$OPEN" --force
check_api "target gone" 404 GET "/v1/targets/$OPEN"
check "session was logged out" wait_sessions "$OPEN" 0
stop_pid "$HOLD_PID" 5
check "daemon alive" daemon_alive
check "stop: clean exit" stop_daemon
finish
