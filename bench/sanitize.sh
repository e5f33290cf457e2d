#!/usr/bin/env bash
# sanitize.sh - SANITIZE OVERWRITE of an uncached 1 GiB s3 LUN against raw
# PUTs of the same objects at the same concurrency, on one Ceph RGW, in one run.
#
# usage: bench/sanitize.sh [-r REPS] [-c LIST] [-o FILE.md]
#   -r REPS   runs per figure; the table shows the median          [3]
#   -c LIST   chunk sizes, comma-separated                         [64K,4M]
#   -o FILE   also write the markdown report to FILE   [$BUILD/bench-sanitize.md]
# Environment: S3TGTD (daemon binary) [build/s3tgtd], BUILD [build].
#
# For each chunk size C (N = 1 GiB / C objects):
#   raw       N PUTs of C bytes, one curl process, --parallel at concurrency
#             32 (the chunk store's default max_inflight) over keep-alive
#             connections, SigV4 signed by curl: what the store's requests cost.
#   sanitize  s3://...?size=1G&chunk_size=C, no cache, a fresh volume: one
#             SANITIZE OVERWRITE (one pass, pattern 0x5a) through iSCSI
#             (tests/integration/scsi_tool.py), timed from command to status.
#             Every chunk is one PUT of C bytes, so the two move the same
#             objects; the ratio sanitize/raw is the target's overhead.
# The RGW is tests/integration/rgw.sh's, started here and stopped by its PIDs.
# Everything talks to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=3
CHUNKS=64K,4M
BUILD=${BUILD:-build}
OUT=$BUILD/bench-sanitize.md
while getopts r:c:o: o; do
	case $o in
	r) REPS=$OPTARG ;;
	c) CHUNKS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) sed -n '2,8p' "$0"; exit 2 ;;
	esac
done
S3TGTD=${S3TGTD:-$BUILD/s3tgtd}
[ -x "$S3TGTD" ] || { say "no daemon at $S3TGTD (make build)"; exit 1; }
IQN=iqn.2026-12.io.s3tgt:bench-sanitize
CONC=32
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-sanitize.XXXXXX")
PIDS=()
RGW=tests/integration/rgw.sh
cleanup() {
	bench_stop_pids
	"$RGW" stop "$WORK/rgw" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
"$RGW" start "$WORK/rgw" >"$WORK/rgw-start.log" 2>&1 || { cat "$WORK/rgw-start.log"; exit 1; }
# shellcheck disable=SC1091
. "$WORK/rgw/s3.env"
BUCKET=bench-sanitize
"$RGW" mkbucket "$WORK/rgw" "$BUCKET" >/dev/null
export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
S3OPTS="endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
S3CURL=(curl -sS --no-progress-meter --max-time 120 --aws-sigv4 "aws:amz:us-east-1:s3"
	--user "$S3_KEY:$S3_SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")

bytes_of() { numfmt --from=iec "$1"; }
now() { date +%s.%N; }

raw_put() { # SIZE RUN -> seconds
	local size=$1 n=$((1073741824 / $(bytes_of "$1"))) cfg=$WORK/raw.cfg i t0 t1 bad
	head -c "$(bytes_of "$size")" /dev/urandom >"$WORK/obj"
	for ((i = 0; i < n; i++)); do
		echo "url = \"$S3_ENDPOINT/$BUCKET/raw-$size-$2/$i\""
		echo "upload-file = \"$WORK/obj\""
		echo 'output = "/dev/null"'
	done >"$cfg"
	t0=$(now)
	timeout 900 "${S3CURL[@]}" --parallel --parallel-max $CONC --parallel-immediate \
		-w '%{http_code}\n' -K "$cfg" >"$WORK/codes" 2>>"$WORK/raw.err" || true
	t1=$(now)
	bad=$(grep -cv '^200$' "$WORK/codes" || true)
	[ "$bad" = 0 ] && [ "$(wc -l <"$WORK/codes")" = "$n" ] || { say "raw PUT $size: $bad bad answers"; return 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}

sanitize_once() { # SIZE RUN -> seconds
	local out
	s3tgtd_start "$WORK/d-$1-$2.log" --no-api --target "$IQN" \
		--lun "0=s3://$BUCKET/san-$1-$2?size=1G&chunk_size=$1&$S3OPTS"
	out=$(/usr/bin/python3 tests/integration/scsi_tool.py sanitize "iscsi://127.0.0.1:$S3_PORT/$IQN/0")
	s3tgtd_stop 60
	[[ $out == "sanitize "* ]] || { say "sanitize $1: $out"; return 1; }
	echo "${out#sanitize }"
}

{
	echo "### SANITIZE OVERWRITE of a 1 GiB uncached s3 LUN vs raw PUTs ($(date -u +%F))"
	echo
	echo "Machine: $(machine). Ceph RGW 16.2 (memstore) on 127.0.0.1; $REPS runs, median;"
	echo "raw = curl --parallel at concurrency $CONC; sanitize = s3tgtd, max_inflight $CONC (default)."
	echo
	echo "| chunk | objects | raw PUTs (s) | SANITIZE (s) | sanitize / raw |"
	echo "|---|---|---|---|---|"
} >"$OUT"
IFS=, read -ra sizes <<<"$CHUNKS"
for c in "${sizes[@]}"; do
	raw=() san=()
	for ((r = 0; r < REPS; r++)); do
		say "chunk $c, run $((r + 1)): raw PUTs"
		raw+=("$(raw_put "$c" "$r")")
		say "chunk $c, run $((r + 1)): SANITIZE"
		san+=("$(sanitize_once "$c" "$r")")
	done
	rm=$(printf '%s\n' "${raw[@]}" | median)
	sm=$(printf '%s\n' "${san[@]}" | median)
	say "chunk $c: raw ${raw[*]} s, sanitize ${san[*]} s"
	printf '| %s | %d | %s (%s) | %s (%s) | %.2f |\n' "$c" $((1073741824 / $(bytes_of "$c"))) \
		"$rm" "${raw[*]}" "$sm" "${san[*]}" "$(awk -v a="$sm" -v b="$rm" 'BEGIN { print a / b }')" >>"$OUT"
done
cat "$OUT"
