#!/usr/bin/env bash
# bench/vfs: the workspace VFS against the guest's own disk and Debian's virtiofsd, in one run.
# The same workload inside a busybox sandbox, on:
#   disk       the guest's own disk (the root overlay on the per-VM ext4)
#   ours       a host_fs mount served by our vhost-user back-end (the default transport)
#   virtiofsd  the same host folder through /usr/lib/qemu/virtiofsd (MATCHLOCK_VFS_BACKEND=virtiofsd,
#              a benchmark-only switch: no hooks, no ownership mapping, no confinement of ours)
#   channel    the old transport (MATCHLOCK_VFS_TRANSPORT=channel); skipped with --no-channel
# Workload: 100 MB sequential write (dd, conv=fsync) and read (after drop_caches), create + stat
# + delete of FILES small files, untar of a ~30 MB tree (perl + python stdlib from the host,
# copied to the guest's disk first, untimed) with sync, and a `ls -lR` walk of it (busybox has
# no git: the walk stands in for `git status`), and, when the debian-test image is imported, `git
# status` (after drop_caches, then warm) on a 5,000-file repository in a debian-test sandbox.
#
# Usage: bench/vfs/run.sh [--rounds N=1] [--files N=5000] [--mb N=100] [--no-channel] [--variants "ours virtiofsd"]
# Runs $MATCHLOCK_BIN (default: the installed matchlock); needs root (virtiofsd) and the busybox
# image. Don't run it beside tests or other VMs.
set -euo pipefail
matchlock() { "${MATCHLOCK_BIN:-matchlock}" "$@"; }
rounds=1 files=5000 mb=100 variants="disk ours virtiofsd channel"
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --mb) mb=$2; shift 2 ;;
    --no-channel) variants="disk ours virtiofsd"; shift ;;
    --variants) variants=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "virtiofsd needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/ml-vfs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/input" "$work/host"
tar --exclude=__pycache__ --exclude=test --exclude='config-*' --exclude=lib-dynload \
  -cf "$work/input/tree.tar" /usr/share/perl /usr/lib/python3.11 2>/dev/null
echo "tree: $(du -m "$work/input/tree.tar" | cut -f1) MB, $(tar -tf "$work/input/tree.tar" | wc -l) entries; $files files; $mb MB sequential; $rounds round(s)" >&2

# Runs in the guest: sh workload.sh DIR FILES MB; prints "name seconds" per step.
cat > "$work/input/workload.sh" <<'GUEST'
D=$1; F=$2; MB=$3
now() { cut -d' ' -f1 /proc/uptime; }
step() { echo "$1 $(awk -v s="$2" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }')"; }
cp /input/tree.tar /root/tree.tar && sync
mkdir -p "$D" && cd "$D"
s=$(now); dd if=/dev/zero of=big bs=1M count="$MB" conv=fsync 2>/dev/null; step seq_write "$s"
sync; echo 3 > /proc/sys/vm/drop_caches
s=$(now); dd if=big of=/dev/null bs=1M 2>/dev/null; step seq_read "$s"
rm big
mkdir m
s=$(now); i=0; while [ $i -lt "$F" ]; do echo x > m/f$i; i=$((i+1)); done; step create "$s"
echo 3 > /proc/sys/vm/drop_caches
s=$(now); ls -l m > /dev/null; step stat "$s"
s=$(now); rm -r m; step delete "$s"
mkdir tree
s=$(now); tar -xf /root/tree.tar -C tree && sync; step untar "$s"
echo 3 > /proc/sys/vm/drop_caches
s=$(now); ls -lR tree > /dev/null; step walk "$s"
rm -r tree
GUEST

# git status on a 5,000-file repository: needs the debian-test image (busybox has no git) and
# git on the host, which makes the repository once; each variant gets it untarred (untimed).
git_image=""
if "${MATCHLOCK_BIN:-matchlock}" image ls 2>/dev/null | grep -q '^debian-test' && command -v git >/dev/null; then
  git_image=debian-test:latest
  repo="$work/repo-src/repo"
  mkdir -p "$repo"
  for d in $(seq 0 49); do mkdir -p "$repo/d$d"; for f in $(seq 0 99); do echo "file $d/$f" > "$repo/d$d/f$f.txt"; done; done
  git -C "$repo" init -q && git -C "$repo" add -A && git -C "$repo" -c user.name=b -c user.email=b@b commit -qm init
  tar -C "$work/repo-src" -cf "$work/input/repo.tar" repo
  echo "git: a repository of $(git -C "$repo" ls-files | wc -l) files" >&2
else
  echo "note: git status is skipped (import the debian-test image: matchlock image import debian-test:latest < artifacts/debian-test.tar; and have git on the host)" >&2
fi
cat > "$work/input/git.sh" <<'GUEST'
D=$1
now() { cut -d' ' -f1 /proc/uptime; }
step() { echo "$1 $(awk -v s="$2" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }')"; }
mkdir -p "$D" && tar -xf /input/repo.tar -C "$D" && cd "$D/repo" && git status --porcelain > /dev/null
echo 3 > /proc/sys/vm/drop_caches
s=$(now); git status --porcelain > /dev/null; step git_status "$s"
s=$(now); git status --porcelain > /dev/null; step git_status_warm "$s"
GUEST

results="$work/results"
: > "$results"
for ((r = 1; r <= rounds; r++)); do
  for v in $variants; do
    rm -rf "${work:?}/host" && mkdir "$work/host"
    env=() dir=/w
    case $v in
      disk) dir=/root/bench ;;
      virtiofsd) env=(MATCHLOCK_VFS_BACKEND=virtiofsd) ;;
      channel) env=(MATCHLOCK_VFS_TRANSPORT=channel) ;;
    esac
    echo "round $r: $v" >&2
    env "${env[@]}" "${MATCHLOCK_BIN:-matchlock}" run --image busybox --no-network --memory 1024 \
      -v "$work/input:/input:ro" -v "$work/host:/w:host_fs" -- sh /input/workload.sh "$dir" "$files" "$mb" 2>/dev/null \
      | awk -v v="$v" '{ print v, $1, $2 }' >> "$results"
    if [ -n "$git_image" ]; then
      rm -rf "${work:?}/host" && mkdir "$work/host"
      env "${env[@]}" "${MATCHLOCK_BIN:-matchlock}" run --image "$git_image" --no-network --memory 1024 \
        -v "$work/input:/input:ro" -v "$work/host:/w:host_fs" -- sh /input/git.sh "$dir" 2>/dev/null \
        | awk -v v="$v" '{ print v, $1, $2 }' >> "$results"
    fi
  done
done

# Medians per variant and step; throughput for the sequential steps; ratios ours / virtiofsd.
awk -v mb="$mb" -v variants="$variants" '
  { t[$1 "," $2] = t[$1 "," $2] " " $3; steps[$2] = 1 }
  function median(list,   n, a, i, j, x) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return n == 0 ? -1 : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
  }
  END {
    nv = split(variants, vs, " ")
    split("seq_write seq_read create stat delete untar walk git_status git_status_warm", order, " ")
    printf "%-15s", "step"; for (i = 1; i <= nv; i++) printf " %12s", vs[i]; printf " %14s\n", "ours/virtiofsd"
    for (k = 1; k <= 9; k++) {
      s = order[k]; if (!(s in steps)) continue
      printf "%-15s", s
      for (i = 1; i <= nv; i++) {
        m[vs[i]] = median(t[vs[i] "," s])
        if (s ~ /^seq_/) printf " %7.2fs %3dMB/s", m[vs[i]], (m[vs[i]] > 0 ? mb / m[vs[i]] : 0); else printf " %11.2fs", m[vs[i]]
      }
      if (m["virtiofsd"] > 0) printf " %13.2fx", m["ours"] / m["virtiofsd"]
      printf "\n"
    }
  }' "$results"
echo "raw (variant step seconds, in run order):"; awk '{ printf "%s %s %s; ", $1, $2, $3 } END { print "" }' "$results"
echo "(time ratios: below 1 is faster than virtiofsd; targets: metadata <= 1.5x, sequential throughput >= 0.7x i.e. time <= 1.43x)"
