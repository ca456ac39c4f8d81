#!/bin/bash
# Runs tests/integration/kvsync_test (the sync client against a real
# redis-server): starts redis-server on a free loopback port in a temporary
# directory without persistence, and a second one (the failover test makes
# the first a replica of it, then promotes it), runs the program, stops them.
# Also runs gateway_sync_test and kvlease_test, which take the same arguments.
# Usage: kvsync_test.sh <path/to/kvsync_test>
set -u
prog=${1:?usage: kvsync_test.sh <kvsync_test binary>}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v redis-server >/dev/null; then
	echo "SKIP: kvsync: redis-server not installed"
	exit 0
fi
dir=$(mktemp -d)
pid=
pid2=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if [ -n "$pid2" ]; then
		kill "$pid2" 2>/dev/null
		wait "$pid2" 2>/dev/null
	fi
	# the program may have started a second server (restart test)
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$dir" --logfile "$dir/redis.log" &
pid=$!
mkdir "$dir/2"
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port2" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$dir/2" --logfile "$dir/2/redis.log" &
pid2=$!
for p in "$port" "$port2"; do
	for _ in $(seq 100); do
		redis-cli -p "$p" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
done
KVSYNC_DIR=$dir KVSYNC_PORT2=$port2 "$prog" "$port" "$root/conf/redis/meshgate.lua"
