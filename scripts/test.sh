#!/usr/bin/env bash
# The one command that tests meshgate (README, CI's .ci/run). Run as root on
# Debian 12:
#
#   ./scripts/test.sh
#
# It installs what is missing (scripts/setup.sh), builds two variants
# (build/: warnings as errors, debugoptimized; build-san/: address and
# undefined sanitizers), checks the formatting, then runs every unit test
# program and fuzz-corpus replay that meson knows; the integration tests
# (the daemon on pcap ports, its /metrics and DPDK telemetry, meshgatectl
# offline and against a scripted server, Redis import and sync against
# redis-servers the tests start, the etcd client against an etcd with TLS
# and auth, the policy conformance suite); and the
# network-namespace end-to-end tests (real TCP/ICMP through the daemon
# with static and with Redis-only identities, every online command
# against the live daemon, the control socket against hostile clients
# under a flood of frames, reloads under continuous traffic).
#
# Every test program prints "PASS: name", "FAIL: name: reason" or
# "SKIP: name: reason" lines; this script counts them (names from the
# sanitized build get a "san:" prefix). A program that exits non-zero, or is
# killed, without printing a FAIL line counts as one more failure. The last
# line of output is always "N passed, N failed, N skipped" and the exit
# status is non-zero iff anything failed.
#
# Environment knobs (all optional):
#   MG_BUILD_DIR, MG_BUILD_SAN_DIR, MG_BUILD_REL_DIR
#                                   build folders (default build, build-san,
#                                   build-rel: release, compiled only)
#   MG_TEST_TIMEOUT                 seconds per program (default 300)
#   MG_TEST_VERBOSE=1               print every line of every program
#   MG_TEST_SKIP_SETUP=1            do not run scripts/setup.sh
#   MG_TEST_ONLY="build unit"       run only these steps, out of
#                                   setup build format unit integration e2e
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
BUILD=${MG_BUILD_DIR:-build}
BUILD_SAN=${MG_BUILD_SAN_DIR:-build-san}
BUILD_REL=${MG_BUILD_REL_DIR:-build-rel}
TIMEOUT=${MG_TEST_TIMEOUT:-300}
VERBOSE=${MG_TEST_VERBOSE:-0}
ONLY=${MG_TEST_ONLY:-"setup build format unit integration e2e"}
PY=/usr/bin/python3

# Sanitizer settings for everything that runs from build-san. Leaks are
# errors; the first report stops the program so the failure is loud.
SAN_ENV=(
	"ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:disable_coredump=1"
	"UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
	"LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
)

passed=0
failed=0
skipped=0
LOGDIR=$(mktemp -d /tmp/meshgate-test.XXXXXX)
START=$SECONDS

want() { [[ " $ONLY " == *" $1 "* ]]; }

# A one-line result the runner itself produces (a failed setup or build:
# counted, so a broken build can never end in "0 failed").
result() {
	local kind=$1 name=$2 reason=${3:-}
	case $kind in
	PASS) passed=$((passed + 1)); echo "PASS: $name" ;;
	FAIL) failed=$((failed + 1)); echo "FAIL: $name: $reason" ;;
	SKIP) skipped=$((skipped + 1)); echo "SKIP: $name: $reason" ;;
	esac
}

# run_prog LABEL PREFIX TIMEOUT CMD...
# Runs one test program with a time limit, stdin closed, output to a log;
# counts its result lines, shows failures, skips and a one-line summary.
run_prog() {
	local label=$1 prefix=$2 tmo=$3
	shift 3
	local log="$LOGDIR/${prefix//:/_}${label//\//_}.log"
	local t0=$SECONDS rc

	timeout -k 10 "$tmo" "$@" </dev/null >"$log" 2>&1
	rc=$?
	prog_result "$label" "$prefix" "$tmo" "$log" "$rc" "$t0"
}

# run_prog_bg LABEL PREFIX TIMEOUT CMD...: run_prog in the background, for
# a program that mostly waits (timeouts, backoffs, rate limits) and can
# share the machine with the next one; wait_bg counts it as run_prog does.
BG_PID=""
run_prog_bg() {
	BG_LABEL=$1 BG_PREFIX=$2 BG_TMO=$3 BG_T0=$SECONDS
	shift 3
	BG_LOG="$LOGDIR/${BG_PREFIX//:/_}${BG_LABEL//\//_}.log"
	timeout -k 10 "$BG_TMO" "$@" </dev/null >"$BG_LOG" 2>&1 &
	BG_PID=$!
}
wait_bg() {
	local rc
	[ -n "$BG_PID" ] || return 0
	wait "$BG_PID"
	rc=$?
	BG_PID=""
	prog_result "$BG_LABEL" "$BG_PREFIX" "$BG_TMO" "$BG_LOG" "$rc" "$BG_T0"
}

# prog_result LABEL PREFIX TIMEOUT LOG RC T0: count a finished program.
prog_result() {
	local label=$1 prefix=$2 tmo=$3 log=$4 rc=$5 t0=$6 p f s

	p=$(grep -c '^PASS: ' "$log")
	f=$(grep -c '^FAIL: ' "$log")
	s=$(grep -c '^SKIP: ' "$log")

	if [ "$VERBOSE" = 1 ]; then
		sed -E "s/^(PASS|FAIL|SKIP): /\1: ${prefix}/" "$log"
	else
		sed -n -E "s/^(FAIL|SKIP): /\1: ${prefix}/p" "$log"
	fi
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "FAIL: ${prefix}${label}: killed after ${tmo} s (timeout)"
		f=$((f + 1))
	elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL: ${prefix}${label}: exit status $rc"
		f=$((f + 1))
	elif [ $rc -eq 0 ] && [ $((p + f + s)) -eq 0 ]; then
		# A program with no result lines (say, a corpus replay) that
		# exits 0 has run and passed as a whole.
		echo "PASS: ${prefix}${label}"
		p=1
	fi
	if [ "$f" -gt 0 ] && [ "$VERBOSE" != 1 ]; then
		# Whatever else it printed (sanitizer reports, daemon errors).
		local other
		other=$(grep -v -E '^(PASS|FAIL|SKIP): ' "$log" | tail -n 60)
		if [ -n "$other" ]; then
			echo "---- ${prefix}${label}: output (last 60 other lines; full log $log)"
			echo "$other"
			echo "----"
		fi
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	printf '== %-34s %4d passed, %d failed, %d skipped (%d s)\n' \
		"${prefix}${label}" "$p" "$f" "$s" $((SECONDS - t0))
}

# build DIR [meson options...]: configure (again, so newly added test
# sources are picked up) and compile one variant.
build() {
	local dir=$1
	shift
	local log="$LOGDIR/build-${dir//\//_}.log"
	local ok=1
	echo "-- building $dir"
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 || ok=0
	else
		meson setup "$dir" "$@" >"$log" 2>&1 || ok=0
	fi
	if [ $ok = 1 ]; then
		ninja -C "$dir" >>"$log" 2>&1 || ok=0
	fi
	if [ $ok = 1 ]; then
		echo "-- built $dir"
	else
		tail -n 40 "$log"
		result FAIL "build:$dir" "meson/ninja failed (log $log)"
	fi
}

# unit_tests DIR PREFIX [ENV...]: every test meson knows in DIR (unit tests,
# fuzz corpus replays), with its own arguments, environment and timeout.
unit_tests() {
	local dir=$1 prefix=$2
	shift 2
	local extra_env=("$@")
	local list
	if ! list=$(meson introspect --tests "$dir" 2>/dev/null | "$PY" -c '
import json, shlex, sys
for t in json.load(sys.stdin):
    env = ["%s=%s" % kv for kv in sorted((t.get("env") or {}).items())]
    print("\x1f".join([t["name"], str(t.get("timeout") or 0),
                     t.get("workdir") or "",
                     " ".join(shlex.quote(e) for e in env),
                     " ".join(shlex.quote(c) for c in t["cmd"])]))
'); then
		result FAIL "${prefix}unit" "cannot list the tests of $dir (meson introspect)"
		return
	fi
	if [ -z "$list" ]; then
		result FAIL "${prefix}unit" "meson knows no tests in $dir"
		return
	fi
	local name tmo wd envq cmdq
	# Fields are split on the unit separator: tabs would merge empty ones.
	while IFS=$'\x1f' read -r name tmo wd envq cmdq; do
		local -a envs=() cmd=()
		eval "envs=($envq)"
		eval "cmd=($cmdq)"
		[ "$tmo" -gt 0 ] 2>/dev/null || tmo=$TIMEOUT
		[ "$tmo" -le "$TIMEOUT" ] || tmo=$TIMEOUT
		# No subshell here: run_prog's counts must stay in this shell.
		pushd "${wd:-.}" >/dev/null || continue
		run_prog "$name" "$prefix" "$tmo" env "${extra_env[@]}" "${envs[@]}" "${cmd[@]}"
		popd >/dev/null || exit 2
	done <<<"$list"
}

echo "meshgate tests: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), logs in $LOGDIR"

if want setup && [ "${MG_TEST_SKIP_SETUP:-0}" != 1 ]; then
	if ! bash scripts/setup.sh; then
		result FAIL setup "scripts/setup.sh failed"
	fi
fi

if want build; then
	build "$BUILD"
	build "$BUILD_SAN" -Db_sanitize=address,undefined -Db_lundef=false
	# The release build the Docker image and packagers make: -O3 finds
	# warnings (maybe-uninitialized, format-truncation) that -O2 does not.
	build "$BUILD_REL" -Dbuildtype=release -Dtests=false
fi

if want format; then
	run_prog format "" 120 bash scripts/check-format.sh
	# The layering (lib/meson.build's order, no app including another's
	# files) and the size limits of files and functions.
	run_prog structure "" 120 "$PY" tests/structure_test.py
fi

if want unit; then
	unit_tests "$BUILD" ""
	unit_tests "$BUILD_SAN" "san:" "${SAN_ENV[@]}"
fi

if want integration; then
	run_prog integration/pcap "" "$TIMEOUT" \
		"$PY" tests/integration/pcap_test.py --meshgate "$BUILD/app/meshgate/meshgate"
	run_prog integration/pcap "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		"$PY" tests/integration/pcap_test.py --meshgate "$BUILD_SAN/app/meshgate/meshgate" \
		--tag san
	run_prog integration/ctl "" "$TIMEOUT" \
		"$PY" tests/integration/ctl_test.py --meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	run_prog integration/ctl "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		"$PY" tests/integration/ctl_test.py \
		--meshgatectl "$BUILD_SAN/app/meshgatectl/meshgatectl" --tag san
	run_prog integration/kv "" "$TIMEOUT" "$PY" tests/integration/kv_test.py \
		--meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	run_prog integration/kvsync "" "$TIMEOUT" bash tests/integration/kvsync_test.sh "$BUILD/tests/kvsync_test"
	run_prog integration/kvsync "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		bash tests/integration/kvsync_test.sh "$BUILD_SAN/tests/kvsync_test"
	# the writer's lease and fencing (the replicator's replicas), scan_values
	run_prog integration/kvlease "" "$TIMEOUT" bash tests/integration/kvsync_test.sh \
		"$BUILD/tests/kvlease_test"
	run_prog integration/kvlease "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		bash tests/integration/kvsync_test.sh "$BUILD_SAN/tests/kvlease_test"
	# lib/gateway's sync: batches, derived policies, a reload with changes waiting
	run_prog integration/gateway-sync "" "$TIMEOUT" bash tests/integration/kvsync_test.sh \
		"$BUILD/tests/gateway_sync_test"
	run_prog integration/gateway-sync "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		bash tests/integration/kvsync_test.sh "$BUILD_SAN/tests/gateway_sync_test"
	# lib/etcd against an etcd 3.4 with TLS, client certificates and auth
	run_prog_bg integration/etcd "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		bash tests/integration/etcd_test.sh "$BUILD_SAN/tests/etcd_test"
	run_prog integration/etcd "" "$TIMEOUT" bash tests/integration/etcd_test.sh "$BUILD/tests/etcd_test"
	wait_bg
	run_prog integration/kvd "" "$TIMEOUT" "$PY" tests/integration/kvd_test.py \
		--meshgate "$BUILD/app/meshgate/meshgate" --meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	# a cluster's lifecycle in the daemon: removal marker, reload, lost data
	run_prog integration/kvlife "" "$TIMEOUT" "$PY" tests/integration/kvlife_test.py \
		--meshgate "$BUILD/app/meshgate/meshgate" --meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	run_prog integration/kvlife "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		"$PY" tests/integration/kvlife_test.py --meshgate "$BUILD_SAN/app/meshgate/meshgate" \
		--meshgatectl "$BUILD_SAN/app/meshgatectl/meshgatectl" --tag san
	# /metrics and DPDK telemetry against the packets sent
	run_prog integration/metrics "" "$TIMEOUT" "$PY" tests/integration/metrics_test.py \
		--meshgate "$BUILD/app/meshgate/meshgate" --meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	run_prog integration/metrics "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		"$PY" tests/integration/metrics_test.py --meshgate "$BUILD_SAN/app/meshgate/meshgate" \
		--meshgatectl "$BUILD_SAN/app/meshgatectl/meshgatectl" --tag san
	# meshgate-replicator's command line: --check-config, usage errors, -V, --help
	run_prog integration/replicator-cli "" "$TIMEOUT" "$PY" tests/integration/replicator_cli_test.py \
		--replicator "$BUILD/app/meshgate-replicator/meshgate-replicator"
	run_prog integration/replicator-cli "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		"$PY" tests/integration/replicator_cli_test.py \
		--replicator "$BUILD_SAN/app/meshgate-replicator/meshgate-replicator" --tag san
	# meshgatectl's online commands against a scripted server (exit codes, output)
	run_prog integration/ctl-fake "" "$TIMEOUT" "$PY" tests/integration/fake_ctl_server.py \
		--meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	# meshgate-replicator against two TLS+auth etcds and a redis-server:
	# copy, changes, faults, lease takeover, drain, troubleshoot, filter
	# (the two variants at once: each spends most of its time waiting)
	run_prog_bg integration/replicator "san:" "$TIMEOUT" env "${SAN_ENV[@]}" \
		"$PY" tests/integration/replicator_test.py --tag san \
		--replicator "$BUILD_SAN/app/meshgate-replicator/meshgate-replicator" \
		--meshgatectl "$BUILD_SAN/app/meshgatectl/meshgatectl"
	run_prog integration/replicator "" "$TIMEOUT" "$PY" tests/integration/replicator_test.py \
		--replicator "$BUILD/app/meshgate-replicator/meshgate-replicator" \
		--meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
	wait_bg
	run_prog conformance "" "$TIMEOUT" \
		"$PY" tests/conformance/run.py --meshgatectl "$BUILD/app/meshgatectl/meshgatectl"
fi

if want e2e; then
	run_prog e2e/netns "" "$TIMEOUT" bash tests/e2e/netns_test.sh "$BUILD/app/meshgate/meshgate"
	# the same with two workers and two queue pairs per port
	run_prog e2e/netns-2w "" "$TIMEOUT" env MG_E2E_WORKERS=2 \
		bash tests/e2e/netns_test.sh "$BUILD/app/meshgate/meshgate"
	# identities and endpoints only in Redis (kv import), live changes too
	run_prog e2e/netns-redis "" "$TIMEOUT" env MG_E2E_SOURCE=redis \
		bash tests/e2e/netns_test.sh "$BUILD/app/meshgate/meshgate" \
		"$BUILD/app/meshgatectl/meshgatectl"
	# every meshgatectl online command against the live daemon, permissions, raw protocol
	run_prog e2e/ctl "" "$TIMEOUT" bash tests/e2e/ctl_e2e.sh "$BUILD/app/meshgate/meshgate" \
		"$BUILD/app/meshgatectl/meshgatectl"
	# monitors that never read and readers filling the control socket, under a
	# flood: commands, reloads and SIGTERM still answered in bounded time
	run_prog e2e/ctl-abuse "" "$TIMEOUT" bash tests/e2e/ctl_abuse_e2e.sh \
		"$BUILD/app/meshgate/meshgate" "$BUILD/app/meshgatectl/meshgatectl"
	# reloads under continuous traffic: nothing lost, nothing wrongly passed
	run_prog e2e/reload "" "$TIMEOUT" bash tests/e2e/reload_test.sh "$BUILD/app/meshgate/meshgate" \
		"$BUILD/app/meshgatectl/meshgatectl"
	# the same with two workers reading each published snapshot
	run_prog e2e/reload-2w "" "$TIMEOUT" env MG_RELOAD_WORKERS=2 bash tests/e2e/reload_test.sh \
		"$BUILD/app/meshgate/meshgate" "$BUILD/app/meshgatectl/meshgatectl"
	# SIGKILL under traffic, restart while Redis is frozen: nothing crosses before "ready"
	run_prog e2e/crash "" "$TIMEOUT" bash tests/e2e/crash_e2e.sh "$BUILD/app/meshgate/meshgate" \
		"$BUILD/app/meshgatectl/meshgatectl"
	# a flood the worker cannot keep up with: the excess counted, status and
	# /metrics answering, verdicts right for what is processed
	run_prog e2e/overload "" "$TIMEOUT" bash tests/e2e/overload_e2e.sh \
		"$BUILD/app/meshgate/meshgate" "$BUILD/app/meshgatectl/meshgatectl"
	# etcd -> meshgate-replicator -> Redis -> meshgate on real traffic
	run_prog e2e/replicator "" "$TIMEOUT" bash tests/e2e/replicator_e2e.sh \
		"$BUILD/app/meshgate/meshgate" "$BUILD/app/meshgatectl/meshgatectl" \
		"$BUILD/app/meshgate-replicator/meshgate-replicator"
	# the control thread's commands and the reload path under the sanitizers
	run_prog e2e/ctl "san:" "$TIMEOUT" env "${SAN_ENV[@]}" bash tests/e2e/ctl_e2e.sh \
		"$BUILD_SAN/app/meshgate/meshgate" "$BUILD_SAN/app/meshgatectl/meshgatectl"
	run_prog e2e/ctl-abuse "san:" "$TIMEOUT" env "${SAN_ENV[@]}" bash tests/e2e/ctl_abuse_e2e.sh \
		"$BUILD_SAN/app/meshgate/meshgate" "$BUILD_SAN/app/meshgatectl/meshgatectl"
	run_prog e2e/reload "san:" "$TIMEOUT" env "${SAN_ENV[@]}" bash tests/e2e/reload_test.sh \
		"$BUILD_SAN/app/meshgate/meshgate" "$BUILD_SAN/app/meshgatectl/meshgatectl"
	run_prog e2e/crash "san:" "$TIMEOUT" env "${SAN_ENV[@]}" bash tests/e2e/crash_e2e.sh \
		"$BUILD_SAN/app/meshgate/meshgate" "$BUILD_SAN/app/meshgatectl/meshgatectl"
	run_prog e2e/overload "san:" "$TIMEOUT" env "${SAN_ENV[@]}" bash tests/e2e/overload_e2e.sh \
		"$BUILD_SAN/app/meshgate/meshgate" "$BUILD_SAN/app/meshgatectl/meshgatectl"
fi

if [ "$failed" -eq 0 ]; then
	rm -rf "$LOGDIR"
	echo "-- done in $((SECONDS - START)) s"
else
	echo "-- done in $((SECONDS - START)) s; logs of every program in $LOGDIR"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
