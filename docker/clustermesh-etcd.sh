#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The compose demo's remote cluster: an etcd set up as cluster-a's
# clustermesh-apiserver runs it (tests/etcd/etcd_env.sh: a test CA, TLS
# with client certificates, auth with the users root and remote, remote
# read-only on cilium/), holding the demo's identities and endpoints
# (conf/examples/demo/) in Cilium's etcd formats, loaded with etcdctl.
#
#   docker/clustermesh-etcd.sh DIR [REDIS_URL]
#
# Writes into DIR:
#   etcd/                      etcd_env.sh's data, certificates, env and log
#   clustermesh/cluster-a      cluster-a's etcd config as Cilium's clustermesh
#                              secret holds it, with the certificates beside it
#                              (cluster-a.etcd-client-ca.crt, .crt, .key)
#   meshgate-replicator.yaml   the replicator's config (cluster site, id 2;
#                              Redis REDIS_URL, default redis://redis:6379)
#   ready                      once all of the above is in place
# then renews cilium/.heartbeat every 10 s for as long as etcd runs (as the
# clustermesh-apiserver does). MG_CLUSTERMESH_ONCE=1: return after setup,
# etcd left running (stop it with tests/etcd/etcd_env.sh stop DIR/etcd).
# etcd listens on 127.0.0.1 only (its certificate names that address): the
# replicator shares its network namespace (docker/compose.yaml).
set -euo pipefail

dir=${1:?usage: clustermesh-etcd.sh DIR [REDIS_URL]}
redis=${2:-redis://redis:6379}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir/ready"

bash "$root/tests/etcd/etcd_env.sh" start "$dir/etcd" cluster-a >/dev/null
# shellcheck disable=SC1091 # written by etcd_env.sh
. "$dir/etcd/env"

ctl() {
	env -u ETCDCTL_API etcdctl --endpoints="$ETCD_ENDPOINT" --cacert="$ETCD_CA" \
		--cert="$ETCD_ROOT_CERT" --key="$ETCD_ROOT_KEY" --dial-timeout=3s \
		--command-timeout=5s "$@"
}
put() { ctl put "$1" -- "$2" >/dev/null; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# pkg/labels SortedList of a demo pod's identity
labels() {
	printf 'k8s:app=%s;k8s:io.cilium.k8s.policy.cluster=cluster-a;' "$1"
	printf 'k8s:io.cilium.k8s.policy.serviceaccount=default;'
	printf 'k8s:io.kubernetes.pod.namespace=demo;'
}
# IPIdentityPair as Cilium marshals it (field order, Mask null)
ip_pair() {
	printf '{"IP":"%s","Mask":null,"HostIP":"%s","ID":%s,"Key":0,"Metadata":"",' "$1" "$4" "$2"
	printf '"K8sNamespace":"demo","K8sPodName":"%s","K8sServiceAccount":"default"}' "$3"
}

put cilium/.has-cluster-config true
put cilium/cluster-config/cluster-a \
	'{"id":1,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255}}'
put cilium/state/identities/v1/id/65800 "$(labels frontend)"
put cilium/state/identities/v1/id/65801 "$(labels backend)"
put cilium/state/identities/v1/id/65802 "$(labels database)"
put cilium/state/identities/v1/id/65803 "$(labels monitoring)"
# the pods of conf/examples/demo/endpoints.yaml: IP ID pod node
while read -r ip id pod node; do
	put "cilium/state/ip/v1/default/$ip" "$(ip_pair "$ip" "$id" "$pod" "$node")"
done <<'PODS'
10.99.0.1 65800 frontend-6d9f7c5b8-4xk2p 192.168.99.1
fd00:99::1 65800 frontend-6d9f7c5b8-4xk2p 192.168.99.1
10.99.0.2 65801 backend-7b4c9d6f5-m2n8q 192.168.99.2
fd00:99::2 65801 backend-7b4c9d6f5-m2n8q 192.168.99.2
10.99.0.3 65802 database-0 192.168.99.2
fd00:99::3 65802 database-0 192.168.99.2
10.99.0.4 65803 monitoring-5c8d7f6b4-z9w3r 192.168.99.2
fd00:99::4 65803 monitoring-5c8d7f6b4-z9w3r 192.168.99.2
10.99.0.5 65802 database-1 192.168.99.1
fd00:99::5 65802 database-1 192.168.99.1
PODS
put cilium/.heartbeat "$(now)"
put cilium/synced/cluster-a/cilium/state/identities/v1 "$(now)"
put cilium/synced/cluster-a/cilium/state/ip/v1 "$(now)"

# Cilium's clustermesh secret: the config, certificate paths relative to it
mesh=$dir/clustermesh
mkdir -p "$mesh"
cp "$ETCD_CA" "$mesh/cluster-a.etcd-client-ca.crt"
cp "$ETCD_REMOTE_CERT" "$mesh/cluster-a.etcd-client.crt"
cp "$ETCD_REMOTE_KEY" "$mesh/cluster-a.etcd-client.key"
chmod 600 "$mesh/cluster-a.etcd-client.key"
cat >"$mesh/cluster-a.tmp" <<EOF
endpoints:
- $ETCD_ENDPOINT
trusted-ca-file: cluster-a.etcd-client-ca.crt
cert-file: cluster-a.etcd-client.crt
key-file: cluster-a.etcd-client.key
EOF
mv "$mesh/cluster-a.tmp" "$mesh/cluster-a"

cat >"$dir/meshgate-replicator.yaml" <<EOF
version: 1
cluster: {name: site, id: 2}
clustermesh: {config_dir: clustermesh, rescan_interval: 2}
redis: $redis
redis_functions: $root/conf/redis/meshgate.lua
control: {socket: replicator.sock}
metrics: {listen: 127.0.0.1:9471}
EOF
touch "$dir/ready"
echo "clustermesh-etcd: cluster-a's etcd at $ETCD_ENDPOINT (pid $ETCD_PID), config in $mesh"

[ "${MG_CLUSTERMESH_ONCE:-0}" = 1 ] && exit 0
while kill -0 "$ETCD_PID" 2>/dev/null; do
	sleep 10
	put cilium/.heartbeat "$(now)" || true
done
echo "clustermesh-etcd: etcd exited; last lines of its log:" >&2
tail -n 20 "$ETCD_LOG" >&2
exit 1
