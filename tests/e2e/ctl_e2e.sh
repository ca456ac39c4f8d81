#!/usr/bin/env bash
# meshgate end-to-end test of meshgatectl's online commands: every command
# against a running daemon (net_af_packet ports between two network
# namespaces, the demo's identities and policies, one worker) that sees
# real traffic, then who may do what on its control socket, then requests
# that are not the protocol.
#
#  1. tests/integration/ctl_online_test.py against the live socket, with
#     hooks that send real packets: monitoring 10.99.0.4 pings frontend
#     10.99.0.1 (no policy selects either: allowed, tracked), frontend
#     pings backend 10.99.0.2 (its ingress allows TCP 8080 only: dropped,
#     policy_denied_ingress); a reload that adds a policy, and one of a
#     broken policy file that must fail and leave the old state serving.
#     Its lines are renamed e2e-ctl/<check>. Then what it cannot know:
#     status counted the traffic, config show has every documented key,
#     the daemon's `help` marks the mutating commands.
#  2. Permissions: the socket's group (control.group) is nogroup and there
#     is no admin group. uid 65534 in nogroup may read (status, lists,
#     trace, ct list, metrics, monitor) but reload, ct flush and sync
#     resync are refused (exit 1) and change nothing; uid 65534 in another
#     group cannot connect at all (EACCES).
#  3. The protocol on a raw connection: a line that is not JSON gets an
#     EINVAL reply and the connection goes on; `help` lists the commands
#     with the three mutating ones marked; a line longer than
#     control.max_request_bytes gets E2BIG and the connection is closed;
#     the gateway keeps forwarding and the daemon exits cleanly.
#
# Usage: ctl_e2e.sh [MESHGATE_BINARY [MESHGATECTL_BINARY]]  (root)
# Prints PASS/FAIL/SKIP lines "e2e-ctl/<check>"; exits 1 if one failed.
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
T=e2e-ctl
ONLINE=$ROOT/tests/integration/ctl_online_test.py
MAX_REQUEST=4096
NOBODY=65534
NOGROUP=65534
OTHER_GROUP=1 # daemon: not the socket's group

CHECKS=(daemon_ready online status_traffic_counted config_show_every_key
	traffic_after_broken_reload monitor_verdict list_limit
	help_daemon help_cli
	perm_read_status perm_read_identity_list perm_read_ip_get perm_read_policy_get
	perm_read_policy_trace perm_read_ct_list perm_read_sync_status perm_read_metrics
	perm_read_config_show perm_read_monitor
	perm_refused_reload perm_refused_ct_flush perm_refused_sync_resync
	perm_refused_changed_nothing perm_message_documented perm_no_group_eacces
	proto_garbage_einval proto_garbage_then_status proto_unknown_command
	proto_oversize_e2big proto_oversize_closed proto_new_conn_after_oversize
	forwarding_after_protocol_abuse denied_still_dropped daemon_clean_exit)

skip_all() {
	local c
	for c in "${CHECKS[@]}"; do echo "SKIP: $T/$c: $1"; done
	exit 0
}
[ -x "$MESHGATE" ] || skip_all "no meshgate binary at $MESHGATE"
[ -x "$CTL" ] || skip_all "no meshgatectl binary at $CTL"
[ -x "$PY" ] || skip_all "no $PY"
command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is not installed (util-linux)"
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
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected $3, got $2"; fi; }

MG_NS_FRONT=mgce-front-$$
MG_NS_BACK=mgce-back-$$
MG_IF_IN=mgcei$$
MG_IF_OUT=mgceo$$
MG_WORK=$(mktemp -d /tmp/meshgate-ctl.XXXXXX)
PREFIX=mgce-$$
on_exit() {
	mg_cleanup
	rm -rf "/var/run/dpdk/$PREFIX" "$MG_WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
mg_topology_up || skip_all "could not create the namespaces"

# The scratch folder holds the socket: uid 65534 must be able to reach it
# (x, not r). Its own copy of meshgatectl, so that the build folder's
# permissions do not matter.
chmod 0711 "$MG_WORK"
install -m 0755 "$CTL" "$MG_WORK/meshgatectl"
NCTL=$MG_WORK/meshgatectl

# The demo's inputs, copied (the test adds and breaks policy files), with
# its own control and metrics sections: the socket here, group nogroup, no
# admin group, a small request limit; metrics on a free loopback port.
SOCK=$MG_WORK/meshgate.sock
CFG=$MG_WORK/conf/meshgate.yaml
mg_demo_config "$MG_WORK/conf" "$PREFIX" || skip_all "could not copy the demo's config"
cat >>"$CFG" <<YAML
control:
  socket: $SOCK
  group: nogroup
  max_request_bytes: $MAX_REQUEST
metrics:
  listen: 127.0.0.1:0
YAML

if ! mg_daemon_start "$MESHGATE" "$CFG"; then
	fail daemon_ready "$(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
	for c in "${CHECKS[@]:1}"; do echo "FAIL: $T/$c: the daemon did not start"; done
	exit 1
fi
pass daemon_ready

# ---- 1. every online command, with real traffic ----

NSF="ip netns exec $MG_NS_FRONT"
NSB="ip netns exec $MG_NS_BACK"
POL=$MG_WORK/conf/policies
TRAFFIC="$NSB ping -n -q -c 2 -i 0.2 -W 2 -I 10.99.0.4 10.99.0.1 >/dev/null"
DENIED="$NSF ping -n -q -c 1 -W 1 10.99.0.2 >/dev/null; true"
# A policy that selects nobody in the traffic: the set changes, the verdicts do not.
RELOAD_CMD="printf '%s\n' 'apiVersion: cilium.io/v2' 'kind: CiliumNetworkPolicy' \
'metadata: {name: extra, namespace: demo}' 'spec:' \
'  endpointSelector: {matchLabels: {app: nobody}}' \
'  ingress: [{fromEndpoints: [{matchLabels: {app: frontend}}]}]' >$POL/extra.yaml"
# Line 8 has a field no policy has: the reload must fail at 8:<column>.
BROKEN_CMD="printf '%s\n' 'apiVersion: cilium.io/v2' 'kind: CiliumNetworkPolicy' \
'metadata: {name: broken, namespace: demo}' 'spec:' \
'  endpointSelector: {matchLabels: {app: backend}}' '  ingress:' \
'  - fromEndpoints: [{matchLabels: {app: frontend}}]' \
'    toPorts: [{ports: [{port: \"8080\", protocol: TCP, bogus: 1}]}]' >$POL/broken.yaml"

lbl() { echo "k8s:app=$1,k8s:io.kubernetes.pod.namespace=demo,k8s:io.cilium.k8s.policy.cluster=cluster-a"; }
$PY "$ONLINE" --socket "$SOCK" --meshgatectl "$CTL" --config "$CFG" \
	--port inside --port outside --workers 1 \
	--identity "65800=$(lbl frontend)" --identity "65801=$(lbl backend)" \
	--identity "65802=$(lbl database)" --identity "65803=$(lbl monitoring)" \
	--endpoint 10.99.0.1=65800 --endpoint 10.99.0.2=65801 --endpoint 10.99.0.3=65802 \
	--endpoint 10.99.0.4=65803 --endpoint 10.99.0.5=65802 \
	--endpoint fd00:99::1=65800 --endpoint fd00:99::4=65803 \
	--world-ip 192.0.2.7 --world-ip 2001:db8::7 \
	--policy demo/backend-allow-frontend --policy demo/database-allow-backend \
	--selector app=backend=65801 --selector app=frontend=65800 --selector app=database=65802 \
	--flow 10.99.0.1,10.99.0.2,tcp,8080 --flow 10.99.0.1,10.99.0.2,tcp,8081 \
	--flow 10.99.0.1,10.99.0.2,icmp,8 --flow 10.99.0.2,10.99.0.5,tcp,5432 \
	--flow 10.99.0.1,10.99.0.3,tcp,5432 --flow 10.99.0.4,10.99.0.1,icmp,8 \
	--flow fd00:99::1,fd00:99::2,tcp,8080 --flow fd00:99::4,fd00:99::1,icmpv6,128 \
	--flow 192.0.2.7,10.99.0.2,udp,53 --flow id:65803,id:65800,tcp,22 \
	--send-traffic "$TRAFFIC" --ct-flow icmp,10.99.0.4,10.99.0.1 \
	--send-denied "$DENIED" \
	--drop "reason=policy_denied_ingress,direction=ingress,src=10.99.0.1,dst=10.99.0.2,src_identity=65800,dst_identity=65801,port=inside" \
	--sync-configured no \
	--reload-cmd "$RELOAD_CMD" \
	--broken-cmd "$BROKEN_CMD" --broken-error 'policies/broken\.yaml:8:[0-9]+: .*bogus' \
	--fix-cmd "rm -f $POL/broken.yaml" \
	>"$MG_WORK/online.out" 2>&1
orc=$?
sed -E 's#^(PASS|FAIL|SKIP): ctl-online/#\1: '"$T"'/#' "$MG_WORK/online.out"
if [ $orc -eq 0 ] && ! grep -q '^FAIL' "$MG_WORK/online.out" &&
	grep -q '^# [0-9]* passed, 0 failed' "$MG_WORK/online.out"; then
	pass online
else
	fail online "ctl_online_test.py: exit $orc, $(grep -c '^FAIL' "$MG_WORK/online.out") checks failed"
fi

# The traffic went through the ports the status shows, on the one worker.
st=$("$CTL" --socket "$SOCK" status -o json 2>&1)
r=$($PY -c '
import json, sys
s = json.loads(sys.argv[1])
e = [p["name"] for p in s["ports"] if p["rx_packets"] == 0 or p["tx_packets"] == 0]
if len(s["workers"]) != 1 or s["workers"][0]["loops"] <= 0:
    e.append("workers %r" % s["workers"])
print(" ".join(e) or "ok")' "$st" 2>&1)
check status_traffic_counted "$r" ok

# config show: every key of docs/configuration.md (kvstore is not configured
# here), defaults filled, and the values this test set.
r=$("$CTL" --socket "$SOCK" config show -o json 2>&1 | $PY -c '
import json, sys
d = json.load(sys.stdin)
c, want = d["config"], sys.argv[1]
keys = """version eal datapath.mode datapath.ports datapath.non_ip datapath.burst
datapath.rx_desc datapath.tx_desc datapath.mbufs cluster.name cluster.id
cluster.max_connected_clusters policy.enforcement policy.default_local_cluster
policy.sources identities.files ipcache.files ipcache.entries ipcache.split_world
control.socket control.group control.admin_group control.max_clients control.admin_reserve
control.max_request_bytes control.idle_timeout control.max_output_bytes metrics.listen
conntrack.max_entries conntrack.max_fragments conntrack.tcp_pickup
conntrack.timeouts.tcp_syn conntrack.timeouts.tcp_established conntrack.timeouts.tcp_fin
conntrack.timeouts.tcp_close conntrack.timeouts.udp conntrack.timeouts.icmp
conntrack.timeouts.other conntrack.timeouts.fragment""".split()
def get(path):
    o = c
    for k in path.split("."):
        if not isinstance(o, dict) or k not in o:
            raise KeyError(path)
        o = o[k]
    return o
e = []
for k in keys:
    try:
        get(k)
    except KeyError:
        e.append(k)
e = ["missing: " + " ".join(e)] if e else []
for k, v in (("control.socket", want), ("control.group", "nogroup"),
             ("control.max_request_bytes", int(sys.argv[2])), ("metrics.listen", "127.0.0.1:0"),
             ("cluster.name", "cluster-a"), ("cluster.id", 1)):
    try:
        if get(k) != v:
            e.append("%s=%r, want %r" % (k, get(k), v))
    except KeyError:
        pass
if [p["name"] for p in c["datapath"]["ports"]] != ["inside", "outside"]:
    e.append("ports %r" % c["datapath"]["ports"])
print("; ".join(e) or "ok")' "$SOCK" "$MAX_REQUEST" 2>&1)
check config_show_every_key "$r" ok

# Listings are bounded: --limit cuts them and says so (10 ipcache entries
# and 14 identities in the demo's state).
r=$($PY - "$CTL" "$SOCK" <<'PY'
import json, subprocess, sys
ctl, sock = sys.argv[1], sys.argv[2]
def run(*a):
    p = subprocess.run([ctl, "--socket", sock] + list(a), capture_output=True, text=True)
    return p.returncode, p.stdout
e = []
rc, out = run("ip", "list", "--limit", "2", "-o", "json")
j = json.loads(out) if rc == 0 else {}
if rc != 0 or len(j.get("entries", [])) != 2 or j.get("total") != 10 or j.get("truncated") is not True:
    e.append("ip list --limit 2: rc %d %r" % (rc, j))
rc, out = run("identity", "list", "--limit", "3", "-o", "json")
j = json.loads(out) if rc == 0 else {}
ids = [x["id"] for x in j.get("identities", [])]
if rc != 0 or len(ids) != 3 or ids != sorted(ids) or j.get("total") != 14 or not j.get("truncated"):
    e.append("identity list --limit 3: rc %d %r" % (rc, j))
rc, out = run("ip", "list", "--limit", "2")
if rc != 0 or "2 of 10 shown (truncated" not in out:
    e.append("ip list --limit 2 text: rc %d %r" % (rc, out[-200:]))
rc, out = run("ip", "list", "-o", "json")
j = json.loads(out) if rc == 0 else {}
if rc != 0 or len(j.get("entries", [])) != 10 or j.get("truncated") is not False:
    e.append("ip list: rc %d %r" % (rc, j))
print("; ".join(e) or "ok")
PY
)
check list_limit "$r" ok

# After the broken reload (and its fix) the gateway still forwards by policy.
check traffic_after_broken_reload "$(mg_ping "$MG_NS_BACK" 10.99.0.1 10.99.0.4)" replied

# monitor --type verdict: 1 in 64 forwarded frames is sampled; a TCP
# exchange of 200 KB forwards far more, so events must come, all verdicts,
# with both identities and their labels.
timeout 8 "$CTL" --socket "$SOCK" monitor --type verdict -o json >"$MG_WORK/verdict.out" 2>&1 &
vpid=$!
sleep 0.5
x=$(mg_exchange "$MG_NS_FRONT" "$MG_NS_BACK" 10.99.0.2 8080)
wait "$vpid" 2>/dev/null
r=$($PY - "$MG_WORK/verdict.out" "$x" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith("{")]
evs = []
for l in lines:
    o = json.loads(l)
    evs.append(o.get("event", o))
evs = [e for e in evs if "type" in e]
bad = [e for e in evs if e["type"] != "verdict" or e["reason"] != "allowed"]
mine = [e for e in evs if {e.get("src"), e.get("dst")} == {"10.99.0.1", "10.99.0.2"}
        and {e.get("src_identity"), e.get("dst_identity")} == {65800, 65801}
        and any("app=frontend" in x for x in e.get("src_labels", []) + e.get("dst_labels", []))]
if sys.argv[2] != "exchanged":
    print("the exchange did not go through: " + sys.argv[2])
elif not evs or bad or not mine:
    print("%d events, %d not verdicts, %d of the exchange" % (len(evs), len(bad), len(mine)))
else:
    print("ok")
PY
)
check monitor_verdict "$r" ok

# help: the daemon's command list (raw request), and meshgatectl's.
r=$($PY - "$SOCK" <<'PY'
import json, socket, sys
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
c.sendall(b'{"command":"help"}\n')
f = c.makefile("rb")
d = json.loads(f.readline())
cmds = {x["name"]: x["mutating"] for x in d["result"]["commands"]}
want = {"status", "config.show", "identity.list", "identity.get", "ip.list", "ip.get",
        "policy.get", "policy.selectors", "policy.trace", "ct.list", "ct.flush",
        "sync.status", "sync.resync", "monitor", "metrics", "reload", "help"}
e = []
if set(cmds) != want:
    e.append("commands %r" % sorted(cmds))
mut = sorted(n for n, m in cmds.items() if m)
if mut != ["ct.flush", "reload", "sync.resync"]:
    e.append("mutating %r" % mut)
print("; ".join(e) or "ok")
PY
)
check help_daemon "$r" ok
out=$("$CTL" help 2>&1)
rc=$?
miss=""
for w in status "config show" "identity list" "identity get" "ip list" "ip get" "policy get" \
	"policy selectors" "policy trace" "ct list" "ct flush" "sync status" "sync resync" \
	monitor metrics reload; do
	grep -q "^  $w " <<<"$out" || miss="$miss [$w]"
done
if [ $rc -eq 0 ] && [ -z "$miss" ]; then pass help_cli; else
	fail help_cli "exit $rc, missing:${miss:- none}"
fi

# ---- 2. permissions: uid 65534 ----

# asnobody GID ARGS...: meshgatectl as uid 65534 with only group GID.
asnobody() {
	local gid=$1
	shift
	setpriv --reuid=$NOBODY --regid="$gid" --clear-groups "$NCTL" --socket "$SOCK" "$@"
}
# perm_read NAME ARGS...: the command works for a member of the socket's group.
perm_read() {
	local name=$1 out rc
	shift
	out=$(asnobody $NOGROUP "$@" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -eq 0 ]; then pass "$name"; else fail "$name" "$* as uid $NOBODY: exit $rc: $out"; fi
}
perm_read perm_read_status status
perm_read perm_read_identity_list identity list
perm_read perm_read_ip_get ip get 10.99.0.2
perm_read perm_read_policy_get policy get
perm_read perm_read_policy_trace policy trace --src 10.99.0.1 --dst 10.99.0.2 --proto tcp --dport 8080
perm_read perm_read_ct_list ct list
perm_read perm_read_sync_status sync status
perm_read perm_read_metrics metrics
perm_read perm_read_config_show config show

# monitor as uid 65534: subscribes, sees the denied packet, ends on SIGINT.
setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups "$NCTL" --socket "$SOCK" \
	monitor --type drop -o json >"$MG_WORK/mon.out" 2>"$MG_WORK/mon.err" &
mpid=$!
MG_BG_PIDS+=("$mpid")
sleep 0.5
for _ in 1 2 3; do
	eval "$DENIED"
	mg_wait_grep "$MG_WORK/mon.out" '"src": *"10.99.0.1".*"dst": *"10.99.0.2"' 3 && break
done
kill -INT "$mpid" 2>/dev/null
wait "$mpid"
mrc=$?
if [ $mrc -eq 0 ] && grep -q '"reason": *"policy_denied_ingress"' "$MG_WORK/mon.out"; then
	pass perm_read_monitor
else
	fail perm_read_monitor "exit $mrc, stdout $(head -c 300 "$MG_WORK/mon.out"), stderr $(head -c 300 "$MG_WORK/mon.err")"
fi

# Refused: exit 1, a message, nothing on stdout; and nothing changed.
state() {
	"$CTL" --socket "$SOCK" status -o json | $PY -c '
import json, sys
s = json.load(sys.stdin)
print(s["policy"]["revision"], s["reloads"]["ok"], s["reloads"]["failed"])'
}
eval "$TRAFFIC"
before=$(state)
ct_before=$("$CTL" --socket "$SOCK" ct list -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])')
documented=ok
for c in reload "ct flush" "sync resync"; do
	name=perm_refused_${c// /_}
	# shellcheck disable=SC2086
	out=$(asnobody $NOGROUP $c 2>"$MG_WORK/perm.err")
	rc=$?
	err=$(cat "$MG_WORK/perm.err")
	if [ $rc -eq 1 ] && [ -z "$out" ] && grep -qiE 'permission denied|needs root' <<<"$err"; then
		pass "$name"
	else
		fail "$name" "exit $rc, stdout '$out', stderr '$err'"
	fi
	grep -q "permission denied" <<<"$err" || documented="meshgatectl $c as uid $NOBODY says '$err'"
done
after=$(state)
ct_after=$("$CTL" --socket "$SOCK" ct list -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])')
if [ "$before" = "$after" ] && [ "${ct_before:-0}" -ge 1 ] && [ "$ct_after" -ge 1 ]; then
	pass perm_refused_changed_nothing
else
	fail perm_refused_changed_nothing "revision/ok/failed $before -> $after, ct entries $ct_before -> $ct_after"
fi
# docs/cli.md: "meshgatectl reload: permission denied: reload needs root or group ..."
if [ "$documented" = ok ]; then pass perm_message_documented; else
	fail perm_message_documented "$documented (docs/cli.md shows 'permission denied: ...')"
fi

# Not in the socket's group: the socket's mode (0660) refuses the connection.
out=$(asnobody $OTHER_GROUP status 2>"$MG_WORK/perm.err")
rc=$?
err=$(cat "$MG_WORK/perm.err")
if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q "Permission denied" <<<"$err" &&
	grep -q "control.group" <<<"$err"; then
	pass perm_no_group_eacces
else
	fail perm_no_group_eacces "exit $rc, stdout '$out', stderr '$err'"
fi

# ---- 3. the protocol on a raw connection ----

$PY - "$SOCK" "$MAX_REQUEST" >"$MG_WORK/proto.out" 2>&1 <<'PY'
import json, socket, sys

path, limit = sys.argv[1], int(sys.argv[2])


def conn():
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(10)
    c.connect(path)
    return c, c.makefile("rb")


def say(name, ok, why=""):
    print("%s %s%s" % (name, "ok" if ok else "bad", "" if ok else ": " + why), flush=True)


c, f = conn()
c.sendall(b"this is { not json\n")
line = f.readline()
try:
    d = json.loads(line)
    say("garbage_einval", d.get("ok") is False and d.get("code") == "EINVAL" and
        d.get("error"), repr(line))
except ValueError:
    say("garbage_einval", False, repr(line))
c.sendall(b'{"command":"status","id":7}\n')
line = f.readline()
try:
    d = json.loads(line)
    say("garbage_then_status", d.get("ok") is True and d.get("id") == 7 and
        "ports" in d["result"], repr(line[:200]))
except (ValueError, KeyError, TypeError):
    say("garbage_then_status", False, repr(line[:200]))
c.sendall(b'{"command":"no.such.command"}\n')
line = f.readline()
try:
    d = json.loads(line)
    say("unknown_command", d.get("ok") is False and d.get("code") == "ENOENT", repr(line))
except ValueError:
    say("unknown_command", False, repr(line))
c.close()

# One line longer than the limit, no newline: E2BIG, then the server closes.
c, f = conn()
try:
    c.sendall(b'{"command":"status","args":{"pad":"' + b"x" * (limit + 100))
except OSError:  # the server may close before it has read all of it
    pass
line = f.readline()
try:
    d = json.loads(line)
    say("oversize_e2big", d.get("ok") is False and d.get("code") == "E2BIG", repr(line))
except ValueError:
    say("oversize_e2big", False, repr(line))
try:
    rest = f.read()
    say("oversize_closed", rest == b"", "more after E2BIG: %r" % rest[:200])
except ConnectionResetError:
    # closed with the rest of the line unread: Linux resets instead of EOF
    say("oversize_closed", True)
except (socket.timeout, OSError) as x:
    say("oversize_closed", False, "not closed within 10 s: %r" % x)
c.close()

c, f = conn()
c.sendall(b'{"command":"ct.list","args":{"limit":1}}\n')
line = f.readline()
try:
    say("new_conn_after_oversize", json.loads(line).get("ok") is True, repr(line[:200]))
except ValueError:
    say("new_conn_after_oversize", False, repr(line[:200]))
c.close()
PY
for p in garbage_einval garbage_then_status unknown_command oversize_e2big oversize_closed \
	new_conn_after_oversize; do
	l=$(grep "^$p " "$MG_WORK/proto.out")
	case $l in
	"$p ok") pass "proto_$p" ;;
	"") fail "proto_$p" "no result: $(tail -n 3 "$MG_WORK/proto.out" | tr '\n' ' ')" ;;
	*) fail "proto_$p" "${l#"$p bad: "}" ;;
	esac
done

# The gateway kept forwarding through all of it, and kept enforcing.
check forwarding_after_protocol_abuse "$(mg_ping "$MG_NS_BACK" 10.99.0.1 10.99.0.4)" replied
check denied_still_dropped "$(mg_ping "$MG_NS_FRONT" 10.99.0.2)" blocked

mg_daemon_stop
rc=$?
if [ $rc -eq 0 ]; then pass daemon_clean_exit; else
	fail daemon_clean_exit "exit $rc: $(tail -n 5 "$MG_WORK/meshgate.err" | tr '\n' ' ')"
fi
exit $failed
