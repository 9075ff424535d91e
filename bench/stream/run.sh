#!/bin/sh
# bench/stream: guest->host streaming throughput of 100 MiB, through the real protocol
# (Sandbox.ExecAsync stdout of `head -c 104857600 /dev/zero` in a booted sandbox) and over the
# raw channel (same QEMU/kernel/accel, busybox /init dd'ing into the virtio port). See README.md.
# Usage: bench/stream/run.sh [--runs 3] [--bytes 104857600 (a multiple of 65536)] [--image busybox]
# Uses the repository's guest (artifacts/guest/matchlock-guest) unless MATCHLOCK_GUEST_BIN is set,
# so the guest matches the Matchlock.Core this benchmark is built from.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=3 bytes=104857600 image=busybox
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

fail() { echo "bench/stream: $*" >&2; exit 1; }
command -v dotnet >/dev/null || fail "dotnet (the .NET 10 SDK) is not on PATH"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found: run ./setup.sh"
[ -x /bin/busybox ] || fail "/bin/busybox not found (apt-get install busybox-static)"
if [ -z "${MATCHLOCK_GUEST_BIN:-}" ]; then
  [ -x "$repo/artifacts/guest/matchlock-guest" ] || fail "no guest binary: build it (./setup.sh) or set MATCHLOCK_GUEST_BIN"
  MATCHLOCK_GUEST_BIN=$repo/artifacts/guest/matchlock-guest
  export MATCHLOCK_GUEST_BIN
fi
command -v matchlock >/dev/null && { matchlock image ls 2>/dev/null | awk -v i="$image" 'NR > 1 && ($1 == i || $1 == i ":latest") { f = 1 } END { exit !f }' \
  || fail "image '$image' is not in the store (matchlock image ls); ./setup.sh imports busybox:latest"; }

dotnet build "$here/Stream/Matchlock.Bench.Stream.csproj" --configuration Release --nologo --verbosity quiet >&2
dotnet build "$repo/bench/boot/Floor/Matchlock.Bench.Floor.csproj" --configuration Release --nologo --verbosity quiet >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
date '+bench/stream: %Y-%m-%d %H:%M %z'
dotnet "$repo/bench/boot/Floor/bin/Release/net10.0/Matchlock.Bench.Floor.dll" --channel-bytes "$bytes" --runs "$runs" --mem 512 --cpus 1 | tee "$out"
# The same producer as the raw baseline (dd, 64 KiB blocks), so the ratio measures the protocol:
# busybox `head` alone manages only ~21 MB/s under TCG (measured in the guest).
dotnet "$here/Stream/bin/Release/net10.0/Matchlock.Bench.Stream.dll" --bytes "$bytes" --runs "$runs" --image "$image" \
  --cmd "dd if=/dev/zero bs=65536 count=$((bytes / 65536)) 2>/dev/null" | tee -a "$out"
awk '/^raw channel: median/ { raw = $4 } /^protocol: median/ { ours = $3 }
     END { if (raw > 0 && ours > 0) printf "ratio protocol/raw: %.2f (protocol %.1f MiB/s, raw channel %.1f MiB/s, medians)\n", ours / raw, ours, raw }' "$out"
