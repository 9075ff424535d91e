#!/bin/sh
# bench/boot: N interleaved pairs of (floor boot, `matchlock run --rm --image busybox -- true`):
# median / p95 of each, the ratio run/floor and the start-up breakdown. See bench/boot/README.md.
# Usage: bench/boot/run.sh [N=20] [--json] [--matchlock "CMD"] [--image NAME] [--accel auto|kvm|tcg]
#                          [--warmup 1] [--floor-modules]
#   --matchlock "dotnet src/Matchlock.Cli/bin/Release/net10.0/matchlock.dll"  measures a build
#   instead of the installed CLI (export MATCHLOCK_GUEST_BIN=artifacts/guest/matchlock-guest too).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
n=20 ml=matchlock image=busybox
set -- "$@" --end
while [ "$1" != --end ]; do
  case "$1" in
    --matchlock) ml=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --json|--floor-modules) set -- "$@" "$1"; shift ;;
    --accel|--warmup) set -- "$@" "$1" "$2"; shift 2 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
shift # --end; "$@" now holds the pass-through options

fail() { echo "bench/boot: $*" >&2; exit 1; }
command -v dotnet >/dev/null || fail "dotnet (the .NET 10 SDK) is not on PATH"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found: run ./setup.sh (package qemu-system-x86)"
[ -x /bin/busybox ] || fail "/bin/busybox not found: the floor's /init needs a static busybox (apt-get install busybox-static)"
ldd /bin/busybox >/dev/null 2>&1 && fail "/bin/busybox is dynamically linked; the floor initramfs needs busybox-static"
set -f; first=${ml%% *}; set +f
command -v "$first" >/dev/null || fail "'$first' not found: install matchlock with ./setup.sh (or pass --matchlock \"CMD\")"
# shellcheck disable=SC2086 # $ml is a command with arguments on purpose
$ml image ls 2>/dev/null | awk -v i="$image" 'NR > 1 && ($1 == i || $1 == i ":latest") { found = 1 } END { exit !found }' \
  || fail "image '$image' is not in matchlock's store ('$ml image ls'); ./setup.sh imports busybox:latest"

dotnet build "$here/Floor/Matchlock.Bench.Floor.csproj" --configuration Release --nologo --verbosity quiet >&2
exec dotnet "$here/Floor/bin/Release/net10.0/Matchlock.Bench.Floor.dll" --compare --runs "$n" --mem 512 --cpus 1 \
  --matchlock "$ml" --image "$image" "$@"
