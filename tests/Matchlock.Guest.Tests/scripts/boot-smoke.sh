#!/usr/bin/env bash
# Boots the published guest binary as PID 1 in a QEMU microvm (TCG) with a busybox image and
# `matchlock.selftest` on the command line, then checks the console log (vm.log).
# Proves the boot path that unit tests cannot: modules, disks by serial, erofs + ext4 + overlay,
# kernel filesystems, the root switch, spawning (pipes, PTY, exec-as helper) as PID 1, power-off.
# Needs: qemu-system-x86, linux-image-cloud-amd64, erofs-utils, busybox-static, cpio, e2fsprogs.
# Usage: boot-smoke.sh [--prepare-only] [GUEST_BINARY] [WORK_DIR]
#   --prepare-only: build image.erofs, upper.ext4 and initramfs.cpio in WORK_DIR and stop (used by
#   VmAgentTests, which boots the VM itself and talks to the agent over the channel).
set -euo pipefail

prepare_only=0
if [ "${1:-}" = "--prepare-only" ]; then prepare_only=1; shift; fi

root_dir="$(cd "$(dirname "$0")/../../.." && pwd)"
guest="${1:-$root_dir/artifacts/guest/matchlock-guest}"
work="${2:-$(mktemp -d /tmp/matchlock-boot-smoke.XXXXXX)}"
kver="$(ls /usr/lib/modules | grep cloud-amd64 | sort -V | tail -1)"
kernel="/boot/vmlinuz-$kver"
moddir="/usr/lib/modules/$kver"
[ -x "$guest" ] || { echo "no guest binary at $guest: dotnet publish src/Matchlock.Guest -c Release -o artifacts/guest" >&2; exit 2; }

# 1. Image: busybox, a passwd/group with nobody, WORKDIR-ish dirs. Packed as EROFS.
rm -rf "$work/image" "$work/initramfs"
mkdir -p "$work/image"/{bin,etc,tmp,root}
cp /bin/busybox "$work/image/bin/busybox"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$work/image/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$work/image/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nusers:x:100:nobody\nnogroup:x:65534:\n' > "$work/image/etc/group"
chmod 1777 "$work/image/tmp"
mkfs.erofs --quiet "$work/image.erofs" "$work/image" >/dev/null

# 2. Per-VM upper disk: sparse ext4.
rm -f "$work/upper.ext4"
truncate -s 256M "$work/upper.ext4"
mke2fs -q -t ext4 -F "$work/upper.ext4"

# 3. Initramfs per CONTRACTS.md: /init, the modules, /etc/matchlock/modules in load order.
mkdir -p "$work/initramfs/etc/matchlock"
cp "$guest" "$work/initramfs/init"
: > "$work/initramfs/etc/matchlock/modules"
for rel in kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_mmio.ko \
           kernel/drivers/block/virtio_blk.ko kernel/drivers/char/virtio_console.ko \
           kernel/lib/libcrc32c.ko kernel/fs/erofs/erofs.ko kernel/fs/overlayfs/overlay.ko; do
  mkdir -p "$work/initramfs/lib/modules/$kver/$(dirname "$rel")"
  cp "$moddir/$rel" "$work/initramfs/lib/modules/$kver/$rel"
  echo "/lib/modules/$kver/$rel" >> "$work/initramfs/etc/matchlock/modules"
done
(cd "$work/initramfs" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$work/initramfs.cpio"

if [ "$prepare_only" = 1 ]; then echo "prepared $work"; exit 0; fi

# 4. Boot. TCG needs the PIT and tsc_early_khz (TESTBED.md).
khz="$(awk '/cpu MHz/ {printf "%d", $4*1000; exit}' /proc/cpuinfo)"
start=$(date +%s.%N)
timeout 120 qemu-system-x86_64 -M microvm,pit=on,pic=off,rtc=off -accel tcg -cpu max -m 512 -smp 2 \
  -nodefaults -no-user-config -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append "console=ttyS0 quiet tsc_early_khz=$khz panic=-1 matchlock.channel=matchlock matchlock.selftest" \
  -serial "file:$work/vm.log" \
  -drive id=root,file="$work/image.erofs",format=raw,if=none,readonly=on -device virtio-blk-device,drive=root,serial=mlroot \
  -drive id=upper,file="$work/upper.ext4",format=raw,if=none -device virtio-blk-device,drive=upper,serial=mlupper \
  -device virtio-serial-device
end=$(date +%s.%N)
echo "qemu exited after $(echo "$end - $start" | bc) s; log: $work/vm.log"
cat "$work/vm.log"

# 5. Checks.
fail=0
check() { if grep -q -- "$1" "$work/vm.log"; then echo "ok: $2"; else echo "FAIL: $2 (no '$1')"; fail=1; fi; }
check "root ready: image /dev/vd" "root mounted from disks found by serial"
check "overlay / overlay ro\|overlay / overlay rw" "overlay is the root"
check "uid=0(root) gid=0(root)" "command runs as root"
check "→ exit code 3" "exit code reported"
check "^err" "stderr captured"
check "/dev/ptmx -> pts/ptmx" "ptmx points into the private devpts"
check "tmp: 1777" "/tmp is sticky and world-writable"
check "/dev/pts/0" "PTY allocated"
check "33 101" "PTY size applied"
check "ctty-ok" "PTY is the controlling terminal"
check "uid=65534(nobody) gid=65534(nogroup) groups=100(users)" "exec-as helper switched user with supplementary groups"
check "spawn failed (127): exec: no-such-command: not found" "missing command is 127"
check "powering off" "clean power-off"
if grep -q "Kernel panic" "$work/vm.log"; then echo "FAIL: kernel panic"; fail=1; fi
exit $fail
