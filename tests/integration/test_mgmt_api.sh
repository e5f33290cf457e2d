#!/usr/bin/env bash
# test_mgmt_api.sh - every management API route and error code over the Unix
# socket with `curl --unix-socket`:
#   version; targets list/create/get/delete (400 bad IQN, 409 duplicate, 404);
#   LUNs create/list/get/resize/delete (400 LUN range, bad URI naming the
#   option, 409, 404); portal groups; sessions list/get/logout (404); ACL
#   get/put/add/remove; CHAP put/get/delete (secrets never returned, short
#   secret 400); 405 with Allow; 413 for an oversized body; /metrics in
#   Prometheus format; socket mode 0600; the config file (0600) survives a
#   restart with targets, LUNs, ACL and CHAP restored exactly.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mgmt_lib.sh"
need curl iscsi-inq qemu-io

IQN=iqn.2026-11.io.s3tgt:mgmt-api
IQN2=iqn.2026-11.io.s3tgt:mgmt-api2

start_mgmt_daemon || die "s3tgtd with --api-socket did not start"
check_eq "API socket is mode 600" 600 "$(stat -c %a "$SOCK")"
check "missing config file is not created before a change" test ! -e "$CFG"

check_api "GET /v1/version" 200 GET /v1/version
check_eq "API version v1" v1 "$(echo "$API_BODY" | json_get "d['api']")"
check_api "POST /v1/version is 405" 405 POST /v1/version
check_api "unknown route is 404" 404 GET /v1/bogus
check_api "unversioned route is 404" 404 GET /targets

# targets
check_api "empty target list" 200 GET /v1/targets
check_eq "no targets yet" "[]" "$API_BODY"
check_api "create target without a body" 400 POST /v1/targets
check_api "create target with bad JSON" 400 POST /v1/targets '{"name":'
check_api "create target with a bad IQN" 400 POST /v1/targets '{"name":"target-one"}'
check_eq "the error names the field" name "$(echo "$API_BODY" | json_get "d['field']")"
check_api "create target with an unknown key" 400 POST /v1/targets "{\"name\":\"$IQN\",\"x\":1}"
check_api "create target" 201 POST /v1/targets "{\"name\":\"$IQN\",\"alias\":\"api test\"}"
check "config file created on the first change" test -f "$CFG"
check_eq "config file is mode 600" 600 "$(stat -c %a "$CFG")"
check_api "duplicate target is 409" 409 POST /v1/targets "{\"name\":\"$IQN\"}"
check_api "create second target" 201 POST /v1/targets "{\"name\":\"$IQN2\"}"
check_api "get target" 200 GET "/v1/targets/$IQN"
check_eq "alias kept" "api test" "$(echo "$API_BODY" | json_get "d['alias']")"
check_api "get unknown target" 404 GET /v1/targets/iqn.2026-11.io.s3tgt:nope
check_api "PUT on a target is 405" 405 PUT "/v1/targets/$IQN" '{}'

# LUNs
check_api "LUN 16384 is out of range" 400 POST "/v1/targets/$IQN/luns" '{"lun":16384,"uri":"ram:?size=1M"}'
check_eq "error names lun" lun "$(echo "$API_BODY" | json_get "d['field']")"
check_api "unknown store" 400 POST "/v1/targets/$IQN/luns" '{"lun":0,"uri":"tape:?size=1M"}'
check_api "unknown URI option" 400 POST "/v1/targets/$IQN/luns" '{"lun":0,"uri":"ram:?size=1M&speed=9"}'
check "error names the option" grep -q speed <<<"$API_BODY"
check_api "bad size" 400 POST "/v1/targets/$IQN/luns" '{"lun":0,"uri":"ram:?size=lots"}'
check_api "LUN on unknown target" 404 POST /v1/targets/iqn.2026-11.io.s3tgt:nope/luns '{"lun":0,"uri":"ram:?size=1M"}'
check_api "create RAM LUN 0" 201 POST "/v1/targets/$IQN/luns" '{"lun":0,"uri":"ram:?size=8M"}'
check_api "create file LUN 1" 201 POST "/v1/targets/$IQN/luns" "{\"lun\":1,\"uri\":\"file:$T_DIR/lun1.img?size=4M\"}"
check_api "duplicate LUN is 409" 409 POST "/v1/targets/$IQN/luns" '{"lun":0,"uri":"ram:?size=1M"}'
check_api "list LUNs of a target" 200 GET "/v1/targets/$IQN/luns"
check_eq "two LUNs" 2 "$(echo "$API_BODY" | json_get "len(d)")"
check_api "list all LUNs" 200 GET /v1/luns
check_api "get LUN" 200 GET "/v1/targets/$IQN/luns/1"
check_eq "LUN size" 4194304 "$(echo "$API_BODY" | json_get "d['size']")"
check_api "get missing LUN" 404 GET "/v1/targets/$IQN/luns/9"
check "new LUN answers INQUIRY" inq_ok "$(lun_url $IQN 1)"
check "new LUN reads" timeout 60 qemu-io -f raw -c 'read 0 65536' "$(lun_url $IQN 1)"
check_api "resize file LUN to 16M" 200 PUT "/v1/targets/$IQN/luns/1" '{"size":"16M"}'
check_eq "resized" 16777216 "$(echo "$API_BODY" | json_get "d['size']")"
check_api "shrinking is refused" 400 PUT "/v1/targets/$IQN/luns/1" '{"size":"1M"}'
check_eq "error names size" size "$(echo "$API_BODY" | json_get "d['field']")"
check_api "RAM LUN cannot be resized" 400 PUT "/v1/targets/$IQN/luns/0" '{"size":"16M"}'
check_api "delete LUN 0" 204 DELETE "/v1/targets/$IQN/luns/0"
check_api "delete LUN 0 again" 404 DELETE "/v1/targets/$IQN/luns/0"

# portal groups, sessions
check_api "portal groups" 200 GET /v1/portal_groups
check "portal listed" grep -q "127.0.0.1:$DAEMON_PORT" <<<"$API_BODY"
check_api "session list" 200 GET /v1/sessions
check_api "logout unknown session" 404 DELETE /v1/sessions/999999
check_api "bad session id" 400 DELETE /v1/sessions/abc

# ACL
check_api "ACL empty" 200 GET "/v1/targets/$IQN/acl"
check_api "ACL add bad initiator" 400 POST "/v1/targets/$IQN/acl/initiators" '{"name":"nope"}'
check_api "ACL add initiator" 201 POST "/v1/targets/$IQN/acl/initiators" "{\"name\":\"$T_INITIATOR\"}"
check_api "ACL add duplicate" 409 POST "/v1/targets/$IQN/acl/initiators" "{\"name\":\"$T_INITIATOR\"}"
check_api "ACL add network" 201 POST "/v1/targets/$IQN/acl/networks" '{"cidr":"127.0.0.0/8"}'
check_api "ACL add bad network" 400 POST "/v1/targets/$IQN/acl/networks" '{"cidr":"127.0.0.1/8"}'
check_api "ACL remove network" 200 DELETE "/v1/targets/$IQN/acl/networks?cidr=127.0.0.0%2F8"
check_api "ACL remove missing network" 404 DELETE "/v1/targets/$IQN/acl/networks?cidr=10.0.0.0%2F8"
check_api "ACL replace" 200 PUT "/v1/targets/$IQN/acl" "{\"initiators\":[\"$T_INITIATOR\",\"$T_INITIATOR2\"]}"
check_api "ACL remove initiator" 200 DELETE "/v1/targets/$IQN/acl/initiators/$T_INITIATOR2"
check_api "ACL remove missing initiator" 404 DELETE "/v1/targets/$IQN/acl/initiators/$T_INITIATOR2"

# CHAP
check_api "CHAP short secret" 400 PUT "/v1/targets/$IQN/chap" '{"user":"alice","secret":"short"}'
check_eq "error names secret" secret "$(echo "$API_BODY" | json_get "d['field']")"
check_api "CHAP same secret both ways" 400 PUT "/v1/targets/$IQN/chap" \
	'{"user":"alice","secret":"alicesecret123","mutual_user":"tgt","mutual_secret":"alicesecret123"}'
check_api "CHAP set (mutual)" 200 PUT "/v1/targets/$IQN/chap" \
	'{"user":"alice","secret":"alicesecret123","mutual_user":"tgt","mutual_secret":"targetsecret456"}'
check "CHAP reply has no secret" bash -c "! grep -q secret123 <<<'$API_BODY'"
check_api "CHAP get" 200 GET "/v1/targets/$IQN/chap"
check_eq "CHAP mutual reported" True "$(echo "$API_BODY" | json_get "d['mutual']")"
api GET /v1/targets
check "target list has no secret" bash -c "! grep -qE 'secret123|secret456' <<<'$API_BODY'"
check "daemon log has no secret" bash -c "! grep -qE 'secret123|secret456' '$DAEMON_LOG'"
check "secret persisted" grep -q alicesecret123 "$CFG"
check_api "CHAP clear" 204 DELETE "/v1/targets/$IQN2/chap"

# limits
head -c 70000 /dev/zero | tr '\0' ' ' >"$T_DIR/big.json"
check_api "oversized body is 413" 413 POST /v1/targets "$(cat "$T_DIR/big.json")"

# metrics
check_api "metrics" 200 GET /metrics
check "metrics: per-LUN ops by op" grep -q "s3tgt_lun_ops_total{target=\"$IQN\",lun=\"1\",op=\"read\"}" <<<"$API_BODY"
check "metrics: latency histogram" grep -q "s3tgt_lun_latency_seconds_bucket{target=\"$IQN\",lun=\"1\",op=\"read\",le=\"+Inf\"}" <<<"$API_BODY"
check "metrics: reads counted" bash -c "grep -qE '^s3tgt_lun_ops_total\\{target=\"$IQN\",lun=\"1\",op=\"read\"\\} [1-9]' <<<'$API_BODY'"
check "metrics: sessions" grep -q "s3tgt_sessions{target=\"$IQN\"}" <<<"$API_BODY"

# persistence across a restart
api GET /v1/targets
BEFORE=$(echo "$API_BODY" | json_get "json.dumps(d, sort_keys=True)" 2>/dev/null || echo "$API_BODY")
cp "$CFG" "$T_DIR/cfg.before"
restart_mgmt_daemon || die "restart failed"
api GET /v1/targets
AFTER=$(echo "$API_BODY" | json_get "json.dumps(d, sort_keys=True)" 2>/dev/null || echo "$API_BODY")
check_eq "targets, LUNs, ACL and CHAP restored after restart" "$BEFORE" "$AFTER"
check "config unchanged by the restart" cmp -s "$CFG" "$T_DIR/cfg.before"
check_api "resized LUN keeps its size" 200 GET "/v1/targets/$IQN/luns/1"
check_eq "size after restart" 16777216 "$(echo "$API_BODY" | json_get "d['size']")"

# delete
check_api "delete target" 204 DELETE "/v1/targets/$IQN2"
check_api "deleted target is gone" 404 GET "/v1/targets/$IQN2"
check "stop: clean exit" stop_daemon
check "API socket removed on exit" test ! -e "$SOCK"
finish
