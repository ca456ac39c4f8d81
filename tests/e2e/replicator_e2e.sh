#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The whole chain on real traffic: a remote cluster's etcd (set up as
# Cilium's clustermesh-apiserver runs it: TLS, client certificates, auth;
# tests/etcd/etcd_env.sh) -> meshgate-replicator -> redis-server ->
# meshgate forwarding TCP between two network namespaces (tests/e2e/lib.sh).
# Every identity and endpoint is cluster-b's, written into its etcd with
# etcdctl in Cilium's formats; the gateway (cluster site, id 1) knows them
# only through Redis. Its policy, cluster-b's own: the backend (10.99.0.2)
# accepts the frontend on 8080 only. Then, with etcdctl on the remote etcd:
#
#   the frontend's address gets another identity   -> denied
#   it gets the frontend's back                    -> allowed
#   its entry is deleted (the address is world)    -> denied
#   it is written again                            -> allowed
#   a new endpoint of the frontend at 10.99.0.5    -> allowed from .5
#   the frontend's identity loses app=frontend     -> denied
#   and gets it back                               -> allowed
#   etcd paused (SIGSTOP): no heartbeat reaches the replicator, whose
#   heartbeat key in Redis stops moving: the gateway shows cluster-b stale
#   (reason heartbeat) and keeps enforcing its last state; etcd resumed:
#   fresh again
#
# usage: replicator_e2e.sh MESHGATE MESHGATECTL REPLICATOR
# Prints PASS/FAIL/SKIP lines "e2e-replicator/<check>". Traffic only goes
# to addresses inside the namespaces made here; etcd and Redis listen on
# 127.0.0.1.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

MESHGATE=${1:-$ROOT/build/app/meshgate/meshgate}
MESHGATECTL=${2:-$ROOT/build/app/meshgatectl/meshgatectl}
REPLICATOR=${3:-$ROOT/build/app/meshgate-replicator/meshgate-replicator}
T=e2e-replicator
CHECKS=(etcd_up replicator_synced daemon_ready allowed denied_port denied_unknown_source
	put_other_identity_denies put_back_allows del_ip_denies readd_allows
	new_endpoint_allows identity_relabel_denies identity_back_allows gateway_sync_status
	heartbeat_stale
	heartbeat_stale_still_enforced heartbeat_fresh_again daemon_clean_exit)

failed=0
pass() { echo "PASS: $T/$1"; }
fail() {
	echo "FAIL: $T/$1: $2"
	failed=$((failed + 1))
}
expect() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected $2, got $3"; fi
}

for tool in etcd etcdctl redis-server redis-cli openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $tool is not installed"; done
		exit 0
	fi
done
if ! reason=$(mg_can_netns); then
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $reason"; done
	exit 0
fi

MG_NS_FRONT="mgr-$$-front"
MG_NS_BACK="mgr-$$-back"
MG_IF_IN="mgr$$i"
MG_IF_OUT="mgr$$o"
MG_WORK=$(mktemp -d /tmp/meshgate-rep-e2e.XXXXXX)
ETCD_DIR=$MG_WORK/etcd
REDIS_PID=""
REP_PID=""
HB_PID=""
cleanup() {
	mg_cleanup
	[ -n "$HB_PID" ] && kill "$HB_PID" 2>/dev/null && wait "$HB_PID" 2>/dev/null
	[ -n "${ETCD_PID:-}" ] && kill -CONT "$ETCD_PID" 2>/dev/null
	[ -n "$REP_PID" ] && kill "$REP_PID" 2>/dev/null && wait "$REP_PID" 2>/dev/null
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
	bash "$ROOT/tests/etcd/etcd_env.sh" stop "$ETCD_DIR" >/dev/null 2>&1
	if [ "$failed" -eq 0 ]; then rm -rf "$MG_WORK"; else echo "kept $MG_WORK"; fi
}
trap cleanup EXIT

if ! mg_topology_up; then
	fail etcd_up "cannot set up the namespaces"
	exit 1
fi

# ---- cluster-b's etcd, as its clustermesh-apiserver fills it
if ! bash "$ROOT/tests/etcd/etcd_env.sh" start "$ETCD_DIR" cluster-b >"$MG_WORK/etcd.out" 2>&1; then
	fail etcd_up "$(tail -n 5 "$MG_WORK/etcd.out")"
	exit 1
fi
# shellcheck disable=SC1091
. "$ETCD_DIR/env"
ectl() {
	ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINT" --cacert "$ETCD_CA" \
		--cert "$ETCD_ROOT_CERT" --key "$ETCD_ROOT_KEY" "$@"
}
labels() { # labels APP: pkg/labels' SortedList of a cluster-b pod in namespace shop
	echo "k8s:app=$1;k8s:io.cilium.k8s.policy.cluster=cluster-b;k8s:io.cilium.k8s.policy.serviceaccount=default;k8s:io.kubernetes.pod.namespace=shop;"
}
pair() { # pair IP ID POD: an IPIdentityPair as Cilium's json.Marshal writes it
	printf '{"IP":"%s","Mask":null,"HostIP":"192.168.16.2","ID":%s,"Key":0,"Metadata":"","K8sNamespace":"shop","K8sPodName":"%s","K8sServiceAccount":"default","NamedPorts":[{"Name":"http","Port":8080,"Protocol":"TCP"}]}' "$1" "$2" "$3"
}
IP=cilium/state/ip/v1/default
ID=cilium/state/identities/v1/id
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
ok=1
ectl put cilium/.has-cluster-config true >/dev/null || ok=0
ectl put cilium/cluster-config/cluster-b \
	'{"id":2,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255}}' >/dev/null || ok=0
ectl put "$ID/131073" "$(labels frontend)" >/dev/null || ok=0
ectl put "$ID/131074" "$(labels backend)" >/dev/null || ok=0
ectl put "$ID/131075" "$(labels batch)" >/dev/null || ok=0
ectl put "$IP/10.99.0.1" "$(pair 10.99.0.1 131073 frontend-0)" >/dev/null || ok=0
ectl put "$IP/10.99.0.2" "$(pair 10.99.0.2 131074 backend-0)" >/dev/null || ok=0
ectl put cilium/.heartbeat "$(now)" >/dev/null || ok=0
ectl put cilium/synced/cluster-b/cilium/state/identities/v1 "$(now)" >/dev/null || ok=0
ectl put cilium/synced/cluster-b/cilium/state/ip/v1 "$(now)" >/dev/null || ok=0
# The apiserver's heartbeat, once a second here (once a minute in Cilium).
(while :; do
	ectl put cilium/.heartbeat "$(now)" >/dev/null 2>&1
	sleep 1
done) &
HB_PID=$!
if [ $ok = 1 ]; then pass etcd_up; else
	fail etcd_up "etcdctl could not write cluster-b's data"
	exit 1
fi

# ---- the site Redis and the replicator
REDIS_SOCK=$MG_WORK/redis.sock
redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --dir "$MG_WORK" \
	--save '' --appendonly no </dev/null >/dev/null 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do
	[ "$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ] && break
	sleep 0.1
done
mkdir -p "$MG_WORK/mesh"
cp "$ETCD_DIR/cluster-b" "$MG_WORK/mesh/cluster-b"
cat >"$MG_WORK/replicator.yaml" <<CONF
version: 1
cluster: {name: site, id: 1}
clustermesh: {config_dir: "$MG_WORK/mesh", rescan_interval: 1}
redis: "unix://$REDIS_SOCK"
redis_functions: "$ROOT/conf/redis/meshgate.lua"
etcd: {heartbeat_timeout: 600}
control: {socket: "$MG_WORK/replicator.sock"}
CONF
"$REPLICATOR" -c "$MG_WORK/replicator.yaml" </dev/null >"$MG_WORK/replicator.log" 2>&1 &
REP_PID=$!
rep_synced() {
	"$MESHGATECTL" --socket "$MG_WORK/replicator.sock" replicator status -o json 2>/dev/null |
		/usr/bin/python3 -c 'import json, sys
c = [c for c in json.load(sys.stdin)["clusters"] if c["name"] == "cluster-b"]
print("yes" if c and c[0]["synced"] and c[0]["canaries"] else "no")' 2>/dev/null
}
for _ in $(seq 1 300); do
	[ "$(rep_synced)" = yes ] && break
	sleep 0.1
done
if [ "$(rep_synced)" = yes ]; then pass replicator_synced; else
	fail replicator_synced "cluster-b not synced within 30 s"
	tail -n 20 "$MG_WORK/replicator.log" | sed 's/^/  | /'
	exit 1
fi

# ---- the gateway, reading cluster-b from Redis only
mkdir -p "$MG_WORK/policies"
cat >"$MG_WORK/policies/backend.yaml" <<'POL'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: backend-from-frontend}
spec:
  endpointSelector:
    matchLabels: {app: backend}
  ingress:
  - fromEndpoints:
    - matchLabels: {app: frontend}
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
POL
cat >"$MG_WORK/meshgate.yaml" <<CONF
version: 1
eal: ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-telemetry",
      "--file-prefix", "mgrep$$",
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
  # cluster-b's own policy: its subjects are cluster-b's endpoints
  sources: [{cluster: cluster-b, path: "$MG_WORK/policies/"}]
kvstore:
  redis: "unix://$REDIS_SOCK"
  clusters: [cluster-b]
  sync_timeout: 10
  block_ms: 5
  heartbeat_timeout: 4
control:
  socket: "$MG_WORK/meshgate.sock"
CONF
if mg_daemon_start "$MESHGATE" "$MG_WORK/meshgate.yaml"; then pass daemon_ready; else
	fail daemon_ready "the daemon did not become ready"
	tail -n 20 "$MG_WORK/meshgate.err" | sed 's/^/  | /'
	exit 1
fi

F=$MG_NS_FRONT
if [ -n "${MG_E2E_DEBUG:-}" ]; then for c in "policy selectors" "ip get 10.99.0.2" "identity get 131074" "status"; do "$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" $c; done; fi
B=$MG_NS_BACK
expect allowed delivered "$(mg_tcp "$F" "$B" 10.99.0.2 8080 listen 10.99.0.1)"
expect denied_port blocked "$(mg_tcp "$F" "$B" 10.99.0.2 9090 listen 10.99.0.1)"
expect denied_unknown_source blocked "$(mg_tcp "$F" "$B" 10.99.0.2 8080 listen 10.99.0.5)"

# step NAME WANT SOURCE ETCDCTL-ARGS...: change cluster-b's etcd, then new
# connections SOURCE -> 10.99.0.2:8080 until one ends as WANT (at most 20 s).
step() {
	local name=$1 want=$2 src=$3 word n=0 t0 end
	shift 3
	if ! ectl "$@" >/dev/null 2>&1; then
		fail "$name" "etcdctl $* failed"
		return
	fi
	t0=$SECONDS
	end=$((SECONDS + 20))
	while :; do
		n=$((n + 1))
		word=$(mg_tcp "$F" "$B" 10.99.0.2 8080 listen "$src")
		[ "$word" = "$want" ] && break
		[ $SECONDS -ge $end ] && break
		sleep 0.2
	done
	if [ "$word" = "$want" ]; then
		pass "$name"
		echo "  $name: $word after $n attempt(s), $((SECONDS - t0)) s"
	else
		fail "$name" "expected $want within 20 s, got $word after $n attempt(s)"
	fi
}
step put_other_identity_denies blocked 10.99.0.1 put "$IP/10.99.0.1" "$(pair 10.99.0.1 131075 frontend-0)"
step put_back_allows delivered 10.99.0.1 put "$IP/10.99.0.1" "$(pair 10.99.0.1 131073 frontend-0)"
step del_ip_denies blocked 10.99.0.1 del "$IP/10.99.0.1"
step readd_allows delivered 10.99.0.1 put "$IP/10.99.0.1" "$(pair 10.99.0.1 131073 frontend-0)"
step new_endpoint_allows delivered 10.99.0.5 put "$IP/10.99.0.5" "$(pair 10.99.0.5 131073 frontend-1)"
step identity_relabel_denies blocked 10.99.0.1 put "$ID/131073" "$(labels frontend-v2)"
step identity_back_allows delivered 10.99.0.1 put "$ID/131073" "$(labels frontend)"

st=$("$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" sync status -o json 2>&1)
expect gateway_sync_status "synced ok" "$(echo "$st" | /usr/bin/python3 -c 'import json, sys
s = json.load(sys.stdin)
c = [c for c in s["clusters"] if c["name"] == "cluster-b"]
print(c[0]["state"] if c else "absent", "ok" if c and not c[0].get("stale") else "stale")' 2>&1)"

# gw_stale: the gateway's view of cluster-b: "<state> <stale_reason>"
gw_stale() {
	"$MESHGATECTL" --socket "$MG_WORK/meshgate.sock" sync status -o json 2>/dev/null |
		/usr/bin/python3 -c 'import json, sys
c = [c for c in json.load(sys.stdin)["clusters"] if c["name"] == "cluster-b"]
print(c[0]["state"] if c else "absent", (c[0].get("stale_reason") if c else None) or "-")' 2>&1
}
kill -STOP "$ETCD_PID"
got=""
for _ in $(seq 1 150); do
	got=$(gw_stale)
	[ "$got" = "stale heartbeat" ] && break
	sleep 0.1
done
expect heartbeat_stale "stale heartbeat" "$got"
# fail-static: what was allowed still is, what was denied still is
expect heartbeat_stale_still_enforced "delivered blocked" \
	"$(mg_tcp "$F" "$B" 10.99.0.2 8080 listen 10.99.0.1) $(mg_tcp "$F" "$B" 10.99.0.2 9090 listen 10.99.0.1)"
kill -CONT "$ETCD_PID"
for _ in $(seq 1 200); do
	got=$(gw_stale)
	[ "$got" = "synced -" ] && break
	sleep 0.1
done
expect heartbeat_fresh_again "synced -" "$got"

mg_daemon_stop
rc=$?
expect daemon_clean_exit 0 "$rc"
[ "$failed" -eq 0 ]
