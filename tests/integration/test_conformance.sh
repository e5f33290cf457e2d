#!/usr/bin/env bash
# test_conformance.sh - libiscsi's SCSI/iSCSI conformance suite (iscsi-test-cu,
# family ALL = every SCSI and iSCSI test once) against a thin RAM LUN and a thin
# file LUN of one s3tgtd, plus the ReadOnly suite against a third, write-protected
# LUN (ram, read_only=1): ReadOnly.ReadOnlySBC can only say something on a
# write-protected LU. Its results count into the totals like the others; on the
# "ro" LUN no skip is allowed at all (the skips file's ReadOnly line is for the
# writable LUNs only).
#
# Each suite runs in its own iscsi-test-cu process (tests of a suite may depend
# on sharing it) bounded by CONF_SUITE_TIMEOUT seconds, with:
#   -d  dataloss tests allowed (the LUNs are scratch)
#   -S  SANITIZE tests allowed (libiscsi 1.19: "allow sanitize-opcode tests")
#   -i/-I two initiator names (reservation and 2-initiator tests)
#   the URL twice: the second is the "multipath" URL, so MultipathIO tests run
#   over two sessions instead of skipping.
# Result of each test, parsed from CUnit's verbose output:
#   PASSED, FAILED, SKIPPED (CUnit says "passed" but the test printed
#   "[SKIPPED]": CUnit counts these as passed, we do not), TIMEOUT (suite
#   process killed before the test reported), NORESULT (process died).
# A skip is allowed only if tests/integration/conformance-skips.txt lists the
# test (with the reason); any other skip fails the test, so unimplemented
# features cannot silently count as coverage.
# Results: $S3TGT_BUILD/conformance.log (full output) and
#          $S3TGT_BUILD/conformance-results.tsv (lun test result reason).
# If the daemon dies, its log is kept as $S3TGT_BUILD/conformance-crash-N.log,
# the crash counts as a failure and a fresh daemon continues with the next suite.
# Suites not started within CONF_BUDGET seconds of the start count as NOT_RUN
# (failed), so that hangs cannot push the script past ctest's 900 s limit.
# Environment: CONF_SUITE_TIMEOUT [60], CONF_BUDGET [720], CONF_FILTER (suite glob) [*].
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need iscsi-test-cu iscsi-inq stdbuf

SUITE_TMO=${CONF_SUITE_TIMEOUT:-60}
BUDGET=${CONF_BUDGET:-720}
T_BEGIN=$(date +%s)
FILTER=${CONF_FILTER:-*}
IQN=iqn.2026-11.io.s3tgt:conformance
SKIPS_FILE=$S3TGT_SRC/tests/integration/conformance-skips.txt
LOGF=$S3TGT_BUILD/conformance.log
TSV=$S3TGT_BUILD/conformance-results.tsv

# allowed skips: "TEST-GLOB  reason..." ; '#' comments and blank lines ignored
# "exclude:TEST reason": a test that cannot say anything about this target is not
# run at all (reported as EXCLUDED, never counted as passed).
load_skips() { # SKIPS_FILE -> ALLOWED, EXCLUDED
	ALLOWED=()
	EXCLUDED=()
	[ -f "$SKIPS_FILE" ] || return 0
	local pat
	while read -r pat _; do
		[ -n "$pat" ] && [ "${pat#\#}" = "$pat" ] || continue
		case $pat in
		exclude:*) EXCLUDED+=("${pat#exclude:}") ;;
		*) ALLOWED+=("$pat") ;;
		esac
	done <"$SKIPS_FILE"
}
load_skips
is_excluded() {
	local p
	for p in "${EXCLUDED[@]}"; do
		[ "$1" = "$p" ] && return 0
	done
	return 1
}
# iscsi-test-cu selects tests by one FAMILY[.SUITE[.TEST]] spec, so a suite with an
# excluded test runs its other tests one by one.
run_suite() { # SUITE URL
	local t any=0 rc=0
	while IFS= read -r t; do
		[ -n "$t" ] && is_excluded "ALL.$t" && any=1
	done <<<"${EXPECT[$1]}"
	if [ $any = 0 ]; then
		timeout -k 5 "$SUITE_TMO" stdbuf -oL -eL iscsi-test-cu -v -d -S \
			-i "$T_INITIATOR" -I "$T_INITIATOR2" -t "ALL.$1.*" "$2" "$2" 2>&1
		return
	fi
	while IFS= read -r t; do
		[ -n "$t" ] || continue
		is_excluded "ALL.$t" && continue
		echo "Suite: $1"
		timeout -k 5 "$SUITE_TMO" stdbuf -oL -eL iscsi-test-cu -v -d -S \
			-i "$T_INITIATOR" -I "$T_INITIATOR2" -t "ALL.$t" "$2" "$2" 2>&1 || rc=$?
	done <<<"${EXPECT[$1]}"
	return $rc
}
skip_allowed() {
	local p
	for p in "${ALLOWED[@]}"; do
		# shellcheck disable=SC2053  # glob on purpose
		[[ $1 == $p ]] && return 0
	done
	return 1
}

# CUnit verbose output -> "SUITE.TEST<TAB>RESULT<TAB>reason". CUnit prints
# "Suite: S", then "  Test: T ..." followed by test logging and "passed" or
# "FAILED" plus numbered assertion lines.
parse_cunit() {
	awk '
	function out() {
		if (t != "" && r != "") {
			if (r == "PASSED" && sk != "") { r = "SKIPPED"; why = sk }
			if (r == "PASSED") why = ""
			gsub(/[\t ]+/, " ", why); print s "." t "\t" r "\t" why
		}
		t = ""; r = ""; why = ""; sk = ""
	}
	function scan(x) {
		if (r == "" && x ~ /^passed/) r = "PASSED"
		if (r == "" && x ~ /^FAILED/) r = "FAILED"
		if (sk == "" && x ~ /\[SKIPPED\]/) { sk = x; sub(/.*\[SKIPPED\] */, "", sk) }
		if (why == "" && x ~ /\[FAILED\]/) { why = x; sub(/.*\[FAILED\] */, "", why) }
		if (why == "" && x ~ /^ +1\. /) { why = x; sub(/^ +1\. +/, "", why) }
	}
	/^Suite: / { out(); s = $2; next }
	/^Run Summary:/ { out(); next }
	/^  Test: / { out(); x = substr($0, 9); n = index(x, " ..."); t = substr(x, 1, n - 1); scan(substr(x, n + 4)); next }
	t != "" { scan($0) }
	END { out() }'
}

# ---- daemon: LUN 0 thin RAM, LUN 1 thin sparse file, LUN 2 read-only RAM ----
start_daemon --target "$IQN" --state-dir "$T_DIR/state" \
	--lun "0=ram:?size=1G&thin=1" \
	--lun "1=file:$T_DIR/lun1.img?size=1G&thin=1" \
	--lun "2=ram:?size=64M&read_only=1" || die "s3tgtd did not start"
check "LUN 0 answers INQUIRY" inq_ok "$(lun_url $IQN 0)"
check "LUN 1 answers INQUIRY" inq_ok "$(lun_url $IQN 1)"
check "LUN 2 answers INQUIRY" inq_ok "$(lun_url $IQN 2)"
RO_SUITES=(ReadOnly)

SUITES=()
while IFS=. read -r fam suite rest; do
	# shellcheck disable=SC2053
	[ "$fam" = ALL ] && [ -n "$suite" ] && [ -z "$rest" ] && [[ $suite == $FILTER ]] && SUITES+=("$suite")
done < <(timeout 30 iscsi-test-cu --list)
declare -A EXPECT # SUITE -> test names of that suite, one a line
while IFS=. read -r fam suite test; do
	[ "$fam" = ALL ] && [ -n "$test" ] && EXPECT[$suite]+="$suite.$test"$'\n'
done < <(timeout 30 iscsi-test-cu --list)
[ "${#SUITES[@]}" -gt 0 ] || die "no conformance suite matches '$FILTER'"

{
	echo "# test_conformance.sh $(date -u +%FT%TZ) $(dpkg-query -W libiscsi-bin 2>/dev/null)"
	echo "# iscsi-test-cu -v -d -S -i $T_INITIATOR -I $T_INITIATOR2 -t ALL.<suite>.* URL URL"
} >"$LOGF"
printf 'lun\ttest\tresult\treason\n' >"$TSV"
rm -f "$S3TGT_BUILD"/conformance-crash-*.log

declare -A CNT # "lun/suite/RESULT" -> count
FAILS=()
NPASS=0 NFAIL=0 NSKIP=0 NEXCL=0
run_lun() { # LABEL LUN [SUITE...]   (default: every selected suite)
	local label=$1 url suite out rc name res why got t0 secs
	local -a suites
	url=$(lun_url $IQN "$2")
	shift 2
	if [ $# -gt 0 ]; then suites=("$@"); else suites=("${SUITES[@]}"); fi
	log "conformance on $label LUN: ${#suites[@]} suites, $url"
	for suite in "${suites[@]}"; do
		t0=$(date +%s)
		rc=0
		out=""
		if [ $((t0 - T_BEGIN)) -gt "$BUDGET" ]; then
			# stay inside ctest's 900 s limit even if many suites hang
			rc=budget
		else
			out=$(run_suite "$suite" "$url") || rc=$?
		fi
		secs=$(($(date +%s) - t0))
		printf '===== %s %s rc=%s %ss\n%s\n' "$label" "$suite" "$rc" "$secs" "$out" >>"$LOGF"
		got=$(parse_cunit <<<"$out")
		while IFS= read -r name; do
			[ -n "$name" ] || continue
			if is_excluded "ALL.$name"; then
				NEXCL=$((NEXCL + 1))
				printf '%s\t%s\t%s\t%s\n' "$label" "ALL.$name" EXCLUDED "see conformance-skips.txt" >>"$TSV"
				continue
			fi
			res=$(awk -F'\t' -v n="$name" '$1 == n { print $2; exit }' <<<"$got")
			why=$(awk -F'\t' -v n="$name" '$1 == n { print $3; exit }' <<<"$got")
			if [ -z "$res" ]; then
				if [ "$rc" = budget ]; then
					res=NOT_RUN why="time budget of ${BUDGET}s for the whole run used up"
				elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
					res=TIMEOUT why="suite process killed after ${SUITE_TMO}s"
				else
					res=NORESULT why="iscsi-test-cu exit $rc: $(grep -v '^\s*$' <<<"$out" | tail -n 1)"
				fi
			fi
			if [ "$res" = SKIPPED ] && { [ "$label" = ro ] || ! skip_allowed "ALL.$name"; }; then
				res=UNEXPECTED_SKIP
			fi
			case $res in
			PASSED) NPASS=$((NPASS + 1)) ;;
			SKIPPED) NSKIP=$((NSKIP + 1)) ;;
			*) NFAIL=$((NFAIL + 1)); FAILS+=("$(printf '%-5s %-45s %-15s %s' "$label" "ALL.$name" "$res" "$why")") ;;
			esac
			CNT[$label/$suite/$res]=$((${CNT[$label/$suite/$res]:-0} + 1))
			printf '%s\t%s\t%s\t%s\n' "$label" "ALL.$name" "$res" "$why" >>"$TSV"
		done <<<"${EXPECT[$suite]}"
		if ! daemon_alive; then
			# keep the evidence, then carry on with a fresh daemon so that one
			# crash does not hide the results of every later suite
			NCRASH=$((NCRASH + 1))
			cp "$DAEMON_LOG" "$S3TGT_BUILD/conformance-crash-$NCRASH.log"
			fail "daemon died during suite $suite on $label LUN (log: $S3TGT_BUILD/conformance-crash-$NCRASH.log)"
			if grep -qE 'ERROR: |runtime error:' "$DAEMON_LOG"; then
				grep -m 1 -A 12 -E 'ERROR: |runtime error:' "$DAEMON_LOG" | sed 's/^/    /'
			else
				tail -n 12 "$DAEMON_LOG" | sed 's/^/    /'
			fi
			wait "$DAEMON_PID" 2>/dev/null || true
			[ "$NCRASH" -lt 5 ] || { fail "5 daemon crashes: conformance run abandoned"; return 1; }
			start_daemon --port "$DAEMON_PORT" "${DAEMON_ARGS[@]}" || { fail "daemon restart failed"; return 1; }
		fi
	done
}

NCRASH=0
RO_RUN=()
for suite in "${RO_SUITES[@]}"; do
	# shellcheck disable=SC2053
	[[ $suite == $FILTER ]] && RO_RUN+=("$suite")
done
run_lun ram 0 && run_lun file 1 && { [ "${#RO_RUN[@]}" -eq 0 ] || run_lun ro 2 "${RO_RUN[@]}"; }

echo
printf '%-30s | %-22s | %-22s | %-22s\n' "suite" "ram: pass fail skip" "file: pass fail skip" \
	"ro: pass fail skip"
for suite in "${SUITES[@]}"; do
	row=()
	for label in ram file ro; do
		bad=0
		for r in FAILED TIMEOUT NORESULT NOT_RUN UNEXPECTED_SKIP; do bad=$((bad + ${CNT[$label/$suite/$r]:-0})); done
		row+=("$(printf '%4d %4d %4d' "${CNT[$label/$suite/PASSED]:-0}" "$bad" "${CNT[$label/$suite/SKIPPED]:-0}")")
	done
	printf '%-30s | %-22s | %-22s | %-22s\n' "$suite" "${row[0]}" "${row[1]}" "${row[2]}"
done
echo
if [ "${#FAILS[@]}" -gt 0 ]; then
	echo "Failing tests (UNEXPECTED_SKIP = skipped but not listed in conformance-skips.txt):"
	printf '  %s\n' "${FAILS[@]}"
	echo
fi
echo "conformance totals: $NPASS passed, $NFAIL failed, $NSKIP skipped (listed), $NEXCL excluded; log $LOGF, table $TSV"
cp "$DAEMON_LOG" "$S3TGT_BUILD/conformance-daemon.log"

T_PASS=$((T_PASS + NPASS))
T_FAIL=$((T_FAIL + NFAIL))
check "daemon stops cleanly on SIGTERM" stop_daemon
finish
