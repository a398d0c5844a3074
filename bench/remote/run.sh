#!/bin/sh
# Remote-store benchmark: a cold whole-tree read through `cairn mount` from
# moto's S3 server on loopback behind a proxy adding 20 ms per request;
# default settings against prefetching off. Needs root and /dev/fuse.
# Arguments are passed on: --delay-ms N, --small N, --large N, --large-mib N.
set -eu
cd "$(dirname "$0")/../.."
command -v moto_server >/dev/null 2>&1 || pip3 install -q 'moto[server]'
cargo build --release -q -p cairn -p cairn-bench
exec "${CARGO_TARGET_DIR:-target}/release/remote_read" "$@"
