#!/usr/bin/env bash
# Checks that every C source and header under lib/, app/ and tests/ follows
# the repository's .clang-format. Prints one result line for the test
# runner: "PASS: format" or "FAIL: format: <files>". Fix with
#   clang-format -i <file>
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

if ! command -v clang-format >/dev/null 2>&1; then
	echo "FAIL: format: clang-format is not installed (scripts/setup.sh installs it)"
	exit 1
fi

mapfile -d '' files < <(find lib app tests -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
bad=()
for f in "${files[@]}"; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad+=("$f")
	fi
done

if [ ${#bad[@]} -eq 0 ]; then
	echo "PASS: format"
	exit 0
fi
for f in "${bad[@]}"; do
	clang-format --dry-run "$f" 2>&1 | head -n 6
done
echo "FAIL: format: ${#bad[@]} of ${#files[@]} files differ from .clang-format: ${bad[*]}"
exit 1
