#!/usr/bin/env bash
# Runs every example against $MATCHLOCK_BIN (real sandboxes, image busybox, no internet): each one
# checks what it demonstrates and exits non-zero otherwise. Prints one line per example and ends
# with "examples: N passed, M failed". test.sh runs it; needs the SDKs built (setup.sh).
# Usage: examples/run.sh [python|typescript|go|csharp ...]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(python typescript go csharp)
passed=0; failed=0
logs=$(mktemp -d)
upstream_pid=""
trap '[ -z "$upstream_pid" ] || kill "$upstream_pid" 2>/dev/null; rm -rf "$logs"' EXIT

run() { # run NAME CMD...: one example, bounded
  local name=$1; shift
  if timeout 300 "$@" > "$logs/out" 2>&1; then
    echo "ok      $name"; passed=$((passed + 1))
  else
    echo "FAILED  $name (exit $?); its output:"; sed 's/^/    /' "$logs/out" | tail -40; failed=$((failed + 1))
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

for lang in "${langs[@]}"; do
  case $lang in
    python)
      for e in basic exec_modes network_interception port_forward vfs_hooks; do
        run "python/$e" python3 "$here/python/$e/main.py"
      done ;;
    typescript)
      for e in basic exec_modes network_interception port_forward vfs_hooks; do
        run "typescript/$e" node "$here/typescript/$e.mjs"
      done ;;
    go)
      (cd "$here/go" && go build -o "$logs/go/" ./...) || { echo "FAILED  go: the examples do not build"; failed=$((failed + 1)); continue; }
      port=$(free_port)
      "$logs/go/upstream" -addr "127.0.0.1:$port" > "$logs/upstream.log" 2>&1 &
      upstream_pid=$!
      for e in basic exec_modes network_interception port_forward vfs_hooks; do
        MATCHLOCK_EXAMPLE_UPSTREAM="http://upstream.test:$port" MATCHLOCK_EXAMPLE_UPSTREAM_IP=127.0.0.1 \
          MATCHLOCK_EXAMPLE_LOCAL_PORT=$(free_port) run "go/$e" "$logs/go/$e"
      done
      kill "$upstream_pid" 2>/dev/null; wait "$upstream_pid" 2>/dev/null; upstream_pid="" ;;
    csharp)
      [ -d "$here/csharp" ] || continue
      for e in Basic ExecModes NetworkInterception PortForward VfsHooks; do
        [ -d "$here/csharp/$e" ] || continue
        run "csharp/$e" dotnet run --project "$here/csharp/$e" -c Release --no-build
      done ;;
    *) echo "unknown example language: $lang" >&2; exit 2 ;;
  esac
done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
