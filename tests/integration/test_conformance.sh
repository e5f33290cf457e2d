#!/usr/bin/env bash
# test_conformance.sh - libiscsi's SCSI/iSCSI conformance suite (iscsi-test-cu,
# family ALL = every SCSI and iSCSI test once) against a thin RAM LUN and a thin
# file LUN of one s3tgtd, plus the ReadOnly suite against a third, write-protected
# LUN (ram, read_only=1): ReadOnly.ReadOnlySBC can only say something on a
# write-protected LU. Its results count into the totals like the others; on the
# "ro" LUN no skip is allowed at all (the skips file's ReadOnly line is for the
# writable LUNs only).
#
# The runner, the result classes and the skip list are conformance_lib.sh's.
# Each LUN sits in a target of its own, so the LUNs run side by side: the
# TARGET WARM/COLD RESETs some tests send reach only their own LUN.
# Results: $S3TGT_BUILD/conformance.log (full output) and
#          $S3TGT_BUILD/conformance-results.tsv (lun test result reason).
# Environment: CONF_FILTER (suite glob) [*], and conformance_lib.sh's time limits.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/conformance_lib.sh"
need iscsi-test-cu iscsi-inq stdbuf

FILTER=${CONF_FILTER:-*}
IQN=iqn.2026-11.io.s3tgt:conformance
LOGF=$S3TGT_BUILD/conformance.log
TSV=$S3TGT_BUILD/conformance-results.tsv
conf_load_skips

# label=URI; each LUN 0 of target $IQN-label
LUNS=("ram=ram:?size=1G&thin=1"
	"file=file:$T_DIR/lun1.img?size=1G&thin=1"
	"ro=ram:?size=64M&read_only=1")
args=()
for l in "${LUNS[@]}"; do args+=(--target "$IQN-${l%%=*}" --lun "0=${l#*=}"); done
start_daemon --state-dir "$T_DIR/state" "${args[@]}" || die "s3tgtd did not start"
for l in "${LUNS[@]}"; do
	check "${l%%=*} LUN answers INQUIRY" inq_ok "$(lun_url "$IQN-${l%%=*}" 0)"
done

conf_list "$FILTER"
RO_RUN=()
# shellcheck disable=SC2053
[[ ReadOnly == $FILTER ]] && RO_RUN+=(ReadOnly)
{
	echo "# test_conformance.sh $(date -u +%FT%TZ) $(dpkg-query -W libiscsi-bin 2>/dev/null)"
	echo "# iscsi-test-cu -v -d -S -i $T_INITIATOR -I $T_INITIATOR2 -t ALL.<suite>.* URL URL"
} >"$LOGF"

RES=$T_DIR/results
mkdir -p "$RES"
jobs_pids=()
conf_lun ram "$(lun_url "$IQN-ram" 0)" "$RES" &
jobs_pids+=($!)
conf_lun file "$(lun_url "$IQN-file" 0)" "$RES" &
jobs_pids+=($!)
labels=(ram file)
if [ "${#RO_RUN[@]}" -gt 0 ]; then
	conf_lun ro "$(lun_url "$IQN-ro" 0)" "$RES" "${RO_RUN[@]}" &
	jobs_pids+=($!)
	labels+=(ro)
fi
for p in "${jobs_pids[@]}"; do wait "$p" || die "a conformance runner failed"; done
conf_merge "$RES" "$LOGF" "$TSV" "${labels[@]}"

echo
conf_table "$RES" "${labels[@]}"
echo
for label in "${labels[@]}"; do
	conf_report "$RES" "$label"
	check_eq "conformance failures on the $label LUN" 0 "$NFAIL"
	T_PASS=$((T_PASS + NPASS))
done
[ "$FILTER" != "*" ] || check "conformance tests passed on the ram LUN" test "$(awk -F'\t' '$1 == "ram" && $3 == "PASSED"' "$TSV" | wc -l)" -gt 200
cp "$DAEMON_LOG" "$S3TGT_BUILD/conformance-daemon.log"
check "daemon stops cleanly on SIGTERM" stop_daemon
finish
