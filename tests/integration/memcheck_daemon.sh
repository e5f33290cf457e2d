#!/usr/bin/env bash
# memcheck_daemon.sh - the daemon under valgrind memcheck (ctest valgrind.daemon,
# plain build only: the test_*.sh scripts run the ASan build instead). Every
# store, driven by real initiators, must produce no memcheck error and no
# definite or indirect leak; valgrind then exits 0 (S3TGT_VALGRIND sets
# --error-exitcode=99), and stop_daemon requires exit status 0.
#   1. Targets and LUNs created through the management API (ram, file on
#      io_uring, dir, s3 and cached s3 on a real RGW); a bad request gets 400.
#   2. On each LUN: writes across chunk boundaries, partial-chunk writes,
#      read-back by pattern, UNMAP and WRITE SAME read back as zeros, a flush.
#   3. libiscsi's conformance tests for the commands that touch the most code
#      (READ/WRITE(16), UNMAP, WRITE SAME, COMPARE AND WRITE, INQUIRY, ...) on
#      the cached S3 LUN and the file LUN.
#   4. Restart from the saved config: every LUN comes back with its data.
#   5. Delete a LUN and a target through the API, then a clean SIGTERM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mgmt_lib.sh"
need qemu-io iscsi-test-cu curl valgrind
: "${S3TGT_VALGRIND:?S3TGT_VALGRIND must hold the valgrind command line (set by ctest)}"

REAL=$S3TGTD
S3TGTD=$T_DIR/s3tgtd-memcheck
# exec: the PID the harness records and signals is valgrind's, which runs the daemon
cat >"$S3TGTD" <<EOF
#!/bin/sh
exec $S3TGT_VALGRIND --log-file=$T_DIR/memcheck.%p.log "$REAL" "\$@"
EOF
chmod +x "$S3TGTD"

memcheck_clean() { # every memcheck log empty (-q: only errors are written)
	local f bad=0
	for f in "$T_DIR"/memcheck.*.log; do
		[ -s "$f" ] || continue
		log "memcheck report in $f:"
		head -n 60 "$f" | sed 's/^/    /'
		bad=1
	done
	return $bad
}

IQN=iqn.2026-11.io.s3tgt:memcheck
IQN2=iqn.2026-11.io.s3tgt:memcheck2
MIB=1048576
TMO=300
rgw_up memcheck
S3O="size=32M&chunk_size=1M&endpoint=$S3_ENDPOINT&path_style=1&region=$S3_REGION"
declare -A URIS=(
	[0]="ram:?size=32M"
	[1]="file:$T_DIR/disk.img?size=32M"
	[2]="dir:$T_DIR/vol?size=32M&chunk_size=1M"
	[3]="s3://memcheck/plain?$S3O"
	[4]="s3://memcheck/cached?$S3O&cache_size=8M&cache_dir=$T_DIR/cache"
)

start_mgmt_daemon || die "s3tgtd under valgrind did not start"

# 1. management API
check_api "create target" 201 POST /v1/targets "{\"name\":\"$IQN\"}"
check_api "bad JSON is 400" 400 POST /v1/targets '{"name":'
for l in 0 1 2 3 4; do
	check_api "create LUN $l (${URIS[$l]%%\?*})" 201 POST "/v1/targets/$IQN/luns" \
		"{\"lun\":$l,\"uri\":\"${URIS[$l]}\"}"
done
check_api "bad URI option is 400" 400 POST "/v1/targets/$IQN/luns" \
	'{"lun":9,"uri":"ram:?size=1M&bogus=1"}'
# QEMU logs in as iqn.2008-11.org.linux-kvm, iscsi-test-cu as the two T_INITIATORs
check_api "ACL put" 200 PUT "/v1/targets/$IQN/acl" \
	"{\"initiators\":[\"$T_INITIATOR\",\"$T_INITIATOR2\",\"iqn.2008-11.org.linux-kvm\"]}"
check_api "list LUNs" 200 GET "/v1/targets/$IQN/luns"

# 2. data on every LUN: 1 MiB chunks, so offsets 0.5 MiB .. 3.5 MiB span four
QIO_OPTS=(-d unmap)
data_ok() { # URL: write, read back, unmap, write same, flush
	qio "$1" "write -P 0x5a $((MIB / 2)) $((3 * MIB))" "write -P 0x11 $((8 * MIB + 4096)) 8192" \
		"read -P 0x5a $((MIB / 2)) $((3 * MIB))" "read -P 0x11 $((8 * MIB + 4096)) 8192" \
		"read -P 0 $((8 * MIB)) 4096" "discard $MIB $MIB" "read -P 0 $MIB $MIB" \
		"read -P 0x5a $((2 * MIB)) $((3 * MIB / 2))" "write -z $((2 * MIB)) 65536" \
		"read -P 0 $((2 * MIB)) 65536" "flush"
}
for l in 0 1 2 3 4; do
	check "LUN $l: patterns, UNMAP, WRITE SAME, flush" data_ok "$(lun_url $IQN $l)"
done

# 3. conformance suites that cover the most code per second under valgrind
# (skips are expected here: conformance itself is test_conformance.sh's job)
SUITES=(Read16 Write16 Unmap WriteSame16 CompareAndWrite Inquiry ReadCapacity16 ModeSense6
	ReportSupportedOpcodes PrinReadKeys TestUnitReady)
cu() { # URL: each suite runs tests, none fails
	local out suite
	for suite in "${SUITES[@]}"; do
		out=$(timeout -k 5 $TMO iscsi-test-cu -d -S -i "$T_INITIATOR" -I "$T_INITIATOR2" \
			-t "ALL.$suite" "$1" "$1" 2>&1) || true
		printf '%s\n' "$out" >>"$T_DIR/cu.log"
		grep -E '^ +tests ' <<<"$out" | awk '{ exit !($3 > 0 && $5 == 0) }' ||
			{ log "iscsi-test-cu ALL.$suite on $1 failed (see $T_DIR/cu.log)"; return 1; }
	done
}
check "iscsi-test-cu subset on the cached S3 LUN" cu "$(lun_url $IQN 4)"
check "iscsi-test-cu subset on the file LUN" cu "$(lun_url $IQN 1)"

# 4. restart from the saved config, data intact
check "clean stop under valgrind (exit 0)" stop_daemon 120
start_mgmt_daemon || die "s3tgtd under valgrind did not restart"
for l in 1 2 3 4; do
	check "LUN $l: data intact after the restart" \
		qio "$(lun_url $IQN $l)" "read -P 0x5a $((5 * MIB / 2)) $MIB" "read -P 0x11 $((8 * MIB + 4096)) 8192"
done

# 5. delete through the API, then stop
check_api "create a second target" 201 POST /v1/targets "{\"name\":\"$IQN2\"}"
check_api "add a LUN to it" 201 POST "/v1/targets/$IQN2/luns" '{"lun":0,"uri":"ram:?size=1M"}'
check_api "delete that LUN" 204 DELETE "/v1/targets/$IQN2/luns/0"
check_api "delete that target" 204 DELETE "/v1/targets/$IQN2"
check "clean stop under valgrind (exit 0)" stop_daemon 120
check "no memcheck error or leak in any daemon run" memcheck_clean
finish
