#!/bin/bash
# Runs tests/integration/kvsync_test (the sync client against a real
# redis-server): starts redis-server on a free loopback port in a temporary
# directory without persistence, runs the program, stops the server.
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
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
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
for _ in $(seq 100); do
	redis-cli -p "$port" ping >/dev/null 2>&1 && break
	sleep 0.05
done
KVSYNC_DIR=$dir "$prog" "$port" "$root/conf/redis/meshgate.lua"
