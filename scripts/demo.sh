#!/usr/bin/env bash
# meshgate demo: the gateway enforcing Cilium policy on real traffic
# between two network namespaces. Run as root on Debian 12:
#
#   ./scripts/demo.sh
#
# It installs what is missing (scripts/setup.sh), builds build/, creates
#   demo-front: frontend 10.99.0.1, database replica 10.99.0.5
#                                                (gateway port "inside", mgdemo-in)
#   demo-back:  backend 10.99.0.2, database 10.99.0.3, monitoring 10.99.0.4
#                                                (gateway port "outside", mgdemo-out)
# starts meshgate with conf/examples/demo/meshgate.yaml (identities,
# endpoints and two CiliumNetworkPolicies beside it: the backend's ingress
# and egress, the database's ingress), makes real connections, prints what
# was expected and what happened, then the gateway's final counters, and
# removes everything it created (also on failure or Ctrl-C). Exits 0 iff
# every outcome matched the expectation.
#
# The backend may open connections only to the database, yet it answers
# the frontend: connection tracking passes the replies of connections the
# policy allowed, without asking the policy again.
#
# With MG_DEMO_REDIS=redis://HOST:PORT the identities and endpoints go to
# that Redis instead (`meshgatectl kv import`, cluster cluster-a, id 1) and
# the gateway learns them from there: its config has a kvstore section and
# no identity or endpoint files (docker/compose.yaml runs it this way).
# MG_DEMO_REDIS_FILLED=1 with it: the data is in Redis already (written
# there by meshgate-replicator from cluster-a's etcd: docker/compose.yaml),
# nothing is imported.
# MG_DEMO_SKIP_SETUP=1 skips scripts/setup.sh (an image that has it all).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh

CONF=conf/examples/demo/meshgate.yaml
BUILD=${MG_BUILD_DIR:-build}
MESHGATE=$BUILD/app/meshgate/meshgate
# Fixed names: conf/examples/demo/meshgate.yaml names the interfaces.
MG_NS_FRONT=demo-front
MG_NS_BACK=demo-back
MG_IF_IN=mgdemo-in
MG_IF_OUT=mgdemo-out

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (it creates network namespaces)" >&2
	exit 1
fi

echo "== setup and build"
if [ "${MG_DEMO_SKIP_SETUP:-0}" != 1 ]; then
	bash scripts/setup.sh || exit 1
fi
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" >/dev/null || exit 1
fi
ninja -C "$BUILD" >/dev/null || { ninja -C "$BUILD" | tail -n 30; exit 1; }
if ! reason=$(mg_can_netns); then
	echo "demo: $reason" >&2
	exit 1
fi

MG_WORK=$(mktemp -d /tmp/meshgate-demo.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
	mg_cleanup
	rm -rf /var/run/dpdk/meshgate-demo /run/meshgate-demo "$MG_WORK"
}
# Leftovers of an earlier run that was killed hard: they are ours by name.
mg_cleanup
trap on_exit EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

echo "== namespaces: $MG_NS_FRONT ($MG_IF_IN) <-> meshgate <-> $MG_NS_BACK ($MG_IF_OUT)"
mg_topology_up || { echo "demo: could not create the namespaces" >&2; exit 1; }

if [ -n "${MG_DEMO_REDIS:-}" ]; then
	if [ "${MG_DEMO_REDIS_FILLED:-0}" = 1 ]; then
		echo "== identities and endpoints: cluster-a's, in Redis at $MG_DEMO_REDIS already"
	else
		echo "== identities and endpoints into Redis at $MG_DEMO_REDIS"
		"$BUILD/app/meshgatectl/meshgatectl" kv import --redis "$MG_DEMO_REDIS" \
			--cluster cluster-a --cluster-id 1 --prune \
			conf/examples/demo/identities.yaml conf/examples/demo/endpoints.yaml ||
			exit 1
	fi
	# The demo config with a kvstore section instead of the local files.
	sed -e '/^identities:/,$d' "$CONF" >"$MG_WORK/meshgate.yaml"
	cat >>"$MG_WORK/meshgate.yaml" <<YAML
kvstore:
  redis: $MG_DEMO_REDIS
  clusters: [cluster-a]
  sync_timeout: 20
YAML
	sed -i "s|path: policies/|path: $PWD/conf/examples/demo/policies/|" "$MG_WORK/meshgate.yaml"
	CONF=$MG_WORK/meshgate.yaml
fi

echo "== checking the config"
"$MESHGATE" -c "$CONF" --check-config || exit 1

echo "== starting meshgate"
if ! mg_daemon_start "$MESHGATE" "$CONF"; then
	sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 30
	exit 1
fi
grep "ready" "$MG_WORK/meshgate.err" | sed 's/^/  /'

cat <<'TXT'
== policies (conf/examples/demo/policies/)
  backend  ingress: from frontend on TCP 8080
  backend  egress:  to database on TCP 5432
  database ingress: from backend on TCP 5432
  (frontend and monitoring are not selected by any policy: open)
  Replies of allowed connections pass by connection tracking.
== traffic
TXT

F=$MG_NS_FRONT
B=$MG_NS_BACK
rows=()
bad=0
# row LABEL EXPECTED ACTUAL-WORD: map the helpers' words to allowed/denied.
row() {
	local label=$1 want=$2 got=$3 verdict mark
	case $got in
	delivered | replied | exchanged) verdict=allowed ;;
	blocked) verdict=denied ;;
	refused) verdict="passed (refused by the host)" ;;
	*) verdict="error ($got)" ;;
	esac
	if [ "$verdict" = "$want" ]; then mark=ok; else mark=MISMATCH; bad=$((bad + 1)); fi
	rows+=("$(printf '  %-50s %-9s %-9s %s' "$label" "$want" "$verdict" "$mark")")
	printf '  %-50s %s\n' "$label" "$verdict"
}

# "data both ways": a line from the client, a line and 200000 bytes back.
row "frontend -> backend   TCP 8080, data both ways" allowed \
	"$(mg_exchange "$F" "$B" 10.99.0.2 8080)"
row "frontend -> backend   TCP 8080 (IPv6)" allowed "$(mg_exchange "$F" "$B" fd00:99::2 8080)"
row "frontend -> database  TCP 5432" denied "$(mg_tcp "$F" "$B" 10.99.0.3 5432)"
row "frontend -> backend   TCP 9090" denied "$(mg_tcp "$F" "$B" 10.99.0.2 9090 nolisten)"
row "backend -> frontend   TCP 7070 (new connection)" denied \
	"$(mg_tcp "$B" "$F" 10.99.0.1 7070 listen 10.99.0.2)"
row "backend -> database-1 TCP 5432, data both ways" allowed \
	"$(mg_exchange "$B" "$F" 10.99.0.5 5432 10.99.0.2)"
row "frontend -> backend   ping" denied "$(mg_ping "$F" 10.99.0.2)"
row "backend -> frontend   ping" denied "$(mg_ping "$B" 10.99.0.1 10.99.0.2)"
row "monitoring -> frontend ping" allowed "$(mg_ping "$B" 10.99.0.1 10.99.0.4)"

# The running gateway explains itself over its control socket.
CTL=$BUILD/app/meshgatectl/meshgatectl
SOCK=/run/meshgate-demo/meshgate.sock
echo "== why is frontend -> database denied?  meshgatectl policy trace (asks the running gateway)"
"$CTL" --socket "$SOCK" policy trace --src 10.99.0.1 --dst 10.99.0.3 --proto tcp --dport 5432 |
	sed 's/^/  /'
echo "== what does it drop?  meshgatectl monitor --type drop, while the frontend pings the backend"
timeout 4 "$CTL" --socket "$SOCK" monitor --type drop >"$MG_WORK/monitor.txt" 2>&1 &
mon=$!
sleep 0.5
mg_ping "$F" 10.99.0.2 >/dev/null
wait "$mon" 2>/dev/null
head -n 3 "$MG_WORK/monitor.txt" | sed 's/^/  /'
echo "== meshgatectl status"
"$CTL" --socket "$SOCK" status | sed 's/^/  /' | head -n 20

echo "== stopping meshgate (SIGTERM)"
mg_daemon_stop
rc=$?
[ $rc -eq 0 ] || { echo "demo: meshgate exited with status $rc"; bad=$((bad + 1)); }

echo
printf '  %-50s %-9s %-9s\n' "connection" "expected" "actual"
printf '%s\n' "${rows[@]}"
echo
echo "== meshgate's final counters"
sed 's/^/  /' "$MG_WORK/meshgate.out"
echo
if [ $bad -eq 0 ]; then
	echo "demo: every outcome matched the policy"
	exit 0
fi
echo "demo: $bad outcome(s) did not match (daemon log: see above)"
sed 's/^/  | /' "$MG_WORK/meshgate.err" | tail -n 20
exit 1
