#!/usr/bin/env bash
# test_s3_client.sh - the S3 client against a real Ceph RGW started by
# rgw.sh on free loopback ports: runs the test_s3_rgw binary (PUT/GET/range/
# metadata/DELETE/paged list/If-None-Match/wrong secret/missing bucket/
# 200 requests in flight/retry across an RGW restart). No RGW = FAIL.
set -euo pipefail
: "${S3TGT_BUILD:?set by ctest}" "${S3TGT_SRC:?set by ctest}"
here=$(cd "$(dirname "$0")" && pwd)
bin=$S3TGT_BUILD/test_s3_rgw
[ -x "$bin" ] || { echo "FAIL: $bin not built" >&2; exit 1; }
top=$(mktemp -d /tmp/s3tgt-s3client.XXXXXX)
rgw=$top/rgw
cleanup() {
	[ -f "$rgw/s3.env" ] && bash "$here/rgw.sh" stop "$rgw" 2>/dev/null
	rm -rf "$top"
}
trap cleanup EXIT
bash "$here/rgw.sh" start "$rgw" >/dev/null || { echo "FAIL: RGW did not start" >&2; exit 1; }
RGW_DIR=$rgw AWS_EC2_METADATA_DISABLED=true "$bin"
echo "PASS: S3 client against RGW"
