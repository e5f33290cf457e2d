#!/usr/bin/env bash
# test_cache_lease.sh - one writer per volume (issue 5) on a real Ceph RGW:
#   1. a second daemon opening a volume that another daemon serves is refused
#      with a clear error (cached or not);
#   2. after kill -9, a daemon restarted with the same cache_dir takes its own
#      lease back; a clean stop releases the lease for anyone;
#   3. a stale lease of another (crashed) holder is refused, and taken over only
#      with break_lease=1;
#   4. fencing: when a second daemon breaks the lease of one that still runs,
#      the first finds out at its next renewal (lease_renew_ms) and stops
#      writing: WRITEs get DATA PROTECT / WRITE PROTECTED (qemu reports it as
#      "Permission denied"), reads still work, its unflushed data is not
#      uploaded over the new holder's volume, its shutdown flush fails at once
#      (not after flush_timeout), and it leaves the new holder's lease alone;
#      restarted with its cache_dir, it refuses to upload that data over the
#      new holder's writes until the cache_dir is moved away.
#   5. a daemon paused past its renewal period does not upload its held-back
#      writes before a renewal confirms the lease (it was broken meanwhile).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need iscsi-inq curl

IQN=iqn.2026-11.io.s3tgt:cache-lease
BUCKET=s3tgt-cache-lease

rgw_up "$BUCKET"
BASE="s3://$BUCKET/lease?size=16M&chunk_size=1M&endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
A="0=$BASE&cache_size=8M&cache_dir=$T_DIR/cacheA"
B="0=$BASE&cache_size=8M&cache_dir=$T_DIR/cacheB"

serve() { # LUN-ARG [DAEMON-ARGS...]: start a daemon serving it; sets DAEMON_*
	local lun=$1
	shift
	start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "$lun" "$@" &&
		inq_ok "$(lun_url $IQN 0)"
}
refused() { # LUN-ARG: a daemon for it must not start, and must say why
	local saved=$DAEMON_PID savedlog=$DAEMON_LOG savedport=$DAEMON_PORT rc=0
	if start_daemon --target "$IQN" --state-dir "$T_DIR/state2" --lun "$1"; then
		stop_daemon || true
		rc=1
	elif ! grep -q "in use by another daemon" "$DAEMON_LOG"; then
		log "refusal does not say the volume is in use"
		rc=1
	fi
	DAEMON_PID=$saved DAEMON_LOG=$savedlog DAEMON_PORT=$savedport
	return $rc
}
kill9() {
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=""
}

check "daemon A serves the volume" serve "$A"
check "daemon B (other cache_dir) is refused while A serves" refused "$B"
check "daemon without cache is refused while A serves" refused "0=$BASE"
kill9
check "A restarted after kill -9 with the same cache_dir takes its lease back" serve "$A"
check "the log says so" grep -q "taking back our own lease" "$DAEMON_LOG"
check "A stops cleanly (releases the lease)" stop_daemon
check "B serves the volume after A released it" serve "$B"
kill9
check "A is refused while crashed B's lease is stale" refused "$A"
check "A with break_lease=1 takes the volume over" serve "$A&break_lease=1"
check "the takeover is logged" grep -q "breaking the lease" "$DAEMON_LOG"
check "A stops cleanly" stop_daemon

# 4. fencing, through iSCSI
SOCK=$T_DIR/a.sock
check "A serves the volume, renewing its lease every 200 ms" serve "$A&lease_renew_ms=200&writeback_age=600000" \
	--api-socket "$SOCK"
lun_fenced() { # EXPECTED (true|false): the API, the CLI and the metric agree
	local json metric
	json=$("$S3TGT_BUILD/s3tgt" --socket "$SOCK" --json lun list) || return 1
	metric=$(curl -s --max-time 10 --unix-socket "$SOCK" http://localhost/metrics |
		awk '$1 ~ /^s3tgt_chunk_lease_lost\{/ { print $2 }')
	/usr/bin/python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)[0]["fenced"] != (sys.argv[1] == "true"))' \
		"$1" <<<"$json" || return 1
	if [ "$1" = true ]; then
		[ "$metric" = 1 ] && "$S3TGT_BUILD/s3tgt" --socket "$SOCK" lun list | grep -qE " cache +fenced "
	else
		[ "$metric" = 0 ] && "$S3TGT_BUILD/s3tgt" --socket "$SOCK" lun list | grep -qE " cache +ok "
	fi
}
check "A's LUN is not fenced (API, CLI, metric)" lun_fenced false
A_URL=$(lun_url $IQN 0)
check "A writes 1 MiB and flushes it" qio "$A_URL" "write -P 0x5a 0 1M" "flush"
# part of a chunk: it stays dirty in the cache (writeback_age 10 min); qemu's
# cache=unsafe sends no flush, not even when it closes the image
unflushed() { local QIO_OPTS=(-t unsafe); qio "$@"; }
check "A writes 64 KiB more, not flushed" unflushed "$A_URL" "write -P 0x6b 2M 64k"
A_PID=$DAEMON_PID A_LOG=$DAEMON_LOG A_PORT=$DAEMON_PORT
check "daemon B breaks A's lease while A still runs" \
	start_daemon --target "$IQN" --state-dir "$T_DIR/state3" --lun "0=$BASE&break_lease=1"
B_PID=$DAEMON_PID B_LOG=$DAEMON_LOG B_URL=$(lun_url $IQN 0)
DAEMON_PID=$A_PID DAEMON_LOG=$A_LOG DAEMON_PORT=$A_PORT
fenced() { grep -q "the volume lease was taken over (now holder" "$A_LOG"; }
check "A's next renewal finds the lease taken over" wait_for 60 "A's fence in its log" fenced
check "A's LUN reads as fenced (API, CLI, metric)" lun_fenced true
resize_refused() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" \
		-X PUT -d '{"size":"32M"}' "http://localhost/v1/targets/$IQN/luns/0")
	[ "$code" = 409 ]
}
check "A refuses to grow the volume it lost (409)" resize_refused
write_refused() { # URL: a WRITE fails with DATA PROTECT (qemu: EACCES)
	local out
	out=$(timeout 60 qemu-io -f raw -c "write -P 0x33 0 64k" "$1" 2>&1) && return 1
	grep -q "Permission denied" <<<"$out" || { echo "$out" >&2; return 1; }
}
check "A refuses a WRITE with WRITE PROTECTED" write_refused "$A_URL"
check "A still reads its flushed data" qio "$A_URL" "read -P 0x5a 0 1M"
check "A still reads its unflushed data from its cache" qio "$A_URL" "read -P 0x6b 2M 64k"
check "B reads A's flushed data" qio "$B_URL" "read -P 0x5a 0 1M"
check "B writes and flushes" qio "$B_URL" "write -P 0x77 4M 1M" "flush"
a_stop() { # A's shutdown flush cannot store its dirty chunk: exit 1, well before flush_timeout
	local t0=$SECONDS
	stop_daemon 30 && return 1
	[ "$STOP_RC" -eq 1 ] && [ $((SECONDS - t0)) -lt 30 ] &&
		grep -q "1 dirty chunks are not uploaded and stay in .*cacheA" "$A_LOG"
}
check "A's shutdown reports its unstored data and exits 1 at once" a_stop
check "A did not upload its unflushed data over B's volume" qio "$B_URL" "read -P 0 2M 64k" "read -P 0x77 4M 1M"
DAEMON_PID=$B_PID DAEMON_LOG=$B_LOG
check "B stops cleanly" stop_daemon
released_own() { ! grep -q "the lease changed since this daemon last wrote it" "$B_LOG"; }
check "B released its own lease (A left it alone)" released_own
# A's cache_dir still holds the write that never reached the volume; B wrote the
# volume since, so uploading it now would overwrite B's data
diverged() { # a start of A with cacheA fails and says why
	if start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "$A"; then
		stop_daemon || true
		return 1
	fi
	grep -q "cacheA: 1 chunks of acknowledged writes never reached the volume.*start again" "$DAEMON_LOG"
}
check "A restarted with its cache_dir is refused: B wrote the volume since" diverged
check "refused again, although A's refused start released the lease as its own" diverged
mv "$T_DIR/cacheA" "$T_DIR/cacheA.kept"
check "A with cache_dir moved away serves the volume" serve "$A"
check "A reads the volume as B left it" qio "$(lun_url $IQN 0)" "read -P 0x5a 0 1M" \
	"read -P 0 2M 64k" "read -P 0x77 4M 1M"
check "A stops cleanly" stop_daemon

# 5. a paused daemon: A holds an unflushed write (uploaded by age, after 2.5 s) and is
#    stopped (SIGSTOP, as a frozen VM); meanwhile B breaks the lease and writes
#    the same blocks. When A runs again its upload is due at once, but a chunk
#    write waits for a confirmed lease: the renewal finds the lease taken, and
#    A's old data never lands over B's.
D="0=$BASE&cache_size=8M&cache_dir=$T_DIR/cacheD&lease_renew_ms=500&writeback_age=2500"
check "A serves the volume (renewal every 500 ms, writeback after 2.5 s)" serve "$D"
check "A writes 64 KiB, not flushed" unflushed "$(lun_url $IQN 0)" "write -P 0x6c 6M 64k"
A_PID=$DAEMON_PID A_LOG=$DAEMON_LOG
kill -STOP "$A_PID"
log "daemon A (PID $A_PID) stopped"
sleep 2
check "daemon B breaks the paused A's lease" \
	start_daemon --target "$IQN" --state-dir "$T_DIR/state5" --lun "0=$BASE&break_lease=1"
B_PID=$DAEMON_PID B_LOG=$DAEMON_LOG B_URL=$(lun_url $IQN 0)
check "B writes the same blocks and flushes" qio "$B_URL" "write -P 0x7d 6M 64k" "flush"
kill -CONT "$A_PID"
log "daemon A (PID $A_PID) continued"
A_LOG_FENCED() { grep -q "the volume lease was taken over (now holder" "$A_LOG"; }
check "A finds its lease taken over" wait_for 60 "A's fence in its log" A_LOG_FENCED
sleep 2 # A's overdue upload had time to go, were it not held for the lease
check "A's held-back write did not land over B's" qio "$B_URL" "read -P 0x7d 6M 64k"
check "B stops cleanly" stop_daemon
DAEMON_PID=$A_PID DAEMON_LOG=$A_LOG
a_stop_fenced() { stop_daemon && return 1; [ "$STOP_RC" -eq 1 ]; }
check "A's shutdown flush fails (its write is not stored), exit 1" a_stop_fenced
finish
