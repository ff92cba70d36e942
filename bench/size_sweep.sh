#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CPU per delivery against message size, for tools/ringcast-plan: W1's shape at
# 10 msg/s (10,000 subscribers of one topic, the core not saturated, so each
# delivery is its own send as at a provisioned operating point), one run per
# payload size, the server fresh each time, pinned to CPU 0, ringcast-bench on
# CPU 1 (as bench/run.sh). Subscribers take the envelope (the default format).
#
#   bench/size_sweep.sh [--name NAME] [--sizes "128 1024 4096"] [--conns N] [--rate R] [--duration S]
# Writes bench/results/NAME/size-BYTES.json and .txt.
set -euo pipefail
cd "$(dirname "$0")/.."
name="size-$(date +%Y%m%d-%H%M%S)" sizes="128 1024 4096" conns=10000 rate=10 duration=10
while [ $# -gt 0 ]; do
  case $1 in
    --name) name=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bench/size_sweep.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
out=bench/results/$name
mkdir -p "$out"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server_pid=""
trap '[ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null; wait 2>/dev/null || true' EXIT
for size in $sizes; do
  build/ringcast --listen 127.0.0.1:$port --threads 1 --cpus 0 --log-level warn --max-conns-per-ip 0 \
    --max-handshakes-per-ip 0 --connect-rate-per-ip 0 --max-commands-per-sec 0 >/dev/null 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.05; done
  taskset -c 1 build/ringcast-bench --url "ws://127.0.0.1:$port/ws?topics={topic}" \
    --publish http://127.0.0.1:$port/publish --conns "$conns" --rate "$rate" --size "$size" \
    --duration "$duration" --server-pid $server_pid --server-cpu 0 --json "$out/size-$size.json" \
    >"$out/size-$size.txt" 2>/dev/null || true
  kill -TERM $server_pid; wait $server_pid || true; server_pid=""
  grep -E 'deliveries|CPU' "$out/size-$size.txt" | head -4 >&2 || true
done
echo "bench/size_sweep.sh: results in $out" >&2
