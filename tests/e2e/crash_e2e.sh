#!/usr/bin/env bash
# meshgate end-to-end test: a crash under traffic and a slow restart.
# The daemon gets its identities and endpoints only from Redis (a private
# redis-server on a unix socket, as netns_test.sh's redis mode) and forwards
# numbered UDP between two network namespaces: an allowed flow (frontend ->
# backend UDP 9000, IPv4) and a denied one (UDP 8080). The daemon is
# killed with SIGKILL, Redis is frozen (SIGSTOP) and a new daemon is
# started: its initial sync waits until Redis is thawed a few seconds later.
# The receiver notes, for each datagram, whether the new daemon had written
# its "ready" line when it arrived (udp_seq.py --trace/--gate).
# Checks: nothing at all crosses between the new process's start and its
# "ready" line (fail-closed: no port polls before the state is loaded);
# the sync completed before "ready"; the allowed flow resumes after it;
# the denied flow never passes; the stale control socket left by the
# killed daemon does not stop the new one.
#
# Usage: crash_e2e.sh [MESHGATE_BINARY [MESHGATECTL_BINARY]]  (root)
# Prints PASS/FAIL/SKIP lines "e2e-crash/<check>"; exits 1 if one failed.
# Traffic only to addresses inside the namespaces it creates.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

MESHGATE=${1:-$ROOT/build/app/meshgate/meshgate}
CTL=${2:-$(dirname "$MESHGATE")/../meshgatectl/meshgatectl}
PY=/usr/bin/python3
T=e2e-crash
RATE=1000    # datagrams per second and flow
TRAFFIC=18   # seconds of traffic
FREEZE=3     # seconds Redis stays frozen during the restart
COUNT=$((RATE * TRAFFIC))

CHECKS=(redis_up kv_import daemon_ready before_kill_forwarded killed restart_synced_first
	restart_ready restart_waited none_before_ready allowed_resumed denied_none_passed
	status_after_restart daemon_clean_exit)

skip_all() {
	local c
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $1"; done
	exit 0
}
[ -x "$MESHGATE" ] || skip_all "no meshgate binary at $MESHGATE"
[ -x "$CTL" ] || skip_all "no meshgatectl binary at $CTL"
command -v redis-server >/dev/null 2>&1 || skip_all "redis-server is not installed"
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

MG_NS_FRONT=mgcr-front-$$
MG_NS_BACK=mgcr-back-$$
MG_IF_IN=mgcri$$
MG_IF_OUT=mgcro$$
MG_WORK=$(mktemp -d /tmp/meshgate-crash.XXXXXX)
PREFIX=mgcr-$$
REDIS_PID=""
on_exit() {
	if [ -n "$REDIS_PID" ]; then
		kill -CONT "$REDIS_PID" 2>/dev/null
		kill "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
	fi
	mg_cleanup
	rm -rf "/var/run/dpdk/$PREFIX" "$MG_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
mg_topology_up || skip_all "could not create the namespaces"

# ---- Redis, with the demo's identities and endpoints as cluster-a
REDIS_SOCK=$MG_WORK/redis.sock
mkdir -p "$MG_WORK/redis"
redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
	--dir "$MG_WORK/redis" --save '' --appendonly no --daemonize no \
	--logfile "$MG_WORK/redis/redis.log" </dev/null >/dev/null 2>&1 &
REDIS_PID=$!
up=0
for _ in $(seq 1 100); do
	[ "$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ] && up=1 && break
	sleep 0.1
done
[ $up = 1 ] && pass redis_up || {
	fail redis_up "redis-server did not answer on $REDIS_SOCK"
	exit 1
}

SOCK=$MG_WORK/meshgate.sock
mg_demo_config "$MG_WORK/conf" "$PREFIX" || skip_all "could not copy the demo's config"
if out=$("$CTL" kv import --redis "unix://$REDIS_SOCK" --cluster cluster-a \
	--functions "$ROOT/conf/redis/meshgate.lua" --cluster-id 1 \
	"$MG_WORK/conf/identities.yaml" "$MG_WORK/conf/endpoints.yaml" </dev/null 2>&1); then
	pass kv_import
else
	fail kv_import "$out"
	exit 1
fi
# Redis is the only source of identities and endpoints.
sed -i -e '/^identities:/,$d' "$MG_WORK/conf/meshgate.yaml"
rm -f "$MG_WORK/conf/identities.yaml" "$MG_WORK/conf/endpoints.yaml"
cat >>"$MG_WORK/conf/meshgate.yaml" <<YAML
kvstore:
  redis: "unix://$REDIS_SOCK"
  clusters: [cluster-a]
  sync_timeout: 30
  block_ms: 5
control:
  socket: $SOCK
metrics:
  listen: 127.0.0.1:0
YAML
# The backend also accepts UDP 9000 from the frontend; UDP 8080 stays denied.
sed -i 's/^            - port: "8080"$/            - port: "9000"\n              protocol: UDP\n            - port: "8080"/' \
	"$MG_WORK/conf/policies/backend.yaml"
grep -q '"9000"' "$MG_WORK/conf/policies/backend.yaml" || skip_all "could not edit the policy copy"

if ! mg_daemon_start "$MESHGATE" "$MG_WORK/conf/meshgate.yaml"; then
	fail daemon_ready "$(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
	exit 1
fi
pass daemon_ready

# ---- Traffic: receivers in the backend note the restarted daemon's state
# at each arrival; its stderr will be $GATE.
GATE=$MG_WORK/restart.err
RECV_PIDS=()
recv() {
	local port=$1 out=$2 secs=$3
	ip netns exec "$MG_NS_BACK" $PY "$HERE/udp_seq.py" recv 10.99.0.2 "$port" \
		--seconds "$secs" --trace "$out.trace" --gate "$GATE" >"$out" 2>&1 &
	MG_BG_PIDS+=($!)
	RECV_PIDS+=($!)
	mg_wait_grep "$out" '^ready' 10
}
# The denied flow's receiver never sees the end marker: it stops at its deadline.
recv 9000 "$MG_WORK/ra" $((TRAFFIC + 30)) && recv 8080 "$MG_WORK/rd" $((TRAFFIC + 6)) || fail before_kill_forwarded "receivers did not start"
send() {
	ip netns exec "$MG_NS_FRONT" $PY "$HERE/udp_seq.py" send 10.99.0.2 "$1" --count $COUNT \
		--rate $RATE --tag "$2" >/dev/null 2>&1 &
	MG_BG_PIDS+=($!)
}
send 9000 allowed
send 8080 denied
sleep 3
n_old=$(awk '$2 == "allowed" && $4 == "old"' "$MG_WORK/ra.trace" | wc -l)
if [ "$n_old" -gt $((RATE)) ]; then pass before_kill_forwarded; else
	fail before_kill_forwarded "only $n_old allowed datagrams crossed the first daemon"
fi

# ---- The crash: SIGKILL under traffic, nothing cleaned up.
pid=$MG_DAEMON_PID
MG_DAEMON_PID=""
kill -KILL "$pid"
wait "$pid" 2>/dev/null
rc=$?
check killed "$rc" 137
sleep 0.5

# ---- The restart, with Redis frozen: the initial sync cannot finish
# until it is thawed. The new daemon's stderr is the receivers' gate.
kill -STOP "$REDIS_PID"
: >"$GATE"
t_start=$(date +%s.%N)
"$MESHGATE" -c "$MG_WORK/conf/meshgate.yaml" --stats-file "$MG_WORK/stats.json" \
	</dev/null >"$MG_WORK/restart.out" 2>>"$GATE" &
MG_DAEMON_PID=$!
sleep "$FREEZE"
kill -CONT "$REDIS_PID"
if mg_wait_grep "$GATE" 'info: ready: ' 30; then
	t_ready=$(date +%s.%N)
	pass restart_ready
else
	fail restart_ready "$(tail -n 5 "$GATE" | tr '\n' ' ')"
	t_ready=$(date +%s.%N)
fi
# The sync came first: its "synced" line precedes "ready".
l_sync=$(grep -n 'cluster cluster-a (id 1, local) synced: 14 entries' "$GATE" | head -n 1 | cut -d: -f1)
l_ready=$(grep -n 'info: ready: ' "$GATE" | head -n 1 | cut -d: -f1)
if [ -n "$l_sync" ] && [ -n "$l_ready" ] && [ "$l_sync" -lt "$l_ready" ]; then
	pass restart_synced_first
else
	fail restart_synced_first "synced at line ${l_sync:-none}, ready at line ${l_ready:-none}"
fi
# The scenario really made the start wait (not a figure: a sanity check
# that the window below is not empty).
waited=$(awk -v a="$t_start" -v b="$t_ready" 'BEGIN { printf "%.1f", b - a }')
if awk -v w="$waited" -v f="$FREEZE" 'BEGIN { exit !(w >= f - 0.5) }'; then
	pass restart_waited
else
	fail restart_waited "ready after ${waited} s although Redis was frozen for $FREEZE s"
fi

for p in "${RECV_PIDS[@]}"; do
	wait "$p" 2>/dev/null
done
# Nothing of any flow crossed while the new daemon was starting.
early=$(awk '$4 == "starting"' "$MG_WORK/ra.trace" "$MG_WORK/rd.trace" | wc -l)
if [ "$early" = 0 ]; then pass none_before_ready; else
	fail none_before_ready "$early datagram(s) arrived before the restarted daemon was ready: $(
		awk '$4 == "starting"' "$MG_WORK/ra.trace" "$MG_WORK/rd.trace" | head -n 3 | tr '\n' ' ')"
	echo "  restart at $t_start; last datagram before ready:" \
		"$(awk '$4 == "starting"' "$MG_WORK/ra.trace" "$MG_WORK/rd.trace" | tail -n 1)"
	sed 's/^/  | /' "$GATE" | tail -n 15
fi
n_new=$(awk '$2 == "allowed" && $4 == "ready"' "$MG_WORK/ra.trace" | wc -l)
last=$(awk '$2 == "allowed" { s = $3 } END { print s + 0 }' "$MG_WORK/ra.trace")
if [ "$n_new" -gt "$RATE" ] && [ "$last" -ge $((COUNT - RATE)) ]; then
	pass allowed_resumed
else
	fail allowed_resumed "$n_new allowed datagrams after the restart, last number $last of $COUNT"
fi
if [ -s "$MG_WORK/rd.trace" ]; then
	fail denied_none_passed "$(wc -l <"$MG_WORK/rd.trace") denied datagrams arrived"
else
	pass denied_none_passed
fi
if out=$("$CTL" --socket "$SOCK" status -o json 2>&1) && [[ $out == *'"ready": true'* || $out == *'"ready":true'* ]]; then
	pass status_after_restart
else
	fail status_after_restart "status on the restarted daemon: $(echo "$out" | head -c 200)"
fi

# ---- Redis killed under the running daemon (the soak's finding: a write
# to a connection whose peer is gone raised SIGPIPE, which killed the
# daemon). It must ignore SIGPIPE, and survive Redis dying and coming back.
sigign=$(awk '/^SigIgn:/ {print $2}' "/proc/$MG_DAEMON_PID/status" 2>/dev/null)
if [ -n "$sigign" ] && (((16#$sigign >> 12) & 1)); then
	pass sigpipe_ignored
else
	fail sigpipe_ignored "SigIgn of the daemon: ${sigign:-unreadable} (SIGPIPE is bit 13)"
fi
for _ in 1 2 3; do
	kill -KILL "$REDIS_PID"
	wait "$REDIS_PID" 2>/dev/null
	redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
		--dir "$MG_WORK/redis" --save '' --appendonly no --daemonize no \
		--logfile "$MG_WORK/redis/redis.log" </dev/null >/dev/null 2>&1 &
	REDIS_PID=$!
	sleep 0.7
done
if kill -0 "$MG_DAEMON_PID" 2>/dev/null &&
	out=$("$CTL" --socket "$SOCK" status -o json 2>&1) && [[ $out == *'"ready"'* ]]; then
	pass survives_redis_killed
else
	fail survives_redis_killed "after Redis was killed 3 times: $(tail -n 3 "$GATE" | tr '\n' ' ')"
fi
echo "e2e-crash: start to ready ${waited} s (Redis frozen $FREEZE s);" \
	"allowed: $n_old before the kill, $n_new after the restart; $early before ready" >&2

mg_daemon_stop
check daemon_clean_exit "$?" 0
exit $failed
