#!/usr/bin/env bash
# cairn virtiofs vs virtiofsd, same guest, same tree, same run.
#
# Boots QEMU (software emulation, Debian's kernel, cairn's initrd) with the
# store over vhost-user-fs, served either by `cairn virtiofs` from the
# content-addressed store or by virtiofsd from the same tree exported to a
# plain directory. Measures, per boot: the time from starting QEMU to the
# command's first output line (boot-to-command), and the guest's sequential
# read of a large file (cold guest cache; host caches warm for both after a
# warm-up boot). Prints medians and cairn/virtiofsd ratios.
#
# Also the CPU time each daemon used per boot (user + system).
#
# Env: RUNS (default 5), SIZE_MIB (default 256).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-5}
size_mib=${SIZE_MIB:-256}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cairn"

need=()
for pkg in qemu-system-x86 busybox-static kmod xz-utils libseccomp-dev libcap-ng-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
virtiofsd="$cache/virtiofsd/bin/virtiofsd"
if [ ! -x "$virtiofsd" ]; then
  echo "installing virtiofsd (cargo install) into $cache/virtiofsd" >&2
  cargo install virtiofsd --locked --root "$cache/virtiofsd" >&2
fi
kernel="$(scripts/fetch-kernel)"
cargo build --release --bin cairn >&2
cairn="${CARGO_TARGET_DIR:-target}/release/cairn"

work=$(mktemp -d)
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The tree: one large file and a few small ones.
mkdir -p "$work/tree/share"
head -c $((size_mib << 20)) /dev/urandom >"$work/tree/share/big.bin"
for i in $(seq 1 20); do echo "file $i" >"$work/tree/share/small$i"; done
store="$work/store"
path=$("$cairn" --store-dir "$store" add "$work/tree")
base=${path##*/}
mkdir -p "$work/export"
cp -a "$work/tree" "$work/export/$base"

guest='echo ready; t0=$(cut -d" " -f1 /proc/uptime); cat '"$path"'/share/big.bin >/dev/null; t1=$(cut -d" " -f1 /proc/uptime); echo "read $t0 $t1"'
state="$work/state"
lines=$("$cairn" --store-dir "$store" boot --kernel "$kernel" --print-command --state-dir "$state" \
  --closure "$path" -- sh -c "$guest")
vmm=$(echo "$lines" | tail -1)
socket="$state/virtiofs.sock"

start_daemon() {
  rm -f "$socket"
  local timed=(/usr/bin/time -f "%U %S" -o "$work/daemon.cpu")
  case "$1" in
    cairn) "${timed[@]}" "$cairn" --store-dir "$store" virtiofs --socket "$socket" --closure "$path" 2>"$work/daemon.log" & ;;
    virtiofsd) "${timed[@]}" "$virtiofsd" --socket-path "$socket" --shared-dir "$work/export" --cache auto \
                 --sandbox none --readonly 2>"$work/daemon.log" & ;;
  esac
  daemon_pid=$!
  for _ in $(seq 1 300); do [ -S "$socket" ] && return 0; sleep 0.02; done
  echo "$1 did not create its socket" >&2; cat "$work/daemon.log" >&2; exit 1
}

# One boot: prints "<boot-to-command ms> <read MiB/s>".
boot_once() {
  start_daemon "$1"
  local t_start t_ready out
  t_start=$(date +%s%N)
  out="$work/console"
  : >"$out"
  sh -c "exec $vmm" </dev/null >"$out" 2>"$work/vmm.log" &
  local vmm_pid=$!
  t_ready=
  while kill -0 "$vmm_pid" 2>/dev/null; do
    if [ -z "$t_ready" ] && grep -q '^ready' "$out"; then t_ready=$(date +%s%N); fi
    sleep 0.01
  done
  wait "$vmm_pid" || true
  [ -z "$t_ready" ] && grep -q '^ready' "$out" && t_ready=$(date +%s%N)
  wait "$daemon_pid" 2>/dev/null || kill "$daemon_pid" 2>/dev/null || true
  daemon_pid=
  local read_line
  read_line=$(tr -d '\r' <"$out" | grep '^read ' | tail -1)
  if [ -z "$t_ready" ] || [ -z "$read_line" ]; then
    echo "$1: the guest did not finish; console:" >&2; tail -20 "$out" >&2; cat "$work/vmm.log" "$work/daemon.log" >&2; exit 1
  fi
  local cpu
  cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/daemon.cpu" 2>/dev/null || echo 0)
  echo "$read_line" | awk -v ms=$(( (t_ready - t_start) / 1000000 )) -v mib="$size_mib" -v cpu="$cpu" \
    '{ d = $3 - $2; if (d <= 0) d = 0.01; printf "%d %.1f %s\n", ms, mib / d, cpu }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "warm-up boots (host caches)..." >&2
boot_once cairn >/dev/null
boot_once virtiofsd >/dev/null
: >"$work/cairn.txt"; : >"$work/virtiofsd.txt"
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs" >&2
  boot_once cairn >>"$work/cairn.txt"
  boot_once virtiofsd >>"$work/virtiofsd.txt"
done

c_boot=$(cut -d' ' -f1 "$work/cairn.txt" | median); v_boot=$(cut -d' ' -f1 "$work/virtiofsd.txt" | median)
c_read=$(cut -d' ' -f2 "$work/cairn.txt" | median); v_read=$(cut -d' ' -f2 "$work/virtiofsd.txt" | median)
c_cpu=$(cut -d' ' -f3 "$work/cairn.txt" | median); v_cpu=$(cut -d' ' -f3 "$work/virtiofsd.txt" | median)
echo
echo "each run (boot-to-command ms, read MiB/s, daemon CPU s):"
paste -d' ' <(sed 's/^/cairn /' "$work/cairn.txt") <(sed 's/^/| virtiofsd /' "$work/virtiofsd.txt")
echo
echo "QEMU -accel tcg, 1 vCPU, ${size_mib} MiB file, median of $runs boots each"
printf '%-28s %14s %14s %10s\n' metric "cairn" "virtiofsd" "ratio"
printf '%-28s %14s %14s %10s\n' "boot to command (ms)" "$c_boot" "$v_boot" \
  "$(awk -v a="$c_boot" -v b="$v_boot" 'BEGIN { printf "%.2fx", a / b }')"
printf '%-28s %14s %14s %10s\n' "sequential read (MiB/s)" "$c_read" "$v_read" \
  "$(awk -v a="$c_read" -v b="$v_read" 'BEGIN { printf "%.2fx", b / a }')"
printf '%-28s %14s %14s %10s\n' "daemon CPU per boot (s)" "$c_cpu" "$v_cpu" \
  "$(awk -v a="$c_cpu" -v b="$v_cpu" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')"
echo "(ratios: cairn / virtiofsd in time or CPU; <= 1.10x is the target)"
