#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A throw-away etcd 3.4 set up the way Cilium's clustermesh-apiserver runs
# it (docs/etcd-client.md, "Test environment"): TLS on the client port with
# client certificates required, the user named by the certificate's CN,
# auth enabled with a root user and a read-only role `remote` on cilium/.
#
#   etcd_env.sh start DIR [NAME]   certificates (once), etcd, auth (on a new
#                                  data dir); writes DIR/env and DIR/NAME
#   etcd_env.sh stop DIR           SIGTERM, then SIGKILL after 10 s
#   etcd_env.sh kill DIR           SIGKILL (a crashed server)
#   etcd_env.sh restart-empty DIR  stop, wipe the data, start as a new etcd
#                                  cluster (new cluster id), auth again
#
# It may also be sourced: the functions etcd_env_start, etcd_env_stop,
# etcd_env_kill and etcd_env_restart_empty do the same.
#
# DIR/env (shell syntax, one VAR=value a line): ETCD_ENDPOINT, ETCD_PID,
# ETCD_PEER_PORT, ETCD_DATA_DIR, ETCD_LOG, ETCD_CA, ETCD_{ROOT,REMOTE,
# NOBODY,WRONG}_{CERT,KEY} and ETCD_WRONG_CA. CN=nobody is signed by the
# right CA but is no etcd user; ETCD_WRONG_* is a CN=root client of an
# unrelated CA (ETCD_WRONG_CA) that etcd does not trust. DIR/NAME (default
# "cluster1") is a clustermesh-style etcd config (YAML) for user remote.
# A second start on the same DIR reuses its certificates, ports and data.

etcd_env_die() {
	echo "etcd_env: $*" >&2
	return 1
}

# A free TCP port on 127.0.0.1 (the kernel picks it; the caller retries on
# the rare clash between this check and etcd's bind).
etcd_env_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# etcd_env_cert DIR NAME CN CA EXT: a key and a certificate signed by CA.
etcd_env_cert() {
	local d=$1 name=$2 cn=$3 ca=$4 ext=$5
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$name.key" -subj "/CN=$cn" -out "$d/$name.csr" 2>/dev/null || return 1
	printf '%s\n' "$ext" >"$d/$name.ext"
	openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" \
		-CAcreateserial -days 3650 -sha256 -extfile "$d/$name.ext" \
		-out "$d/$name.crt" 2>/dev/null || return 1
	rm -f "$d/$name.csr" "$d/$name.ext"
}

etcd_env_ca() {
	local d=$1 name=$2 cn=$3
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$name.key" -subj "/CN=$cn" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$d/$name.crt" 2>/dev/null
}

etcd_env_certs() {
	local d=$1/certs
	[ -s "$d/ca.crt" ] && [ -s "$d/wrong.crt" ] && return 0
	mkdir -p "$d" || return 1
	local usage="extendedKeyUsage=serverAuth,clientAuth"
	etcd_env_ca "$d" ca "meshgate test CA" &&
		etcd_env_cert "$d" server etcd-server ca \
			"subjectAltName=IP:127.0.0.1
$usage" &&
		etcd_env_cert "$d" root root ca "$usage" &&
		etcd_env_cert "$d" remote remote ca "$usage" &&
		etcd_env_cert "$d" nobody nobody ca "$usage" &&
		etcd_env_ca "$d" wrongca "unrelated test CA" &&
		etcd_env_cert "$d" wrong root wrongca "$usage" ||
		{ etcd_env_die "cannot make the certificates in $d"; return 1; }
	chmod 600 "$d"/*.key
}

# etcdctl as root (or as the user of $ETCD_ENV_AS).
etcd_env_ctl() {
	local d=$1
	shift
	local as=${ETCD_ENV_AS:-root}
	env -u ETCDCTL_API etcdctl --endpoints="https://127.0.0.1:$ETCD_ENV_CPORT" \
		--cacert="$d/certs/ca.crt" --cert="$d/certs/$as.crt" --key="$d/certs/$as.key" \
		--dial-timeout=3s --command-timeout=5s "$@"
}

etcd_env_write() {
	local d=$1 name=$2
	cat >"$d/env.tmp" <<EOF
ETCD_ENDPOINT=https://127.0.0.1:$ETCD_ENV_CPORT
ETCD_PID=$ETCD_ENV_PID
ETCD_PEER_PORT=$ETCD_ENV_PPORT
ETCD_NAME=$name
ETCD_DATA_DIR=$d/data
ETCD_LOG=$d/etcd.log
ETCD_CONFIG=$d/$name
ETCD_CA=$d/certs/ca.crt
ETCD_ROOT_CERT=$d/certs/root.crt
ETCD_ROOT_KEY=$d/certs/root.key
ETCD_REMOTE_CERT=$d/certs/remote.crt
ETCD_REMOTE_KEY=$d/certs/remote.key
ETCD_NOBODY_CERT=$d/certs/nobody.crt
ETCD_NOBODY_KEY=$d/certs/nobody.key
ETCD_WRONG_CA=$d/certs/wrongca.crt
ETCD_WRONG_CERT=$d/certs/wrong.crt
ETCD_WRONG_KEY=$d/certs/wrong.key
EOF
	mv "$d/env.tmp" "$d/env"
	cat >"$d/$name" <<EOF
endpoints:
- https://127.0.0.1:$ETCD_ENV_CPORT
trusted-ca-file: '$d/certs/ca.crt'
cert-file: '$d/certs/remote.crt'
key-file: '$d/certs/remote.key'
EOF
}

# The previous start's ports, name and token, when DIR/env exists.
etcd_env_load() {
	local d=$1
	ETCD_ENV_CPORT= ETCD_ENV_PPORT= ETCD_ENV_PID= ETCD_ENV_NAME=
	[ -f "$d/env" ] || return 0
	local k v
	while IFS='=' read -r k v; do
		case $k in
		ETCD_ENDPOINT) ETCD_ENV_CPORT=${v##*:} ;;
		ETCD_PEER_PORT) ETCD_ENV_PPORT=$v ;;
		ETCD_PID) ETCD_ENV_PID=$v ;;
		ETCD_NAME) ETCD_ENV_NAME=$v ;;
		esac
	done <"$d/env"
}

etcd_env_alive() {
	local pid=$1 st
	[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
	st=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$pid/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Launches etcd in the background (a grandchild: it outlives a run of this
# script but stays in the caller's process group, so a timeout that kills
# the group kills it too). Every ETCD_* variable of the environment is
# removed: etcd would read them as flags.
etcd_env_launch() {
	local d=$1 name=$2 token=$3
	local unset=() v
	for v in $(compgen -e); do
		case $v in ETCD_* | ETCDCTL_*) unset+=(-u "$v") ;; esac
	done
	(
		env "${unset[@]}" etcd --name "$name" --data-dir "$d/data" \
			--listen-client-urls "https://127.0.0.1:$ETCD_ENV_CPORT" \
			--advertise-client-urls "https://127.0.0.1:$ETCD_ENV_CPORT" \
			--listen-peer-urls "http://127.0.0.1:$ETCD_ENV_PPORT" \
			--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_ENV_PPORT" \
			--initial-cluster "$name=http://127.0.0.1:$ETCD_ENV_PPORT" \
			--initial-cluster-token "$token" --initial-cluster-state new \
			--cert-file "$d/certs/server.crt" --key-file "$d/certs/server.key" \
			--trusted-ca-file "$d/certs/ca.crt" --client-cert-auth \
			--logger zap --log-outputs stderr --log-level warn \
			</dev/null >>"$d/etcd.log" 2>&1 &
		echo $! >"$d/etcd.pid"
	)
	ETCD_ENV_PID=$(cat "$d/etcd.pid")
}

# Waits up to 20 s for `etcdctl endpoint health`; fails early if etcd died.
etcd_env_wait() {
	local d=$1 i
	for i in $(seq 200); do
		etcd_env_alive "$ETCD_ENV_PID" || return 1
		if [ $((i % 5)) -eq 1 ] || [ "$i" -gt 20 ]; then
			etcd_env_ctl "$d" endpoint health >/dev/null 2>&1 && return 0
		fi
		sleep 0.1
	done
	return 1
}

# clustermesh-apiserver's users and roles (TESTING.md): root; remote may
# read cilium/ and nothing else; then auth on.
etcd_env_auth() {
	local d=$1
	etcd_env_ctl "$d" user add root --no-password &&
		etcd_env_ctl "$d" user grant-role root root &&
		etcd_env_ctl "$d" role add remote &&
		etcd_env_ctl "$d" role grant-permission remote --prefix=true read cilium/ &&
		etcd_env_ctl "$d" user add remote --no-password &&
		etcd_env_ctl "$d" user grant-role remote remote &&
		etcd_env_ctl "$d" auth enable
}

etcd_env_start() {
	local d=${1:?usage: start DIR [NAME]} name=${2:-}
	command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
		{ etcd_env_die "etcd and etcdctl are not installed"; return 1; }
	mkdir -p "$d" && d=$(cd "$d" && pwd) || return 1
	etcd_env_load "$d"
	if etcd_env_alive "$ETCD_ENV_PID"; then
		etcd_env_die "etcd already runs (pid $ETCD_ENV_PID)"
		return 1
	fi
	name=${name:-${ETCD_ENV_NAME:-cluster1}}
	etcd_env_certs "$d" || return 1
	local fresh=0 try token
	[ -d "$d/data/member" ] || fresh=1
	for try in 1 2 3; do
		if [ -z "$ETCD_ENV_CPORT" ] || [ "$try" -gt 1 ]; then
			ETCD_ENV_CPORT=$(etcd_env_free_port) && ETCD_ENV_PPORT=$(etcd_env_free_port) ||
				return 1
			[ "$ETCD_ENV_CPORT" != "$ETCD_ENV_PPORT" ] || continue
		fi
		# A new token makes a new cluster id even on the same peer URL.
		token="mg-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
		[ "$fresh" = 1 ] && rm -rf "$d/data"
		etcd_env_launch "$d" "$name" "$token"
		if etcd_env_wait "$d"; then
			if [ "$fresh" = 1 ] && ! etcd_env_auth "$d" >>"$d/etcd.log" 2>&1; then
				etcd_env_die "auth setup failed (see $d/etcd.log)"
				etcd_env_kill "$d"
				return 1
			fi
			etcd_env_write "$d" "$name"
			return 0
		fi
		kill -9 "$ETCD_ENV_PID" 2>/dev/null
		etcd_env_wait_gone "$ETCD_ENV_PID" 50
	done
	etcd_env_die "etcd did not become healthy; last lines of $d/etcd.log:"
	tail -n 20 "$d/etcd.log" >&2
	return 1
}

# etcd_env_wait_gone PID TENTHS
etcd_env_wait_gone() {
	local pid=$1 n=$2 i
	for i in $(seq "$n"); do
		etcd_env_alive "$pid" || return 0
		sleep 0.1
	done
	return 1
}

etcd_env_stop() {
	local d=${1:?usage: stop DIR}
	etcd_env_load "$d"
	etcd_env_alive "$ETCD_ENV_PID" || return 0
	kill "$ETCD_ENV_PID" 2>/dev/null
	etcd_env_wait_gone "$ETCD_ENV_PID" 100 && return 0
	kill -9 "$ETCD_ENV_PID" 2>/dev/null
	etcd_env_wait_gone "$ETCD_ENV_PID" 50
}

etcd_env_kill() {
	local d=${1:?usage: kill DIR}
	etcd_env_load "$d"
	etcd_env_alive "$ETCD_ENV_PID" || return 0
	kill -9 "$ETCD_ENV_PID" 2>/dev/null
	etcd_env_wait_gone "$ETCD_ENV_PID" 50
}

etcd_env_restart_empty() {
	local d=${1:?usage: restart-empty DIR}
	etcd_env_stop "$d" || return 1
	rm -rf "$d/data"
	etcd_env_start "$d"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:-}
	shift || true
	case $cmd in
	start) etcd_env_start "$@" ;;
	stop) etcd_env_stop "$@" ;;
	kill) etcd_env_kill "$@" ;;
	restart-empty) etcd_env_restart_empty "$@" ;;
	*)
		echo "usage: $0 start DIR [NAME] | stop DIR | kill DIR | restart-empty DIR" >&2
		exit 2
		;;
	esac
fi
