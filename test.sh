#!/usr/bin/env bash
# Runs every test project (unit tier, then the real-VM integration tier) and ends with
# "N passed, N failed". Set MATCHLOCK_REQUIRE_VM=1 to make VM tests fail instead of skip when
# QEMU, the kernel or the installed matchlock is missing (CI does).
set -uo pipefail
cd "$(dirname "$0")"

dotnet build Matchlock.slnx -c Release -warnaserror --nologo -v q || { echo "0 passed, 1 failed"; exit 1; }

# The hostile-guest suite (tests/Matchlock.Integration.Tests/Network/Hostile) writes its verdict here.
report="${TMPDIR:-/tmp}/matchlock-hostile-report.txt"
rm -f "$report"

passed=0; failed=0; skipped=0; status=0
for project in tests/*/*.csproj; do
  name=$(basename "$project" .csproj)
  echo "==> $name"
  log=$(mktemp)
  dotnet test --project "$project" -c Release --no-build 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  p=$(grep -E '^\s*succeeded:' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  f=$(grep -E '^\s*failed:' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  s=$(grep -E '^\s*skipped:' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  rm -f "$log"
  if [ -z "$p" ] && [ -z "$f" ]; then
    echo "$name: the test run did not report a summary (exit $rc)"
    failed=$((failed + 1)); status=1; continue
  fi
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
  [ "$rc" -eq 0 ] || status=1
done

if [ -f "$report" ]; then
  echo "hostile-guest suite: $(grep -E '^[0-9]+ attacks, [0-9]+ leaks' "$report" | tail -1) (details: $report)"
fi

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] || status=1
exit $status
