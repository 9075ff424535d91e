#!/usr/bin/env bash
# bench/proxy: the egress proxy vs a direct connection to the same loopback HTTPS upstream, in one
# process and one run: added latency per keep-alive request (p50/p99), large-download throughput
# ratio, leaf-minting rate, full-handshake rate. See bench/proxy/README.md.
# Usage: bench/proxy/run.sh [REQUESTS=5000] [DOWNLOAD_MIB=1024] [--aot]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
aot=0 args=()
for a in "$@"; do
  case $a in
    --aot) aot=1 ;;
    *) args+=("$a") ;;
  esac
done
if [[ $aot -eq 1 ]]; then
  dotnet publish "$here/ProxyBench.csproj" -c Release -o "$here/bin/aot" -nologo -v q >/dev/null
  exec "$here/bin/aot/ProxyBench" "${args[@]}"
fi
dotnet build "$here/ProxyBench.csproj" -c Release -nologo -v q >/dev/null
exec dotnet "$here/bin/Release/net10.0/ProxyBench.dll" "${args[@]}"
