#!/usr/bin/env bash
# Installs what Matchlock needs on Debian 12, builds everything, installs `matchlock` on the PATH,
# prepares the guest kernel/initramfs and imports the offline base image `busybox:latest`.
# Idempotent: run it again after pulling changes.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$PWD
PREFIX=${MATCHLOCK_PREFIX:-/usr/local}
LIB=$PREFIX/lib/matchlock
ARTIFACTS=$REPO/artifacts

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): it installs Debian packages and writes $PREFIX"
  SUDO=sudo
fi

PACKAGES=(
  qemu-system-x86          # the VMM (docs/ARCHITECTURE.md D1)
  linux-image-cloud-amd64  # the guest kernel (docs/ARCHITECTURE.md D3)
  erofs-utils e2fsprogs    # image root (EROFS); per-VM upper disks and volumes (mkfs.ext4; debugfs in the tests)
  busybox-static           # the offline base image
  skopeo umoci             # writing/reading OCI layouts and docker-save tarballs (base image, tests, bench/pull)
  docker-registry apache2-utils  # a local OCI registry for the pull tests, htpasswd (bcrypt) for its auth
  debootstrap              # the Debian test image (python3, curl, ca-certificates) for the tests
  clang zlib1g-dev         # NativeAOT linker for the static guest binary
  cpio iproute2 nftables procps file util-linux
  python3                  # the Python SDK (stdlib only) and its tests
  golang-go                # the Go SDK (stdlib only, Go 1.19) and its tests
  nodejs                   # the TypeScript SDK (Node >= 20, with npm)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v dotnet >/dev/null || die "the .NET 10 SDK is required (dotnet not found on PATH)"

node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
[ "${node_major:-0}" -ge 20 ] && command -v npm >/dev/null ||
  die "the TypeScript SDK needs Node >= 20 with npm (found: $(node --version 2>/dev/null || echo none)); configure a package source that has it"

log "Restoring and building"
dotnet restore Matchlock.slnx
dotnet build Matchlock.slnx -c Release --no-restore -warnaserror

log "Building the SDKs (TypeScript: npm ci from the lockfile; Go: stdlib only)"
(cd "$REPO/sdk/typescript" && npm ci --no-audit --no-fund && npm run build)
(cd "$REPO/sdk/go" && go build ./...)
(cd "$REPO/examples/go" && go build ./...)

log "Publishing the guest binary (static NativeAOT)"
dotnet publish src/Matchlock.Guest -c Release -o "$ARTIFACTS/guest" --nologo
file "$ARTIFACTS/guest/matchlock-guest" | grep -q "statically linked" || die "matchlock-guest is not statically linked"

log "Publishing the CLI (NativeAOT)"
# Native code: no JIT in the start-up every `matchlock` command pays (see Matchlock.Cli.csproj).
rm -rf "$ARTIFACTS/cli"
dotnet publish src/Matchlock.Cli -c Release -r linux-x64 -o "$ARTIFACTS/cli" --nologo
rm -f "$ARTIFACTS/cli/"*.dbg "$ARTIFACTS/cli/"*.pdb

log "Installing into $LIB and $PREFIX/bin"
$SUDO mkdir -p "$LIB" "$PREFIX/bin"
$SUDO rm -rf "$LIB.new"
$SUDO cp -a "$ARTIFACTS/cli" "$LIB.new"
$SUDO install -m 0755 "$ARTIFACTS/guest/matchlock-guest" "$LIB.new/matchlock-guest"
$SUDO rm -rf "$LIB.old"
[ -d "$LIB" ] && $SUDO mv "$LIB" "$LIB.old"
$SUDO mv "$LIB.new" "$LIB"
$SUDO rm -rf "$LIB.old"
$SUDO ln -sf "$LIB/matchlock" "$PREFIX/bin/matchlock"

log "Preparing the guest kernel and initramfs"
matchlock diagnose

log "Importing the offline base image busybox:latest"
"$REPO/scripts/make-base-image.sh" "$ARTIFACTS/busybox.tar"
matchlock image import busybox:latest < "$ARTIFACTS/busybox.tar"

log "Building the Debian test image (cached after the first time)"
"$REPO/scripts/make-debian-image.sh" "$ARTIFACTS/debian-test.tar"

log "Done. Try: matchlock run --image busybox -- echo hello"
