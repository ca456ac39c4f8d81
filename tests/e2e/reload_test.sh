#!/usr/bin/env bash
# meshgate end-to-end test: reloads under continuous traffic. Numbered UDP
# datagrams flow through the gateway (net_af_packet ports between two
# network namespaces, the demo's identities and policies, plus an allow
# of UDP 9000 from the frontend to the backend) while the state is
# reloaded again and again, alternately with `meshgatectl reload` and
# SIGHUP. Every reload really changes it: the frontend's identity number
# flips between 65800 and 65900 (same labels; the old number is gone), and
# an extra policy that selects nobody in the traffic changes. So each reload
# compiles, changes the ipcache, swaps, and bumps the generation that makes
# the tracked flows be re-checked: a worker that saw the new ipcache with
# the old policy (or the reverse) for a moment would deny the frontend's
# allowed datagrams, which the receiver would then miss.
# Checks: no allowed datagram is lost (IPv4 and IPv6), no denied datagram
# ever passes, every reload took effect, and new TCP connections made
# during the reloads are all judged right.
#
# Then, with redis-server installed, a large reload (20000 more policies)
# under the same traffic while Redis changes: the daemon also syncs
# cluster-a from a private Redis, where a second frontend-side address
# (10.99.0.11) starts as a monitoring identity (denied to the backend).
# The large policies come through a named pipe that the config now names
# as one more policy source, so the reload's thread waits in its read
# until the test writes them: while it waits (whatever the machine's
# speed), `status` must answer and say a reload runs, and the address,
# moved to a frontend identity in Redis, must take effect. Then the
# policies are written, the reload compiles and publishes, and the move
# must still hold (no change lost). The datagram checks above cover this
# reload too.
#
# Usage: reload_test.sh [MESHGATE_BINARY [MESHGATECTL_BINARY]]  (root)
# Prints PASS/FAIL/SKIP lines "e2e-reload/<check>"; exits 1 if one failed.
# Traffic only to addresses inside the namespaces it creates.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

MESHGATE=${1:-$ROOT/build/app/meshgate/meshgate}
CTL=${2:-$(dirname "$MESHGATE")/../meshgatectl/meshgatectl}
PY=/usr/bin/python3
T=e2e-reload
# MG_RELOAD_WORKERS=2: two forwarding lcores and two queue pairs per port,
# so two workers read each published snapshot (names "e2e-reload-2w/").
WORKERS=${MG_RELOAD_WORKERS:-1}
case $WORKERS in
1) ;;
2) T=e2e-reload-2w ;;
*)
	echo "FAIL: $T: MG_RELOAD_WORKERS must be 1 or 2"
	exit 1
	;;
esac
RELOADS=${MG_RELOADS:-24}
RATE=500
# The reload loop takes LOOP_SECONDS; the large reload with Redis changes
# (when redis-server is installed) the LARGE_SECONDS after it.
LOOP_SECONDS=12
LARGE_SECONDS=10
REDIS=0
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && REDIS=1
SECONDS_OF_TRAFFIC=$((LOOP_SECONDS + REDIS * LARGE_SECONDS))
COUNT=$((RATE * SECONDS_OF_TRAFFIC))

CHECKS=(daemon_ready daemon_workers reloads_ok reloads_counted allowed4_no_loss allowed6_no_loss
	denied_none_passed tcp_during_reloads stats_denied stats_no_tx_full daemon_clean_exit)
LARGE_CHECKS=(kv_import redis_denied_before status_during_reload redis_applied_during_reload
	large_reload_ok redis_change_kept)

skip_all() {
	local c
	for c in "${CHECKS[@]}" "${LARGE_CHECKS[@]}"; do echo "SKIP: $T/$c: $1"; done
	exit 0
}
[ -x "$MESHGATE" ] || skip_all "no meshgate binary at $MESHGATE"
[ -x "$CTL" ] || skip_all "no meshgatectl binary at $CTL"
if ! reason=$(mg_can_netns); then
	skip_all "$reason"
fi

failed=0
pass() { echo "PASS: $T/$1"; }
fail() {
	echo "FAIL: $T/$1: $2"
	failed=1
}
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected $3, got $2"; fi; }

MG_NS_FRONT=mgrl-front-$$
MG_NS_BACK=mgrl-back-$$
MG_IF_IN=mgrli$$
MG_IF_OUT=mgrlo$$
MG_WORK=$(mktemp -d /tmp/meshgate-reload.XXXXXX)
PREFIX=mgrl-$$
on_exit() {
	mg_cleanup
	rm -rf "/var/run/dpdk/$PREFIX" "$MG_WORK"
}
trap on_exit EXIT
mg_topology_up || skip_all "could not create the namespaces"

# The demo's inputs, copied: the test edits its policy folder.
SOCK=$MG_WORK/meshgate.sock
mg_demo_config "$MG_WORK/conf" "$PREFIX" || skip_all "could not copy the demo's config"
if [ "$WORKERS" = 2 ]; then
	# two workers on this 2-core machine, the main lcore beside the first
	sed -i -e 's/"-l", "0-1"/"--lcores", "0@0,1@1,2@0"/' -e 's/qpairs=1/qpairs=2/g' \
		"$MG_WORK/conf/meshgate.yaml"
	grep -q '"--lcores", "0@0,1@1,2@0"' "$MG_WORK/conf/meshgate.yaml" ||
		skip_all "could not set two workers in the config copy"
fi
cat >>"$MG_WORK/conf/meshgate.yaml" <<YAML
control:
  socket: $SOCK
metrics:
  listen: 127.0.0.1:0
YAML
# The backend also accepts UDP 9000 from the frontend (the allowed flows);
# UDP 8080 stays denied.
sed -i 's/^            - port: "8080"$/            - port: "9000"\n              protocol: UDP\n            - port: "8080"/' \
	"$MG_WORK/conf/policies/backend.yaml"
grep -q '"9000"' "$MG_WORK/conf/policies/backend.yaml" || skip_all "could not edit the policy copy"
# frontend_identity ID: the frontend's identity gets number ID (the old
# number disappears), and its endpoint carries it.
frontend_identity() {
	sed -i -E "s/name: \"65[89]00\"/name: \"$1\"/" "$MG_WORK/conf/identities.yaml"
	sed -i -E "s/identity: \{id: 65[89]00\}/identity: {id: $1}/" "$MG_WORK/conf/endpoints.yaml"
	grep -q "name: \"$1\"" "$MG_WORK/conf/identities.yaml" &&
		grep -q "identity: {id: $1}" "$MG_WORK/conf/endpoints.yaml"
}
EXTRA=$MG_WORK/conf/policies/extra.yaml
# extra_policy N: a policy that selects an app nobody has, different each time.
extra_policy() {
	cat >"$EXTRA" <<YAML
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: extra-$1, namespace: demo}
spec:
  endpointSelector: {matchLabels: {app: nobody-$1}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
    toPorts: [{ports: [{port: "$((1000 + $1))", protocol: TCP}]}]
YAML
}
extra_policy 0

# The private Redis of the large reload's phase: a unix socket in the
# scratch folder only, no persistence. cluster-a's config, canaries and
# two identities (a frontend and a monitoring one, numbers the files do
# not use) come from `meshgatectl kv import`, with 10.99.0.11 as monitoring.
if [ $REDIS = 1 ]; then
	mg_redis_start || mg_log "redis-server did not answer on $REDIS_SOCK within 10 s"
	kvctl() {
		local sub=$1
		shift
		"$CTL" kv "$sub" --redis "$REDIS_URL" --cluster cluster-a \
			--functions "$ROOT/conf/redis/meshgate.lua" "$@" </dev/null
	}
	cat >"$MG_WORK/kv.yaml" <<YAML
apiVersion: cilium.io/v2
kind: CiliumIdentity
metadata: {name: "65810"}
security-labels:
  k8s:app: frontend
  k8s:io.kubernetes.pod.namespace: demo
  k8s:io.cilium.k8s.policy.cluster: cluster-a
---
apiVersion: cilium.io/v2
kind: CiliumIdentity
metadata: {name: "65811"}
security-labels:
  k8s:app: monitoring
  k8s:io.kubernetes.pod.namespace: demo
  k8s:io.cilium.k8s.policy.cluster: cluster-a
---
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: probe-1, namespace: demo}
status:
  identity: {id: 65811}
  networking:
    addressing: [{ipv4: 10.99.0.11}]
    node: 192.168.99.1
YAML
	if out=$(kvctl import --cluster-id 1 "$MG_WORK/kv.yaml" 2>&1); then
		pass kv_import
	else
		fail kv_import "meshgatectl kv import: $out"
		REDIS=0
	fi
	ip -n "$MG_NS_FRONT" addr add 10.99.0.11/24 dev veth0 ||
		{ fail kv_import "could not add 10.99.0.11 to the frontend's namespace"; REDIS=0; }
	cat >>"$MG_WORK/conf/meshgate.yaml" <<YAML
kvstore:
  redis: "$REDIS_URL"
  clusters: [cluster-a]
  sync_timeout: 10
  block_ms: 5
YAML
else
	for c in "${LARGE_CHECKS[@]}"; do echo "SKIP: $T/$c: redis-server is not installed"; done
fi

if ! mg_daemon_start "$MESHGATE" "$MG_WORK/conf/meshgate.yaml"; then
	fail daemon_ready "$(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
	for c in "${CHECKS[@]:1}"; do echo "FAIL: $T/$c: the daemon did not start"; done
	exit 1
fi
pass daemon_ready
if grep -q "ready: 2 ports, $WORKERS forwarding lcore" "$MG_WORK/meshgate.err"; then
	pass daemon_workers
else
	fail daemon_workers "the daemon does not say it forwards on $WORKERS lcore(s)"
fi

# Receivers in the backend: UDP 9000 (allowed from the frontend, v4 and v6)
# and UDP 8080 (denied).
RECV_PIDS=()
recv() {
	local ns=$1 addr=$2 port=$3 out=$4 secs=$5
	ip netns exec "$ns" $PY "$HERE/udp_seq.py" recv "$addr" "$port" --seconds "$secs" \
		>"$out" 2>&1 &
	MG_BG_PIDS+=($!)
	RECV_PIDS+=($!)
	mg_wait_grep "$out" '^ready' 10
}
recv "$MG_NS_BACK" 10.99.0.2 9000 "$MG_WORK/r4" $((SECONDS_OF_TRAFFIC + 30)) &&
	recv "$MG_NS_BACK" fd00:99::2 9000 "$MG_WORK/r6" $((SECONDS_OF_TRAFFIC + 30)) &&
	recv "$MG_NS_BACK" 10.99.0.2 8080 "$MG_WORK/rd" $((SECONDS_OF_TRAFFIC + 4)) ||
	fail allowed4_no_loss "receivers did not start"

send() {
	ip netns exec "$MG_NS_FRONT" $PY "$HERE/udp_seq.py" send "$@" >/dev/null 2>&1 &
	MG_BG_PIDS+=($!)
}
send 10.99.0.2 9000 --count $COUNT --rate $RATE --tag allowed4
send fd00:99::2 9000 --count $COUNT --rate $RATE --tag allowed6
send 10.99.0.2 8080 --count $COUNT --rate $RATE --tag denied

# st_field EXPR: one field of `status -o json` (s is the status), "" if it did not answer.
st_field() {
	"$CTL" --socket "$SOCK" status -o json 2>/dev/null | $PY -c "import json,sys; s=json.load(sys.stdin); print($1)" 2>/dev/null
}
# Reloads spread over the traffic: odd ones through the control socket
# (synchronous: the exit status says whether it took), even ones by SIGHUP.
ctl_fail=0
tcp_bad=0
gap=$(awk -v s=$LOOP_SECONDS -v n="$RELOADS" 'BEGIN { printf "%.3f", (s - 2) / n }')
sleep 1
for i in $(seq 1 "$RELOADS"); do
	extra_policy "$i"
	frontend_identity $((i % 2 ? 65900 : 65800)) || fail reloads_ok "could not edit the endpoints"
	if [ $((i % 2)) -eq 1 ]; then
		if ! out=$("$CTL" --socket "$SOCK" reload 2>&1); then
			ctl_fail=$((ctl_fail + 1))
			mg_log "reload $i: $out"
		fi
	else
		# The next edit waits until this reload has read the files (its
		# count moves): editing them meanwhile could hand it the new
		# identities with the old endpoints.
		before=$(st_field 's["reloads"]["ok"] + s["reloads"]["failed"]')
		kill -HUP "$MG_DAEMON_PID"
		for _ in $(seq 1 250); do
			[ "$(st_field 's["reloads"]["ok"] + s["reloads"]["failed"]')" -gt "${before:-0}" ] \
				2>/dev/null && break
			sleep 0.02
		done
	fi
	if [ $((i % 6)) -eq 0 ]; then
		# A new connection while reloads go on: the allowed one gets through.
		r=$(mg_tcp "$MG_NS_FRONT" "$MG_NS_BACK" 10.99.0.2 8080)
		[ "$r" = delivered ] || { tcp_bad=$((tcp_bad + 1)); mg_log "tcp during reload $i: $r"; }
	else
		sleep "$gap"
	fi
done
check reloads_ok "$ctl_fail" 0
check tcp_during_reloads "$tcp_bad" 0

# ip_identity ADDR: the identity the daemon's ipcache gives ADDR now.
ip_identity() {
	"$CTL" --socket "$SOCK" ip get "$1" -o json 2>/dev/null |
		$PY -c 'import json,sys; print(json.load(sys.stdin)["identity"])' 2>/dev/null
}
if [ $REDIS = 1 ]; then
	# Before: 10.99.0.11 is monitoring, which the backend does not accept.
	r=$(mg_tcp "$MG_NS_FRONT" "$MG_NS_BACK" 10.99.0.2 8080 listen 10.99.0.11)
	check redis_denied_before "$r" blocked
	# The large reload: 20000 more policies (selecting nobody in the
	# traffic), read from a named pipe the config now lists as a source.
	HOLD=$MG_WORK/hold.yaml
	mkfifo "$HOLD"
	sed -i "s|^    - {cluster: cluster-a, path: policies/}\$|&\n    - {cluster: cluster-a, path: $HOLD}|" \
		"$MG_WORK/conf/meshgate.yaml"
	grep -q "path: $HOLD}" "$MG_WORK/conf/meshgate.yaml" || mg_log "could not add the pipe as a source"
	$PY - "$MG_WORK/large.yaml" <<'PYEOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        f.write("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                "metadata: {name: large-%d, namespace: ns%d}\nspec:\n"
                "  endpointSelector: {matchLabels: {app: large-%d}}\n"
                "  ingress:\n  - fromEndpoints: [{matchLabels: {app: large-%d}}]\n"
                "    toPorts: [{ports: [{port: \"%d\", protocol: TCP}]}]\n"
                % (i, i % 100, i, i + 1, 1000 + i % 1000))
PYEOF
	ok_before=$(st_field 's["reloads"]["ok"]')
	kill -HUP "$MG_DAEMON_PID"
	# status answers while the reload waits for its policies, and says so
	running=""
	for _ in $(seq 1 100); do
		running=$(st_field 's["reloads"]["running"]')
		[ "$running" = True ] && break
		sleep 0.05
	done
	check status_during_reload "$running" True
	# a Redis change meanwhile: applied while the reload still waits
	kvctl put-ip --ip 10.99.0.11 --identity 65810 >/dev/null 2>&1 ||
		mg_log "kv put-ip failed"
	id=""
	for _ in $(seq 1 200); do
		id=$(ip_identity 10.99.0.11)
		[ "$id" = 65810 ] && break
		sleep 0.02
	done
	still=$(st_field 's["reloads"]["running"]')
	check redis_applied_during_reload "$id/$still" 65810/True
	# the policies, and the reload goes on (a reload that never opened the
	# pipe leaves the writer to its timeout)
	timeout 30 cat "$MG_WORK/large.yaml" >"$HOLD" || mg_log "nobody read the policies from $HOLD"
	# the reload publishes, and the change stays (the new policy knows 65810)
	ok_after=""
	for _ in $(seq 1 600); do
		[ "$(st_field 's["reloads"]["running"]')" = False ] &&
			ok_after=$(st_field 's["reloads"]["ok"]') && break
		sleep 0.1
	done
	check large_reload_ok "$ok_after/$(st_field 's["reloads"]["failed"]')" \
		"$((ok_before + 1))/0"
	check redis_change_kept "$(ip_identity 10.99.0.11)/$(mg_tcp "$MG_NS_FRONT" "$MG_NS_BACK" \
		10.99.0.2 8080 listen 10.99.0.11)" 65810/delivered
fi

# The receivers stop by themselves: the allowed ones 1 s after the
# sender's end marker, the backend's (which must get nothing) at its deadline.
for p in "${RECV_PIDS[@]}"; do
	wait "$p" 2>/dev/null
done
got() { sed -n "s/^got $1 \([0-9]*\) \([0-9]*\) missing \(.*\)/\1 \2 \3/p" "$MG_WORK/$2"; }
read -r n4 t4 m4 <<<"$(got allowed4 r4)"
read -r n6 t6 m6 <<<"$(got allowed6 r6)"
if [ "${n4:-0}" = "$COUNT" ] && [ "${t4:-}" = "$COUNT" ]; then pass allowed4_no_loss; else
	fail allowed4_no_loss "received ${n4:-0} of $COUNT (missing: ${m4:-all})"
fi
if [ "${n6:-0}" = "$COUNT" ] && [ "${t6:-}" = "$COUNT" ]; then pass allowed6_no_loss; else
	fail allowed6_no_loss "received ${n6:-0} of $COUNT (missing: ${m6:-all})"
fi
if grep -q '^got denied' "$MG_WORK/rd"; then
	fail denied_none_passed "$(grep '^got denied' "$MG_WORK/rd")"
else
	pass denied_none_passed
fi

# Every reload counted once: SIGHUPs are taken in turn, so wait for them.
want_ok=$((RELOADS + REDIS))
ok=""
for _ in $(seq 1 100); do
	ok=$("$CTL" --socket "$SOCK" status -o json 2>/dev/null |
		$PY -c 'import json,sys; s=json.load(sys.stdin); print(s["reloads"]["ok"], s["reloads"]["failed"], s["policy"]["revision"])')
	[ "${ok%% *}" -ge "$want_ok" ] 2>/dev/null && break
	sleep 0.1
done
# Signals that arrive while a reload runs merge into one: at least half
# (the synchronous ones) and at most all; none failed; revision = 1 + ok.
read -r nok nfail rev <<<"$ok"
if [ "${nfail:-x}" = 0 ] && [ "${nok:-0}" -ge $((RELOADS / 2)) ] && [ "${nok:-0}" -le "$want_ok" ] &&
	[ "${rev:-0}" = $((nok + 1)) ]; then
	pass reloads_counted
else
	fail reloads_counted "status says ok=${nok:-?} failed=${nfail:-?} revision=${rev:-?}"
fi

mg_daemon_stop
rc=$?
check daemon_clean_exit "$rc" 0
den=$(mg_stat "$MG_WORK/stats.json" 's["drops"]["policy_denied_ingress"]')
if [ "${den:-0}" -ge "$COUNT" ] 2>/dev/null; then pass stats_denied; else
	fail stats_denied "policy_denied_ingress ${den:-?} < $COUNT"
fi
check stats_no_tx_full "$(mg_stat "$MG_WORK/stats.json" 's["drops"]["tx_queue_full"]')" 0
# A lost datagram says where it went: the drops by reason and what the
# ports missed (a worker starved of CPU misses frames in the ring).
if [ $failed = 1 ]; then
	echo "  drops: $(mg_stat "$MG_WORK/stats.json" \
		'{k: v for k, v in s["drops"].items() if v}')"
	echo "  ports: $(mg_stat "$MG_WORK/stats.json" \
		'{n: {"rx_missed": p["rx_missed"], "rx_nombuf": p["rx_nombuf"]} for n, p in s["ports"].items()}')"
	grep -E "error|warn" "$MG_WORK/meshgate.err" | tail -n 10 | sed 's/^/  | /'
fi
exit $failed
