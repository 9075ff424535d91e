#!/bin/sh
# Boot floor: boots the backend's exact QEMU microvm command line N times with a busybox /init
# that prints a marker and powers off; prints median and p95 (start->marker, start->exit).
# Usage: bench/boot/floor.sh [N=20] [--modules] [--accel auto|kvm|tcg] [--cpus N] [--mem MiB]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dotnet build "$here/Floor/Matchlock.Bench.Floor.csproj" --configuration Release --nologo --verbosity quiet >&2
exec dotnet "$here/Floor/bin/Release/net10.0/Matchlock.Bench.Floor.dll" "$@"
