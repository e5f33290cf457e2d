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

conf_serve "$IQN" "ram=ram:?size=1G&thin=1" "file=file:$T_DIR/lun1.img?size=1G&thin=1" \
	"ro=ram:?size=64M&read_only=1"
conf_list "$FILTER"
{
	echo "# test_conformance.sh $(date -u +%FT%TZ) $(dpkg-query -W libiscsi-bin 2>/dev/null)"
	echo "# iscsi-test-cu -v -d -S -i $T_INITIATOR -I $T_INITIATOR2 -t ALL.<suite>.* URL URL"
} >"$LOGF"
runs=(ram file)
# shellcheck disable=SC2053
[[ ReadOnly == $FILTER ]] && runs+=(ro:ReadOnly)
conf_run "$IQN" "$T_DIR/results" "${runs[@]}"
conf_verdicts "$T_DIR/results" "$LOGF" "$TSV" "${runs[@]%%:*}"
cp "$DAEMON_LOG" "$S3TGT_BUILD/conformance-daemon.log"
check "daemon stops cleanly on SIGTERM" stop_daemon
finish
