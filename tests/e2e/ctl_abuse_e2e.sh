#!/usr/bin/env bash
# meshgate end-to-end test: the control socket against clients that do not
# play along, while the gateway forwards (and drops) a flood of real frames
# between two network namespaces (net_af_packet ports, the demo's
# identities and policies, one worker). control.idle_timeout is 2 s; the
# socket's group is nogroup, so uid 65534 may connect and read.
#
#  1. Monitors that never read. A UDP flood from the frontend to the
#     backend's port 9 (denied: every frame is a drop, and so a monitor
#     event) runs while two subscribers of every event stop reading: a raw
#     connection that reads nothing after the ok reply, and `meshgatectl
#     monitor | sleep` (a paused pager). Meanwhile `meshgatectl status` and
#     `reload` must answer within 5 s, a SIGHUP reload must take effect
#     within 5 s, both stuck subscribers must be disconnected (status:
#     control.closed_stuck) and their lost events counted (monitor.dropped),
#     and a monitor that reads still gets drop events.
#  2. Readers filling the table. uid 65534 opens control.max_clients (16)
#     connections and keeps them busy: the last control.admin_reserve (2)
#     are refused ("too many clients"), root's `reload` and `status` still
#     work, and uid 65534's `meshgatectl status` says "too many clients".
#  3. Shutdown whatever the clients do: with a stuck subscriber, 15 idle
#     connections and the flood still on, SIGTERM ends the daemon within
#     5 s, cleanly.
#
# Usage: ctl_abuse_e2e.sh [MESHGATE_BINARY [MESHGATECTL_BINARY]]  (root)
# Prints PASS/FAIL/SKIP lines "e2e-ctl-abuse/<check>"; exits 1 if one failed.
# Traffic only to addresses inside the namespaces it creates, and to the
# daemon's unix socket.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

MESHGATE=${1:-$ROOT/build/app/meshgate/meshgate}
CTL=${2:-$(dirname "$MESHGATE")/../meshgatectl/meshgatectl}
PY=/usr/bin/python3
T=e2e-ctl-abuse
NOBODY=65534
NOGROUP=65534
IDLE=2         # control.idle_timeout, seconds
MAX_CLIENTS=16 # control.max_clients (the default)
RESERVE=2      # control.admin_reserve (the default)
ANSWER=5       # seconds a command may take under the flood

CHECKS=(daemon_ready flood_running stuck_subscribed status_under_flood reload_under_flood
	sighup_under_flood stuck_raw_closed stuck_counted monitor_loss_counted
	reading_monitor_gets_events
	reserve_readers_capped root_reload_when_full root_status_when_full reader_told_busy
	sigterm_bounded daemon_clean_exit)

skip_all() {
	local c
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $1"; done
	exit 0
}
[ -x "$MESHGATE" ] || skip_all "no meshgate binary at $MESHGATE"
[ -x "$CTL" ] || skip_all "no meshgatectl binary at $CTL"
[ -x "$PY" ] || skip_all "no $PY"
command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is not installed (util-linux)"
command -v dpdk-testpmd >/dev/null 2>&1 || skip_all "dpdk-testpmd is not installed (package dpdk)"
getent group nogroup >/dev/null 2>&1 || skip_all "no group nogroup"
if ! reason=$(mg_can_netns); then
	skip_all "$reason"
fi

failed=0
pass() { echo "PASS: $T/$1"; }
fail() {
	echo "FAIL: $T/$1: $2"
	failed=1
}

MG_NS_FRONT=mgca-front-$$
MG_NS_BACK=mgca-back-$$
MG_IF_IN=mgcai$$
MG_IF_OUT=mgcao$$
MG_WORK=$(mktemp -d /tmp/meshgate-ctlabuse.XXXXXX)
PREFIX=mgca-$$
on_exit() {
	mg_cleanup
	rm -rf "/var/run/dpdk/$PREFIX" "/var/run/dpdk/$PREFIX-gen" "$MG_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
mg_topology_up || skip_all "could not create the namespaces"

# uid 65534 must reach the socket (x on the folder) and run its own copies
# of meshgatectl and the client script.
chmod 0711 "$MG_WORK"
install -m 0755 "$CTL" "$MG_WORK/meshgatectl"
install -m 0755 "$HERE/ctl_clients.py" "$MG_WORK/ctl_clients.py"
NCTL=$MG_WORK/meshgatectl
CLIENTS=$MG_WORK/ctl_clients.py

SOCK=$MG_WORK/meshgate.sock
CFG=$MG_WORK/conf/meshgate.yaml
mg_demo_config "$MG_WORK/conf" "$PREFIX" || skip_all "could not copy the demo's config"
# Pods carry many labels in production (app.kubernetes.io/*, team, tier,
# pod-template-hash, ...); here the flood's source and destination do, so
# that every event costs the control thread what it would there.
labels=""
for i in $(seq 1 24); do labels="$labels\\n  k8s:example.com/label-$i: value-$i"; done
sed -i -e "s#^  k8s:app: \(frontend\|backend\)\$#&$labels#" "$MG_WORK/conf/identities.yaml"
cat >>"$CFG" <<YAML
control:
  socket: $SOCK
  group: nogroup
  idle_timeout: $IDLE
metrics:
  listen: 127.0.0.1:0
YAML

if ! mg_daemon_start "$MESHGATE" "$CFG"; then
	fail daemon_ready "$(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
	for c in "${CHECKS[@]:1}"; do echo "FAIL: $T/$c: the daemon did not start"; done
	exit 1
fi
pass daemon_ready
DPID=$MG_DAEMON_PID

# status_json: the daemon's status (within $ANSWER s), or nothing.
status_json() { timeout "$ANSWER" "$CTL" --socket "$SOCK" status -o json 2>/dev/null; }
# jq_py EXPR: evaluate EXPR over the JSON object `s` read from stdin.
jq_py() {
	$PY -c '
import json, sys
try:
    s = json.load(sys.stdin)
    print(eval(sys.argv[1]))
except Exception as x:
    print("error: %r" % x)' "$1"
}
# bg CMD...: run in the background, remembered for the cleanup.
bg() {
	"$@" &
	MG_BG_PIDS+=($!)
}
# wait_for SECS CMD...: until CMD succeeds, at most SECS seconds (wall time:
# a command that hangs counts). 0 when it did.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

# ---- 1. a flood, and monitors that never read ----

# The flood: DPDK's own generator (dpdk-testpmd in txonly mode) on the
# frontend's side of its veth pair, 64-byte UDP frames 10.99.0.1 ->
# 10.99.0.2:9 as fast as af_packet takes them. Both of its lcores run on
# CPU 0, beside the daemon's control thread; the daemon's worker has CPU 1.
BACK_MAC=$(ip -n "$MG_NS_BACK" -o link show veth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
bg ip netns exec "$MG_NS_FRONT" dpdk-testpmd --lcores=0@0,1@0 --no-huge -m 256 --no-pci \
	--file-prefix "$PREFIX-gen" --vdev=net_af_packet0,iface=veth0 -- \
	--forward-mode=txonly --tx-ip=10.99.0.1,10.99.0.2 --tx-udp=4000,9 \
	--eth-peer=0,"$BACK_MAC" --total-num-mbufs=4096 --stats-period 1 \
	</dev/null >"$MG_WORK/flood.out" 2>&1
sleep 1
d1=$(status_json | jq_py 'sum(p["dropped"] for p in s["ports"])')
sleep 1
d2=$(status_json | jq_py 'sum(p["dropped"] for p in s["ports"])')
if [[ $d1 =~ ^[0-9]+$ ]] && [[ $d2 =~ ^[0-9]+$ ]] && [ "$d2" -gt $((d1 + 1000)) ]; then
	pass flood_running
else
	fail flood_running "port drops $d1 then $d2 one second later"
	tail -n 5 "$MG_WORK/flood.out" | sed 's/^/  | /'
fi

bg "$PY" "$CLIENTS" stuck "$SOCK" --type all --seconds 120 >"$MG_WORK/stuck.out" 2>&1
# The pager: a pipe nobody reads (opened here read-write, so that opening it
# does not wait for a reader); meshgatectl blocks once it is full.
mkfifo "$MG_WORK/pager"
exec 7<>"$MG_WORK/pager"
bg "$CTL" --socket "$SOCK" monitor --type all -o json >"$MG_WORK/pager" 2>/dev/null
PAGER=$!
if mg_wait_grep "$MG_WORK/stuck.out" '^subscribed' 10; then pass stuck_subscribed; else
	fail stuck_subscribed "$(head -c 300 "$MG_WORK/stuck.out")"
fi
sleep 1 # their buffers fill

t0=$SECONDS
st=$(status_json)
rc=$?
if [ $rc -eq 0 ] && [ -n "$st" ]; then pass status_under_flood; else
	fail status_under_flood "no answer within $ANSWER s (exit $rc)"
fi
out=$(timeout "$ANSWER" "$CTL" --socket "$SOCK" reload 2>&1)
rc=$?
if [ $rc -eq 0 ]; then pass reload_under_flood; else
	fail reload_under_flood "exit $rc within $ANSWER s: $out"
fi
ok0=$(status_json | jq_py 's["reloads"]["ok"]')
r="no answer"
# reloaded: the count of good reloads passed $ok0 (in $r).
reloaded() {
	r=$(status_json | jq_py 's["reloads"]["ok"]')
	[[ $r =~ ^[0-9]+$ ]] && [[ $ok0 =~ ^[0-9]+$ ]] && [ "$r" -gt "$ok0" ]
}
kill -HUP "$DPID"
if wait_for "$ANSWER" reloaded; then pass sighup_under_flood; else
	fail sighup_under_flood "reloads.ok $ok0 before SIGHUP, $r after"
fi

# The stuck subscribers read nothing for idle_timeout with output waiting:
# both are closed (the raw one sees the close without reading).
if mg_wait_grep "$MG_WORK/stuck.out" '^closed after' $((IDLE + 15)); then
	pass stuck_raw_closed
else
	fail stuck_raw_closed "still open $((SECONDS - t0)) s later: $(head -c 300 "$MG_WORK/stuck.out")"
fi
r="no answer"
# both_closed: control.closed_stuck (in $r) counts both subscribers.
both_closed() {
	r=$(status_json | jq_py 's["control"]["closed_stuck"]')
	[[ $r =~ ^[0-9]+$ ]] && [ "$r" -ge 2 ]
}
if wait_for $((IDLE + 15)) both_closed; then pass stuck_counted; else
	fail stuck_counted "control.closed_stuck is $r, expected 2 (raw and pager)"
fi
r=$(status_json | jq_py '"ok" if s["monitor"]["dropped"] > 0 and isinstance(
    s["monitor"]["ring_lost"], int) and s["monitor"]["events"] >= 0 else s["monitor"]')
if [ "$r" = ok ]; then pass monitor_loss_counted; else
	fail monitor_loss_counted "status.monitor: $r"
fi
kill "$PAGER" 2>/dev/null
exec 7<&-

# A monitor that reads gets the flood's drops (and may be told of losses).
timeout 3 "$CTL" --socket "$SOCK" monitor --type drop -o json >"$MG_WORK/live.out" 2>&1
r=$($PY - "$MG_WORK/live.out" <<'PY'
import json, sys
n = 0
for l in open(sys.argv[1]):
    try:
        o = json.loads(l)
    except ValueError:
        continue
    if o.get("type") == "drop" and o.get("dst") == "10.99.0.2":
        n += 1
print("ok" if n > 0 else "no drop event of the flood: %r" % open(sys.argv[1]).read()[:300])
PY
)
if [ "$r" = ok ]; then pass reading_monitor_gets_events; else
	fail reading_monitor_gets_events "$r"
fi

# ---- 2. readers fill the table ----

# Start from an empty table: the connections above are gone once status
# counts its own only.
only_me() { [ "$(status_json | jq_py 's["control"]["clients"]')" = 1 ]; }
wait_for 10 only_me
asnobody() { setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups "$@"; }
# setpriv itself in the background (not the function): its pid is the client's
bg setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups "$PY" "$CLIENTS" hold "$SOCK" \
	--count $MAX_CLIENTS --keepalive 0.5 --seconds 120 >"$MG_WORK/hold.out" 2>&1
HOLD=$!
mg_wait_grep "$MG_WORK/hold.out" '^held' 20
l=$(grep '^held' "$MG_WORK/hold.out")
want="held $((MAX_CLIENTS - RESERVE)) refused $RESERVE too many clients"
if [[ $l == "$want"* ]]; then pass reserve_readers_capped; else
	fail reserve_readers_capped "got '$l', expected '$want...'"
fi
out=$(timeout "$ANSWER" "$CTL" --socket "$SOCK" reload 2>&1)
rc=$?
if [ $rc -eq 0 ]; then pass root_reload_when_full; else
	fail root_reload_when_full "exit $rc: $out"
fi
out=$(timeout "$ANSWER" "$CTL" --socket "$SOCK" status 2>&1)
rc=$?
if [ $rc -eq 0 ]; then pass root_status_when_full; else
	fail root_status_when_full "exit $rc: $out"
fi
out=$(asnobody "$NCTL" --socket "$SOCK" status 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 1 ] && [[ $out == "meshgatectl status: too many clients"* ]]; then
	pass reader_told_busy
else
	fail reader_told_busy "exit $rc: $out"
fi
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null

# ---- 3. SIGTERM with a stuck subscriber and idle connections ----

"$PY" "$CLIENTS" stuck "$SOCK" --type all --seconds 60 >"$MG_WORK/stuck2.out" 2>&1 &
MG_BG_PIDS+=($!)
mg_wait_grep "$MG_WORK/stuck2.out" '^subscribed' 10
"$PY" "$CLIENTS" hold "$SOCK" --count $((MAX_CLIENTS - 1)) --seconds 60 \
	>"$MG_WORK/idle.out" 2>&1 &
MG_BG_PIDS+=($!)
mg_wait_grep "$MG_WORK/idle.out" '^held' 10
sleep 0.5
MG_DAEMON_PID=""
t0=$(date +%s%N)
kill -TERM "$DPID"
for _ in $(seq 1 50); do
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$DPID" 2>/dev/null; then
	fail sigterm_bounded "still running 5 s after SIGTERM ($(head -c 100 "$MG_WORK/stuck2.out"), $(head -c 100 "$MG_WORK/idle.out"))"
	kill -KILL "$DPID" 2>/dev/null
else
	pass sigterm_bounded
fi
wait "$DPID" 2>/dev/null
rc=$?
echo "# stopped in $((($(date +%s%N) - t0) / 1000000)) ms"
if [ $rc -eq 0 ]; then pass daemon_clean_exit; else
	fail daemon_clean_exit "exit $rc: $(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
fi
exit $failed
