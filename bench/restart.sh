#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A reconnect storm through a seamless restart: ringcast-bench's storm scenario
# runs against server A; as every subscriber drops and reconnects at once, B
# starts with --takeover on the same port, takes A's listening sockets and A
# drains. Connection attempts that fail (refused, reset, a handshake cut) are
# the figure that matters: the goal is 0. Messages published to B do not reach
# subscribers still on A (one process, no shared bus), and B numbers each topic
# afresh: the bench's loss and numbering checks (its exit status) are reported
# but not judged. Subscribers A closes while draining are not reconnected by the
# bench, so it never sees "all reconnected".
#
#   bench/restart.sh [--conns N] [--duration S] [--drain S] [--rate R]
#                    [--threads-a N] [--threads-b N] [--offset S] [--name NAME]
#
# --offset S  start B S seconds after the storm begins (default 0.02: the
#             reconnects are in flight, many queued on A's sockets, when B
#             takes them)
#
# Writes bench/results/NAME/{bench.json,bench.txt,bench.err,a.log,b.log} and
# prints the failed-connection count; exits 1 when it is not 0.
set -euo pipefail
cd "$(dirname "$0")/.."
conns=2000 duration=9 drain=5 rate=100 threads_a=2 threads_b=2 offset=0.02 name=restart
while [ $# -gt 0 ]; do
  case $1 in
    --conns) conns=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --drain) drain=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --threads-a) threads_a=$2; shift 2 ;;
    --threads-b) threads_b=$2; shift 2 ;;
    --offset) offset=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *) echo "bench/restart.sh: unknown option $1 (see the header)" >&2; exit 2 ;;
  esac
done
out=bench/results/$name
mkdir -p "$out"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
a_pid="" b_pid="" bench_pid=""
cleanup() {
  for p in $bench_pid $b_pid $a_pid; do kill -INT "$p" 2>/dev/null || true; done
  for p in $bench_pid $b_pid $a_pid; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# Per-address limits off: every bench connection comes from 127.0.0.1.
limits=(--connect-rate-per-ip 0 --max-handshakes-per-ip 0 --max-conns-per-ip 0)
wait_listening() {
  for _ in $(seq 200); do
    grep -q "listening on" "$1" && return 0
    sleep 0.05
  done
  echo "bench/restart.sh: the server did not start:" >&2; cat "$1" >&2; exit 1
}

build/ringcast --listen 127.0.0.1:$port --threads "$threads_a" --no-pin --drain-seconds "$drain" \
  "${limits[@]}" >"$out/a.log" 2>&1 &
a_pid=$!
wait_listening "$out/a.log"

build/ringcast-bench --url "ws://127.0.0.1:$port/ws?topics={topic}" --publish "http://127.0.0.1:$port/publish" \
  --conns "$conns" --topics 10 --rate "$rate" --duration "$duration" --scenario storm \
  --max-loss 1000000000 --max-failed 0 --json "$out/bench.json" >"$out/bench.txt" 2>"$out/bench.err" &
bench_pid=$!
# The storm comes a third into --duration, right after the steady phase's
# last progress line (one a second).
ticks=$(/usr/bin/python3 -c "import math; print(math.ceil($duration / 3))")
for _ in $(seq 1200); do
  [ "$(grep -c '] steady ' "$out/bench.err" || true)" -ge "$ticks" ] && break
  sleep 0.01
done
sleep "$(/usr/bin/python3 -c "print(max(0, $offset))")"
build/ringcast --listen 127.0.0.1:$port --threads "$threads_b" --no-pin --drain-seconds 0 --takeover \
  "${limits[@]}" >"$out/b.log" 2>&1 &
b_pid=$!

set +e
wait "$bench_pid"
bench_rc=$?
bench_pid=""
wait "$a_pid"
a_rc=$?
a_pid=""
set -e
failed=$(/usr/bin/python3 -c "import json; print(json.load(open('$out/bench.json'))['failed'])")
echo "storm of $conns reconnects through a takeover: $failed failed connections (bench exit $bench_rc, A exit $a_rc)"
grep -E "took over|drain" "$out/a.log" || true
grep -E "storm|closed by the server|failed" "$out/bench.txt" || true
[ "$failed" = 0 ] && [ "$a_rc" = 0 ]
