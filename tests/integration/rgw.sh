#!/usr/bin/env bash
# rgw.sh - the project's real S3 server for tests: Ceph RGW 16.2 (Debian
# radosgw) on a one-node cluster whose only OSD keeps objects in RAM
# (memstore), bound to free loopback ports, ready in about 2 seconds.
#
# usage:
#   rgw.sh start DIR          wipe DIR, start mon + osd + radosgw; print and
#                             write DIR/s3.env (S3_ENDPOINT S3_KEY S3_SECRET
#                             S3_REGION S3_PIDS)
#   rgw.sh stop DIR           stop exactly the PIDs recorded in DIR/s3.env
#   rgw.sh stop-rgw DIR       stop only radosgw (fault tests: S3 unreachable)
#   rgw.sh start-rgw DIR      start radosgw again on the same port
#   rgw.sh mkbucket DIR NAME  create a bucket (curl --aws-sigv4)
#
# Every daemon is started by this script and stopped by its recorded PID,
# never by name. Needs: scripts/install-deps.sh test (ceph-mon, ceph-osd,
# radosgw, ceph-common, uuid-runtime, curl).
set -euo pipefail
ACTION=${1:-}
DIR=${2:-}
KEY=${S3_KEY:-S3TGTTESTKEY00000000}
SECRET=${S3_SECRET:-S3TGTTESTSECRET0000000000000000000000000}
die() { echo "rgw.sh: $*" >&2; exit 1; }
[ -n "$ACTION" ] && [ -n "$DIR" ] || { sed -n '2,18p' "$0"; exit 2; }

# free_port: ask the kernel for an unused loopback port
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: poll until something answers HTTP on URL
wait_http() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		curl -s -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.1
	done
	return 1
}

pidfile_pids() {
	local f
	for f in "$DIR"/run/mon.a.pid "$DIR"/run/osd.0.pid "$DIR"/run/client.rgw.a.pid; do
		[ -f "$f" ] && cat "$f"
	done | tr '\n' ' ' | sed 's/ $//'
}

write_env() {
	{
		echo "S3_ENDPOINT=http://127.0.0.1:$(cat "$DIR/rgw.port")"
		echo "S3_KEY=$KEY"
		echo "S3_SECRET=$SECRET"
		echo "S3_REGION=us-east-1"
		echo "S3_PIDS=\"$(pidfile_pids)\""
	} >"$DIR/s3.env"
}

# stop_pids PID...: TERM, wait up to 15 s, then KILL (only these PIDs)
stop_pids() {
	local p i alive
	for p in "$@"; do kill "$p" 2>/dev/null || true; done
	for ((i = 0; i < 150; i++)); do
		alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
	for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
}

abort_start() {
	local f
	for f in "$DIR"/run/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	die "RGW start failed, logs in $DIR/log"
}

start_rgw_daemon() {
	export CEPH_CONF=$DIR/ceph.conf
	rm -f "$DIR/run/client.rgw.a.pid"
	timeout 120 radosgw -n client.rgw.a # daemonizes once connected to the mon
	wait_http "http://127.0.0.1:$(cat "$DIR/rgw.port")/" 60
}

do_start() {
	command -v radosgw >/dev/null || die "radosgw not installed: scripts/install-deps.sh test"
	if [ -f "$DIR/s3.env" ]; then
		local p
		for p in $(sed -n 's/^S3_PIDS="\(.*\)"/\1/p' "$DIR/s3.env"); do
			kill -0 "$p" 2>/dev/null && die "$DIR has a running server (pid $p): stop it first"
		done
	fi
	rm -rf "$DIR"
	mkdir -p "$DIR"/{mon,osd0,run,log,rgw}
	local monport rgwport
	monport=$(free_port)
	rgwport=$(free_port)
	echo "$rgwport" >"$DIR/rgw.port"
	trap abort_start ERR
	export CEPH_CONF=$DIR/ceph.conf
	# Single node, no cephx (loopback only), pool size 1, everything under DIR.
	cat >"$CEPH_CONF" <<CONF
[global]
fsid = $(uuidgen)
mon host = v2:127.0.0.1:$monport
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
keyring = /dev/null
[mon.a]
mon data = $DIR/mon
public addrv = [v2:127.0.0.1:$monport]
# radosgw-admin creates its pools one map change at a time; proposing at
# once instead of batching for 1 s turns ~9 s of setup into ~1 s.
paxos propose interval = 0.01
paxos min wait = 0.001
[osd.0]
osd data = $DIR/osd0
osd objectstore = memstore
memstore device bytes = 8589934592
osd class load list = *
osd class default list = *
[client.rgw.a]
# Without TCP_NODELAY small GETs stall on Nagle + delayed ACK.
rgw frontends = beast endpoint=127.0.0.1:$rgwport tcp_nodelay=1
rgw data = $DIR/rgw
# radosgw asks for a cephx-secured mon session by default; we run without auth.
ms mon client mode = crc
rgw dns name = localhost
CONF
	ceph-mon --id a --mkfs --keyring /dev/null
	ceph-mon --id a
	ceph osd create >/dev/null
	ceph osd crush add osd.0 1 root=default >/dev/null 2>&1
	ceph-osd --id 0 --mkfs 2>>"$DIR/log/mkfs.log"
	ceph-osd --id 0 2>>"$DIR/log/osd-start.log"
	timeout 120 radosgw-admin user create --uid test --display-name test \
		--access-key "$KEY" --secret-key "$SECRET" >/dev/null
	start_rgw_daemon || abort_start
	trap - ERR
	write_env
	cat "$DIR/s3.env"
}

do_stop() {
	[ -f "$DIR/s3.env" ] || die "no $DIR/s3.env"
	# shellcheck disable=SC2046
	stop_pids $(sed -n 's/^S3_PIDS="\(.*\)"/\1/p' "$DIR/s3.env")
}

do_stop_rgw() {
	[ -f "$DIR/run/client.rgw.a.pid" ] || die "radosgw not running under $DIR"
	stop_pids "$(cat "$DIR/run/client.rgw.a.pid")"
	rm -f "$DIR/run/client.rgw.a.pid"
	write_env
}

do_mkbucket() {
	local name=${1:-}
	[ -n "$name" ] || die "usage: rgw.sh mkbucket DIR NAME"
	# shellcheck disable=SC1091
	. "$DIR/s3.env"
	# curl 7.88 signs no x-amz-content-sha256, which RGW requires: send the
	# empty-body hash ourselves (curl then includes it in the signature).
	curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_KEY:$S3_SECRET" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"$S3_ENDPOINT/$name" >/dev/null || die "cannot create bucket $name"
}

case $ACTION in
start) do_start ;;
stop) do_stop ;;
stop-rgw) do_stop_rgw ;;
start-rgw) start_rgw_daemon && write_env ;;
mkbucket) do_mkbucket "${3:-}" ;;
*) die "unknown action $ACTION" ;;
esac
