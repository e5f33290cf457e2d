#!/usr/bin/env bash
# test_s3_conformance.sh - libiscsi's conformance suite (iscsi-test-cu -t ALL)
# against the chunked stores, one daemon, three LUNs: a write-back cached S3 LUN
# (s3://...?cache_size=...&cache_dir=...), an uncached S3 LUN, both on a real
# Ceph RGW (tests/integration/rgw.sh), and a dir LUN. The skip/exclude list, the
# suite runner, the CUnit parser and the result classes are test_conformance.sh's
# (its functions are reused verbatim), so every run judges the target the same way.
# Results: $S3TGT_BUILD/conformance-s3.log and conformance-s3-results.tsv.
# Environment: CONF_SUITE_TIMEOUT [90], CONF_FILTER (suite glob) [*].
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need iscsi-test-cu iscsi-inq stdbuf curl

SUITE_TMO=${CONF_SUITE_TIMEOUT:-90}
FILTER=${CONF_FILTER:-*}
IQN=iqn.2026-11.io.s3tgt:s3-conformance
SKIPS_FILE=$S3TGT_SRC/tests/integration/conformance-skips.txt
LOGF=$S3TGT_BUILD/conformance-s3.log
TSV=$S3TGT_BUILD/conformance-s3-results.tsv
BUCKET=s3tgt-cache-conf

# load_skips, is_excluded, run_suite, skip_allowed and parse_cunit from test_conformance.sh.
eval "$(sed -n '/^load_skips() {/,/^}/p; /^is_excluded() {/,/^}/p; /^run_suite() {/,/^}/p; /^skip_allowed() {/,/^}/p;
	/^parse_cunit() {/,/^}/p' "$S3TGT_SRC/tests/integration/test_conformance.sh")"
for fn in load_skips is_excluded run_suite skip_allowed parse_cunit; do
	declare -F "$fn" >/dev/null || die "cannot reuse $fn from test_conformance.sh"
done
load_skips

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
# label=LUN=URI; small chunks keep the uncached LUNs' read-modify-writes cheap.
LUNS=("cached-s3=0=s3://$BUCKET/conf?size=1G&chunk_size=1M&$OPTS&cache_size=64M&cache_dir=$T_DIR/cache"
	"s3=1=s3://$BUCKET/conf-nocache?size=1G&chunk_size=64K&$OPTS"
	"dir=2=dir:$T_DIR/dirlun?size=1G&chunk_size=64K")
args=()
for l in "${LUNS[@]}"; do args+=(--lun "${l#*=}"); done
start_daemon --target "$IQN" --state-dir "$T_DIR/state" "${args[@]}" || die "s3tgtd did not start"
for l in "${LUNS[@]}"; do
	lun=${l#*=}
	check "${l%%=*} LUN answers INQUIRY" inq_ok "$(lun_url $IQN "${lun%%=*}")"
done

SUITES=()
while IFS=. read -r fam suite rest; do
	# shellcheck disable=SC2053
	[ "$fam" = ALL ] && [ -n "$suite" ] && [ -z "$rest" ] && [[ $suite == $FILTER ]] && SUITES+=("$suite")
done < <(iscsi-test-cu --list)
declare -A EXPECT
while IFS=. read -r fam suite test; do
	[ "$fam" = ALL ] && [ -n "$test" ] && EXPECT[$suite]+="$suite.$test"$'\n'
done < <(iscsi-test-cu --list)
[ "${#SUITES[@]}" -gt 0 ] || die "no conformance suite matches '$FILTER'"

echo "# test_s3_conformance.sh $(date -u +%FT%TZ) ${LUNS[*]}" >"$LOGF"
printf 'lun\ttest\tresult\treason\n' >"$TSV"
for l in "${LUNS[@]}"; do
label=${l%%=*}
lun=${l#*=}
URL=$(lun_url $IQN "${lun%%=*}")
NPASS=0 NFAIL=0 NSKIP=0 NEXCL=0
for suite in "${SUITES[@]}"; do
	rc=0
	out=$(run_suite "$suite" "$URL") || rc=$?
	printf '===== %s %s rc=%s\n%s\n' "$label" "$suite" "$rc" "$out" >>"$LOGF"
	got=$(parse_cunit <<<"$out")
	while IFS= read -r name; do
		[ -n "$name" ] || continue
		if is_excluded "ALL.$name"; then
			NEXCL=$((NEXCL + 1))
			continue
		fi
		res=$(awk -F'\t' -v n="$name" '$1 == n { print $2; exit }' <<<"$got")
		why=$(awk -F'\t' -v n="$name" '$1 == n { print $3; exit }' <<<"$got")
		if [ -z "$res" ]; then
			if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
				res=TIMEOUT why="suite process killed after ${SUITE_TMO}s"
			else
				res=NORESULT why="iscsi-test-cu exit $rc"
			fi
		fi
		if [ "$res" = SKIPPED ] && ! skip_allowed "ALL.$name"; then
			res=UNEXPECTED_SKIP
		fi
		case $res in
		PASSED) NPASS=$((NPASS + 1)) ;;
		SKIPPED) NSKIP=$((NSKIP + 1)) ;;
		*) NFAIL=$((NFAIL + 1)); log "  $res ALL.$name $why" ;;
		esac
		printf '%s\t%s\t%s\t%s\n' "$label" "ALL.$name" "$res" "$why" >>"$TSV"
	done <<<"${EXPECT[$suite]}"
	daemon_alive || die "daemon died during suite $suite (log: $DAEMON_LOG)"
done
log "conformance on the $label LUN: $NPASS passed, $NFAIL failed, $NSKIP allowed skips, $NEXCL excluded"
check_eq "conformance failures on the $label LUN" 0 "$NFAIL"
check "conformance tests passed on the $label LUN" test "$NPASS" -gt 200
done
check "daemon stops cleanly (flushes the cache)" stop_daemon
finish
