#!/usr/bin/env bash
# test_s3_conformance.sh - libiscsi's conformance suite (iscsi-test-cu -t ALL)
# against the chunked stores, one daemon, three LUNs run side by side (each in
# a target of its own, so one LUN's target resets never reach another): a
# write-back cached S3 LUN (s3://...?cache_size=...&cache_dir=...), an uncached
# S3 LUN, both on a real Ceph RGW (tests/integration/rgw.sh), and a dir LUN.
# The runner, the result classes and the skip list are conformance_lib.sh's,
# so every run judges the target the same way.
#
# ALL.Sanitize.Reset stays excluded here too (conformance-skips.txt): it
# overwrites with zeros, which a chunked store keeps as holes (batched
# deletes, or nothing on a fresh volume), so its sanitize ends long before
# the test looks 3 s later.
# Results: $S3TGT_BUILD/conformance-s3.log and conformance-s3-results.tsv.
# Environment: CONF_FILTER (suite glob) [*], and conformance_lib.sh's time limits.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/conformance_lib.sh"
need iscsi-test-cu iscsi-inq stdbuf curl

FILTER=${CONF_FILTER:-*}
IQN=iqn.2026-11.io.s3tgt:s3-conformance
LOGF=$S3TGT_BUILD/conformance-s3.log
TSV=$S3TGT_BUILD/conformance-s3-results.tsv
BUCKET=s3tgt-cache-conf
conf_load_skips

rgw_up "$BUCKET"
OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
# label=URI; small chunks keep the uncached LUNs' read-modify-writes cheap, and
# 256 MiB keep the uncached S3 LUN's three whole-LUN overwrites (Sanitize.Overwrite)
# at 4096 PUTs each.
conf_serve "$IQN" "cached-s3=s3://$BUCKET/conf?size=1G&chunk_size=1M&$OPTS&cache_size=64M&cache_dir=$T_DIR/cache" \
	"s3=s3://$BUCKET/conf-nocache?size=256M&chunk_size=64K&$OPTS" \
	"dir=dir:$T_DIR/dirlun?size=1G&chunk_size=64K"
conf_list "$FILTER"
echo "# test_s3_conformance.sh $(date -u +%FT%TZ) $DAEMON_LOG" >"$LOGF"
conf_run "$IQN" "$T_DIR/results" cached-s3 s3 dir
conf_verdicts "$T_DIR/results" "$LOGF" "$TSV" cached-s3 s3 dir
check "daemon stops cleanly (flushes the cache)" stop_daemon
finish
