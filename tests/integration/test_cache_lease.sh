#!/usr/bin/env bash
# test_cache_lease.sh - one writer per volume (issue 5) on a real Ceph RGW:
#   1. a second daemon opening a volume that another daemon serves is refused
#      with a clear error (cached or not);
#   2. after kill -9, a daemon restarted with the same cache_dir takes its own
#      lease back; a clean stop releases the lease for anyone;
#   3. a stale lease of another (crashed) holder is refused, and taken over only
#      with break_lease=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need iscsi-inq curl

IQN=iqn.2026-11.io.s3tgt:cache-lease
BUCKET=s3tgt-cache-lease

rgw_up "$BUCKET"
BASE="s3://$BUCKET/lease?size=16M&chunk_size=1M&endpoint=$S3_ENDPOINT&region=us-east-1&path_style=1"
A="0=$BASE&cache_size=8M&cache_dir=$T_DIR/cacheA"
B="0=$BASE&cache_size=8M&cache_dir=$T_DIR/cacheB"

serve() { # LUN-ARG: start a daemon serving it; sets DAEMON_*
	start_daemon --target "$IQN" --state-dir "$T_DIR/state" --lun "$1" &&
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
finish
