#!/usr/bin/env bash
# bench/pull: N interleaved rounds of (a) the baseline toolchain (skopeo copy + umoci unpack +
# mkfs.erofs, timed as one), (b) a cold `matchlock pull` into a fresh MATCHLOCK_HOME and (c) a warm
# re-pull into the same home, all from a private docker-registry on 127.0.0.1 holding
# artifacts/debian-test.tar. Prints median / p95 of each, the ratio (b)/(a) and (c) in seconds.
# See bench/pull/README.md.
# Usage: bench/pull/run.sh [N=10] [--matchlock "CMD"] [--archive FILE] [--command pull|build]
#                          [--baseline-only] [--warmup 1]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=10 ml=matchlock archive=$repo/artifacts/debian-test.tar command=pull baseline_only=0 warmup=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --matchlock) ml=$2; shift 2 ;;
    --archive) archive=$2; shift 2 ;;
    --command) command=$2; shift 2 ;;
    --baseline-only) baseline_only=1; shift ;;
    --warmup) warmup=$2; shift 2 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

fail() { echo "bench/pull: $*" >&2; exit 1; }
for tool in docker-registry skopeo umoci mkfs.erofs curl; do
  command -v "$tool" >/dev/null || fail "'$tool' not found: run ./setup.sh (docker-registry, skopeo, umoci, erofs-utils, curl)"
done
[[ -f $archive ]] || fail "$archive not found: ./setup.sh builds it (scripts/make-debian-image.sh), or pass --archive FILE"
if [[ $baseline_only -eq 0 ]]; then
  set -f; first=${ml%% *}; set +f
  command -v "$first" >/dev/null || fail "'$first' not found: install matchlock with ./setup.sh (or pass --matchlock \"CMD\")"
fi

work=$(mktemp -d -t matchlock-bench-pull.XXXXXX)
reg_pid=
cleanup() {
  if [[ -n $reg_pid ]]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: nothing accepts a connection there.
for _ in $(seq 50); do
  port=$((20000 + RANDOM % 40000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$work/registry"
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 150); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break
  kill -0 "$reg_pid" 2>/dev/null || fail "docker-registry exited: $(cat "$work/registry.log")"
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" || fail "docker-registry did not serve 127.0.0.1:$port in 15 s: $(cat "$work/registry.log")"

ref=127.0.0.1:$port/debian-test:latest
echo "pushing $archive to $ref (gzip layers)..." >&2
skopeo --insecure-policy copy --quiet --dest-tls-verify=false --dest-compress-format gzip \
  "docker-archive:$archive" "docker://$ref" >&2

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

# (a) What a user would otherwise run: fetch to an OCI layout, unpack, pack like ErofsBuilder
# (src/Matchlock.Core/Images/ErofsBuilder.cs: --quiet -U UUID --preserve-mtime, SOURCE_DATE_EPOCH
# at or after every mtime so nothing is clamped).
baseline() {
  local d=$work/base
  rm -rf "$d"; mkdir -p "$d"
  skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$ref" "oci:$d/oci:latest" >/dev/null
  umoci unpack --image "$d/oci:latest" "$d/bundle" >/dev/null
  SOURCE_DATE_EPOCH=$(date +%s) mkfs.erofs --quiet -U 00000000-0000-0000-0000-000000000001 --preserve-mtime \
    "$d/out.erofs" "$d/bundle/rootfs" >/dev/null
}

ml_pull() { # HOME_DIR: one pull (or build) into that MATCHLOCK_HOME; output kept for errors
  # shellcheck disable=SC2086 # $ml is a command with arguments on purpose
  MATCHLOCK_HOME=$1 $ml "$command" "$ref" >"$work/ml.out" 2>&1 || fail "matchlock $command $ref failed: $(tail -5 "$work/ml.out")"
}

a=() b=() c=()
total=$((warmup + n))
for ((i = 1; i <= total; i++)); do
  # Each timed step starts with the disk quiet (sync, untimed): otherwise the previous step's
  # dirty pages are written back during the next one and bill it. The order alternates per round
  # so neither side always runs on a cache the other just warmed or dirtied.
  tb=- tc=-
  run_baseline() { sync; t=$(now_ns); baseline; ta=$(ms_since "$t"); rm -rf "$work/base"; }
  run_matchlock() {
    home=$work/home; rm -rf "$home"; mkdir -p "$home"
    sync; t=$(now_ns); ml_pull "$home"; tb=$(ms_since "$t")
    sync; t=$(now_ns); ml_pull "$home"; tc=$(ms_since "$t")
    grep -q "up to date" "$work/ml.out" || echo "bench/pull: warm re-pull did not say 'up to date'" >&2
    rm -rf "$home"
  }
  if [[ $baseline_only -eq 1 ]]; then
    run_baseline
  elif (( i % 2 )); then
    run_baseline; run_matchlock
  else
    run_matchlock; run_baseline
  fi
  label="round $((i - warmup))"; [[ $i -le $warmup ]] && label="warm-up"
  printf '%-9s baseline %6s ms   cold pull %6s ms   warm pull %6s ms\n' "$label" "$ta" "$tb" "$tc" >&2
  if [[ $i -gt $warmup ]]; then
    a+=("$ta"); [[ $tb == - ]] || { b+=("$tb"); c+=("$tc"); }
  fi
done

# Nearest-rank percentile of the arguments (ms).
pct() { local p=$1; shift; printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 } END { r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'; }
sec() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }

echo
echo "image: $ref ($(du -h "$archive" | cut -f1) docker-archive), N=$n, $(nproc) cores"
printf '%-44s %8s %8s   (nearest rank)\n' "" median p95
printf '%-44s %7ss %7ss\n' "(a) skopeo + umoci + mkfs.erofs" "$(sec "$(pct 50 "${a[@]}")")" "$(sec "$(pct 95 "${a[@]}")")"
if [[ $baseline_only -eq 0 ]]; then
  ma=$(pct 50 "${a[@]}") pa=$(pct 95 "${a[@]}") mb=$(pct 50 "${b[@]}") pb=$(pct 95 "${b[@]}") mc=$(pct 50 "${c[@]}") pc=$(pct 95 "${c[@]}")
  printf '%-44s %7ss %7ss\n' "(b) matchlock $command, cold" "$(sec "$mb")" "$(sec "$pb")"
  printf '%-44s %7ss %7ss\n' "(c) matchlock $command, warm (same home)" "$(sec "$mc")" "$(sec "$pc")"
  ratio=$(awk -v b="$mb" -v a="$ma" 'BEGIN { printf "%.2f", b / a }')
  ratio95=$(awk -v b="$pb" -v a="$pa" 'BEGIN { printf "%.2f", b / a }')
  met() { awk -v x="$1" -v t="$2" 'BEGIN { print (x <= t) ? "met" : "NOT met" }'; }
  echo "ratio (b)/(a): median $ratio, p95 $ratio95; target <= 1.0: $(met "$ratio" 1.0)"
  echo "warm re-pull: median $(sec "$mc") s; target <= 0.2 s: $(met "$(sec "$mc")" 0.2)"
fi
