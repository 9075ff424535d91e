#!/usr/bin/env bash
# Runs every test project (unit tier, then the real-VM integration tier) and ends with
# "N passed, N failed". Set MATCHLOCK_REQUIRE_VM=1 to make VM and host tests fail instead of skip
# when QEMU, the kernel, root or a tool they need is missing (CI does).
#
# The tests run the binaries built from this checkout: the CLI (NativeAOT) and the guest are
# published to artifacts/cli/ and passed on as MATCHLOCK_BIN and MATCHLOCK_GUEST_BIN. A caller's
# MATCHLOCK_BIN is used as it is (nothing is published); the guest then defaults to the
# matchlock-guest next to it. A caller's MATCHLOCK_GUEST_BIN always wins.
set -uo pipefail
cd "$(dirname "$0")"

dotnet build Matchlock.slnx -c Release -warnaserror --nologo -v q || { echo "0 passed, 1 failed"; exit 1; }

if [ -z "${MATCHLOCK_BIN:-}" ]; then
  echo "==> publishing the CLI and the guest from this checkout into artifacts/cli"
  # As setup.sh does, minus the install: the guest is found next to the CLI.
  { dotnet publish src/Matchlock.Guest -c Release -o artifacts/guest --nologo -v q &&
    rm -rf artifacts/cli &&
    dotnet publish src/Matchlock.Cli -c Release -r linux-x64 -o artifacts/cli --nologo -v q &&
    rm -f artifacts/cli/*.dbg artifacts/cli/*.pdb &&
    install -m 0755 artifacts/guest/matchlock-guest artifacts/cli/matchlock-guest; } ||
    { echo "publishing the binaries under test failed"; echo "0 passed, 1 failed"; exit 1; }
  MATCHLOCK_BIN=$PWD/artifacts/cli/matchlock
fi
if [ -z "${MATCHLOCK_GUEST_BIN:-}" ] && [ -f "$(dirname "$MATCHLOCK_BIN")/matchlock-guest" ]; then
  MATCHLOCK_GUEST_BIN=$(cd "$(dirname "$MATCHLOCK_BIN")" && pwd)/matchlock-guest
fi
export MATCHLOCK_BIN
[ -z "${MATCHLOCK_GUEST_BIN:-}" ] || export MATCHLOCK_GUEST_BIN
echo "binaries under test: MATCHLOCK_BIN=$MATCHLOCK_BIN MATCHLOCK_GUEST_BIN=${MATCHLOCK_GUEST_BIN:-unset, the library default}"

# The SDKs' end-to-end tests (the C# one among the test projects) boot real sandboxes through
# this checkout's `matchlock rpc` wherever VMs can run.
if [ "${MATCHLOCK_REQUIRE_VM:-0}" = 1 ] || command -v qemu-system-x86_64 >/dev/null; then
  export MATCHLOCK_E2E=1
fi

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
  p=$(grep -aE '^\s*succeeded:' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  f=$(grep -aE '^\s*failed:' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  s=$(grep -aE '^\s*skipped:' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  rm -f "$log"
  if [ -z "$p" ] && [ -z "$f" ]; then
    echo "$name: the test run did not report a summary (exit $rc)"
    failed=$((failed + 1)); status=1; continue
  fi
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
  [ "$rc" -eq 0 ] || status=1
done

# The SDKs (sdk/README.md): unit tests against their fake servers, contract conformance, and the
# end-to-end tests against this checkout's `matchlock rpc` (set above: MATCHLOCK_E2E).

# sdk_result NAME PASSED FAILED RC: adds one SDK suite's counts (a suite without counts is a failure).
sdk_result() {
  if [ -z "$2" ] && [ -z "$3" ]; then
    echo "$1: the test run did not report a summary (exit $4)"
    failed=$((failed + 1)); status=1; return
  fi
  echo "$1: ${2:-0} passed, ${3:-0} failed"
  passed=$((passed + ${2:-0})); failed=$((failed + ${3:-0}))
  [ "$4" -eq 0 ] || { [ "${3:-0}" -gt 0 ] || failed=$((failed + 1)); status=1; }
}

echo "==> sdk/python"
log=$(mktemp)
python3 -m unittest discover -s sdk/python/tests -v 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
ran=$(grep -aoE '^Ran [0-9]+ test' "$log" | grep -oE '[0-9]+' | tail -1)
bad=$(grep -aoE '(failures|errors)=[0-9]+' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
skip=$(grep -aoE 'skipped=[0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)
[ -z "$ran" ] || sdk_result sdk/python "$((ran - ${bad:-0} - ${skip:-0}))" "${bad:-0}" "$rc"
[ -n "$ran" ] || sdk_result sdk/python "" "" "$rc"
rm -f "$log"

echo "==> sdk/typescript"
log=$(mktemp)
(cd sdk/typescript && npm run --silent build && npm test) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
sdk_result sdk/typescript "$(grep -aoE '^# pass [0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)" "$(grep -aoE '^# fail [0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)" "$rc"
rm -f "$log"

echo "==> sdk/go"
log=$(mktemp)
(cd sdk/go && go vet ./... && go test -count=1 -v ./...) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
sdk_result sdk/go "$(grep -acE '^\s*--- PASS' "$log")" "$(grep -acE '^\s*--- FAIL' "$log")" "$rc"
rm -f "$log"

if [ "${MATCHLOCK_E2E:-0}" = 1 ]; then
  echo "==> examples (every language, real sandboxes)"
  log=$(mktemp)
  examples/run.sh 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  sdk_result examples "$(grep -aoE '^examples: [0-9]+ passed' "$log" | grep -oE '[0-9]+' | tail -1)" "$(grep -aoE '[0-9]+ failed$' "$log" | grep -oE '[0-9]+' | tail -1)" "$rc"
  rm -f "$log"
fi

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
