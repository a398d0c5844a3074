#!/bin/sh
# Filesystem benchmark: mounts a generated ~1 GiB tree (root, /dev/fuse) and
# prints a table comparing it with native reads. Arguments are passed on:
#   --gib N           tree size in GiB (default 1)
#   --work DIR        where the tree, store and mountpoint live (default /var/tmp/cairn-fsbench)
#   --latency-mib N   bytes read through the 20 ms backend (default 128)
set -eu
cd "$(dirname "$0")/../.."
exec cargo run --release -q -p cairn-fs --example fsbench -- "$@"
