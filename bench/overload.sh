#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# W5's overload step under both slow-consumer policies: 10,000 subscribers of one
# topic at 1,600 msg/s on one core (16 M deliveries/s asked, about three times
# what one core sends), the server pinned to CPU 0 and ringcast-bench to CPU 1.
# For each policy it reports the bench's latency and loss figures, the server's
# resident memory sampled every second (flat or not), its slow-consumer closes
# and what it conflated or shed (from /metrics).
#
#   bench/overload.sh [--rate N] [--conns N] [--duration S] [--name NAME]
#                     [--policies conflate,disconnect]
#
# Writes bench/results/NAME/{conflate,disconnect}.{json,txt,rss,metrics} and
# summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=1600 conns=10000 duration=20 name=overload policies="conflate disconnect"
while [ $# -gt 0 ]; do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --policies) policies=${2//,/ }; shift 2 ;;
    *) echo "bench/overload.sh: unknown option $1 (see the header)" >&2; exit 2 ;;
  esac
done
out=bench/results/$name
mkdir -p "$out"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server_pid="" sampler_pid=""
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid="" sampler_pid=""
}
trap cleanup EXIT

metric() { awk -v n="$1" '$1 == n { print $2 }' "$2"; }

for policy in $policies; do
  build/ringcast --listen 127.0.0.1:$port --threads 1 --cpus 0 --log-level warn --slow-policy $policy \
    --max-conns-per-ip 0 --max-handshakes-per-ip 0 --connect-rate-per-ip 0 --max-commands-per-sec 0 \
    >"$out/$policy.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
  # Resident memory once a second, for the whole run.
  ( while kill -0 "$server_pid" 2>/dev/null; do
      awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status" 2>/dev/null || true; sleep 1
    done ) >"$out/$policy.rss" &
  sampler_pid=$!
  echo "== $policy" >&2
  taskset -c 1 build/ringcast-bench --url "ws://127.0.0.1:$port/ws?topics={topic}" \
    --publish "http://127.0.0.1:$port/publish" --server-pid "$server_pid" --server-cpu 0 \
    --conns "$conns" --rate "$rate" --duration "$duration" --drain 30 --max-loss 1000000000 \
    --max-failed 1000000 --json "$out/$policy.json" >"$out/$policy.txt" 2>"$out/$policy.err" || true
  curl -s "http://127.0.0.1:$port/metrics" >"$out/$policy.metrics"
  cat "$out/$policy.txt" >&2
  cleanup
done

{
  echo "# Overload: $conns subscribers at $rate msg/s on one core ($name)"
  echo
  echo "Commit \`$(git rev-parse --short HEAD)\`. bench/overload.sh --rate $rate --conns $conns --duration $duration"
  echo
  echo "| --slow-policy | RSS min..max MiB (sampled each second) | slow-consumer closes | conflated messages | gap notices | shed (conflated instead of closed) |"
  echo "|---|---:|---:|---:|---:|---:|"
  for policy in $policies; do
    m=$out/$policy.metrics
    rss=$(sort -n "$out/$policy.rss" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f..%.0f", lo / 1024, hi / 1024 }')
    echo "| $policy | $rss | $(metric ringcast_slow_consumer_disconnects_total "$m") | $(metric ringcast_conflated_messages_total "$m") | $(metric ringcast_conflation_gaps_total "$m") | $(metric ringcast_overload_shed_total "$m") |"
  done
  echo
  for policy in $policies; do
    echo "## $policy"
    echo
    echo '```'
    cat "$out/$policy.txt"
    echo '```'
    echo
  done
} >"$out/summary.md"
echo "bench/overload.sh: results in $out/summary.md" >&2
