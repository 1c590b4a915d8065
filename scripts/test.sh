#!/usr/bin/env bash
# Runs the test suites with tap and ends with one plain summary line
# ("tests: N passed, N failed") that any CI reader understands.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .tools/cache
out=.tools/cache/tap-output.txt
tap "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: ' "$out" | tail -n 1)
number() { sed -nE "s/.*[{ ]$1: ([0-9]+).*/\1/p" <<<"$summary"; }
pass=$(number pass) fail=$(number fail) skip=$(number skip) todo=$(number todo)
line="tests: ${pass:-0} passed, ${fail:-0} failed"
[ -n "${skip}${todo}" ] && line="$line, $(( ${skip:-0} + ${todo:-0} )) skipped"
echo "$line"
if [ -z "$summary" ] && [ "$status" -eq 0 ]; then
  echo "tests: no summary from tap; treating as a failure" >&2
  exit 1
fi
exit "$status"
