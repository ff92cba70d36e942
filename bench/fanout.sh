#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fan-out and idle-memory figures with ringcast-probe (until ringcast-bench):
# the server pinned to CPU 0, the probe to CPU 1, side by side in one run.
#   bench/fanout.sh [--threads N] [--conns N] [--rates "20 200 400 800"] [--size B]
# Prints the server's resident memory per idle connection, then one block per rate (deliveries/s,
# loss, server CPU-seconds per million deliveries). The probe reads every socket
# eagerly and is itself the bottleneck near 5 million deliveries/s; its latency
# figures include its own queueing and are not the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1 conns=10000 rates="20 200 400 800" size=128 duration=5 idle=15000
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x build/ringcast ] || scripts/build.sh build -DCMAKE_BUILD_TYPE=Release >/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cpus=0
[ "$threads" -gt 1 ] && cpus=0-$((threads - 1))
log=$(mktemp)
if [ "$threads" -gt "$(nproc)" ]; then pin="--no-pin"; else pin="--cpus $cpus"; fi
build/ringcast --listen 127.0.0.1:$port --threads "$threads" $pin >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
probe_cpu=$(( $(nproc) - 1 ))
echo "# ringcast $(git rev-parse --short HEAD 2>/dev/null), threads=$threads, $conns subscribers on one topic, ${size}-byte payloads"
echo "# server on CPU $cpus, probe on CPU $probe_cpu"
# Idle first, on a fresh server, so earlier load does not hide the growth.
echo "## idle: $idle subscribers"
taskset -c $probe_cpu build/ringcast-probe --url "ws://127.0.0.1:$port/ws?topics=bench.idle" --conns "$idle" \
  --idle --settle 2 --server-pid $pid --source-ips 127.0.0.4-127.0.0.5 2>&1 | grep -v '^probe:' || true
for r in $rates; do
  echo "## rate $r messages/s ($((r * conns)) deliveries/s asked)"
  taskset -c $probe_cpu build/ringcast-probe --url "ws://127.0.0.1:$port/ws?topics=bench.r$r" \
    --publish "http://127.0.0.1:$port" --conns "$conns" --rate "$r" --size "$size" \
    --duration "$duration" --server-pid $pid --source-ips 127.0.0.2-127.0.0.3 2>&1 | grep -v '^probe:' || true
done
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ringcast_(frames_delivered|sendmsg)_total'
