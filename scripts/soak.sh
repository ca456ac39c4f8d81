#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Soak: the whole system on this machine for N minutes, with faults on a
# schedule, then a report against the reliability goals
# (docs/reliability.md, "Soak").
#
#   two remote clusters, cluster-b (id 2) and cluster-c (id 3), each in its
#   own etcd set up as clustermesh-apiserver runs it (tests/etcd/etcd_env.sh)
#   -> two meshgate-replicator replicas (one lease holder)
#   -> Redis (a primary and a replica, behind one unix-socket path)
#   -> meshgate between two network namespaces (tests/e2e/lib.sh): the front
#      namespace holds cluster-b's pods, the back one cluster-c's; each
#      cluster's own policy allows some flows and denies others.
#
# Meanwhile: numbered UDP datagrams on allowed and denied flows in both
# directions (scripts/soak_traffic.py), TCP connections every 10 s, a writer
# changing endpoints and identities in etcd (now and then the identity of a
# traffic flow's source, its window logged), meshgatectl queries, a
# monitor, a reload every ~1.8 s (SIGHUP and `meshgatectl reload` in turn;
# 1000 in the default 30 minutes),
# and faults in rotation: Redis failover, Redis restarted empty, the
# replicator lease holder SIGKILLed, an etcd restarted, an etcd restarted
# empty and refilled, a cluster config deleted in etcd and restored, a
# control client that never reads.
#
# usage: scripts/soak.sh [--minutes N]   (root; default 30)
# Exit 0 when every goal of the report is met. Cleans up whatever happens.
# Traffic only inside the namespaces made here; etcd, Redis and the
# metrics ports listen on 127.0.0.1.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

MINUTES=30
while [ $# -gt 0 ]; do
	case $1 in
	--minutes)
		MINUTES=${2:-}
		shift 2 || break
		;;
	--minutes=*)
		MINUTES=${1#--minutes=}
		shift
		;;
	-h | --help)
		sed -n '3,28p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "soak: unknown argument $1 (usage: scripts/soak.sh [--minutes N])" >&2
		exit 2
		;;
	esac
done
if ! [[ $MINUTES =~ ^[0-9]+$ ]] || [ "$MINUTES" -lt 2 ]; then
	echo "soak: --minutes wants a whole number of minutes, at least 2" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "soak: must run as root: it creates network namespaces and veth pairs," \
		"and runs DPDK on them" >&2
	exit 2
fi

MESHGATE=${MESHGATE:-$ROOT/build/app/meshgate/meshgate}
CTL=${MESHGATECTL:-$ROOT/build/app/meshgatectl/meshgatectl}
REPLICATOR=${REPLICATOR:-$ROOT/build/app/meshgate-replicator/meshgate-replicator}
PY=/usr/bin/python3
TRAFFIC=$HERE/soak_traffic.py
for b in "$MESHGATE" "$CTL" "$REPLICATOR"; do
	[ -x "$b" ] || {
		echo "soak: no binary $b (meson setup build && ninja -C build)" >&2
		exit 2
	}
done
for tool in etcd etcdctl redis-server redis-cli openssl "$PY"; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "soak: $tool is not installed (scripts/setup.sh)" >&2
		exit 2
	}
done
if ! reason=$(mg_can_netns); then
	echo "soak: $reason" >&2
	exit 2
fi

DURATION=$((MINUTES * 60))
WARMUP=20
FINAL=10 # seconds of quiet traffic judged against the trace
RUN=$((DURATION - WARMUP - FINAL - 15)) # seconds of reloads, faults, writer
# one reload per 1.8 s of the whole duration, packed into RUN: 1000 in 30 min
RELOADS=$((DURATION * 10 / 18))
RELOAD_GAP=$(awk -v r=$RUN -v n=$RELOADS 'BEGIN { printf "%.3f", r / n }')
# faults every ~60 s; shorter runs still see each kind once
FAULT_EVERY=$(((DURATION - 60) / 7))
[ "$FAULT_EVERY" -gt 60 ] && FAULT_EVERY=60
[ "$FAULT_EVERY" -lt 20 ] && FAULT_EVERY=20

MG_NS_FRONT="mgsk-$$-front"
MG_NS_BACK="mgsk-$$-back"
MG_IF_IN="mgsk$$i"
MG_IF_OUT="mgsk$$o"
MG_WORK=$(mktemp -d /tmp/meshgate-soak.XXXXXX)
W=$MG_WORK
PREFIX=mgsk$$
SOCK=$W/meshgate.sock
REDIS_LINK=$W/redis.sock
LOG=$W/soak.log
KEEP=${SOAK_KEEP:-0} # SOAK_KEEP=1 keeps the scratch folder (for debugging)
BG=()                # background loops and helpers of this script
REDIS_PIDS=()        # every redis-server started (the dead ones too)
REP_PID=("" "")      # the two replicator replicas

log() { echo "$(date +%H:%M:%S) $*" | tee -a "$LOG" >&2; }

cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
	# what still runs inside the namespaces (listeners, clients) was
	# started here: end it before the namespaces go
	for ns in "$MG_NS_FRONT" "$MG_NS_BACK"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	done
	mg_cleanup
	for p in "${REP_PID[@]}" "${REDIS_PIDS[@]}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for c in cluster-b cluster-c; do
		[ -d "$W/etcd-$c" ] && bash "$ROOT/tests/etcd/etcd_env.sh" kill "$W/etcd-$c" >/dev/null 2>&1
	done
	for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "/var/run/dpdk/$PREFIX"
	if [ "$KEEP" = 1 ]; then echo "soak: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- etcd
ectl() { # ectl CLUSTER ETCDCTL-ARGS...: etcdctl as root on CLUSTER's etcd
	local d=$W/etcd-$1 ep
	shift
	ep=$(sed -n 's/^ETCD_ENDPOINT=//p' "$d/env" 2>/dev/null)
	ETCDCTL_API=3 etcdctl --endpoints "$ep" --cacert "$d/certs/ca.crt" \
		--cert "$d/certs/root.crt" --key "$d/certs/root.key" \
		--dial-timeout=2s --command-timeout=5s "$@"
}
labels() { # labels CLUSTER APP: pkg/labels' SortedList of a pod in namespace shop
	echo "k8s:app=$2;k8s:io.cilium.k8s.policy.cluster=$1;k8s:io.cilium.k8s.policy.serviceaccount=default;k8s:io.kubernetes.pod.namespace=shop;"
}
pair() { # pair IP ID POD: an IPIdentityPair as Cilium's json.Marshal writes it
	printf '{"IP":"%s","Mask":null,"HostIP":"192.168.16.2","ID":%s,"Key":0,"Metadata":"","K8sNamespace":"shop","K8sPodName":"%s","K8sServiceAccount":"default"}' "$1" "$2" "$3"
}
now3339() { date -u +%Y-%m-%dT%H:%M:%SZ; }
IDK=cilium/state/identities/v1/id
IPK=cilium/state/ip/v1/default
declare -A CID=([cluster-b]=2 [cluster-c]=3)
# The base state: identities and the traffic's endpoints.
base_b() {
	echo "$IDK/131073 $(labels cluster-b frontend)"
	echo "$IDK/131074 $(labels cluster-b batch)"
	echo "$IDK/131075 $(labels cluster-b batch-v2)"
	echo "$IPK/10.99.0.1 $(pair 10.99.0.1 131073 frontend-0)"
	echo "$IPK/fd00:99::1 $(pair fd00:99::1 131073 frontend-0)"
	echo "$IPK/10.99.0.5 $(pair 10.99.0.5 131074 batch-0)"
}
base_c() {
	echo "$IDK/196609 $(labels cluster-c backend)"
	echo "$IDK/196610 $(labels cluster-c db)"
	echo "$IDK/196611 $(labels cluster-c monitor)"
	echo "$IPK/10.99.0.2 $(pair 10.99.0.2 196609 backend-0)"
	echo "$IPK/fd00:99::2 $(pair fd00:99::2 196609 backend-0)"
	echo "$IPK/10.99.0.3 $(pair 10.99.0.3 196610 db-0)"
	echo "$IPK/10.99.0.4 $(pair 10.99.0.4 196611 monitor-0)"
}
fill() { # fill CLUSTER: what its clustermesh-apiserver writes on start
	local c=$1 k v ok=0
	ectl "$c" put cilium/.has-cluster-config true >/dev/null || ok=1
	ectl "$c" put "cilium/cluster-config/$c" \
		"{\"id\":${CID[$c]},\"capabilities\":{\"syncedCanaries\":true,\"maxConnectedClusters\":255}}" \
		>/dev/null || ok=1
	while read -r k v; do
		ectl "$c" put "$k" -- "$v" >/dev/null || ok=1
	done < <("base_${c#cluster-}")
	ectl "$c" put cilium/.heartbeat "$(now3339)" >/dev/null || ok=1
	ectl "$c" put "cilium/synced/$c/cilium/state/identities/v1" "$(now3339)" >/dev/null || ok=1
	ectl "$c" put "cilium/synced/$c/cilium/state/ip/v1" "$(now3339)" >/dev/null || ok=1
	return $ok
}
etcd_env() { bash "$ROOT/tests/etcd/etcd_env.sh" "$@" >>"$W/etcd-env.out" 2>&1; }
# The replicators read each cluster's etcd config from the mesh folder.
mesh_file() { cp "$W/etcd-$1/$1" "$W/mesh/$1.tmp" && mv "$W/mesh/$1.tmp" "$W/mesh/$1"; }

# --------------------------------------------------------------- Redis
REDIS_N=0
REDIS_PRIMARY="" # index of the primary
REDIS_REPLICA="" # index of its replica
redis_start() { # redis_start [PRIMARY-INDEX]: a new instance; prints its index
	local n=$REDIS_N port
	REDIS_N=$((REDIS_N + 1))
	port=$(etcd_free_port)
	echo "$port" >"$W/redis-$n.port"
	local -a extra=()
	[ -n "${1:-}" ] && extra=(--replicaof 127.0.0.1 "$(cat "$W/redis-$1.port")")
	redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$W/redis-$n.sock" \
		--unixsocketperm 700 --dir "$W" --dbfilename "redis-$n.rdb" --save '' \
		--appendonly no "${extra[@]}" </dev/null >>"$W/redis-$n.log" 2>&1 &
	REDIS_PIDS+=($!)
	echo $! >"$W/redis-$n.pid"
	for _ in $(seq 1 100); do
		[ "$(rcli "$n" ping 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
	NEW_REDIS=$n
}
etcd_free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rcli() { # rcli INDEX ARGS...
	local n=$1
	shift
	timeout 10 redis-cli -s "$W/redis-$n.sock" "$@"
}
redis_link() { ln -sfn "$W/redis-$1.sock" "$REDIS_LINK.tmp" && mv -T "$REDIS_LINK.tmp" "$REDIS_LINK"; }
redis_kill() {
	local p
	p=$(cat "$W/redis-$1.pid")
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null # and no "Killed" notice
}

# --------------------------------------------------------- replicators
rep_config() { # rep_config SLOT
	cat >"$W/rep$1.yaml" <<CONF
version: 1
cluster: {name: site, id: 1}
clustermesh: {config_dir: "$W/mesh", rescan_interval: 1}
redis: "unix://$REDIS_LINK"
redis_functions: "$ROOT/conf/redis/meshgate.lua"
etcd: {heartbeat_timeout: 10, backoff_min: 200, backoff_max: 1000, timeout: 5, connect_timeout: 2}
lease: {ttl: 3}
drain: {grace: 30}
control: {socket: "$W/rep$1.sock"}
CONF
}
rep_start() { # rep_start SLOT
	"$REPLICATOR" -c "$W/rep$1.yaml" </dev/null >>"$W/rep$1.log" 2>&1 &
	REP_PID[$1]=$!
	echo "$(date +%s) ${REP_PID[$1]}" >>"$W/rep$1.starts"
}
rep_status() { # rep_status SLOT: the replicator status JSON
	timeout 10 "$CTL" --socket "$W/rep$1.sock" replicator status -o json 2>/dev/null
}
rep_holder() { # the slot holding the lease (or nothing)
	local s
	for s in 0 1; do
		if rep_status "$s" | $PY -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["lease"]["holder"] else 1)' 2>/dev/null; then
			echo "$s"
			return 0
		fi
	done
	return 1
}

# ------------------------------------------------------------- gateway
gw_synced() { # 0 when the gateway has both clusters synced and fresh
	timeout 10 "$CTL" --socket "$SOCK" sync status -o json 2>/dev/null | $PY -c '
import json, sys
cs = {c["name"]: c for c in json.load(sys.stdin)["clusters"]}
ok = all(n in cs and cs[n]["state"] == "synced" and not cs[n].get("stale") for n in ("cluster-b", "cluster-c"))
sys.exit(0 if ok else 1)' 2>/dev/null
}
gw_sync_line() {
	timeout 10 "$CTL" --socket "$SOCK" sync status -o json 2>/dev/null | $PY -c '
import json, sys
print(" ".join("%s=%s/%s" % (c["name"], c["state"], c.get("stale_reason") or "-") for c in json.load(sys.stdin)["clusters"]))' 2>/dev/null
}
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null; }
wait_until() { # wait_until SECONDS CMD...: 0 once CMD succeeds
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt "$end" ]; do
		"$@" && return 0
		sleep 0.5
	done
	"$@"
}

# --------------------------------------------------------------- setup
mkdir -p "$W/mesh" "$W/pol-b" "$W/pol-c"
log "soak: $MINUTES minutes, faults every $FAULT_EVERY s, a reload every $RELOAD_GAP s (~$RELOADS); scratch $W"
mg_topology_up || {
	log "cannot set up the namespaces"
	exit 1
}
for c in cluster-b cluster-c; do
	if ! etcd_env start "$W/etcd-$c" "$c" || ! fill "$c"; then
		log "etcd of $c did not start or could not be filled: $(tail -n 5 "$W/etcd-env.out")"
		exit 1
	fi
	mesh_file "$c"
done
# the apiservers' heartbeats, once a second (once a minute in Cilium)
(while :; do
	for c in cluster-b cluster-c; do ectl "$c" put cilium/.heartbeat "$(now3339)" >/dev/null 2>&1; done
	sleep 1
done) &
BG+=($!)

redis_start
REDIS_PRIMARY=$NEW_REDIS
redis_start "$REDIS_PRIMARY"
REDIS_REPLICA=$NEW_REDIS
redis_link "$REDIS_PRIMARY"
for s in 0 1; do
	rep_config "$s"
	rep_start "$s"
done
if ! wait_until 30 rep_holder >/dev/null; then
	log "no replicator holds the lease after 30 s: $(tail -n 5 "$W/rep0.log")"
	exit 1
fi

# Each cluster's own policy (the gateway reads them from its folders).
cat >"$W/pol-c/backend.yaml" <<'POL'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: backend-from-frontend}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: frontend, io.cilium.k8s.policy.cluster: cluster-b}
    toPorts:
    - ports: [{port: "9000", protocol: UDP}, {port: "8080", protocol: TCP}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: db-from-batch}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: batch, io.cilium.k8s.policy.cluster: cluster-b}
    toPorts:
    - ports: [{port: "9200", protocol: UDP}]
POL
cat >"$W/pol-b/frontend.yaml" <<'POL'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: frontend-from-backend}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: backend, io.cilium.k8s.policy.cluster: cluster-c}
    toPorts:
    - ports: [{port: "9100", protocol: UDP}, {port: "8180", protocol: TCP}]
POL
extra_policy() { # a policy that selects nobody, different at each reload
	cat >"$W/pol-b/extra.yaml.tmp" <<POL
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: extra-$1}
spec:
  endpointSelector: {matchLabels: {app: nobody-$1}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "$((1000 + $1 % 5000))", protocol: TCP}]}]
POL
	mv "$W/pol-b/extra.yaml.tmp" "$W/pol-b/extra.yaml"
}
extra_policy 0
cat >"$W/meshgate.yaml" <<CONF
version: 1
eal: ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-telemetry",
      "--file-prefix", "$PREFIX",
      "--vdev=net_af_packet0,iface=$MG_IF_IN", "--vdev=net_af_packet1,iface=$MG_IF_OUT"]
datapath:
  mode: wire
  ports:
    - {name: inside, device: net_af_packet0, peer: outside}
    - {name: outside, device: net_af_packet1, peer: inside}
  non_ip: forward
cluster: {name: site, id: 1}
policy:
  enforcement: default
  sources:
    - {cluster: cluster-b, path: "$W/pol-b/"}
    - {cluster: cluster-c, path: "$W/pol-c/"}
kvstore:
  redis: "unix://$REDIS_LINK"
  clusters: [cluster-b, cluster-c]
  sync_timeout: 30
  block_ms: 5
  heartbeat_timeout: 10
control:
  socket: "$SOCK"
  idle_timeout: 5
metrics:
  listen: 127.0.0.1:0
CONF
if ! mg_daemon_start "$MESHGATE" "$W/meshgate.yaml"; then
	log "the gateway did not become ready: $(tail -n 5 "$W/meshgate.err" | tr '\n' ' ')"
	exit 1
fi
GW_PID=$MG_DAEMON_PID
GW_DEAD="" # its exit status, once it died on its own
if ! wait_until 30 gw_synced; then
	log "the gateway did not sync both clusters in 30 s: $(gw_sync_line)"
	exit 1
fi
log "up: etcd x2, redis primary $REDIS_PRIMARY + replica $REDIS_REPLICA, replicators ${REP_PID[*]}, gateway $GW_PID"

# -------------------------------------------------------------- traffic
# tag proto want src dst port (the senders bind src; the receivers dst)
cat >"$W/flows" <<'FLOWS'
u_f2b     udp allow 10.99.0.1  10.99.0.2  9000
u_f2b6    udp allow fd00:99::1 fd00:99::2 9000
u_b2f     udp allow 10.99.0.2  10.99.0.1  9100
u_batch   udp allow 10.99.0.5  10.99.0.3  9200
d_port    udp deny  10.99.0.1  10.99.0.2  9300
d_src     udp deny  10.99.0.5  10.99.0.2  9000
d_b2f     udp deny  10.99.0.4  10.99.0.1  9100
t_f2b     tcp allow 10.99.0.1  10.99.0.2  8080
t_b2f     tcp allow 10.99.0.2  10.99.0.1  8180
t_deny    tcp deny  10.99.0.5  10.99.0.2  8080
FLOWS
front_args=() back_args=()
declare -A RECV_SEEN=()
while read -r tag proto want src dst port; do
	[ "$proto" = udp ] || continue
	rate=200
	[ "$want" = deny ] && rate=50
	if [[ $src == 10.99.0.[15] || $src == fd00:99::1 ]]; then
		front_args+=(--send "$tag,$src,$dst,$port,$rate")
		side=back
	else
		back_args+=(--send "$tag,$src,$dst,$port,$rate")
		side=front
	fi
	[ -n "${RECV_SEEN[$dst,$port]:-}" ] && continue
	RECV_SEEN[$dst,$port]=1
	if [ $side = back ]; then back_args+=(--recv "$dst,$port"); else front_args+=(--recv "$dst,$port"); fi
done <"$W/flows"
ip netns exec "$MG_NS_BACK" $PY "$TRAFFIC" run --out "$W/traffic-back.json" --stop "$W/stop-traffic" --go "$W/go-traffic" \
	"${back_args[@]}" >"$W/traffic-back.out" 2>&1 &
BG+=($!)
TRAFFIC_PIDS=($!)
ip netns exec "$MG_NS_FRONT" $PY "$TRAFFIC" run --out "$W/traffic-front.json" --stop "$W/stop-traffic" --go "$W/go-traffic" \
	"${front_args[@]}" >"$W/traffic-front.out" 2>&1 &
BG+=($!)
TRAFFIC_PIDS+=($!)
if ! mg_wait_grep "$W/traffic-back.out" '^ready' 10 || ! mg_wait_grep "$W/traffic-front.out" '^ready' 10; then
	log "the traffic did not start: $(head -c 300 "$W/traffic-back.out") $(head -c 300 "$W/traffic-front.out")"
	exit 1
fi
touch "$W/go-traffic"

# TCP: every flow every 10 s, "time tag word" lines
tcp_loop() {
	local tag proto want src dst port cns sns word t
	while [ ! -e "$W/stop-loops" ]; do
		while read -r tag proto want src dst port; do
			[ "$proto" = tcp ] || continue
			if [[ $src == 10.99.0.[15] ]]; then cns=$MG_NS_FRONT sns=$MG_NS_BACK; else cns=$MG_NS_BACK sns=$MG_NS_FRONT; fi
			t=$(date +%s.%N)
			word=$(mg_tcp "$cns" "$sns" "$dst" "$port" listen "$src")
			echo "$t $tag $word" >>"$W/tcp.log"
		done <"$W/flows"
		sleep 5
	done
}
tcp_loop &
BG+=($!)

# The monitor, for the whole run: drop events counted by reason.
("$CTL" --socket "$SOCK" monitor --type drop -o json 2>"$W/monitor.err"
	echo "exited with status $? at $(date +%H:%M:%S)" >"$W/monitor.exit") | $PY -c '
import json, sys
n, by, lost = 0, {}, 0
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if "dropped" in e and len(e) == 1:
        lost += e["dropped"]
        continue
    n += 1
    by[e.get("reason", "?")] = by.get(e.get("reason", "?"), 0) + 1
json.dump({"events": n, "lost": lost, "by_reason": by}, open(sys.argv[1], "w"))' "$W/monitor.json" &
BG+=($!)
MONITOR_PID=$!

# meshgatectl queries every 3 s against the gateway and both replicators
query_loop() {
	local n=0 bad=0 q
	while [ ! -e "$W/stop-loops" ]; do
		for q in "status" "sync status" "policy selectors" "ip get 10.99.0.1" "identity get 196609" "ct list"; do
			n=$((n + 1))
			# shellcheck disable=SC2086
			if ! timeout 10 "$CTL" --socket "$SOCK" $q >/dev/null 2>>"$W/query.err"; then
				bad=$((bad + 1))
				echo "$(date +%H:%M:%S) $q failed" >>"$W/query.err"
			fi
		done
		for q in 0 1; do
			n=$((n + 1))
			timeout 10 "$CTL" --socket "$W/rep$q.sock" replicator status >/dev/null 2>&1 || true
		done
		echo "$n $bad" >"$W/query.count"
		# load and the gateway's counters, to tell a stalled worker from a verdict
		timeout 10 "$CTL" --socket "$SOCK" status -o json 2>/dev/null | $PY -c '
import json, sys
s = json.load(sys.stdin)
p = {x["name"]: x for x in s["ports"]}
w = s["workers"][0] if s["workers"] else {}
print(open("/proc/loadavg").read().split()[0], p["inside"]["rx_packets"], p["outside"]["rx_packets"],
      w.get("loops"), w.get("busy_ratio"))' 2>/dev/null | sed "s/^/$(date +%H:%M:%S) /" >>"$W/samples"
		sleep 3
	done
}
query_loop &
BG+=($!)

# The writer: churn on endpoints and identities nobody's traffic uses,
# twice a second; every ~75 s the identity of u_batch's source (10.99.0.5)
# changes to batch-v2 (denied by cluster-c's policy) for 6 s and back. Its
# window, from the first put to the gateway seeing the old identity again,
# goes to windows ("tag start end"): the flows from 10.99.0.5.
gw_ip_identity() { # the identity the gateway gives IP
	timeout 10 "$CTL" --socket "$SOCK" policy trace --src "$1" --dst 10.99.0.2 --proto udp --dport 1 -o json 2>/dev/null |
		$PY -c 'import json,sys; print(json.load(sys.stdin)["src"]["identity"])' 2>/dev/null
}
writer_loop() {
	local i=0 c base id ip t0 t1 next_flip=$((SECONDS + 40))
	while [ ! -e "$W/stop-loops" ]; do
		i=$((i + 1))
		if [ $((i % 2)) = 0 ]; then c=cluster-b base=131200; else c=cluster-c base=196800; fi
		id=$((base + RANDOM % 50))
		ip="10.98.${CID[$c]}.$((RANDOM % 200 + 1))"
		case $((RANDOM % 4)) in
		0 | 1) ectl "$c" put "$IPK/$ip" -- "$(pair "$ip" "$id" "churn-$i")" >/dev/null 2>&1 ;;
		2) ectl "$c" del "$IPK/$ip" >/dev/null 2>&1 ;;
		3) ectl "$c" put "$IDK/$id" -- "$(labels "$c" "churn-$((RANDOM % 7))")" >/dev/null 2>&1 ;;
		esac
		echo "$i" >"$W/writer.count"
		if [ $SECONDS -ge $next_flip ]; then
			next_flip=$((SECONDS + 75))
			t0=$(date +%s.%N)
			ectl cluster-b put "$IPK/10.99.0.5" -- "$(pair 10.99.0.5 131075 batch-0)" >/dev/null 2>&1
			sleep 6
			ectl cluster-b put "$IPK/10.99.0.5" -- "$(pair 10.99.0.5 131074 batch-0)" >/dev/null 2>&1
			for _ in $(seq 1 120); do
				[ "$(gw_ip_identity 10.99.0.5)" = 131074 ] && break
				sleep 0.25
			done
			t1=$(date +%s.%N)
			for tag in u_batch d_src t_deny; do echo "$tag $t0 $t1" >>"$W/windows"; done
			echo "$(date +%H:%M:%S) identity window 10.99.0.5: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s" >>"$LOG"
		fi
		sleep 0.5
	done
}
writer_loop &
BG+=($!)

# Reloads: every RELOAD_GAP s, SIGHUP and `meshgatectl reload` in turn,
# each with a different extra policy.
reload_loop() {
	local i=0 bad=0 next wait
	next=$EPOCHREALTIME
	while [ ! -e "$W/stop-loops" ]; do
		i=$((i + 1))
		extra_policy "$i"
		if [ $((i % 2)) = 1 ]; then
			if ! timeout 20 "$CTL" --socket "$SOCK" reload >>"$W/reload.err" 2>&1; then
				bad=$((bad + 1))
				echo "$(date +%H:%M:%S) reload $i failed" >>"$W/reload.err"
			fi
		else
			kill -HUP "$GW_PID" 2>/dev/null
		fi
		echo "$i $bad" >"$W/reload.count"
		# on a schedule: a slow reload does not push the later ones back
		next=$(awk -v a="$next" -v g="$RELOAD_GAP" 'BEGIN { printf "%.6f", a + g }')
		wait=$(awk -v a="$next" -v b="$EPOCHREALTIME" 'BEGIN { d = a - b; printf "%.3f", (d > 0 ? d : 0) }')
		sleep "$wait"
	done
}

# ----------------------------------------------------------------- faults
FAULTS=(redis_failover replicator_kill_holder etcd_restart ctl_never_reads
	redis_restart_empty cluster_config_deleted etcd_restart_empty)
ETCD_TURN=0
fault_redis_failover() {
	local old=$REDIS_PRIMARY
	redis_kill "$old"
	rcli "$REDIS_REPLICA" replicaof no one >/dev/null
	redis_link "$REDIS_REPLICA"
	REDIS_PRIMARY=$REDIS_REPLICA
	redis_start "$REDIS_PRIMARY"
	REDIS_REPLICA=$NEW_REDIS
	echo "primary redis-$old killed, redis-$REDIS_PRIMARY promoted, redis-$REDIS_REPLICA its new replica"
}
fault_redis_restart_empty() {
	local old=$REDIS_PRIMARY oldr=$REDIS_REPLICA
	redis_kill "$old"
	redis_kill "$oldr"
	redis_start
	REDIS_PRIMARY=$NEW_REDIS
	redis_link "$REDIS_PRIMARY"
	redis_start "$REDIS_PRIMARY"
	REDIS_REPLICA=$NEW_REDIS
	echo "redis-$old and redis-$oldr killed, redis-$REDIS_PRIMARY empty, replica redis-$REDIS_REPLICA"
}
fault_replicator_kill_holder() {
	local h
	h=$(rep_holder) || {
		echo "no holder to kill"
		return 1
	}
	kill -9 "${REP_PID[$h]}"
	wait "${REP_PID[$h]}" 2>/dev/null # and no "Killed" notice
	sleep 2
	rep_start "$h"
	echo "replica $h (the holder) SIGKILLed, restarted as pid ${REP_PID[$h]}"
}
etcd_next() { # sets ETCD_C (not a subshell: the turn must advance)
	ETCD_TURN=$((ETCD_TURN + 1))
	if [ $((ETCD_TURN % 2)) = 1 ]; then ETCD_C=cluster-b; else ETCD_C=cluster-c; fi
}
fault_etcd_restart() {
	local c
	etcd_next
	c=$ETCD_C
	etcd_env stop "$W/etcd-$c" || return 1
	sleep 3
	etcd_env start "$W/etcd-$c" || return 1
	mesh_file "$c"
	echo "etcd of $c stopped 3 s and started on the same data"
}
fault_etcd_restart_empty() {
	local c
	etcd_next
	c=$ETCD_C
	etcd_env restart-empty "$W/etcd-$c" || return 1
	mesh_file "$c"
	sleep 2
	fill "$c" || return 1
	echo "etcd of $c restarted empty and refilled"
}
fault_cluster_config_deleted() {
	ectl cluster-c del cilium/cluster-config/cluster-c >/dev/null || return 1
	sleep 10
	ectl cluster-c put cilium/cluster-config/cluster-c \
		'{"id":3,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255}}' >/dev/null || return 1
	echo "cilium/cluster-config/cluster-c deleted for 10 s, then restored"
}
fault_ctl_never_reads() {
	local out=$W/stuck-$SECONDS.out p
	$PY "$ROOT/tests/e2e/ctl_clients.py" stuck "$SOCK" --type all --seconds 30 >"$out" 2>&1 &
	p=$!
	if ! mg_wait_grep "$out" '^closed after' 25; then
		kill "$p" 2>/dev/null
		echo "the client that never reads was not disconnected: $(head -c 200 "$out")"
		return 1
	fi
	wait "$p" 2>/dev/null
	echo "a monitor client that never reads: $(grep -m1 '^closed after' "$out")"
}
# healthy: the gateway alive with both clusters synced and fresh, a
# replicator holding the lease, both replicators alive
healthy() {
	kill -0 "$GW_PID" 2>/dev/null && kill -0 "${REP_PID[0]}" 2>/dev/null &&
		kill -0 "${REP_PID[1]}" 2>/dev/null && gw_synced && rep_holder >/dev/null
}

# ------------------------------------------------------------------ run
sleep "$WARMUP"
GW_RSS0=$(rss_kb "$GW_PID")
declare -A REP_RSS0=()
for s in 0 1; do REP_RSS0[$s]="$(rss_kb "${REP_PID[$s]}") ${REP_PID[$s]}"; done
log "warm-up done: gateway RSS ${GW_RSS0} kB, replicators ${REP_RSS0[0]%% *} / ${REP_RSS0[1]%% *} kB"
reload_loop &
BG+=($!)
RELOAD_PID=$!

START=$SECONDS
STOP_AT=$((START + RUN))
next_fault=$((START + FAULT_EVERY / 2))
fault_i=0
faults_ok=0
faults_bad=0
declare -A REP_REBASE=()
while [ $SECONDS -lt $STOP_AT ]; do
	if ! kill -0 "$GW_PID" 2>/dev/null; then
		wait "$GW_PID"
		GW_DEAD=$?
		log "the gateway died with status $GW_DEAD$([ "$GW_DEAD" -gt 128 ] && echo " (signal $((GW_DEAD - 128)))"): last lines: $(grep -v reload "$W/meshgate.err" | tail -n 3 | tr '\n' ' ')"
		MG_DAEMON_PID=""
		break
	fi
	# a replicator restarted by a fault gets a new RSS baseline once warm
	for s in 0 1; do
		if [ "${REP_RSS0[$s]#* }" != "${REP_PID[$s]}" ] && [ -z "${REP_REBASE[$s]:-}" ]; then
			REP_REBASE[$s]=$((SECONDS + WARMUP))
		fi
		if [ -n "${REP_REBASE[$s]:-}" ] && [ $SECONDS -ge "${REP_REBASE[$s]}" ]; then
			REP_RSS0[$s]="$(rss_kb "${REP_PID[$s]}") ${REP_PID[$s]}"
			unset "REP_REBASE[$s]"
		fi
	done
	if [ $SECONDS -ge $next_fault ] && [ $((STOP_AT - SECONDS)) -gt 30 ]; then
		f=${FAULTS[$((fault_i % ${#FAULTS[@]}))]}
		fault_i=$((fault_i + 1))
		log "fault $fault_i: $f"
		t0=$SECONDS
		# in this shell (not a subshell): the faults change its state
		"fault_$f" >"$W/fault.out" 2>&1
		rc=$?
		what=$(tr '\n' ' ' <"$W/fault.out")
		if [ $rc = 0 ]; then
			# give the fault time to be noticed before judging health
			sleep 3
			if wait_until 45 healthy; then
				faults_ok=$((faults_ok + 1))
				log "fault $fault_i: $f: $what; healthy again $((SECONDS - t0)) s after it began"
				echo "$f survived $((SECONDS - t0))" >>"$W/faults"
			else
				faults_bad=$((faults_bad + 1))
				log "fault $fault_i: $f: $what; NOT healthy 45 s later: $(gw_sync_line)"
				echo "$f not-recovered $((SECONDS - t0))" >>"$W/faults"
			fi
		else
			faults_bad=$((faults_bad + 1))
			log "fault $fault_i: $f: could not be done: $what"
			echo "$f failed-to-inject 0" >>"$W/faults"
		fi
		next_fault=$((next_fault + FAULT_EVERY))
		[ $next_fault -lt $SECONDS ] && next_fault=$((SECONDS + 5))
	fi
	sleep 1
done

# --------------------------------------------------------------- finish
log "stopping the writer, the reloads and the faults; final state settles"
touch "$W/stop-loops"
wait "$RELOAD_PID" 2>/dev/null
if [ -z "$GW_DEAD" ]; then
	wait_until 60 healthy || log "not healthy at the end: $(gw_sync_line)"
fi
# the writer may be in a flip: wait for 10.99.0.5 to be batch again
is_batch() { [ "$(gw_ip_identity 10.99.0.5)" = 131074 ]; }
[ -n "$GW_DEAD" ] || wait_until 30 is_batch || log "10.99.0.5 is not batch (131074) at the end"
sleep "$FINAL"
END_TIME=$(date +%s.%N)
touch "$W/stop-traffic"
for p in "${TRAFFIC_PIDS[@]}"; do wait "$p" 2>/dev/null; done
sleep 6 # the last TCP round

# verdicts of the daemon's trace over the final state
: >"$W/trace"
trace_bad=0
while read -r tag proto want src dst port; do
	v=$(timeout 10 "$CTL" --socket "$SOCK" policy trace --src "$src" --dst "$dst" --proto "$proto" \
		--dport "$port" -o json 2>>"$W/trace.err" | $PY -c 'import json,sys; print(json.load(sys.stdin)["verdict"])' 2>/dev/null)
	[ -n "$v" ] || {
		v=error
		trace_bad=$((trace_bad + 1))
	}
	echo "$tag $v" >>"$W/trace"
done <"$W/flows"

GW_RSS1=$(rss_kb "$GW_PID")
declare -A REP_RSS1=()
for s in 0 1; do REP_RSS1[$s]=$(rss_kb "${REP_PID[$s]}"); done
status_json=$(timeout 10 "$CTL" --socket "$SOCK" status -o json 2>/dev/null)
read -r RELOAD_TRIED RELOAD_CTL_BAD <"$W/reload.count"
read -r Q_N Q_BAD <"$W/query.count" 2>/dev/null || { Q_N=0 Q_BAD=0; }

for p in "${BG[@]}"; do
	[ "$p" = "$MONITOR_PID" ] && continue
	kill "$p" 2>/dev/null
done
if [ -n "$GW_DEAD" ]; then GW_RC=$GW_DEAD; else
	mg_daemon_stop
	GW_RC=$?
fi
for _ in $(seq 1 50); do [ -s "$W/monitor.json" ] && break; sleep 0.1; done

# ---------------------------------------------------------------- report
failed=0
goal() { # goal NAME MET(0/1) TEXT
	if [ "$2" = 1 ]; then
		printf '%-26s %-8s %s\n' "$1" met "$3"
	else
		printf '%-26s %-8s %s\n' "$1" "NOT met" "$3"
		failed=$((failed + 1))
	fi
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%+.1f", (b - a) * 100 / a; else print "nan" }'; }
flat() { awk -v a="$1" -v b="$2" 'BEGIN { d = (b - a) * 100 / (a > 0 ? a : 1); exit !(a > 0 && b > 0 && d <= 5 && d >= -5) }'; }

echo
echo "==== soak report: $MINUTES minutes ($(date -u +%Y-%m-%dT%H:%M:%SZ)) ===="
$PY "$TRAFFIC" report --flows "$W/flows" --traffic "$W/traffic-front.json" --traffic "$W/traffic-back.json" \
	--windows "$W/windows" --tcp "$W/tcp.log" --trace "$W/trace" --final "$FINAL" --end "$END_TIME" \
	>"$W/report" 2>&1
sed -n '/^flow /p' "$W/report"
summary=$(grep '^SUMMARY' "$W/report")
[ -n "$summary" ] || { echo "traffic report failed: $(tail -n 3 "$W/report")"; summary="SUMMARY lost_outside=-1 denied_through=-1 verdict_mismatch=-1 tcp_wrong=-1"; }
sum_of() { echo "$summary" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
lost_outside=$(sum_of lost_outside)
denied_through=$(sum_of denied_through)
verdict_mismatch=$(sum_of verdict_mismatch)
tcp_wrong=$(sum_of tcp_wrong)
nwin=$(awk '$1 == "u_batch"' "$W/windows" 2>/dev/null | wc -l)
echo "identity windows (10.99.0.5): $nwin"
echo
goal "allowed datagrams lost" "$([ "$lost_outside" = 0 ] && echo 1)" \
	"$lost_outside lost outside the flow's own identity windows (goal 0)"
goal "allowed TCP judged" "$([ "$tcp_wrong" = 0 ] && echo 1)" \
	"$tcp_wrong TCP connections ended wrong outside identity windows (goal 0)"
goal "denied frames through" "$([ "$denied_through" = 0 ] && echo 1)" "$denied_through (goal 0)"
goal "verdicts vs trace" "$([ "$verdict_mismatch" = 0 ] && [ "$trace_bad" = 0 ] && echo 1)" \
	"$verdict_mismatch flows whose final ${FINAL} s disagree with the daemon's trace, $trace_bad traces failed (goal 0)"
goal "gateway RSS" "$(flat "$GW_RSS0" "$GW_RSS1" && echo 1)" \
	"${GW_RSS0:-?} kB -> ${GW_RSS1:-?} kB ($(pct "${GW_RSS0:-0}" "${GW_RSS1:-0}") %, goal within 5 %)"
for s in 0 1; do
	r0=${REP_RSS0[$s]%% *}
	restarted=""
	[ "${REP_RSS0[$s]#* }" = "${REP_PID[$s]}" ] || restarted=", restarted late: baseline of an earlier process"
	[ "$(wc -l <"$W/rep$s.starts")" -gt 1 ] && [ -z "$restarted" ] &&
		restarted=", baseline 20 s after its last restart"
	goal "replicator $s RSS" "$(flat "$r0" "${REP_RSS1[$s]}" && echo 1)" \
		"${r0:-?} kB -> ${REP_RSS1[$s]:-?} kB ($(pct "${r0:-0}" "${REP_RSS1[$s]:-0}") %, goal within 5 %$restarted)"
done
rel=$(echo "$status_json" | $PY -c 'import json,sys; r=json.load(sys.stdin)["reloads"]; print(r["ok"], r["failed"])' 2>/dev/null)
read -r rel_ok rel_failed <<<"${rel:-0 -1}"
goal "reloads" "$([ "$RELOAD_CTL_BAD" = 0 ] && [ "$rel_failed" = 0 ] && [ "$rel_ok" -gt 0 ] && echo 1)" \
	"$RELOAD_TRIED requested (half SIGHUP), $rel_ok done, $rel_failed failed, $RELOAD_CTL_BAD meshgatectl reload errors"
goal "faults survived" "$([ "$faults_bad" = 0 ] && [ "$faults_ok" -gt 0 ] && echo 1)" \
	"$faults_ok of $((faults_ok + faults_bad)): $(awk '{ printf "%s%s %s (%s s)", sep, $1, $2, $3; sep=", " }' "$W/faults" 2>/dev/null)"
goal "meshgatectl queries" "$([ "${Q_BAD:-1}" = 0 ] && echo 1)" "${Q_BAD:-?} of ${Q_N:-?} failed"
mon_exit=$(cat "$W/monitor.exit" 2>/dev/null)
goal "monitor" "$([ -s "$W/monitor.json" ] && echo 1)" \
	"$($PY -c 'import json,sys; m=json.load(open(sys.argv[1])); print("%d drop events, %d lost" % (m["events"], m["lost"]))' "$W/monitor.json" 2>/dev/null || echo "no summary") (monitor ${mon_exit:-ran to the end})"
goal "gateway clean exit" "$([ "$GW_RC" = 0 ] && echo 1)" "exit status $GW_RC"
echo "writer: $(cat "$W/writer.count" 2>/dev/null || echo 0) changes in etcd"
echo "machine load (1-min average, every 3 s): $(awk 'NF >= 2 { n++; t += $2; if ($2 > m) m = $2 } END { if (n) printf "mean %.1f, max %.1f", t / n, m; else print "no samples" }' "$W/samples" 2>/dev/null) on $(nproc) CPUs"
echo "drops by reason (stats file at exit):"
mg_stat "$W/stats.json" '"\n".join("  %-28s %d" % (k, v) for k, v in sorted(s["drops"].items()) if v)' ||
	echo "  (no stats file)"
echo "==== $([ $failed = 0 ] && echo "every goal met" || echo "$failed goal(s) NOT met") ===="
if [ $failed != 0 ]; then
	{
		echo "--- soak log"
		cat "$LOG"
		echo "--- reload errors"
		tail -n 5 "$W/reload.err" 2>/dev/null
		echo "--- query errors"
		tail -n 5 "$W/query.err" 2>/dev/null
	} >&2
fi
[ $failed = 0 ]
