#!/usr/bin/env bash
# meshgate end-to-end test: real TCP and ICMP, IPv4 and IPv6, between two
# network namespaces joined only through the daemon (net_af_packet ports
# on veth pairs, wire mode), with the demo's identities, endpoints and
# policies (conf/examples/demo/):
#   frontend 10.99.0.1 (inside) -- meshgate -- backend 10.99.0.2, database
#   10.99.0.3, monitoring 10.99.0.4 (outside); backend accepts frontend on
#   TCP 8080 only, database accepts backend on TCP 5432 only.
#
# Usage: netns_test.sh [MESHGATE_BINARY]   (root; default build/app/meshgate/meshgate)
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

CHECKS=(daemon_ready tcp4_allowed tcp4_denied_with_listener tcp4_denied_not_refused
	icmp4_denied icmp4_allowed tcp6_allowed tcp6_denied icmp6_allowed
	daemon_clean_exit stats_allowed stats_denied_ingress stats_arp_nd stats_no_malformed)

failed=0
pass() { echo "PASS: e2e/$1"; }
fail() {
	echo "FAIL: e2e/$1: $2"
	failed=$((failed + 1))
}
# expect NAME WANTED GOT: one result line.
expect() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected $2, got $3"; fi
}

if ! reason=$(mg_can_netns); then
	for c in "${CHECKS[@]}"; do echo "SKIP: e2e/$c: $reason"; done
	exit 0
fi
if [ ! -x "$MESHGATE" ]; then
	fail daemon_ready "no daemon at $MESHGATE (build it first)"
	exit 1
fi

MG_NS_FRONT="mgt-$$-front"
MG_NS_BACK="mgt-$$-back"
MG_IF_IN="mgt$$i"
MG_IF_OUT="mgt$$o"
MG_WORK=$(mktemp -d /tmp/meshgate-e2e.XXXXXX)
PREFIX="mgt$$e"
on_exit() {
	mg_cleanup
	rm -rf "/var/run/dpdk/$PREFIX"
	rm -rf "$MG_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

if ! mg_topology_up; then
	fail daemon_ready "could not build the namespaces and veth pairs"
	exit 1
fi

cat >"$MG_WORK/meshgate.yaml" <<CONF
version: 1
eal: ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-telemetry",
      "--file-prefix", "$PREFIX",
      "--vdev=net_af_packet0,iface=$MG_IF_IN,qpairs=1",
      "--vdev=net_af_packet1,iface=$MG_IF_OUT,qpairs=1"]
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
    - {cluster: cluster-a, path: "$DEMO/policies/"}
identities:
  files: ["$DEMO/identities.yaml"]
ipcache:
  files: ["$DEMO/endpoints.yaml"]
CONF

if ! mg_daemon_start "$MESHGATE" "$MG_WORK/meshgate.yaml"; then
	fail daemon_ready "the daemon did not become ready"
	sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 30
	exit 1
fi
pass daemon_ready

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
	for c in stats_allowed stats_denied_ingress stats_arp_nd stats_no_malformed; do
		fail "$c" "no stats file written at $S"
	done
else
	echo "  stats: $(mg_stat "$S" 's["totals"]')"
	expect stats_allowed True "$(mg_stat "$S" 's["verdicts"]["allowed"] > 0 and s["totals"]["allowed"] == s["verdicts"]["allowed"]')"
	# Four denied attempts above, each retried by the kernel: at least
	# four drops, all for the destination's ingress policy.
	expect stats_denied_ingress True "$(mg_stat "$S" 's["drops"]["policy_denied_ingress"] >= 4 and s["verdicts"]["denied_ingress"] == s["drops"]["policy_denied_ingress"] and s["drops"]["policy_denied_egress"] == 0')"
	expect stats_arp_nd True "$(mg_stat "$S" 's["totals"]["arp"] > 0 and s["totals"]["nd"] > 0')"
	# Real kernel traffic is never malformed.
	expect stats_no_malformed "{}" "$(mg_stat "$S" '{k: v for k, v in s["drops"].items() if v and k not in ("policy_denied_ingress", "policy_denied_egress")}')"
fi

[ $failed -eq 0 ]
