# shellcheck shell=bash
# conformance_lib.sh - libiscsi's conformance suite (iscsi-test-cu, family ALL)
# run LUN by LUN; shared by test_conformance.sh and test_s3_conformance.sh
# (sourced after lib.sh).
#
# Each suite runs in its own iscsi-test-cu process (tests of a suite may depend
# on sharing it) with:
#   -d  dataloss tests allowed (the LUNs are scratch)
#   -S  SANITIZE tests allowed (libiscsi 1.19: "allow sanitize-opcode tests")
#   -i/-I two initiator names (reservation and 2-initiator tests)
#   the URL twice: the second is the "multipath" URL, so MultipathIO tests run
#   over two sessions instead of skipping.
# After every iscsi-test-cu process the harness waits, as an initiator would,
# until the LUN answers TEST UNIT READY (scsi_tool.py wait-ready): a SANITIZE
# runs for as long as the medium takes, and iscsi-test-cu may return (or be
# killed) while it still runs; the next suite must not start on a LUN that
# answers NOT READY, SANITIZE IN PROGRESS.
#
# Time limits are hang guards, never a measure of speed: CONF_SUITE_TIMEOUT
# [120] per process, CONF_LONG_TIMEOUT [1500] for the Sanitize suite (three
# whole-medium overwrites and a sanitize waited out with 60 s sleeps),
# CONF_READY_TIMEOUT [1500] for the wait after a process.
#
# Result of each test, parsed from CUnit's verbose output:
#   PASSED, FAILED, SKIPPED (CUnit says "passed" but the test printed
#   "[SKIPPED]": CUnit counts these as passed, we do not), TIMEOUT (process
#   killed before the test reported), NORESULT (process died), NOT_RUN (an
#   earlier suite left the LUN unusable, or the daemon died).
# A skip is allowed only if tests/integration/conformance-skips.txt lists the
# test (with the reason); any other skip fails, so unimplemented features
# cannot silently count as coverage. "exclude:TEST reason" lines name tests
# not run at all (EXCLUDED, never counted as passed).
#
# LUNs run side by side: conf_lun writes its own DIR/LABEL.log and
# DIR/LABEL.tsv; conf_merge and conf_report read them all afterwards.
SKIPS_FILE=$S3TGT_SRC/tests/integration/conformance-skips.txt
CONF_SUITE_TMO=${CONF_SUITE_TIMEOUT:-120}
CONF_LONG_TMO=${CONF_LONG_TIMEOUT:-1500}
CONF_READY_TMO=${CONF_READY_TIMEOUT:-1500}
CONF_LONG_SUITES=(Sanitize)

# allowed skips: "TEST-GLOB  reason..." ; '#' comments and blank lines ignored
conf_load_skips() { # -> ALLOWED, EXCLUDED
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

conf_is_excluded() { # TEST
	local p
	for p in "${EXCLUDED[@]}"; do
		[ "$1" = "$p" ] && return 0
	done
	return 1
}

conf_skip_allowed() {
	local p
	for p in "${ALLOWED[@]}"; do
		# shellcheck disable=SC2053  # glob on purpose
		[[ $1 == $p ]] && return 0
	done
	return 1
}

# conf_list FILTER -> SUITES (names), EXPECT[SUITE] (its tests, one a line),
# CONF_EVERY_SUITE (1 when FILTER selects every suite)
conf_list() {
	local fam suite rest list
	list=$(timeout 30 iscsi-test-cu --list) || die "iscsi-test-cu --list failed"
	SUITES=()
	declare -gA EXPECT=()
	while IFS=. read -r fam suite rest; do
		# shellcheck disable=SC2053
		[ "$fam" = ALL ] && [ -n "$suite" ] && [ -z "$rest" ] && [[ $suite == $1 ]] && SUITES+=("$suite")
		[ "$fam" = ALL ] && [ -n "$rest" ] && EXPECT[$suite]+="$suite.$rest"$'\n'
	done <<<"$list"
	[ "${#SUITES[@]}" -gt 0 ] || die "no conformance suite matches '$1'"
	CONF_EVERY_SUITE=0
	[ "$1" != "*" ] || CONF_EVERY_SUITE=1
}

# CUnit verbose output -> "SUITE.TEST<TAB>RESULT<TAB>reason". CUnit prints
# "Suite: S", then "  Test: T ..." followed by test logging and "passed" or
# "FAILED" plus numbered assertion lines.
conf_parse_cunit() {
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

# conf_cu TMO URL SPEC: one iscsi-test-cu process, then wait until the LUN is
# ready again. Prints the output; returns iscsi-test-cu's status, or 200 when
# the LUN did not become ready (the message says what it still reported).
conf_cu() {
	local rc=0
	timeout -k 5 "$1" stdbuf -oL -eL iscsi-test-cu -v -d -S \
		-i "$T_INITIATOR" -I "$T_INITIATOR2" -t "$3" "$2" "$2" 2>&1 || rc=$?
	if ! /usr/bin/python3 "$S3TGT_SRC/tests/integration/scsi_tool.py" wait-ready "$2" \
		"$CONF_READY_TMO" 2>&1; then
		echo "CONF-HARNESS: LUN not ready after $3"
		return 200
	fi
	return $rc
}

# conf_run_suite SUITE URL: the whole suite in one process, or test by test
# when one of its tests is excluded.
conf_run_suite() {
	local t any=0 rc=0 tmo=$CONF_SUITE_TMO
	[[ " ${CONF_LONG_SUITES[*]} " == *" $1 "* ]] && tmo=$CONF_LONG_TMO
	while IFS= read -r t; do
		[ -n "$t" ] && conf_is_excluded "ALL.$t" && any=1
	done <<<"${EXPECT[$1]}"
	if [ $any = 0 ]; then
		conf_cu "$tmo" "$2" "ALL.$1.*"
		return
	fi
	while IFS= read -r t; do
		[ -n "$t" ] || continue
		conf_is_excluded "ALL.$t" && continue
		echo "Suite: $1"
		conf_cu "$tmo" "$2" "ALL.$t" || rc=$?
		[ $rc = 200 ] && break
	done <<<"${EXPECT[$1]}"
	return $rc
}

# conf_lun LABEL URL DIR [SUITE...]: run the suites (default: all of SUITES)
# on one LUN; full output to DIR/LABEL.log, one row a test to DIR/LABEL.tsv
# (label, test, result, reason). A "ro" LUN allows no skip at all.
conf_lun() {
	local label=$1 url=$2 dir=$3 suite out rc name res why got t0 stop=""
	local -a suites
	shift 3
	if [ $# -gt 0 ]; then suites=("$@"); else suites=("${SUITES[@]}"); fi
	: >"$dir/$label.log"
	: >"$dir/$label.tsv"
	log "conformance on the $label LUN: ${#suites[@]} suites, $url"
	for suite in "${suites[@]}"; do
		t0=$(date +%s)
		rc=0
		out=""
		[ -n "$stop" ] || out=$(conf_run_suite "$suite" "$url") || rc=$?
		printf '===== %s %s rc=%s %ss\n%s\n' "$label" "$suite" "$rc" "$(($(date +%s) - t0))" \
			"$out" >>"$dir/$label.log"
		got=$(conf_parse_cunit <<<"$out")
		while IFS= read -r name; do
			[ -n "$name" ] || continue
			if conf_is_excluded "ALL.$name"; then
				printf '%s\t%s\t%s\t%s\n' "$label" "ALL.$name" EXCLUDED "see conformance-skips.txt" \
					>>"$dir/$label.tsv"
				continue
			fi
			res=$(awk -F'\t' -v n="$name" '$1 == n { print $2; exit }' <<<"$got")
			why=$(awk -F'\t' -v n="$name" '$1 == n { print $3; exit }' <<<"$got")
			if [ -n "$stop" ]; then
				res=NOT_RUN why=$stop
			elif [ -z "$res" ]; then
				if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
					res=TIMEOUT why="iscsi-test-cu killed after its time limit"
				else
					res=NORESULT why="iscsi-test-cu exit $rc: $(grep -v '^\s*$' <<<"$out" | grep -v '^CONF-HARNESS' | tail -n 1)"
				fi
			fi
			if [ "$res" = SKIPPED ] && { [ "$label" = ro ] || ! conf_skip_allowed "ALL.$name"; }; then
				res=UNEXPECTED_SKIP
			fi
			printf '%s\t%s\t%s\t%s\n' "$label" "ALL.$name" "$res" "$why" >>"$dir/$label.tsv"
		done <<<"${EXPECT[$suite]}"
		if [ -z "$stop" ] && [ "$rc" = 200 ]; then
			stop="the LUN was still not ready after suite $suite: $(grep -m1 '^wait-ready' <<<"$out")"
			log "$label: $stop"
		fi
		if [ -z "$stop" ] && ! daemon_alive; then
			stop="the daemon died during suite $suite"
			log "$label: $stop"
		fi
	done
	log "conformance on the $label LUN: finished"
}

# conf_report DIR LABEL: print the failures of one LUN and its totals; sets
# NPASS NFAIL NSKIP NEXCL for that LUN.
conf_report() {
	local f=$1/$2.tsv
	NPASS=$(awk -F'\t' '$3 == "PASSED"' "$f" | wc -l)
	NSKIP=$(awk -F'\t' '$3 == "SKIPPED"' "$f" | wc -l)
	NEXCL=$(awk -F'\t' '$3 == "EXCLUDED"' "$f" | wc -l)
	NFAIL=$(awk -F'\t' '$3 != "PASSED" && $3 != "SKIPPED" && $3 != "EXCLUDED"' "$f" | wc -l)
	awk -F'\t' '$3 != "PASSED" && $3 != "SKIPPED" && $3 != "EXCLUDED" {
		printf "  %-10s %-45s %-15s %s\n", $1, $2, $3, $4 }' "$f"
	log "conformance on the $2 LUN: $NPASS passed, $NFAIL failed, $NSKIP allowed skips, $NEXCL excluded"
}

# conf_merge DIR LOG TSV LABEL...: the LUNs' logs and tables, one after another
conf_merge() {
	local dir=$1 logf=$2 tsv=$3 label
	shift 3
	printf 'lun\ttest\tresult\treason\n' >"$tsv"
	for label in "$@"; do
		cat "$dir/$label.log" >>"$logf"
		cat "$dir/$label.tsv" >>"$tsv"
	done
}

# conf_table DIR LABEL...: passed / failed / skipped per suite and LUN
conf_table() {
	local dir=$1 labels
	shift
	labels="$*"
	set -- "${@/%/.tsv}"
	awk -F'\t' -v labels="$labels" '
	BEGIN { n = split(labels, L, " "); printf "%-28s", "suite"; for (i = 1; i <= n; i++) printf " | %-16s", L[i] ": pass fail skip"; print "" }
	$3 != "EXCLUDED" {
		split($2, p, "."); s = p[2]
		if (!(s in seen)) { seen[s] = 1; order[++ns] = s }
		k = ($3 == "PASSED") ? "p" : ($3 == "SKIPPED") ? "s" : "f"
		c[$1 SUBSEP s SUBSEP k]++
	}
	END {
		for (j = 1; j <= ns; j++) {
			printf "%-28s", order[j]
			for (i = 1; i <= n; i++) printf " | %4d %4d %4d    ", c[L[i], order[j], "p"], c[L[i], order[j], "f"], c[L[i], order[j], "s"]
			print ""
		}
	}' "${@/#/$dir/}"
}

# conf_serve IQN LABEL=URI...: one daemon serving each URI as LUN 0 of a target
# of its own, IQN-LABEL (state dir T_DIR/state); each LUN must answer INQUIRY.
conf_serve() {
	local iqn=$1 l args=()
	shift
	for l in "$@"; do args+=(--target "$iqn-${l%%=*}" --lun "0=${l#*=}"); done
	start_daemon --state-dir "$T_DIR/state" "${args[@]}" || die "s3tgtd did not start"
	for l in "$@"; do
		check "${l%%=*} LUN answers INQUIRY" inq_ok "$(lun_url "$iqn-${l%%=*}" 0)"
	done
}

# conf_run IQN DIR LABEL[:SUITE,SUITE...]...: each LUN's suites (all of SUITES
# when none are named) side by side, results in DIR; returns when all are done.
declare -A CONF_ALL_SUITES # LABEL -> 1 when it ran every selected suite
conf_run() {
	local iqn=$1 dir=$2 spec label p
	local -a pids=() suites
	shift 2
	mkdir -p "$dir"
	for spec in "$@"; do
		label=${spec%%:*}
		suites=()
		if [[ $spec == *:* ]]; then
			IFS=, read -ra suites <<<"${spec#*:}"
		else
			CONF_ALL_SUITES[$label]=1
		fi
		conf_lun "$label" "$(lun_url "$iqn-$label" 0)" "$dir" "${suites[@]}" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || die "a conformance runner failed"; done
}

# conf_verdicts DIR LOG TSV LABEL...: the LUNs' results merged into LOG and TSV,
# the table, each LUN's failures; checks: no failure on any LUN, and more than
# 200 passes on each LUN that ran the whole suite. Every passed conformance
# test counts as a pass of the script.
conf_verdicts() {
	local dir=$1 logf=$2 tsv=$3 label
	shift 3
	conf_merge "$dir" "$logf" "$tsv" "$@"
	echo
	conf_table "$dir" "$@"
	echo
	for label in "$@"; do
		conf_report "$dir" "$label"
		check_eq "conformance failures on the $label LUN" 0 "$NFAIL"
		T_PASS=$((T_PASS + NPASS))
		if [ "${CONF_ALL_SUITES[$label]:-}" = 1 ] && [ "$CONF_EVERY_SUITE" = 1 ]; then
			check "conformance tests passed on the $label LUN" test "$NPASS" -gt 200
		fi
	done
}
