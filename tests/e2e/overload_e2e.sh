#!/usr/bin/env bash
# meshgate end-to-end test: more frames than the worker can take. The
# gateway (net_af_packet ports between two network namespaces, the demo's
# identities and policies plus an allow of UDP 9000 from the frontend to
# the backend) has one worker, pinned to the CPU where dpdk-testpmd floods
# the frontend's side with 64-byte UDP frames to the backend's port 9
# (denied) as fast as af_packet takes them: the worker gets a fraction of
# that CPU and cannot poll everything. Meanwhile numbered UDP datagrams run
# on an allowed flow (UDP 9000) and a denied one (UDP 8080).
# Checks: the excess shows in the port counters (rx_missed: frames the
# port's ring had no room for, for af_packet the kernel's count; rx_nombuf):
# received + missed covers every frame testpmd sent; and in /metrics; the daemon never
# stops answering `status` (within 2 s, again and again) nor /metrics;
# verdicts stay right for what is processed: no denied datagram (UDP 8080,
# nor a flood frame on port 9) reaches the backend, the allowed flow gets
# through at least partly; the daemon stops cleanly.
#
# Usage: overload_e2e.sh [MESHGATE_BINARY [MESHGATECTL_BINARY]]  (root)
# Prints PASS/FAIL/SKIP lines "e2e-overload/<check>"; exits 1 if one failed.
# Traffic only to addresses inside the namespaces it creates, and to the
# daemon's loopback metrics port.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

MESHGATE=${1:-$ROOT/build/app/meshgate/meshgate}
CTL=${2:-$(dirname "$MESHGATE")/../meshgatectl/meshgatectl}
PY=/usr/bin/python3
T=e2e-overload
FLOOD=10  # seconds of flood
RATE=1000 # numbered datagrams per second and flow
COUNT=$((RATE * (FLOOD - 2)))
ANSWER=2 # seconds status and /metrics may take under the flood

CHECKS=(daemon_ready flood_offered excess_counted excess_in_metrics status_bounded
	metrics_bounded allowed_delivered denied_none_passed flood_none_passed stats_denied
	daemon_clean_exit)

skip_all() {
	local c
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $1"; done
	exit 0
}
[ -x "$MESHGATE" ] || skip_all "no meshgate binary at $MESHGATE"
[ -x "$CTL" ] || skip_all "no meshgatectl binary at $CTL"
command -v dpdk-testpmd >/dev/null 2>&1 || skip_all "dpdk-testpmd is not installed (package dpdk)"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
if ! reason=$(mg_can_netns); then
	skip_all "$reason"
fi

failed=0
pass() { echo "PASS: $T/$1"; }
fail() {
	echo "FAIL: $T/$1: $2"
	failed=1
}

MG_NS_FRONT=mgov-front-$$
MG_NS_BACK=mgov-back-$$
MG_IF_IN=mgovi$$
MG_IF_OUT=mgovo$$
MG_WORK=$(mktemp -d /tmp/meshgate-overload.XXXXXX)
PREFIX=mgov-$$
on_exit() {
	mg_cleanup
	rm -rf "/var/run/dpdk/$PREFIX" "/var/run/dpdk/$PREFIX-gen" "$MG_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
mg_topology_up || skip_all "could not create the namespaces"

SOCK=$MG_WORK/meshgate.sock
CFG=$MG_WORK/conf/meshgate.yaml
mg_demo_config "$MG_WORK/conf" "$PREFIX" || skip_all "could not copy the demo's config"
# The worker (lcore 1) on CPU 0 with the flood's generator; the main lcore
# (the control thread's neighbour) on CPU 1.
sed -i -e 's/"-l", "0-1"/"--lcores", "0@1,1@0"/' "$CFG"
grep -q '"--lcores", "0@1,1@0"' "$CFG" || skip_all "could not pin the worker in the config copy"
sed -i 's/^            - port: "8080"$/            - port: "9000"\n              protocol: UDP\n            - port: "8080"/' \
	"$MG_WORK/conf/policies/backend.yaml"
grep -q '"9000"' "$MG_WORK/conf/policies/backend.yaml" || skip_all "could not edit the policy copy"
cat >>"$CFG" <<YAML
control:
  socket: $SOCK
metrics:
  listen: 127.0.0.1:0
YAML

if ! mg_daemon_start "$MESHGATE" "$CFG"; then
	fail daemon_ready "$(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
	exit 1
fi
pass daemon_ready
MPORT=$(sed -n 's/.*metrics on http:.*(port \([0-9]*\)).*/\1/p' "$MG_WORK/meshgate.err" | head -n 1)

status_json() { timeout "$ANSWER" "$CTL" --socket "$SOCK" status -o json 2>/dev/null; }
jq_py() {
	$PY -c '
import json, sys
try:
    s = json.load(sys.stdin)
    print(eval(sys.argv[1]))
except Exception as x:
    print("error: %r" % x)' "$1"
}

# Receivers in the backend: the allowed flow, the denied one, and the
# flood's port (nothing may arrive there).
RECV_PIDS=()
recv() {
	ip netns exec "$MG_NS_BACK" $PY "$HERE/udp_seq.py" recv 10.99.0.2 "$1" --seconds "$3" \
		>"$2" 2>&1 &
	MG_BG_PIDS+=($!)
	RECV_PIDS+=($!)
	mg_wait_grep "$2" '^ready' 10
}
recv 9000 "$MG_WORK/ra" $((FLOOD + 20)) && recv 8080 "$MG_WORK/rd" $((FLOOD + 4)) &&
	recv 9 "$MG_WORK/rf" $((FLOOD + 4)) || fail allowed_delivered "receivers did not start"

# The flood: dpdk-testpmd in txonly mode, both lcores on CPU 0.
BACK_MAC=$(ip -n "$MG_NS_BACK" -o link show veth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip netns exec "$MG_NS_FRONT" timeout -s INT $FLOOD dpdk-testpmd --lcores=0@0,1@0 --no-huge \
	-m 256 --no-pci --file-prefix "$PREFIX-gen" --vdev=net_af_packet0,iface=veth0 -- \
	--forward-mode=txonly --tx-ip=10.99.0.1,10.99.0.2 --tx-udp=4000,9 \
	--eth-peer=0,"$BACK_MAC" --total-num-mbufs=4096 --stats-period 1 \
	</dev/null >"$MG_WORK/flood.out" 2>&1 &
GEN=$!
MG_BG_PIDS+=("$GEN")
sleep 1
for f in 9000:allowed 8080:denied; do
	ip netns exec "$MG_NS_FRONT" $PY "$HERE/udp_seq.py" send 10.99.0.2 "${f%%:*}" \
		--count $COUNT --rate $RATE --tag "${f##*:}" >/dev/null 2>&1 &
	MG_BG_PIDS+=($!)
done

# Status and /metrics, again and again while the flood runs.
slow_status=0 slow_metrics=0 rounds=0
end=$((SECONDS + FLOOD - 2))
while [ $SECONDS -lt $end ]; do
	rounds=$((rounds + 1))
	st=$(status_json) && [ -n "$st" ] || slow_status=$((slow_status + 1))
	curl -sf -m "$ANSWER" "http://127.0.0.1:$MPORT/metrics" >"$MG_WORK/metrics.txt" ||
		slow_metrics=$((slow_metrics + 1))
	sleep 0.5
done
if [ $slow_status = 0 ]; then pass status_bounded; else
	fail status_bounded "$slow_status of $rounds status calls took over $ANSWER s or failed"
fi
if [ $slow_metrics = 0 ]; then pass metrics_bounded; else
	fail metrics_bounded "$slow_metrics of $rounds /metrics fetches took over $ANSWER s or failed"
fi
wait "$GEN" 2>/dev/null
sleep 1
st=$(status_json)
offered=$(sed -n 's/.*TX-packets: *\([0-9]*\).*/\1/p' "$MG_WORK/flood.out" | tail -n 1)
rx=$(echo "$st" | jq_py '[p for p in s["ports"] if p["name"] == "inside"][0]["rx_packets"]')
if [[ ${offered:-x} =~ ^[0-9]+$ ]] && [[ $rx =~ ^[0-9]+$ ]] && [ "$offered" -gt "$rx" ]; then
	pass flood_offered
else
	fail flood_offered "testpmd sent ${offered:-?} frames, the inside port received $rx"
fi
missed=$(echo "$st" | jq_py '[p["rx_missed"] + p["rx_nombuf"] for p in s["ports"] if p["name"] == "inside"][0]')
# Every frame offered was either received or counted as missed (the
# numbered datagrams and ARP add a little to what was received).
if [[ $missed =~ ^[0-9]+$ ]] && [ "$missed" -gt 0 ] && [ $((rx + missed)) -ge "${offered:-0}" ]; then
	pass excess_counted
else
	fail excess_counted "offered ${offered:-?}, received $rx, rx_missed + rx_nombuf: $missed"
fi
m=$(curl -sf -m "$ANSWER" "http://127.0.0.1:$MPORT/metrics" |
	sed -n 's/^meshgate_port_rx_missed_packets_total{port="inside"} \([0-9]*\)$/\1/p')
if [[ $m =~ ^[0-9]+$ ]] && [ "$m" -gt 0 ]; then pass excess_in_metrics; else
	fail excess_in_metrics "meshgate_port_rx_missed_packets_total{port=\"inside\"}: ${m:-absent}"
fi

for p in "${RECV_PIDS[@]}"; do
	wait "$p" 2>/dev/null
done
read -r na _ <<<"$(sed -n 's/^got allowed \([0-9]*\) \([0-9]*\) missing.*/\1 \2/p' "$MG_WORK/ra")"
if [ "${na:-0}" -gt 0 ]; then pass allowed_delivered; else
	fail allowed_delivered "none of $COUNT allowed datagrams arrived"
fi
if grep -q . <(grep -v '^ready' "$MG_WORK/rd"); then
	fail denied_none_passed "$(grep -v '^ready' "$MG_WORK/rd" | head -n 2 | tr '\n' ' ')"
else
	pass denied_none_passed
fi
if grep -q . <(grep -v '^ready' "$MG_WORK/rf"); then
	fail flood_none_passed "$(grep -v '^ready' "$MG_WORK/rf" | head -n 2 | tr '\n' ' ')"
else
	pass flood_none_passed
fi
echo "# offered ${offered:-?} flood frames; inside port received $rx, missed/nombuf $missed;" \
	"allowed ${na:-0} of $COUNT delivered"

mg_daemon_stop
rc=$?
if [ $rc = 0 ]; then pass daemon_clean_exit; else fail daemon_clean_exit "exit status $rc"; fi
den=$(mg_stat "$MG_WORK/stats.json" 's["drops"]["policy_denied_ingress"]')
# The flood is most of what was received, and all of it is denied.
if [[ ${den:-x} =~ ^[0-9]+$ ]] && [[ $rx =~ ^[0-9]+$ ]] && [ "$den" -ge $((rx / 2)) ]; then
	pass stats_denied
else
	fail stats_denied "policy_denied_ingress ${den:-?} for ${rx:-?} received frames"
fi
exit $failed
