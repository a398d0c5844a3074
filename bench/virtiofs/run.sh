#!/usr/bin/env bash
# cairn virtiofs vs virtiofsd, same guest, same tree, same run.
#
# Boots QEMU (software emulation, Debian's kernel, cairn's initrd) with the
# store over vhost-user-fs, served either by `cairn virtiofs` from the
# content-addressed store or by virtiofsd from the same tree exported to a
# plain directory. Measures, per boot: the time from starting QEMU to the
# command's first output line (boot-to-command), and the guest's sequential
# read of a large file (cold guest cache; host caches warm for both after a
# warm-up boot). Prints medians and ratios to virtiofsd.
#
# cairn runs twice over: as it runs by default ("cairn": a large file opened
# again, here in the next boot, gets a whole-file copy, read from then on
# with one preadv per request) and with --no-whole-files ("chunks": every
# read through the verified chunk cache with its prefetch window).
#
# Also the CPU time each daemon used per boot (user + system).
#
# Env: RUNS (default 5), SIZE_MIB (default 256); CAIRN_BIN=PATH uses that
# cairn binary instead of building one; CAIRN_BASELINE=PATH also boots an
# earlier cairn binary, alternating with the other two (a before/after
# comparison under the same machine load); PROFILE=FILE records one more
# boot of cairn's daemon with `perf record --call-graph dwarf` into FILE.
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
if [ -n "${CAIRN_BIN:-}" ]; then
  cairn=$CAIRN_BIN
else
  cargo build --release --bin cairn >&2
  cairn="${CARGO_TARGET_DIR:-target}/release/cairn"
fi
baseline=${CAIRN_BASELINE:-}

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
  local profiled=()
  [ -n "${2:-}" ] && profiled=(perf record -q -F 999 --call-graph dwarf -o "$2" --)
  case "$1" in
    baseline) "${timed[@]}" "$baseline" --store-dir "$store" virtiofs --socket "$socket" --closure "$path" 2>"$work/daemon.log" & ;;
    cairn) "${timed[@]}" "${profiled[@]}" "$cairn" --store-dir "$store" virtiofs --socket "$socket" --closure "$path" 2>"$work/daemon.log" & ;;
    chunks) "${timed[@]}" "$cairn" --store-dir "$store" virtiofs --socket "$socket" --closure "$path" --no-whole-files 2>"$work/daemon.log" & ;;
    virtiofsd) "${timed[@]}" "$virtiofsd" --socket-path "$socket" --shared-dir "$work/export" --cache auto \
                 --sandbox none --readonly 2>"$work/daemon.log" & ;;
  esac
  daemon_pid=$!
  for _ in $(seq 1 300); do [ -S "$socket" ] && return 0; sleep 0.02; done
  echo "$1 did not create its socket" >&2; cat "$work/daemon.log" >&2; exit 1
}

# One boot: prints "<boot-to-command ms> <read MiB/s> <daemon CPU s>".
boot_once() {
  start_daemon "$1" "${2:-}"
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


daemons=(cairn chunks virtiofsd)
[ -n "$baseline" ] && daemons+=(baseline)
echo "warm-up boots (host caches)..." >&2
for d in "${daemons[@]}"; do boot_once "$d" >/dev/null; : >"$work/$d.txt"; done
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs" >&2
  for d in "${daemons[@]}"; do boot_once "$d" >>"$work/$d.txt"; done
done
if [ -n "${PROFILE:-}" ]; then
  echo "profiled boot (perf record into $PROFILE)" >&2
  boot_once cairn "$PROFILE" >&2
fi

# "<median> (<min>-<max>)" of column $1 of file $2.
stat() { cut -d' ' -f"$1" "$2" | sort -n | awk '{ a[NR] = $1 } END {
  m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%s (%s-%s)", m, a[1], a[NR] }'; }
gib=$(awk -v m="$size_mib" 'BEGIN { print m / 1024 }')
# Daemon CPU seconds per GiB read (the boot's CPU, lookups included).
per_gib() { awk -v g="$gib" '{ printf "%.2f\n", $3 / g }' "$1" >"$1.gib"; }
for d in "${daemons[@]}"; do per_gib "$work/$d.txt"; done

echo
echo "each boot (boot-to-command ms, read MiB/s, daemon CPU s):"
for d in "${daemons[@]}"; do sed "s/^/$d /" "$work/$d.txt"; done
echo
echo "QEMU -accel tcg, 1 vCPU, ${size_mib} MiB file; median (min-max) of $runs boots each"
header=$(printf '%-30s' metric)
for d in "${daemons[@]}"; do header+=$(printf ' %-22s' "$d"); done
for d in "${daemons[@]}"; do [ "$d" = virtiofsd ] || header+=$(printf ' %9s' "$d/vfsd"); done
echo "$header"
# row NAME COLUMN FILE-SUFFIX HIGHER-IS-BETTER (empty: lower is better)
row() {
  local name=$1 col=$2 suffix=$3 higher=$4 line d v
  v=$(stat "$col" "$work/virtiofsd.txt$suffix")
  line=$(printf '%-30s' "$name")
  for d in "${daemons[@]}"; do line+=$(printf ' %-22s' "$(stat "$col" "$work/$d.txt$suffix")"); done
  for d in "${daemons[@]}"; do
    [ "$d" = virtiofsd ] && continue
    line+=$(printf ' %9s' "$(awk -v a="$(stat "$col" "$work/$d.txt$suffix" | cut -d' ' -f1)" -v b="${v%% *}" -v h="$higher" \
      'BEGIN { if (h) { t = a; a = b; b = t } if (b > 0) printf "%.2fx", a / b; else print "-" }')")
  done
  echo "$line"
}
row "boot to command (ms)" 1 "" ""
row "sequential read (MiB/s)" 2 "" 1
row "daemon CPU per boot (s)" 3 "" ""
row "daemon CPU per GiB read (s)" 1 .gib ""
echo "(ratios: daemon / virtiofsd in time or CPU; <= 1.10x is the target)"
echo "(cairn: as it runs by default, with whole-file copies, which the first measured"
echo " boot writes (the warm-up boot only marks the file as opened); chunks: the same"
echo " binary with --no-whole-files, every read through the verified chunk cache)"
