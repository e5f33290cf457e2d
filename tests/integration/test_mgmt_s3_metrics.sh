#!/usr/bin/env bash
# test_mgmt_s3_metrics.sh - GET /metrics for a cached S3 LUN created through the
# API on a real Ceph RGW (tests/integration/rgw.sh): after qemu-io writes, a
# flush and reads, the S3 counters (requests by type and status, bytes, retries)
# and the cache counters (hits, misses, dirty bytes, uploads, evictions) are
# there with nonzero values where traffic happened, and the whole page is valid
# Prometheus text format 0.0.4 (one HELP and TYPE per family before its samples,
# escaped label values, numeric values), checked by a small parser.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mgmt_lib.sh"
need curl qemu-io

IQN=iqn.2026-11.io.s3tgt:s3-metrics
BUCKET=s3tgt-metrics
TMO=120

rgw_up "$BUCKET"
# a 2 MiB cache of 1 MiB chunks: reading 8 MiB must evict
URI="s3://$BUCKET/vol?size=16M&chunk_size=1M&endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1&cache_size=2M"

METRICS=$T_DIR/metrics.txt
scrape() { curl -s --max-time 10 --unix-socket "$SOCK" -o "$METRICS" http://localhost/metrics; }
# val 'NAME{labels}': the sample's value (labels after target and lun)
val() {
	awk -v k="$1" '$1 == k { print $2 }' "$METRICS"
}
L="target=\"$IQN\",lun=\"0\""
nonzero() { local v; v=$(val "$1"); [ -n "$v" ] && [ "$v" != 0 ]; }
present() { [ -n "$(val "$1")" ]; }

start_mgmt_daemon || die "s3tgtd did not start"
URL=$(lun_url $IQN 0)
check_api "create target" 201 POST /v1/targets "{\"name\":\"$IQN\"}"
check_api "create cached S3 LUN 0" 201 POST "/v1/targets/$IQN/luns" \
	"{\"lun\":0,\"uri\":\"$URI\"}"

# writes (flushed when qemu-io closes), then a read of 8 MiB through a 2 MiB cache
check "write 4 MiB and 4 KiB, read them back" \
	qio "$URL" "write -P 0x11 0 4M" "write -P 0x22 $((6 * 1048576)) 4096" \
	"read -P 0x11 0 4M" "read -P 0x22 $((6 * 1048576)) 4096"
check "read 8 MiB from a fresh session" qio "$URL" "read 0 8M" "read -P 0x11 0 4096"
check "GET /metrics" scrape

check "S3 PUTs counted (2xx)" nonzero "s3tgt_s3_requests_total{$L,type=\"PUT\",status=\"2xx\"}"
check "S3 GETs counted" eval 'nonzero "s3tgt_s3_requests_total{$L,type=\"GET\",status=\"2xx\"}" ||
	nonzero "s3tgt_s3_requests_total{$L,type=\"GET\",status=\"4xx\"}"'
check "S3 5xx class present" present "s3tgt_s3_requests_total{$L,type=\"DELETE\",status=\"5xx\"}"
check "S3 network-error class present" present "s3tgt_s3_requests_total{$L,type=\"PUT\",status=\"network\"}"
check "S3 bytes out >= 4 MiB" test "$(val "s3tgt_s3_bytes_total{$L,direction=\"out\"}")" -ge 4194304
check "S3 bytes in counted" present "s3tgt_s3_bytes_total{$L,direction=\"in\"}"
check "S3 retries present" present "s3tgt_s3_retries_total{$L}"
check "S3 in-flight gauge present" present "s3tgt_s3_requests_in_flight{$L}"
check "chunk in-flight gauge present" present "s3tgt_chunk_requests_in_flight{$L}"
check_eq "lease not lost" 0 "$(val "s3tgt_chunk_lease_lost{$L}")"
check "cache uploads counted" nonzero "s3tgt_cache_uploads_total{$L}"
check "cache hits counted" nonzero "s3tgt_cache_hits_total{$L}"
check "cache misses counted" nonzero "s3tgt_cache_misses_total{$L}"
check "cache evictions counted" nonzero "s3tgt_cache_evictions_total{$L}"
check_eq "no dirty bytes after the flush" 0 "$(val "s3tgt_cache_dirty_bytes{$L}")"
check_eq "TYPE of s3tgt_s3_requests_total" 1 \
	"$(grep -c '^# TYPE s3tgt_s3_requests_total counter$' "$METRICS")"
check_eq "TYPE of s3tgt_cache_dirty_bytes" 1 \
	"$(grep -c '^# TYPE s3tgt_cache_dirty_bytes gauge$' "$METRICS")"
check "HELP of s3tgt_cache_evictions_total" grep -q '^# HELP s3tgt_cache_evictions_total .' "$METRICS"

# The exposition format, checked line by line (text format 0.0.4): HELP/TYPE
# once per family and before its samples, samples grouped by family, label
# values quoted with only \\ \" \n escapes, values numeric.
prom_check() {
	/usr/bin/python3 - "$METRICS" <<'PY'
import re, sys
name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r'^(' + name_re + r')(\{' + label_re + r'(,' + label_re + r')*\})? (\S+)$')
typed, helped, seen_done, cur = {}, set(), set(), None
def family(n):
    for suf in ('_bucket', '_sum', '_count'):
        if n.endswith(suf) and typed.get(n[:-len(suf)]) == 'histogram':
            return n[:-len(suf)]
    return n
for i, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip('\n')
    m = re.match(r'^# (HELP|TYPE) (' + name_re + r') (.*)$', line)
    if m:
        kind, n, rest = m.groups()
        if kind == 'HELP':
            assert n not in helped, f'line {i}: second HELP for {n}'
            assert not re.search(r'\\[^\\n]', rest), f'line {i}: bad HELP escape'
            helped.add(n)
        else:
            assert n not in typed, f'line {i}: second TYPE for {n}'
            assert rest in ('counter', 'gauge', 'histogram', 'summary', 'untyped'), line
            typed[n] = rest
        continue
    m = sample.match(line)
    assert m, f'line {i}: not a sample: {line!r}'
    f = family(m.group(1))
    assert f in typed and f in helped, f'line {i}: {f} has no TYPE/HELP before it'
    if f != cur:
        assert f not in seen_done, f'line {i}: samples of {f} are not grouped'
        if cur:
            seen_done.add(cur)
        cur = f
    v = m.group(4)
    assert v in ('+Inf', '-Inf', 'NaN') or float(v) >= 0, line
print('ok', len(typed), 'families')
PY
}
check "the page is valid Prometheus text format" prom_check

check "daemon stops cleanly" stop_daemon
finish
