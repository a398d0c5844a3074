#!/usr/bin/env bash
# Binary-cache serving benchmark: the NARs of ~100 store paths (a few of
# 20-60 MiB random data, many small ones) fetched from `cairn serve`
# (compression none, rendered from castore on every request) and from
# Debian's nginx serving the very same NAR files from disk, with 1 and with
# 16 concurrent clients (curl, one process per client, keep-alive). The two
# servers take turns; each figure is the median over the rounds.
#
# Environment: ROUNDS (default 5), LARGE (6), SMALL (94), PORT_BASE (18400),
# CAIRN (a cairn binary; default: a release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
LARGE=${LARGE:-6}
SMALL=${SMALL:-94}
PORT_BASE=${PORT_BASE:-18400}
CAIRN_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))

for tool in nginx curl; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "installing $tool" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${CAIRN:-}" ]; then
  cargo build --release -q --bin cairn
  CAIRN="${CARGO_TARGET_DIR:-target}/release/cairn"
fi

work=$(mktemp -d /tmp/cairn-serve-bench.XXXXXX)
chmod 755 "$work" # nginx's workers read the files as an unprivileged user
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Store paths: LARGE trees with one 20-60 MiB random file, SMALL trees of a
# few small files.
echo "generating $LARGE large and $SMALL small trees in $work" >&2
mkdir -p "$work/trees"
for i in $(seq 1 "$LARGE"); do
  d="$work/trees/large-$i"
  mkdir -p "$d"
  mib=$((20 + (i * 37) % 41))
  head -c $((mib << 20)) /dev/urandom >"$d/data.bin"
done
for i in $(seq 1 "$SMALL"); do
  d="$work/trees/small-$i"
  mkdir -p "$d/lib"
  head -c $((1024 + (i * 7919) % 200000)) /dev/urandom >"$d/lib/blob"
  seq 1 $((i * 50)) >"$d/numbers.txt"
  echo "small tree $i" >"$d/README"
done
"$CAIRN" --store-dir "$work/store" add "$work"/trees/* >"$work/paths"
echo "$(wc -l <"$work/paths") store paths in the cairn store" >&2

# cairn serve, read-only, uncompressed NARs.
"$CAIRN" --store-dir "$work/store" serve --listen "127.0.0.1:$CAIRN_PORT" \
  --read-only --compression none >"$work/cairn.out" 2>"$work/cairn.err" &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q listening "$work/cairn.out" 2>/dev/null && break
  sleep 0.1
done

# The same NAR files for nginx, under the same URLs (fetched from cairn
# serve, checked against `cairn nar dump`).
mkdir -p "$work/www/nar"
: >"$work/urls"
while read -r path; do
  hash=$(basename "$path" | cut -c1-32)
  url=$(curl -sf "http://127.0.0.1:$CAIRN_PORT/$hash.narinfo" | sed -n 's/^URL: //p')
  curl -sf -o "$work/www/$url" "http://127.0.0.1:$CAIRN_PORT/$url"
  "$CAIRN" --store-dir "$work/store" nar dump "$path" | cmp -s - "$work/www/$url" ||
    { echo "NAR of $path differs" >&2; exit 1; }
  echo "$url" >>"$work/urls"
done <"$work/paths"
total_bytes=$(du -cb "$work"/www/nar/* | tail -1 | cut -f1)

cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/x-nix-nar;
  client_body_temp_path $work/nginx-tmp;
  proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp;
  uwsgi_temp_path $work/nginx-tmp;
  scgi_temp_path $work/nginx-tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work/www;
  }
}
EOF
mkdir -p "$work/nginx-tmp"
"$NGINX" -c "$work/nginx.conf" -p "$work" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/$(head -1 "$work/urls")" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/$(head -1 "$work/urls")" ||
  { echo "nginx does not serve the NARs:" >&2; cat "$work/nginx-error.log" >&2; exit 1; }

# One fetch of every NAR by `clients` curl processes; prints MB/s.
fetch_all() {
  local port=$1 clients=$2 dir="$work/fetch-$1-$2"
  rm -rf "$dir" && mkdir -p "$dir"
  local n=0
  while read -r url; do
    printf 'url = "http://127.0.0.1:%s/%s"\noutput = "/dev/null"\n' "$port" "$url" \
      >>"$dir/client-$((n % clients))"
    n=$((n + 1))
  done <"$work/urls"
  local start end
  start=$(date +%s.%N)
  local cpids=()
  for config in "$dir"/client-*; do
    curl -sf -w '%{size_download}\n' -K "$config" >"$config.sizes" &
    cpids+=($!)
  done
  for pid in "${cpids[@]}"; do wait "$pid"; done
  end=$(date +%s.%N)
  local got
  got=$(cat "$dir"/client-*.sizes | awk '{ s += $1 } END { print s }')
  if [ "$got" != "$total_bytes" ]; then
    echo "port $port: fetched $got bytes, expected $total_bytes" >&2
    exit 1
  fi
  awk -v b="$total_bytes" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", b / (e - s) / 1e6 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Warm both (page cache, chunk files, connections).
fetch_all "$NGINX_PORT" 4 >/dev/null
fetch_all "$CAIRN_PORT" 4 >/dev/null

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for clients in 1 16; do
    if [ $((round % 2)) -eq 1 ]; then order="$NGINX_PORT $CAIRN_PORT"; else order="$CAIRN_PORT $NGINX_PORT"; fi
    for port in $order; do
      mbps=$(fetch_all "$port" "$clients")
      results[$port-$clients]="${results[$port-$clients]:-} $mbps"
    done
  done
  echo "round $round/$ROUNDS done" >&2
done

echo
echo "cairn serve vs nginx: $(wc -l <"$work/urls") NARs, $((total_bytes / 1000000)) MB in total, median of $ROUNDS rounds (MB/s)"
printf '%-8s %12s %12s %8s   %s\n' clients nginx cairn ratio "cairn rounds / nginx rounds"
for clients in 1 16; do
  n=$(echo "${results[$NGINX_PORT-$clients]}" | tr ' ' '\n' | grep . | median)
  c=$(echo "${results[$CAIRN_PORT-$clients]}" | tr ' ' '\n' | grep . | median)
  ratio=$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.2fx", c / n }')
  printf '%-8s %12s %12s %8s   %s /%s\n' "$clients" "$n" "$c" "$ratio" \
    "${results[$CAIRN_PORT-$clients]}" "${results[$NGINX_PORT-$clients]}"
done
