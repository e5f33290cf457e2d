#!/usr/bin/env bash
# fuzz-smoke.sh BUILD_DIR [SECONDS] - run every libFuzzer harness of a clang
# fuzz build for a few seconds, starting from its seed corpus (copied, so the
# committed corpus only grows by hand). A crash, leak or sanitizer report fails.
# Harnesses run side by side, one per CPU (each is single-threaded).
set -euo pipefail
build=$1
secs=${2:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs_max=$(nproc)

# run_one NAME: one harness; its status file says ok or FAILED
run_one() {
	local name=$1 h=$build/$1 corpus=$src/fuzz/corpus/${1#fuzz_}
	mkdir -p "$work/$name"
	cp -r "$corpus"/. "$work/$name"/ 2>/dev/null || true
	if "$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
		-artifact_prefix="$work/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
		echo ok >"$work/$name.status"
	else
		echo FAILED >"$work/$name.status"
	fi
}

names=()
for h in "$build"/fuzz_*; do
	[ -x "$h" ] || continue
	names+=("$(basename "$h")")
done
[ "${#names[@]}" -gt 0 ] || { echo "fuzz-smoke: no harness in $build"; exit 1; }
running=0
for name in "${names[@]}"; do
	if [ "$running" -ge "$jobs_max" ]; then
		wait -n
		running=$((running - 1))
	fi
	echo "fuzz-smoke: $name for ${secs}s"
	run_one "$name" &
	running=$((running + 1))
done
wait
failed=0
for name in "${names[@]}"; do
	if [ "$(cat "$work/$name.status" 2>/dev/null)" != ok ]; then
		tail -n 40 "$work/$name.log"
		echo "fuzz-smoke: $name FAILED"
		failed=1
	else
		echo "fuzz-smoke: $name: $(grep -E '^(#[0-9]+\s+DONE|Done [0-9]+ runs)' "$work/$name.log" | tail -n 1)"
	fi
done
[ "$failed" = 0 ] || exit 1
echo "fuzz-smoke: ${#names[@]} harnesses ran clean"
