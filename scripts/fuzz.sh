#!/usr/bin/env bash
# Run meshgate's libFuzzer targets (tests/fuzz/, docs/reliability.md,
# "Fuzzing"):
#
#   ./scripts/fuzz.sh [--seconds-per-target N] [--jobs J] [TARGET...]
#
# It configures (once) and builds a clang build with -Dfuzz=true, where
# every target is linked with libFuzzer, ASan and UBSan (any UBSan report
# is fatal). Each TARGET (default: every tests/fuzz/fuzz_<name>.c; a name
# is "config" or "fuzz_config") then runs for N seconds (default 60) on a
# working copy of its corpus, tests/fuzz/corpus/<name>/; J targets run at
# once (default 1). Afterwards the inputs that reach new coverage are
# merged back into the corpus with libFuzzer's -merge=1: the hand-written
# seeds stay, and the inputs found (named by their SHA-1), this run's and
# earlier ones', are cut to the fewest that add coverage beyond the seeds
# (a warning when the corpus passes MG_FUZZ_MAX_FILES files). Every
# crash, leak, timeout or
# out-of-memory input is saved under tests/fuzz/crashes/<name>/. Add a
# crasher to the corpus once fixed, so the suite's replay keeps it.
#
# The last lines are a table: target, seconds, executions, exec/s,
# coverage (libFuzzer's final "cov:"), new corpus files and crashes. The
# exit status is non-zero when any target found a crash.
#
# Environment knobs (all optional):
#   MG_FUZZ_BUILD_DIR   the clang build (default build-fuzz)
#   MG_FUZZ_MAX_LEN     longest input tried (default 8192; at most 65536)
#   MG_FUZZ_MAX_FILES   corpus size that is warned about (default 200)
#   MG_FUZZ_ARGS        more libFuzzer flags for every run
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
secs=60
jobs=1
targets=()

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--seconds-per-target) secs=${2:?}; shift 2 ;;
	--seconds-per-target=*) secs=${1#*=}; shift ;;
	--jobs) jobs=${2:?}; shift 2 ;;
	--jobs=*) jobs=${1#*=}; shift ;;
	-h | --help) usage 0 ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; usage 2 ;;
	*) t=${1#fuzz_}; targets+=("${t%.c}"); shift ;;
	esac
done
case "$secs$jobs" in *[!0-9]*) echo "fuzz.sh: N and J are numbers" >&2; exit 2 ;; esac
[ "$jobs" -ge 1 ] || jobs=1

build=${MG_FUZZ_BUILD_DIR:-$root/build-fuzz}
max_len=${MG_FUZZ_MAX_LEN:-8192}
[ "$max_len" -le 65536 ] || max_len=65536
max_files=${MG_FUZZ_MAX_FILES:-200}
fuzz_dir=$root/tests/fuzz

if [ ${#targets[@]} -eq 0 ]; then
	for f in "$fuzz_dir"/fuzz_*.c; do
		n=$(basename "$f" .c)
		targets+=("${n#fuzz_}")
	done
fi
for t in "${targets[@]}"; do
	if [ ! -f "$fuzz_dir/fuzz_$t.c" ]; then
		echo "fuzz.sh: no target $t (tests/fuzz/fuzz_$t.c)" >&2
		exit 2
	fi
done

# The clang build. DPDK's headers and a few tests are not clean under
# clang's -Wcast-align and friends (gcc is the project's compiler, and its
# builds keep every warning an error); those three are let through here.
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$root" -Dfuzz=true -Db_lundef=false \
		-Dc_args="-Wno-cast-align -Wno-string-concatenation -Wno-int-to-void-pointer-cast"
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}")

work=$(mktemp -d "${TMPDIR:-/tmp}/mg-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Merge what a run found into corpus $2 (run folder $3). The hand-written
# seeds (any name but libFuzzer's 40 hex digits) always stay; the found
# inputs, earlier runs' and this one's, are cut to the fewest that add
# coverage beyond the seeds (-merge=1 into a folder holding the seeds;
# edges only, -use_counters=0, which keeps the corpus small).
merge() {
	local bin=$1 corpus=$2 w=$3 f
	mkdir -p "$w/merged" "$w/found"
	for f in "$corpus"/*; do
		[ -f "$f" ] || continue
		if [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]]; then
			cp "$f" "$w/found/"
		else
			cp "$f" "$w/merged/"
		fi
	done
	if ! "$bin" -merge=1 -use_counters=0 -max_len="$max_len" -timeout=10 \
		-artifact_prefix="$w/artifacts/" \
		"$w/merged" "$w/found" "$w/corpus" >"$w/merge.log" 2>&1; then
		echo "fuzz.sh: $(basename "$corpus"): merge failed, corpus left as it was" >&2
		return 0
	fi
	find "$corpus" -maxdepth 1 -type f -regextype posix-extended \
		-regex '.*/[0-9a-f]{40}' -delete
	for f in "$w/merged"/*; do
		[[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]] && cp "$f" "$corpus/"
	done
	return 0
}

# One target: fuzz a copy of its corpus, merge, save crashers; one result line.
run_one() {
	local t=$1 bin=$build/tests/fuzz/fuzz_$1 corpus=$fuzz_dir/corpus/$1
	local w=$work/$t before after crashes execs rate cov rc=0

	mkdir -p "$w/corpus" "$w/artifacts" "$corpus"
	cp -a "$corpus/." "$w/corpus/"
	before=$(find "$corpus" -maxdepth 1 -type f | wc -l)
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$w/artifacts/" ${MG_FUZZ_ARGS:-} \
		"$w/corpus" >"$w/log" 2>&1 || rc=$?
	merge "$bin" "$corpus" "$w"
	after=$(find "$corpus" -maxdepth 1 -type f | wc -l)
	if [ "$after" -gt "$max_files" ]; then
		echo "fuzz.sh: $t: $after corpus files, more than $max_files" >&2
	fi
	crashes=$(find "$w/artifacts" -type f | wc -l)
	if [ "$crashes" -gt 0 ]; then
		mkdir -p "$fuzz_dir/crashes/$t"
		cp -a "$w/artifacts/." "$fuzz_dir/crashes/$t/"
	elif [ "$rc" -ne 0 ]; then
		crashes=1 # died without an artifact: see the log
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$w/log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$w/log" | tail -1 | sed 's/cov: //')
	if [ "$crashes" -gt 0 ]; then
		mkdir -p "$fuzz_dir/crashes/$t"
		cp "$w/log" "$fuzz_dir/crashes/$t/fuzz.log"
	fi
	printf '%s %s %s %s %s %s %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
		"$((after - before))" "$crashes" >"$w/result"
	echo "fuzz.sh: $t: ${execs:-?} executions, ${rate:-?}/s, cov ${cov:-?}, $crashes crash(es)" >&2
}

running=0
for t in "${targets[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait || true

status=0
printf '\n%-18s %7s %12s %9s %9s %11s %7s\n' target seconds executions exec/s coverage \
	new-corpus crashes
for t in "${targets[@]}"; do
	if [ ! -f "$work/$t/result" ]; then
		printf '%-18s %7s %12s %9s %9s %11s %7s\n' "$t" "$secs" '?' '?' '?' '?' 'failed'
		status=1
		continue
	fi
	read -r name s e r c n k <"$work/$t/result"
	printf '%-18s %7s %12s %9s %9s %11s %7s\n' "$name" "$s" "$e" "$r" "$c" "$n" "$k"
	[ "$k" = 0 ] || status=1
done
exit "$status"
