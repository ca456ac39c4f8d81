#!/bin/bash
# Runs tests/integration/etcd_test (lib/etcd against a real etcd 3.4 with
# TLS, client certificates and auth, as Cilium's clustermesh-apiserver runs
# it): starts one with tests/etcd/etcd_env.sh in a temporary directory, runs
# the program (which kills, stops and re-creates that etcd in its last
# tests, through the same script), stops etcd and removes the directory.
# Usage: etcd_test.sh <path/to/etcd_test>
set -u
prog=${1:?usage: etcd_test.sh <etcd_test binary>}
root=$(cd "$(dirname "$0")/../.." && pwd)
envsh=$root/tests/etcd/etcd_env.sh
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
	echo "SKIP: etcd: etcd or etcdctl not installed"
	exit 0
fi
dir=$(mktemp -d)
cleanup() {
	bash "$envsh" stop "$dir" >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! bash "$envsh" start "$dir"; then
	echo "FAIL: etcd/setup: etcd did not start"
	exit 1
fi
ETCD_ENV_DIR=$dir ETCD_ENV_SH=$envsh "$prog"
rc=$?
if [ $rc -ne 0 ] && [ -f "$dir/etcd.log" ]; then
	echo "---- etcd.log (last 20 lines)"
	tail -n 20 "$dir/etcd.log"
fi
exit $rc
