#!/usr/bin/env bash
# meshgate end-to-end test: real TCP and ICMP, IPv4 and IPv6, between two
# network namespaces joined only through the daemon (net_af_packet ports
# on veth pairs, wire mode), with a copy of the demo's identities,
# endpoints and policies (conf/examples/demo/):
#   frontend 10.99.0.1 and database replica 10.99.0.5 (inside) -- meshgate
#   -- backend 10.99.0.2, database 10.99.0.3, monitoring 10.99.0.4
#   (outside); backend accepts frontend on TCP 8080 only and may open
#   connections only to the database on TCP 5432 (its answers pass by
#   connection tracking), database accepts backend on TCP 5432 only.
# The last checks reload the policy with SIGHUP while a connection is open:
# a broken policy changes nothing, one without the frontend's allow drops
# the open connection's next packet from the client (its replies still
# pass). They edit the copy in a scratch folder, never the repository.
#
# Usage: netns_test.sh [MESHGATE_BINARY [MESHGATECTL_BINARY]]
#   (root; default build/app/meshgate/meshgate, and meshgatectl beside it:
#   MESHGATE_BINARY's ../meshgatectl/meshgatectl)
# MG_E2E_WORKERS=2 runs the same checks with two forwarding lcores and two
# queue pairs per port (the kernel's symmetric flow hash spreads the flows,
# and both directions of each flow must meet the same worker's conntrack
# table); its check names start with "e2e-2w/".
# MG_E2E_SOURCE=redis runs the same checks with the identities and
# endpoints ONLY in Redis: the test starts its own redis-server (a unix
# socket in the scratch folder, no persistence, stopped on exit), imports
# the demo's CiliumIdentity and CiliumEndpoint manifests with `meshgatectl
# kv import`, and the daemon's config has a kvstore section instead of
# identities/ipcache files. More checks then change Redis while traffic
# runs (kv put-ip, del-ip, del-identity, put-identity) and wait, bounded,
# until new connections follow; the SIGHUP checks also show that synced
# entries survive a reload. Its check names start with "e2e-redis/"
# ("e2e-redis-2w/" with two workers). Without redis-server: all SKIP.
# Prints PASS/FAIL/SKIP lines "e2e/<check>"; exits 1 if a check failed. If
# this machine cannot create namespaces, every check is a SKIP and it
# exits 0. Namespaces, links and processes are removed on exit, whatever
# happens. Traffic only ever goes to addresses inside those namespaces.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

MESHGATE=${1:-${MESHGATE:-$ROOT/build/app/meshgate/meshgate}}
DEMO=$ROOT/conf/examples/demo

PEER=$HERE/tcp_peer.py
PY=/usr/bin/python3

CHECKS=(daemon_ready daemon_workers tcp4_allowed tcp4_denied_with_listener tcp4_denied_not_refused
	icmp4_denied icmp4_allowed tcp6_allowed tcp6_denied icmp6_allowed
	tcp4_exchange_both_ways tcp6_exchange_both_ways tcp4_server_to_client_denied
	tcp4_monitoring_to_client_allowed icmp4_backend_to_frontend_denied
	tcp4_backend_to_database_allowed
	reload_connection_open reload_bad_policy_logged reload_bad_policy_keeps_state
	reload_done reload_replies_still_pass reload_client_packet_dropped
	daemon_clean_exit stats_allowed stats_denied_ingress stats_denied_egress stats_arp_nd
	stats_no_malformed stats_conntrack stats_reloads)
# Only with MG_E2E_SOURCE=redis.
KV_CHECKS=(kv_redis_up kv_import kv_synced_log
	kv_put_ip_denies kv_put_ip_other_family_untouched kv_put_ip_back_allows kv_put_ip_restored_exact
	kv_del_ip_denies kv_del_ip_back_allows kv_del_identity_denies kv_put_identity_allows
	kv_sync_status kv_metrics
	kv_config_deleted_stale kv_config_deleted_still_denied kv_config_deleted_still_allowed
	kv_flushall_stale kv_flushall_still_denied kv_flushall_still_allowed
	kv_flushall_status_says_stale kv_flushall_stale_metric kv_data_back_synced
	kv_data_back_allowed kv_data_back_denied stats_kvstore)

WORKERS=${MG_E2E_WORKERS:-1}
case $WORKERS in
1)
	T=e2e
	LCORES='"-l", "0-1"' # one worker; the main lcore does the control work
	;;
2)
	T=e2e-2w
	LCORES='"--lcores", "0@0,1@1,2@0"' # two workers on this 2-core machine
	;;
*)
	echo "FAIL: e2e: MG_E2E_WORKERS must be 1 or 2"
	exit 1
	;;
esac
SOURCE=${MG_E2E_SOURCE:-files}
case $SOURCE in
files) ;;
redis)
	T=${T/e2e/e2e-redis}
	CHECKS+=("${KV_CHECKS[@]}")
	MESHGATECTL=${2:-${MESHGATECTL:-$(dirname "$MESHGATE")/../meshgatectl/meshgatectl}}
	;;
*)
	echo "FAIL: e2e: MG_E2E_SOURCE must be files or redis"
	exit 1
	;;
esac

failed=0
pass() { echo "PASS: $T/$1"; }
fail() {
	echo "FAIL: $T/$1: $2"
	failed=$((failed + 1))
}
# expect NAME WANTED GOT: one result line.
expect() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected $2, got $3"; fi
}

if [ "$SOURCE" = redis ] && ! command -v redis-server >/dev/null 2>&1; then
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: redis-server is not installed"; done
	exit 0
fi
if ! reason=$(mg_can_netns); then
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $reason"; done
	exit 0
fi
if [ ! -x "$MESHGATE" ]; then
	fail daemon_ready "no daemon at $MESHGATE (build it first)"
	exit 1
fi
if [ "$SOURCE" = redis ] && [ ! -x "$MESHGATECTL" ]; then
	fail kv_import "no meshgatectl at $MESHGATECTL (build it first)"
	exit 1
fi

MG_NS_FRONT="mgt-$$-front"
MG_NS_BACK="mgt-$$-back"
MG_IF_IN="mgt$$i"
MG_IF_OUT="mgt$$o"
MG_WORK=$(mktemp -d /tmp/meshgate-e2e.XXXXXX)
PREFIX="mgt$$e"
REDIS_PID=""
on_exit() {
	mg_cleanup
	if [ -n "$REDIS_PID" ]; then
		kill "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
	fi
	rm -rf "/var/run/dpdk/$PREFIX"
	rm -rf "$MG_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

if ! mg_topology_up; then
	fail daemon_ready "could not build the namespaces and veth pairs"
	exit 1
fi

# The config and its inputs, copied: the reload checks rewrite a policy.
CONF_DIR=$MG_WORK/conf
mkdir -p "$CONF_DIR/policies"
cp "$DEMO/identities.yaml" "$DEMO/endpoints.yaml" "$CONF_DIR/"
cp "$DEMO"/policies/*.yaml "$CONF_DIR/policies/"

if [ "$SOURCE" = redis ]; then
	if mg_redis_start; then
		pass kv_redis_up
	else
		fail kv_redis_up "redis-server did not answer on $REDIS_SOCK within 10 s"
		tail -n 20 "$MG_WORK/redis/redis.log" 2>/dev/null | sed 's/^/  | /'
		exit 1
	fi
	# The same manifests the static run loads, as cluster-a (id 1).
	# rcli ARGS...: redis-cli on the private server.
	rcli() { redis-cli -s "$REDIS_SOCK" --raw "$@"; }
	# kvctl SUBCOMMAND ARGS...: meshgatectl kv on the private server.
	kvctl() {
		local sub=$1
		shift
		"$MESHGATECTL" kv "$sub" --redis "$REDIS_URL" --cluster cluster-a \
			--functions "$ROOT/conf/redis/meshgate.lua" "$@" </dev/null
	}
	if out=$(kvctl import --cluster-id 1 "$CONF_DIR/identities.yaml" \
		"$CONF_DIR/endpoints.yaml" 2>&1) &&
		[[ $out == *"4 identities (4 written, 0 unchanged), 10 ips (10 written, 0 unchanged)"* ]]; then
		pass kv_import
	else
		fail kv_import "meshgatectl kv import: $out"
		exit 1
	fi
	# Redis is now the only source: the daemon must not see the files
	# (kept outside its folder for the import after the flush below).
	mv "$CONF_DIR/identities.yaml" "$CONF_DIR/endpoints.yaml" "$MG_WORK/"
	STATE_CONF="kvstore:
  redis: \"$REDIS_URL\"
  clusters: [cluster-a]
  sync_timeout: 5
  block_ms: 5"
else
	STATE_CONF="identities:
  files: [\"$CONF_DIR/identities.yaml\"]
ipcache:
  files: [\"$CONF_DIR/endpoints.yaml\"]"
fi

cat >"$CONF_DIR/meshgate.yaml" <<CONF
version: 1
eal: [$LCORES, "--no-huge", "-m", "512", "--no-pci", "--no-telemetry",
      "--file-prefix", "$PREFIX",
      "--vdev=net_af_packet0,iface=$MG_IF_IN,qpairs=$WORKERS",
      "--vdev=net_af_packet1,iface=$MG_IF_OUT,qpairs=$WORKERS"]
datapath:
  mode: wire
  ports:
    - {name: inside, device: net_af_packet0, peer: outside}
    - {name: outside, device: net_af_packet1, peer: inside}
  non_ip: forward
cluster: {name: cluster-a, id: 1}
policy:
  enforcement: default
  default_local_cluster: true
  sources:
    - {cluster: cluster-a, path: "$CONF_DIR/policies/"}
control:
  socket: "$MG_WORK/meshgate.sock"
metrics:
  listen: 127.0.0.1:0
$STATE_CONF
CONF

if ! mg_daemon_start "$MESHGATE" "$CONF_DIR/meshgate.yaml"; then
	fail daemon_ready "the daemon did not become ready"
	sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 30
	exit 1
fi
pass daemon_ready
if grep -q "ready: 2 ports, $WORKERS forwarding lcore" "$MG_WORK/meshgate.err"; then
	pass daemon_workers
else
	fail daemon_workers "the daemon does not say it forwards on $WORKERS lcore(s)"
fi
if [ "$SOURCE" = redis ]; then
	# 4 identities and 10 host routes, all from Redis, before any port started.
	if grep -q "kvstore: cluster cluster-a (id 1, local) synced: 14 entries" "$MG_WORK/meshgate.err"; then
		pass kv_synced_log
	else
		fail kv_synced_log "no 'cluster cluster-a (id 1, local) synced: 14 entries' line"
		sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 10
	fi
fi

F=$MG_NS_FRONT
B=$MG_NS_BACK
expect tcp4_allowed delivered "$(mg_tcp "$F" "$B" 10.99.0.2 8080)"
expect tcp4_denied_with_listener blocked "$(mg_tcp "$F" "$B" 10.99.0.3 5432)"
expect tcp4_denied_not_refused blocked "$(mg_tcp "$F" "$B" 10.99.0.2 9090 nolisten)"
expect icmp4_denied blocked "$(mg_ping "$F" 10.99.0.2)"
expect icmp4_allowed replied "$(mg_ping "$B" 10.99.0.1 10.99.0.4)"
expect tcp6_allowed delivered "$(mg_tcp "$F" "$B" fd00:99::2 8080)"
expect tcp6_denied blocked "$(mg_tcp "$F" "$B" fd00:99::3 5432)"
expect icmp6_allowed replied "$(mg_ping "$B" fd00:99::1 fd00:99::4)"

# peer NS ARGS...: tcp_peer.py in namespace NS, in the background, stdin
# and stdout as redirected by the caller; its pid in $peer_pid. (Without
# the explicit <&0 a background command's stdin would be /dev/null.)
peer() {
	local ns=$1
	shift
	ip netns exec "$ns" "$PY" "$PEER" "$@" <&0 &
	peer_pid=$!
	MG_BG_PIDS+=("$peer_pid")
}

# connect_word NAME CLIENT_NS SERVER_NS ADDR PORT SOURCE [SECS]: a listener
# in SERVER_NS, a connection attempt from SOURCE in CLIENT_NS (SECS, default
# 5, to come up).
# Prints the client's word: connected, timeout (dropped), refused, ...
connect_word() {
	local name=$1 cns=$2 sns=$3 addr=$4 port=$5 src=$6
	local srv=$MG_WORK/$name.srv word spid
	peer "$sns" listen "$addr" "$port" --echo 0 --timeout 15 </dev/null >"$srv"
	spid=$peer_pid
	if ! mg_wait_grep "$srv" '^listening' 10; then
		echo "no-listener"
		return
	fi
	word=$(ip netns exec "$cns" "$PY" "$PEER" connect "$addr" "$port" --bind "$src" \
		--timeout "${7:-5}" </dev/null)
	word=${word%%$'\n'*}
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	if [ "$word" = timeout ] && grep -q '^connected' "$srv"; then
		word="timeout-but-accepted"
	fi
	echo "${word:-nothing}"
}

# The server (backend, egress restricted) answers the client it accepts:
# a line each way, 200000 bytes back, both close.
expect tcp4_exchange_both_ways exchanged "$(mg_exchange "$F" "$B" 10.99.0.2 8080)"
expect tcp6_exchange_both_ways exchanged "$(mg_exchange "$F" "$B" fd00:99::2 8080)"
# The server cannot open a connection to the client (backend's egress),
# a pod whose egress is open can (the frontend's ingress is open).
expect tcp4_server_to_client_denied timeout \
	"$(connect_word server_to_client "$B" "$F" 10.99.0.1 7070 10.99.0.2)"
expect tcp4_monitoring_to_client_allowed connected \
	"$(connect_word monitoring_to_client "$B" "$F" 10.99.0.1 7071 10.99.0.4)"
expect icmp4_backend_to_frontend_denied blocked "$(mg_ping "$B" 10.99.0.1 10.99.0.2)"
# What the backend's egress allows: the database (the replica on the other side).
expect tcp4_backend_to_database_allowed exchanged \
	"$(mg_exchange "$B" "$F" 10.99.0.5 5432 10.99.0.2)"
# No fragments here: net_af_packet joins a fanout group with the kernel's
# defragmentation flag, so the gateway would see whole datagrams larger
# than its frames. The pcap tests cover fragments.

# ---- live changes in Redis (MG_E2E_SOURCE=redis)

# poll_word NAME WANT ADDR SOURCE: new connections frontend -> backend:8080
# from SOURCE, each given 1 s to come up, until one ends as WANT
# (connected or timeout); at most KV_WAIT seconds. The change travels
# Redis's log, the daemon's 10 ms poll and an ipcache commit or policy
# update: milliseconds, so the first or second attempt normally shows it.
# Prints the last word (and how many attempts) so a failure says what it saw.
KV_WAIT=${MG_E2E_KV_WAIT:-20}
poll_word() {
	local name=$1 want=$2 addr=$3 src=$4 word n=0 end=$((SECONDS + KV_WAIT))
	while :; do
		n=$((n + 1))
		word=$(connect_word "$name" "$F" "$B" "$addr" 8080 "$src" 1)
		if [ "$word" = "$want" ] || [ $SECONDS -ge $end ]; then
			break
		fi
		sleep 0.1
	done
	echo "$word after $n attempt(s)"
}
# kv_quiet: wait (at most 5 s) until no TCP connection in the namespaces is
# half-closed. A change that denies the frontend must not meet the last
# ACK of the connection the previous check closed: that ACK would be
# dropped by the new verdict, the server's FIN retransmitted into a flow
# the gateway no longer tracks (ct_tcp_not_syn), and stats_no_malformed
# would count a drop the test itself caused.
kv_quiet() {
	local i ns busy
	for ((i = 0; i < 50; i++)); do
		busy=0
		for ns in "$F" "$B"; do
			if ip netns exec "$ns" ss -Htan state syn-sent state syn-recv state fin-wait-1 \
				state fin-wait-2 state close-wait state last-ack state closing |
				grep -q .; then
				busy=1
			fi
		done
		[ $busy = 0 ] && return 0
		sleep 0.1
	done
	echo "  (connections still closing after 5 s)"
}
# kv_step NAME WANT ADDR SOURCE CMD...: run a meshgatectl kv command, then
# poll until new connections end as WANT.
kv_step() {
	local name=$1 want=$2 addr=$3 src=$4 out got
	shift 4
	kv_quiet
	if ! out=$(kvctl "$@" 2>&1); then
		fail "$name" "meshgatectl kv $*: $out"
		return
	fi
	got=$(poll_word "$name" "$want" "$addr" "$src")
	if [ "${got%% *}" = "$want" ]; then
		pass "$name"
		echo "  $name: $got (kv $1: $out)"
	else
		fail "$name" "expected $want within $KV_WAIT s, got $got (kv $1: $out)"
	fi
}

if [ "$SOURCE" = redis ]; then
	FRONT_KEY=cilium/cache/ip/v1/cluster-a/10.99.0.1
	FRONT_ID_KEY=cilium/cache/identities/v1/cluster-a/id/65800
	front_entry=$(rcli GET "$FRONT_KEY")
	front_labels=$(rcli GET "$FRONT_ID_KEY")
	# The frontend's IPv4 address becomes monitoring (65803): the backend
	# accepts only the frontend on 8080, so a new connection is dropped.
	kv_step kv_put_ip_denies timeout 10.99.0.2 10.99.0.1 \
		put-ip --ip 10.99.0.1 --identity 65803
	# Its IPv6 address is another entry and still the frontend's.
	expect kv_put_ip_other_family_untouched connected \
		"$(connect_word kv_v6 "$F" "$B" fd00:99::2 8080 fd00:99::1)"
	# Back to the frontend, with what the import wrote: allowed again.
	kv_step kv_put_ip_back_allows connected 10.99.0.2 10.99.0.1 \
		put-ip --ip 10.99.0.1 --identity 65800 --host-ip 192.168.99.1 \
		--namespace demo --pod frontend-6d9f7c5b8-4xk2p
	expect kv_put_ip_restored_exact "$front_entry" "$(rcli GET "$FRONT_KEY")"
	# No entry: the address is world, which the backend does not accept.
	kv_step kv_del_ip_denies timeout 10.99.0.2 10.99.0.1 del-ip --ip 10.99.0.1
	kv_step kv_del_ip_back_allows connected 10.99.0.2 10.99.0.1 \
		put-ip --ip 10.99.0.1 --identity 65800 --host-ip 192.168.99.1 \
		--namespace demo --pod frontend-6d9f7c5b8-4xk2p
	# The frontend's identity goes: its entries still name 65800, which
	# is now judged as having no labels (no app=frontend): denied. Then it
	# comes back with the same labels: the policy is derived again.
	kv_step kv_del_identity_denies timeout fd00:99::2 fd00:99::1 del-identity --id 65800
	kv_step kv_put_identity_allows connected fd00:99::2 fd00:99::1 \
		put-identity --id 65800 --labels "$front_labels"
	# What an operator sees of it: the sync's state over the control
	# socket, and the same in the Prometheus text.
	expect kv_sync_status ok "$("$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" sync status -o json |
		$PY -c 'import json, sys
s = json.load(sys.stdin)
c = s["clusters"][0] if s["clusters"] else {}
bad = [k for k, v in (("configured", s["configured"]), ("name", c.get("name") == "cluster-a"),
                      ("connected", c.get("connected")), ("synced", c.get("synced")),
                      ("entries", c.get("entries") == 14), ("events", c.get("events", 0) >= 6),
                      ("resyncs", sum(c.get("resyncs", {}).values()) == 0)) if not v]
print("ok" if not bad else "wrong: %s in %r" % (bad, s))' 2>&1)"
	expect kv_metrics ok "$("$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" metrics |
		$PY -c 'import json, sys
from prometheus_client.parser import text_string_to_metric_families as parse
v = {(s.name, tuple(sorted(s.labels.items()))): s.value
     for f in parse(sys.stdin.read()) for s in f.samples}
want = {("meshgate_kvstore_connected", (("cluster", "cluster-a"),)): 1,
        ("meshgate_kvstore_synced", (("cluster", "cluster-a"),)): 1,
        ("meshgate_kvstore_entries", (("cluster", "cluster-a"),)): 14}
bad = {k: v.get(k) for k, w in want.items() if v.get(k) != w}
print("ok" if not bad else "wrong: %r" % bad)' 2>&1)"

	# Lost data never widens policy. The cluster config deleted, then the
	# whole Redis flushed (a restart without persistence, a replica
	# promoted empty): the gateway keeps its last state and says so; the
	# database stays closed to the frontend, the backend open to it. Then
	# the data comes back (a new import) and the gateway resyncs.
	# sync_state WANT: poll sync status (at most 10 s) until cluster-a's
	# state is WANT; prints "STATE STALE_REASON RESYNCS_CONFIG".
	sync_state() {
		local want=$1 got="" i
		for ((i = 0; i < 100; i++)); do
			got=$("$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" sync status -o json |
				$PY -c 'import json, sys
c = json.load(sys.stdin)["clusters"][0]
print(c["state"], c["stale_reason"], c["resyncs"]["config"], c["entries"])' 2>&1)
			[ "${got%% *}" = "$want" ] && break
			sleep 0.1
		done
		echo "$got"
	}
	kv_quiet
	rcli DEL cilium/cluster-config/cluster-a >/dev/null
	expect kv_config_deleted_stale "stale config-missing 0 14" "$(sync_state stale)"
	# A moment for a wrongful removal to show (the old behaviour did it
	# within two verifications), then the flows.
	sleep 2.5
	expect kv_config_deleted_still_denied blocked "$(mg_tcp "$F" "$B" 10.99.0.3 5432)"
	expect kv_config_deleted_still_allowed delivered "$(mg_tcp "$F" "$B" 10.99.0.2 8080)"
	rcli FLUSHALL >/dev/null
	sleep 2.5
	expect kv_flushall_stale "stale config-missing 0 14" "$(sync_state stale)"
	expect kv_flushall_still_denied blocked "$(mg_tcp "$F" "$B" 10.99.0.3 5432)"
	expect kv_flushall_still_allowed delivered "$(mg_tcp "$F" "$B" 10.99.0.2 8080)"
	st_out=$("$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" status 2>&1)
	if [[ $st_out == *"1 STALE"* ]]; then
		pass kv_flushall_status_says_stale
	else
		fail kv_flushall_status_says_stale "status: $st_out"
	fi
	expect kv_flushall_stale_metric ok "$("$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" metrics |
		$PY -c 'import json, sys, time
from prometheus_client.parser import text_string_to_metric_families as parse
v = {(s.name, tuple(sorted(s.labels.items()))): s.value
     for f in parse(sys.stdin.read()) for s in f.samples}
stale = v.get(("meshgate_kvstore_stale", (("cluster", "cluster-a"), ("reason", "config-missing"))))
since = v.get(("meshgate_kvstore_stale_since_timestamp_seconds", (("cluster", "cluster-a"),)))
ok = stale == 1 and since is not None and time.time() - 30 < since <= time.time()
print("ok" if ok else "wrong: stale %r since %r" % (stale, since))' 2>&1)"
	# The data comes back: resynced (cause "config"), tailed again.
	if out=$(kvctl import --cluster-id 1 "$MG_WORK/identities.yaml" \
		"$MG_WORK/endpoints.yaml" 2>&1); then
		expect kv_data_back_synced "synced None 1 14" "$(sync_state synced)"
	else
		fail kv_data_back_synced "meshgatectl kv import: $out"
	fi
	expect kv_data_back_allowed delivered "$(mg_tcp "$F" "$B" 10.99.0.2 8080)"
	expect kv_data_back_denied blocked "$(mg_tcp "$F" "$B" 10.99.0.3 5432)"
fi

# ---- policy reload (SIGHUP) with a connection open

# hup_and_wait REGEX: SIGHUP the daemon, wait (at most 20 s) until its log
# has one more line matching REGEX than before. 0 when it did.
hup_and_wait() {
	local re=$1 before i
	before=$(grep -cE -- "$re" "$MG_WORK/meshgate.err")
	kill -HUP "$MG_DAEMON_PID" 2>/dev/null || return 1
	for ((i = 0; i < 200; i++)); do
		[ "$(grep -cE -- "$re" "$MG_WORK/meshgate.err")" -gt "$before" ] && return 0
		sleep 0.1
	done
	return 1
}

RSRV=$MG_WORK/reload.srv
RCLI=$MG_WORK/reload.cli
mkfifo "$MG_WORK/reload.srv.in" "$MG_WORK/reload.cli.in"
# Each peer's stdin is a FIFO this shell holds open (fds 8 and 9; opened
# read-write first, so that no open blocks): a line written there is sent
# on the connection.
exec 8<>"$MG_WORK/reload.srv.in" 9<>"$MG_WORK/reload.cli.in"
peer "$B" listen 10.99.0.2 8080 --timeout 30 <"$MG_WORK/reload.srv.in" >"$RSRV"
reload_pids=("$peer_pid")
mg_wait_grep "$RSRV" '^listening' 10
peer "$F" connect 10.99.0.2 8080 --timeout 10 <"$MG_WORK/reload.cli.in" >"$RCLI"
reload_pids+=("$peer_pid")
if mg_wait_grep "$RCLI" '^connected' 10 &&
	echo "line-1" >&9 && mg_wait_grep "$RSRV" '^recv: line-1$' 10 &&
	echo "reply-1" >&8 && mg_wait_grep "$RCLI" '^recv: reply-1$' 10; then
	pass reload_connection_open
else
	fail reload_connection_open "client: $(tr '\n' ' ' <"$RCLI"), server: $(tr '\n' ' ' <"$RSRV")"
fi

# A policy the loader rejects: the reload fails and nothing changes.
cp "$CONF_DIR/policies/backend.yaml" "$MG_WORK/backend.yaml.good"
cat >"$CONF_DIR/policies/backend.yaml" <<'POL'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-broken, namespace: demo}
spec:
  endpointSelector:
    matchLabels: {app: backend}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: monitoring}
  egress:
    # toRequires narrows other rules in Cilium: ignoring it would widen
    # access, so the gateway refuses the whole policy
    - toEndpoints:
        - matchLabels: {app: database}
      toRequires:
        - matchLabels: {app: database}
POL
if hup_and_wait '^meshgate: error: reload'; then
	pass reload_bad_policy_logged
else
	fail reload_bad_policy_logged "no 'meshgate: error: reload' line within 20 s"
fi
if echo "line-1b" >&9 && mg_wait_grep "$RSRV" '^recv: line-1b$' 10; then
	pass reload_bad_policy_keeps_state
else
	fail reload_bad_policy_keeps_state "after a failed reload the client's line did not arrive"
fi

# The backend's policy without the frontend's allow (monitoring instead:
# the backend stays selected for ingress, so the frontend is now denied).
cat >"$CONF_DIR/policies/backend.yaml" <<'POL'
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: backend-allow-monitoring, namespace: demo}
spec:
  endpointSelector:
    matchLabels: {app: backend}
  ingress:
    - fromEndpoints:
        - matchLabels: {app: monitoring}
      toPorts:
        - ports:
            - {port: "8080", protocol: TCP}
  egress:
    - toEndpoints:
        - matchLabels: {app: database}
      toPorts:
        - ports:
            - {port: "5432", protocol: TCP}
POL
if hup_and_wait 'meshgate: info: reload: done'; then
	# The summary after it names the new policy's memory (it said 0 bytes
	# once: it was read after the policy had gone to the data path).
	sleep 0.2
	mem=$(grep -oE 'policy memory [0-9]+ bytes' "$MG_WORK/meshgate.err" | tail -n 1)
	if [[ $mem =~ ^policy\ memory\ [1-9][0-9]*\ bytes$ ]]; then
		pass reload_done
	else
		fail reload_done "the reload's summary says '$mem'"
	fi
else
	fail reload_done "no 'reload: done' line within 20 s"
	sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 10
fi
# Replies keep passing: the server's line reaches the client.
if echo "reply-2" >&8 && mg_wait_grep "$RCLI" '^recv: reply-2$' 10; then
	pass reload_replies_still_pass
else
	fail reload_replies_still_pass "the server's line after the reload did not arrive"
fi
# The client's next packet on the open connection is judged by the new
# policy: dropped. Absence can only be shown by waiting: 5 s, in which an
# allowed line takes milliseconds.
echo "line-2" >&9
if mg_wait_grep "$RSRV" '^recv: line-2$' 5; then
	fail reload_client_packet_dropped "the client's line arrived after the allow was removed"
else
	pass reload_client_packet_dropped
fi
exec 8>&- 9>&-
kill "${reload_pids[@]}" 2>/dev/null
wait "${reload_pids[@]}" 2>/dev/null

mg_daemon_stop
rc=$?
if [ $rc -eq 0 ]; then
	pass daemon_clean_exit
else
	fail daemon_clean_exit "exit status $rc after SIGTERM"
	sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 30
fi

S=$MG_WORK/stats.json
if [ ! -s "$S" ]; then
	for c in stats_allowed stats_denied_ingress stats_denied_egress stats_arp_nd \
		stats_no_malformed stats_conntrack stats_reloads; do
		fail "$c" "no stats file written at $S"
	done
else
	echo "  stats: $(mg_stat "$S" 's["totals"]')"
	echo "  conntrack: $(mg_stat "$S" 's["conntrack"]')"
	expect stats_allowed True "$(mg_stat "$S" 's["verdicts"]["allowed"] > 0 and s["totals"]["allowed"] == s["verdicts"]["allowed"]')"
	# Four denied attempts above and the line after the reload, each
	# retried by the kernel: at least five drops for the destination's
	# ingress policy; the backend's attempts: its egress policy.
	expect stats_denied_ingress True "$(mg_stat "$S" 's["drops"]["policy_denied_ingress"] >= 5 and s["verdicts"]["denied_ingress"] == s["drops"]["policy_denied_ingress"]')"
	expect stats_denied_egress True "$(mg_stat "$S" 's["drops"]["policy_denied_egress"] >= 2 and s["verdicts"]["denied_egress"] == s["drops"]["policy_denied_egress"]')"
	expect stats_arp_nd True "$(mg_stat "$S" 's["totals"]["arp"] > 0 and s["totals"]["nd"] > 0')"
	# Real kernel traffic is never malformed.
	# Nor does it ever need a drop other than the policy's: no TCP packet
	# outside a connection, no unrelated ICMP error, no lone fragment.
	expect stats_no_malformed "{}" "$(mg_stat "$S" '{k: v for k, v in s["drops"].items() if v and k not in ("policy_denied_ingress", "policy_denied_egress")}')"
	# Replies passed by conntrack, flows created, and the reload made
	# the open connection's next packets be judged again.
	expect stats_conntrack True "$(mg_stat "$S" 's["conntrack"]["tracked"] > 100 and s["conntrack"]["created"] >= 8 and s["conntrack"]["rechecked"] > 0 and s["conntrack"]["entries"] > 0')"
	expect stats_reloads "{'ok': 1, 'failed': 1}" "$(mg_stat "$S" 's["reloads"]')"
	if [ "$SOURCE" = redis ]; then
		# Everything restored: 14 entries, followed from the log, one
		# resync when the flushed data came back, every identity change
		# turned into a policy.
		echo "  kvstore: $(mg_stat "$S" 's["kvstore"]')"
		expect stats_kvstore True "$(mg_stat "$S" 's["kvstore"] == {"clusters": 1, "synced": 1, "entries": 14, "resyncs": 1, "mass_delete_refusals": 0, "policy_failures": 0}')"
	fi
fi

[ $failed -eq 0 ]
