# shellcheck shell=bash
# Network-namespace helpers shared by tests/e2e/netns_test.sh and
# scripts/demo.sh: two namespaces joined through meshgate, real traffic
# between them, cleanup that also runs on failure.
#
#   namespace MG_NS_FRONT              root namespace             namespace MG_NS_BACK
#   veth0 10.99.0.1,5/24 <-veth-> MG_IF_IN == meshgate == MG_IF_OUT  <-veth->  veth0 10.99.0.2-4/24
#         fd00:99::1,5/64           (inside)             (outside)                  fd00:99::2-4/64
#
# In the demo's terms (conf/examples/demo/): frontend .1 and a database
# replica .5 on one side; backend .2, database .3 and monitoring .4 on the
# other. Two pods on the same side talk without the gateway, so the
# replica is what lets backend -> database cross it.
#
# The gateway polls the root-side ends with DPDK's net_af_packet in wire
# mode, so the two namespaces share one Ethernet segment through it (ARP and
# neighbour discovery cross it too). The root-side ends have no addresses
# and IPv6 off: the root namespace sends nothing into the test. Every
# address lives inside the namespaces made here, so no traffic leaves them.
#
# The caller sets MG_NS_FRONT, MG_NS_BACK, MG_IF_IN, MG_IF_OUT (interface
# names: at most 15 characters) and MG_WORK (a scratch folder), calls
# mg_topology_up, and installs `trap mg_cleanup EXIT`.

MG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MG_FRONT_ADDRS=("10.99.0.1/24" "10.99.0.5/24" "fd00:99::1/64" "fd00:99::5/64")
MG_BACK_ADDRS=("10.99.0.2/24" "10.99.0.3/24" "10.99.0.4/24"
	"fd00:99::2/64" "fd00:99::3/64" "fd00:99::4/64")
MG_DAEMON_PID=""
MG_BG_PIDS=()

mg_log() { echo "$*" >&2; }

# mg_can_netns: 0 if this process may create namespaces and veth pairs
# (prints the reason otherwise).
mg_can_netns() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "needs root (network namespaces and veth pairs)"
		return 1
	fi
	local probe="mgprobe-$$"
	if ! ip netns add "$probe" 2>/dev/null; then
		echo "cannot create a network namespace here"
		return 1
	fi
	ip netns del "$probe" 2>/dev/null
	for t in nc ping ethtool ss; do
		if ! command -v "$t" >/dev/null 2>&1; then
			echo "$t is not installed (scripts/setup.sh installs it)"
			return 1
		fi
	done
	return 0
}

# mg_side NS IF_ROOT ADDR...: one namespace, its veth pair, its addresses.
mg_side() {
	local ns=$1 ifr=$2
	shift 2
	ip netns add "$ns" || return 1
	ip link add "$ifr" type veth peer name veth0 netns "$ns" || return 1
	# Root side: no addresses, no IPv6 (no link-local, no router
	# solicitations), just up so the gateway can poll it.
	sysctl -qw "net.ipv6.conf.$ifr.disable_ipv6=1" >/dev/null || return 1
	ip link set "$ifr" up || return 1
	ip -n "$ns" link set lo up || return 1
	local a v6=0
	for a in "$@"; do
		if [[ $a == *:* ]]; then
			# The first IPv6 address is the one connections leave
			# from; the others are deprecated, so that the kernel
			# never picks them unless asked to (IPv4 does this by
			# itself: later addresses of a subnet are secondary).
			if [ $v6 = 0 ]; then
				ip -n "$ns" -6 addr add "$a" dev veth0 nodad || return 1
			else
				ip -n "$ns" -6 addr add "$a" dev veth0 nodad preferred_lft 0 || return 1
			fi
			v6=1
		else
			ip -n "$ns" addr add "$a" dev veth0 || return 1
		fi
	done
	ip -n "$ns" link set veth0 up || return 1
	# Without this, TCP and UDP leave with checksums to be finished by
	# the device; af_packet hands them on unfinished and the receiver
	# drops them.
	ip netns exec "$ns" ethtool -K veth0 tx off >/dev/null || return 1
}

mg_topology_up() {
	mg_side "$MG_NS_FRONT" "$MG_IF_IN" "${MG_FRONT_ADDRS[@]}" &&
		mg_side "$MG_NS_BACK" "$MG_IF_OUT" "${MG_BACK_ADDRS[@]}"
}

# mg_demo_config DIR PREFIX: a copy of conf/examples/demo in DIR (the
# caller may edit it) whose meshgate.yaml polls $MG_IF_IN / $MG_IF_OUT with
# DPDK file prefix PREFIX, and has no control or metrics section: the
# caller appends its own (a socket in its scratch folder, any free port).
mg_demo_config() {
	local dir=$1 prefix=$2 demo
	demo=$(cd "$MG_LIB_DIR/../../conf/examples/demo" && pwd) || return 1
	cp -r "$demo" "$dir" || return 1
	sed -e "s/mgdemo-in/$MG_IF_IN/; s/mgdemo-out/$MG_IF_OUT/; s/meshgate-demo/$prefix/" \
		"$demo/meshgate.yaml" |
		awk '/^(control|metrics):/ { skip = 1; next } /^[^ \t#]/ { skip = 0 } !skip' \
			>"$dir/meshgate.yaml"
}

# mg_redis_start: a private redis-server in $MG_WORK/redis, only a unix
# socket (no TCP port, so concurrent runs cannot meet), no persistence.
# Sets REDIS_SOCK, REDIS_URL and REDIS_PID (also in MG_BG_PIDS); 0 once it
# answers PING (at most 10 s).
mg_redis_start() {
	local i
	REDIS_SOCK=$MG_WORK/redis.sock
	# shellcheck disable=SC2034 # for the caller
	REDIS_URL=unix://$REDIS_SOCK
	mkdir -p "$MG_WORK/redis"
	redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
		--dir "$MG_WORK/redis" --save '' --appendonly no --daemonize no \
		--logfile "$MG_WORK/redis/redis.log" </dev/null >/dev/null 2>&1 &
	REDIS_PID=$!
	MG_BG_PIDS+=("$REDIS_PID")
	for ((i = 0; i < 100; i++)); do
		[ "$(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null)" = PONG ] && return 0
		kill -0 "$REDIS_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# mg_daemon_start BINARY CONFIG: start meshgate in the background (output
# in $MG_WORK/meshgate.{out,err}, stats in $MG_WORK/stats.json) and wait
# until it says it is ready (at most 60 s). 0 when ready.
mg_daemon_start() {
	local bin=$1 cfg=$2
	"$bin" -c "$cfg" --stats-file "$MG_WORK/stats.json" \
		</dev/null >"$MG_WORK/meshgate.out" 2>"$MG_WORK/meshgate.err" &
	MG_DAEMON_PID=$!
	for _ in $(seq 1 600); do
		if grep -q "ready" "$MG_WORK/meshgate.err" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$MG_DAEMON_PID" 2>/dev/null; then
			wait "$MG_DAEMON_PID" 2>/dev/null
			mg_log "meshgate exited with status $? before it was ready"
			MG_DAEMON_PID=""
			return 1
		fi
		sleep 0.1
	done
	mg_log "meshgate not ready after 60 s"
	return 1
}

# mg_daemon_stop: SIGTERM, wait (at most 30 s, then SIGKILL). Returns the
# daemon's exit status (137 when it had to be killed).
mg_daemon_stop() {
	local pid=$MG_DAEMON_PID rc
	[ -n "$pid" ] || return 0
	MG_DAEMON_PID=""
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		mg_log "meshgate ignored SIGTERM for 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	return $rc
}

mg_cleanup() {
	local p
	mg_daemon_stop >/dev/null 2>&1
	for p in "${MG_BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	MG_BG_PIDS=()
	# Deleting a namespace deletes its veth end and so the pair.
	ip netns del "$MG_NS_FRONT" 2>/dev/null
	ip netns del "$MG_NS_BACK" 2>/dev/null
	ip link del "$MG_IF_IN" 2>/dev/null
	ip link del "$MG_IF_OUT" 2>/dev/null
	return 0
}

# mg_wait_listen NS PORT: until something listens on TCP PORT in NS (at most 10 s).
mg_wait_listen() {
	local ns=$1 port=$2
	for _ in $(seq 1 100); do
		if ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# mg_wait_grep FILE REGEX SECONDS: until a line of FILE matches REGEX
# (grep -E), at most SECONDS. 0 when it did.
mg_wait_grep() {
	local file=$1 re=$2 secs=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		if grep -qE -- "$re" "$file" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	grep -qE -- "$re" "$file" 2>/dev/null
}

# mg_tcp CLIENT_NS SERVER_NS ADDR PORT [listen|nolisten] [SOURCE]
# Tries a TCP connection from CLIENT_NS (from address SOURCE if given) to
# ADDR:PORT and sends a token.
# With "listen" (the default) a one-shot listener runs in SERVER_NS first.
# The connection is given 5 s to come up (an allowed one takes
# milliseconds; a dropped SYN never gets an answer).
# Prints one word:
#   delivered  the connection was made and the token reached the listener
#   refused    the connection was refused (a RST came back: not dropped)
#   blocked    no answer at all (dropped on the way); with a listener, it
#              also received nothing
#   broken     anything else (connected but the token got lost, ...)
mg_tcp() {
	local cns=$1 sns=$2 addr=$3 port=$4 mode=${5:-listen} src=${6:-}
	local token="meshgate-e2e-$$-$RANDOM-$port"
	local recv="$MG_WORK/recv-${addr//:/_}-$port"
	local lpid="" err rc
	local -a sopt=()
	[ -n "$src" ] && sopt=(-s "$src")
	: >"$recv"
	if [ "$mode" = listen ]; then
		ip netns exec "$sns" timeout 40 nc -d -l "$addr" "$port" >"$recv" 2>/dev/null &
		lpid=$!
		MG_BG_PIDS+=("$lpid")
		if ! mg_wait_listen "$sns" "$port"; then
			echo broken
			return
		fi
	fi
	err=$(echo "$token" | ip netns exec "$cns" timeout 30 nc -v -N -w 5 "${sopt[@]}" "$addr" "$port" 2>&1 >/dev/null)
	rc=$?
	if [ -n "$lpid" ]; then
		# The listener exits once the client has closed; give it time
		# to write what it got, then make sure it is gone.
		if [ $rc -eq 0 ]; then
			for _ in $(seq 1 100); do
				kill -0 "$lpid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		kill "$lpid" 2>/dev/null
		wait "$lpid" 2>/dev/null
	fi
	if [[ $err == *refused* ]]; then
		echo refused
	elif [ $rc -eq 0 ] && grep -qF "$token" "$recv"; then
		echo delivered
	elif [ $rc -ne 0 ] && [ ! -s "$recv" ]; then
		echo blocked
	else
		echo broken
	fi
}

# mg_exchange CLIENT_NS SERVER_NS ADDR PORT [SOURCE]
# A real TCP exchange in both directions (tcp_peer.py): a listener in
# SERVER_NS answers the client's line with a line and 200000 bytes (many
# segments), then both close. The connection is given 5 s to come up.
# Prints one word:
#   exchanged  both lines arrived whole and the connection closed cleanly
#   blocked    the connection never came up (dropped on the way)
#   refused    a RST came back
#   broken     anything else (details on stderr)
mg_exchange() {
	local cns=$1 sns=$2 addr=$3 port=$4 src=${5:-}
	local tag="${addr//:/_}-$port-$RANDOM"
	local srv="$MG_WORK/xchg-$tag.srv" cli="$MG_WORK/xchg-$tag.cli"
	local token="hello-$$-$tag" spid got first
	local -a bind=()
	[ -n "$src" ] && bind=(--bind "$src")
	ip netns exec "$sns" /usr/bin/python3 "$MG_LIB_DIR/tcp_peer.py" listen "$addr" "$port" \
		--echo 200000 --timeout 20 </dev/null >"$srv" 2>&1 &
	spid=$!
	MG_BG_PIDS+=("$spid")
	if ! mg_wait_grep "$srv" '^listening' 10; then
		mg_log "exchange $addr $port: the listener did not start: $(head -c 300 "$srv")"
		kill "$spid" 2>/dev/null
		echo broken
		return
	fi
	echo "$token" | ip netns exec "$cns" /usr/bin/python3 "$MG_LIB_DIR/tcp_peer.py" connect \
		"$addr" "$port" "${bind[@]}" --timeout 5 >"$cli" 2>&1
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	first=$(head -n 1 "$cli")
	got=$(sed -n "s/^recv: ack $token //p" "$cli" | head -n 1)
	if [ "$first" = timeout ] && ! grep -q '^connected' "$srv"; then
		echo blocked
	elif [ "$first" = refused ]; then
		echo refused
	elif grep -qx "recv: $token" "$srv" && [ "${#got}" -eq 200000 ] && grep -qx closed "$cli"; then
		echo exchanged
	else
		mg_log "exchange $addr $port: client: $(cut -c 1-80 "$cli" | tr '\n' ' ')" \
			"server: $(cut -c 1-80 "$srv" | tr '\n' ' ') (got ${#got} of 200000 bytes)"
		echo broken
	fi
}

# mg_ping NS ADDR [SOURCE] [SIZE]: "replied" if at least one echo reply
# came back, else "blocked". A SIZE above the MTU sends fragments.
mg_ping() {
	local ns=$1 addr=$2 src=${3:-} size=${4:-}
	local -a opt=()
	[ -n "$src" ] && opt=(-I "$src")
	[ -n "$size" ] && opt+=(-s "$size")
	if ip netns exec "$ns" ping -n -q -c 3 -i 0.3 -W 2 "${opt[@]}" "$addr" >/dev/null 2>&1; then
		echo replied
	else
		echo blocked
	fi
}

# mg_stat FILE EXPR: evaluate a Python expression over the stats JSON `s`.
mg_stat() {
	/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}
