#!/usr/bin/env bash
# Installs the Debian 12 packages meshgate needs to build, test and run its
# demo. Idempotent: packages already present are not touched, and apt is only
# asked when something is missing. Run as root.
set -euo pipefail

PKGS=(
	build-essential pkg-config meson ninja-build git
	libdpdk-dev dpdk dpdk-dev
	libyaml-dev libhiredis-dev libjemalloc-dev libcunit1-dev
	libjansson-dev libmicrohttpd-dev libpcap-dev libnuma-dev
	python3 python3-scapy python3-prometheus-client
	iproute2 ethtool netcat-openbsd iputils-ping procps tcpdump strace
	redis-server redis-tools
	libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev openssl
	etcd-server etcd-client
	clang clang-format libclang-rt-14-dev llvm
)

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all ${#PKGS[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# redis-server's package starts a system instance; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now redis-server >/dev/null 2>&1 || true
	systemctl disable --now etcd >/dev/null 2>&1 || true
fi
echo "setup: done"
