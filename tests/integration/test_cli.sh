#!/usr/bin/env bash
# test_cli.sh - the `s3tgt` CLI forms that scripts rely on (issue 4), against
# a live daemon: tables by default, --json, --help on every command, exit
# status 0 / non-zero with a one-line error, an unreachable daemon and a
# socket that speaks something else get a clear message. Also s3tgtd's own
# quick-mode command line: bad names, duplicates and bad URIs are refused with
# one line naming them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mgmt_lib.sh"
need curl iscsi-inq /usr/bin/python3
[ -x "$CLI" ] || die "CLI not built: $CLI"

IQN=iqn.2026-11.io.s3tgt:cli
IQN2=iqn.2026-11.io.s3tgt:cli2

# fails CMD...: non-zero exit and exactly one line on stderr starting "s3tgt:"
fails() {
	local rc=0 err
	err=$("$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == s3tgt:* ]]
}

check "unreachable daemon: one-line error" fails "$CLI" --socket "$T_DIR/none.sock" target list
ERR=$("$CLI" --socket "$T_DIR/none.sock" target list 2>&1 || true)
check "unreachable daemon: names the socket" grep -q "cannot reach s3tgtd at $T_DIR/none.sock" <<<"$ERR"

# a socket that answers HTTP but is not s3tgtd
/usr/bin/python3 - "$T_DIR/other.sock" <<'PY' &
import http.server, socketserver, sys, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"api":"v9"}' if self.path == "/v1/version" else b"nope"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.UnixStreamServer):
    def get_request(self):
        r, _ = super().get_request(); return r, ("local", 0)
S(sys.argv[1], H).serve_forever()
PY
T_PIDS+=("$!")
for _ in $(seq 50); do [ -S "$T_DIR/other.sock" ] && break; sleep 0.1; done
ERR=$("$CLI" --socket "$T_DIR/other.sock" target list 2>&1 || true)
check "wrong API version: clear message" grep -q "speaks API v9" <<<"$ERR"

start_mgmt_daemon || die "s3tgtd with --api-socket did not start"

check "--help" bash -c "'$CLI' --help | grep -q 'lun create IQN LUN URI'"
for c in "target create" "target delete" "target list" "lun create" "lun delete" "lun list" \
	"lun resize" "tpgt list" "session list" "session logout" "acl add" "acl remove" \
	"acl list" "chap set" "chap clear" "version"; do
	# shellcheck disable=SC2086
	check "$c --help" bash -c "'$CLI' $c --help | grep -q '^usage: s3tgt $c'"
done

check "version" bash -c "cli version | grep -q 'API v1'"
check "target create" cli target create "$IQN"
check "target create with alias" cli target create "$IQN2" --alias second
check "target create duplicate fails" fails cli target create "$IQN"
check "target create bad IQN fails" fails cli target create not-an-iqn
check "target list table" bash -c "cli target list | grep -q '^$IQN2 .* second$'"
check_eq "target list --json" 2 "$(cli --json target list | json_get 'len(d)')"
check "lun create" cli lun create "$IQN" 0 "ram:?size=16M"
check "lun create file" cli lun create "$IQN" 1 "file:$T_DIR/l1.img?size=8M"
check "lun create bad LUN fails" fails cli lun create "$IQN" 16384 "ram:?size=1M"
check "lun create bad URI fails" fails cli lun create "$IQN" 2 "ram:?size=1M&x=1"
check "lun list" bash -c "cli lun list | grep -qE '^$IQN +0 +16M +ram +ok '"
check_eq "lun list IQN --json" 2 "$(cli --json lun list "$IQN" | json_get 'len(d)')"
check_eq "lun list IQN2 empty" 0 "$(cli --json lun list "$IQN2" | json_get 'len(d)')"
check "lun resize" cli lun resize "$IQN" 1 32M
check_eq "resized" 33554432 "$(cli --json lun list "$IQN" | json_get "[l['size'] for l in d if l['lun']==1][0]")"
check "lun resize shrink fails" fails cli lun resize "$IQN" 1 1M
check "tpgt list" bash -c "cli tpgt list | grep -q '127.0.0.1:$DAEMON_PORT'"
check "LUN reachable" inq_ok "$(lun_url $IQN 0)"
check "session list" bash -c "cli session list | grep -q '^ID'"
check "session logout unknown fails" fails cli session logout 123456
check "acl add" cli acl add "$IQN" "$T_INITIATOR"
check "acl add network" cli acl add "$IQN" --network 127.0.0.0/8
check "acl list" bash -c "cli acl list '$IQN' | grep -q 'initiator $T_INITIATOR'"
check "acl list network" bash -c "cli acl list '$IQN' | grep -q 'network   127.0.0.0/8'"
check "acl add bad fails" fails cli acl add "$IQN" bogus
check "acl remove" cli acl remove "$IQN" "$T_INITIATOR"
check "acl remove network" cli acl remove "$IQN" --network 127.0.0.0/8
check "acl remove missing fails" fails cli acl remove "$IQN" "$T_INITIATOR"
check "acl list empty" bash -c "cli acl list '$IQN' | grep -q 'no ACL'"
check "chap set" cli chap set "$IQN" alice alicesecret123
check "chap set mutual" cli chap set "$IQN" alice alicesecret123 --mutual tgt targetsecret456
check "chap set secret from stdin" bash -c "echo alicesecret789 | '$CLI' --socket '$SOCK' chap set '$IQN2' bob -"
check "chap set short secret fails" fails cli chap set "$IQN" alice short
check "target list shows CHAP" bash -c "cli target list | grep -q '^$IQN .* mutual'"
check "no secret in --json output" bash -c "! cli --json target list | grep -q secret123"
check "chap clear" cli chap clear "$IQN"
check "lun delete" cli lun delete "$IQN" 1
check "lun delete missing fails" fails cli lun delete "$IQN" 1
check "target delete" cli target delete "$IQN2"
check "target delete missing fails" fails cli target delete "$IQN2"
check "unknown command: usage error" bash -c "cli frobnicate; [ \$? -eq 2 ]"
check "missing argument: usage error" bash -c "cli lun create '$IQN' 3 2>/dev/null; [ \$? -eq 2 ]"
check "--timeout accepted" cli --timeout 5 target list
check "stop: clean exit" stop_daemon

# The daemon's quick-mode command line goes through the same checks as the API:
# exit 1 with one line that names what is wrong, and nothing left listening.
# daemon_refuses WHAT ARGS...: s3tgtd exits 1 and its error line contains WHAT
daemon_refuses() {
	local what=$1 rc=0 err
	shift
	err=$(timeout 10 "$S3TGTD" --no-api --listen "127.0.0.1:$(free_port)" "$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ $err == *"$what"* ]]
}
check "s3tgtd: bad target name refused, named" \
	daemon_refuses "'bad_name' is not an iSCSI name" --target bad_name
check "s3tgtd: duplicate target (names compare case-insensitively) refused" \
	daemon_refuses "target ${IQN^^} exists" --target "$IQN" --target "${IQN^^}"
check "s3tgtd: duplicate LUN refused" daemon_refuses "LUN 0 exists" \
	--target "$IQN" --lun 0=ram:?size=1M --lun 0=ram:?size=1M
check "s3tgtd: unknown store refused" daemon_refuses "unknown store type 'bogus'" \
	--target "$IQN" --lun 0=bogus:x
check "s3tgtd: --lun before --target refused" daemon_refuses "give --target IQN first" \
	--lun 0=ram:?size=1M
check "s3tgtd: LUN number out of range refused" daemon_refuses "LUN must be 0..16383" \
	--target "$IQN" --lun 16384=ram:?size=1M
finish
