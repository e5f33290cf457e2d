#!/usr/bin/env bash
# fuzz-smoke.sh BUILD_DIR [SECONDS] - run every libFuzzer harness of a clang
# fuzz build for a few seconds, starting from its seed corpus (copied, so the
# committed corpus only grows by hand). A crash, leak or sanitizer report fails.
set -euo pipefail
build=$1
secs=${2:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
for h in "$build"/fuzz_*; do
	[ -x "$h" ] || continue
	name=$(basename "$h")
	corpus=$src/fuzz/corpus/${name#fuzz_}
	mkdir -p "$work/$name"
	cp -r "$corpus"/. "$work/$name"/ 2>/dev/null || true
	echo "fuzz-smoke: $name for ${secs}s"
	if ! "$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
		-artifact_prefix="$work/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
		tail -n 40 "$work/$name.log"
		echo "fuzz-smoke: $name FAILED"
		exit 1
	fi
	grep -E '^(#[0-9]+\s+DONE|Done [0-9]+ runs)' "$work/$name.log" | tail -n 1 || true
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "fuzz-smoke: no harness in $build"; exit 1; }
echo "fuzz-smoke: $n harnesses ran clean"
