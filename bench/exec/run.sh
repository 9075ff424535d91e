#!/usr/bin/env bash
# bench/exec: latency of `matchlock exec <id> -- true` into a running long-lived sandbox vs the
# guest's own fork+exec of the same program, plus the memory of one idle sandbox.
#
# Usage: bench/exec/run.sh [N=30] [--memory MB=256]
# Runs $MATCHLOCK_BIN (default: the installed matchlock from ./setup.sh); needs the busybox image.
# Don't run it beside tests.
set -euo pipefail
matchlock() { "${MATCHLOCK_BIN:-matchlock}" "$@"; }
n=30 memory=256
while [[ $# -gt 0 ]]; do
  case $1 in
    --memory) memory=$2; shift 2 ;;
    *) n=$1; shift ;;
  esac
done

id=$(matchlock run -d --image busybox --memory "$memory" 2>/dev/null)
trap 'matchlock kill "$id" >/dev/null 2>&1 || true' EXIT
echo "sandbox $id (--memory $memory), $n execs" >&2

now_ns() { date +%s%N; }
for _ in 1 2 3; do matchlock exec "$id" -- true; done   # warm-up: first execs pay TCG translation

samples=()
for ((i = 0; i < n; i++)); do
  t=$(now_ns); matchlock exec "$id" -- true; samples+=($(( ($(now_ns) - t) / 1000 )))
done
median_us=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
p95_us=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{ v[NR] = $1 } END { r = int((95 * NR + 99) / 100); print v[r] }')

# The guest's own cost of starting `true`: 200 fork+execs timed inside the guest.
# busybox prints "real<TAB>0m 2.16s".
guest_s=$(matchlock exec "$id" -- sh -c 'time sh -c "i=0; while [ \$i -lt 200 ]; do /bin/true; i=\$((i+1)); done"' 2>&1 \
  | awk '/^real/ { m = $2; s = $3; sub(/m$/, "", m); sub(/s$/, "", s); print m * 60 + s }')
guest_us=$(awk -v t="$guest_s" 'BEGIN { printf "%d", t * 1000000 / 200 }')

vmdir=${MATCHLOCK_HOME:-$HOME/.matchlock}/vms/$id
owner_pid=$(cut -d' ' -f1 "$vmdir/owner")
qemu_pid=$(cat "$vmdir/qemu.pid")
rss() { awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$1/status"; }

echo
printf 'exec <id> -- true      median %6.1f ms   p95 %6.1f ms\n' "$(awk -v u="$median_us" 'BEGIN { print u / 1000 }')" "$(awk -v u="$p95_us" 'BEGIN { print u / 1000 }')"
printf 'guest fork+exec true   %6.1f ms each (200 in a loop, TCG)\n' "$(awk -v u="$guest_us" 'BEGIN { print u / 1000 }')"
printf 'exec overhead          %6.1f ms   (target <= 20 ms)\n' "$(awk -v m="$median_us" -v g="$guest_us" 'BEGIN { print (m - g) / 1000 }')"
printf 'idle RSS: owner %d MB (target <= 60), QEMU %d MB at --memory %d\n' "$(rss "$owner_pid")" "$(rss "$qemu_pid")" "$memory"
