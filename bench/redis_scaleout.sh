#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scale-out through Redis (issue 12; docs/benchmarks.md, "Scale-out through Redis"):
#   1. the publish ceiling of one Redis: one node with --redis (1 and 2 shards),
#      ringcast-bench publishing as fast as the node takes (ws publish commands,
#      and single HTTP POSTs from several publishers), against the same node
#      without --redis;
#   2. W1 (one topic, 128-byte messages, --conns subscribers at --rate msg/s) on
#      one node without Redis, then on three nodes through Redis, a third of the
#      subscribers on each and the publisher on the first.
# Redis alone on CPU 1 in 1; nodes on CPU 0, Redis and the benches on CPU 1 in 2.
#
#   bench/redis_scaleout.sh [--name NAME] [--only ceiling,w1] [--conns 3000] [--rate 200]
#                           [--w1-duration 20] [--ceiling-duration 10] [--history 1000]
#                           [--single-publishers 4]
# Writes bench/results/NAME/<run>.json (figures and samples), <run>-bench*.json/.txt
# (ringcast-bench's reports) and summary.md. The driver is bench/redis_scaleout.py.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "bench/redis_scaleout.sh: redis-server is missing (apt-get install redis-server)" >&2; exit 2; }
[ -x build/ringcast-bench ] || scripts/build.sh build -DCMAKE_BUILD_TYPE=Release >/dev/null
exec /usr/bin/python3 bench/redis_scaleout.py "$@"
