#!/usr/bin/env bash
# make-base-image.sh OUTPUT.tar [--oci-dir DIR]
#
# Builds a small, reproducible busybox image offline from Debian's busybox-static and writes it as
# a legacy `docker save` tarball (what `matchlock image import busybox:latest < OUTPUT.tar` reads).
# With --oci-dir DIR it also leaves the intermediate OCI image layout in DIR (tests use it to build
# the Docker >= 25 "OCI layout in a tar" variant).
#
# Reproducible: fixed mtimes (@0), sorted names, numeric owners, `gzip -n`, no `created` time, so the
# same busybox binary always gives the same layer digest and image id.
# Needs: busybox-static, GNU tar, gzip, sha256sum, skopeo (all installed by ./setup.sh).
set -euo pipefail

usage() { echo "usage: $0 OUTPUT.tar [--oci-dir DIR]" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
out=$1; shift
oci_keep=
while [[ $# -gt 0 ]]; do
  case $1 in
    --oci-dir) [[ $# -ge 2 ]] || usage; oci_keep=$2; shift 2 ;;
    *) usage ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  # /home/user must be owned by 1000:1000 inside the layer; only root can chown the staging tree.
  echo "$0: must run as root (the layer keeps uid/gid 1000 on /home/user)" >&2
  exit 1
fi

busybox=
for candidate in /bin/busybox /usr/bin/busybox; do
  [[ -x $candidate ]] && { busybox=$candidate; break; }
done
[[ -n $busybox ]] || { echo "$0: busybox not found; install it: apt-get install busybox-static" >&2; exit 1; }
# A dynamically linked busybox (Debian's "busybox" package) would not run inside the image.
if ! LC_ALL=C file -b "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  if ldd "$busybox" >/dev/null 2>&1; then
    echo "$0: $busybox is dynamically linked; install the static one: apt-get install busybox-static" >&2
    exit 1
  fi
fi
for tool in tar gzip sha256sum skopeo; do
  command -v "$tool" >/dev/null || { echo "$0: '$tool' not found; run ./setup.sh" >&2; exit 1; }
done

work=$(mktemp -d -t matchlock-base-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home/user,proc,sys,dev,run,var}
install -m 0755 "$busybox" "$root/bin/busybox"
# Applet links point at the absolute path: they are resolved inside the guest, never on the host.
"$busybox" --list-full | while read -r applet; do
  [[ -n $applet && $applet != bin/busybox ]] || continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
user:x:1000:
nogroup:x:65534:
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group"
find "$root" -type d -exec chmod 0755 {} +
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
chown -R 0:0 "$root"
chown 1000:1000 "$root/home/user"

oci=$work/oci
mkdir -p "$oci/blobs/sha256"
# Ownership comes from the tree itself (--numeric-owner keeps 1000:1000 on home/user).
tar -C "$root" --sort=name --numeric-owner --mtime=@0 --format=gnu -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"
layer_digest=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$oci/blobs/sha256/$layer_digest"

# put_blob FILE: moves FILE into the blob store, prints "<hex> <size>".
put_blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$oci/blobs/sha256/$hex"
  echo "$hex $size"
}

printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},"history":[{"created_by":"matchlock scripts/make-base-image.sh"}]}' >"$work/config.json"
read -r config_digest config_size < <(put_blob "$work/config.json")

printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put_blob "$work/manifest.json")

printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"',"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' >"$oci/index.json"

rm -f "$work/out.tar"
skopeo --insecure-policy copy --quiet "oci:$oci:latest" "docker-archive:$work/out.tar:busybox:latest" >&2
mv -f "$work/out.tar" "$out"

if [[ -n $oci_keep ]]; then
  rm -rf "$oci_keep"
  mkdir -p "$(dirname "$oci_keep")"
  cp -a "$oci" "$oci_keep"
fi
echo "wrote $out (image sha256:$config_digest)" >&2
