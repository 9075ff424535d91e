#!/usr/bin/env bash
# Builds the Debian test image (bookworm, minbase + python3, curl, ca-certificates, and git,
# make, tcc and libc6-dev for the workspace tests: a repository and a C build on a mount) as a
# `docker save` tarball, from the Debian mirror this machine's apt is configured with.
# Cached: a second run copies the cached tarball (rebuilt when this script changes).
# Usage: scripts/make-debian-image.sh OUT.tar   (root; needs debootstrap, umoci, skopeo: ./setup.sh)
set -euo pipefail
out=${1:?usage: make-debian-image.sh OUT.tar}
[ "$(id -u)" -eq 0 ] || { echo "make-debian-image.sh: run as root (debootstrap creates files of many owners)" >&2; exit 1; }
for tool in debootstrap umoci skopeo; do
  command -v "$tool" >/dev/null || { echo "make-debian-image.sh: $tool not found; run ./setup.sh" >&2; exit 1; }
done

suite=bookworm
packages=python3,curl,ca-certificates,git,make,tcc,libc6-dev
cache=${MATCHLOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/matchlock}/test-images
key=$(cat "$0" | sha256sum | cut -c1-16)
cached="$cache/debian-$suite-$key.tar"
if [ -s "$cached" ]; then
  cp "$cached" "$out"
  echo "wrote $out (cached)"
  exit 0
fi

# The mirror apt already uses (deb822 .sources first, then sources.list): no host name here.
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "make-debian-image.sh: no Debian mirror found in the apt configuration" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; echo "make-debian-image.sh: debootstrap failed" >&2; exit 1; }

# As Debian's official images: no device nodes (the runtime provides /dev), no apt caches.
rm -rf "$work/rootfs/dev/"* "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
umoci init --layout "$work/oci"
umoci new --image "$work/oci:latest"
umoci insert --image "$work/oci:latest" "$work/rootfs" / >/dev/null
umoci config --image "$work/oci:latest" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd bash
skopeo --insecure-policy copy --quiet "oci:$work/oci:latest" "docker-archive:$work/image.tar:debian-test:latest"

mkdir -p "$cache"
mv "$work/image.tar" "$cached.tmp" && mv "$cached.tmp" "$cached"
cp "$cached" "$out"
echo "wrote $out"
