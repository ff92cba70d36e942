#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The standard benchmark suite (docs/benchmarks.md): W1-W5 against ringcast with
# the server pinned to CPU 0 and ringcast-bench to CPU 1, and with --peers the same
# workloads against node ws, nginx+Nchan and uWebSockets in the same run.
#
#   bench/run.sh [--threads N] [--peers] [--quick] [--name NAME] [--only W1,W3]
#                [--uws-src DIR --usockets-src DIR] [--baseline BINARY]
#
# --threads N  ringcast shards, all pinned to CPU 0 (default 1)
# --peers      also run node ws (Debian node-ws) and nginx+Nchan, and uWebSockets
#              when its sources are given (build/peers/uws_broadcast is built from
#              them by bench/peers/build_uws.sh if missing)
# --uws-src DIR, --usockets-src DIR  checkouts of the public uWebSockets and uSockets
#              repositories (or env UWS_SRC, USOCKETS_SRC); without them uws is skipped
# --baseline BINARY  also run another ringcast build (say, the previous commit's)
#              as "ringcast-base", each workload right after this build's, so a
#              change is measured against what it replaces in one run
# --quick      short phases (a smoke run of the suite, about three minutes)
# --only LIST  run only these workloads (W1,W2,W3,W4,W5), adding to NAME's results
# Writes bench/results/NAME/*.json (one per workload and server), *.txt (the
# bench's own report), summary.md and plots (PNG, gnuplot).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1 peers=0 quick=0 name="" only="W1,W2,W3,W4,W5" baseline=""
uws_src=${UWS_SRC:-} usockets_src=${USOCKETS_SRC:-} uws_bin=build/peers/uws_broadcast
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --peers) peers=1; shift ;;
    --quick) quick=1; shift ;;
    --name) name=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --uws-src) uws_src=$2; shift 2 ;;
    --usockets-src) usockets_src=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$name" ] || name="t${threads}-$(date +%Y%m%d-%H%M%S)"
out=bench/results/$name
mkdir -p "$out"

need=(gnuplot-nox)
[ $peers = 1 ] && need+=(nginx-light libnginx-mod-nchan node-ws nodejs)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x build/ringcast-bench ] || scripts/build.sh build -DCMAKE_BUILD_TYPE=Release >/dev/null
uws=0
if [ $peers = 1 ]; then
  if [ -n "$uws_src" ] && [ -n "$usockets_src" ]; then
    [ -x $uws_bin ] || bench/peers/build_uws.sh "$uws_src" "$usockets_src" $uws_bin
    uws=1
  else
    echo "bench/run.sh: uWebSockets skipped (give --uws-src DIR --usockets-src DIR, or UWS_SRC/USOCKETS_SRC)" >&2
  fi
fi

if [ $quick = 1 ]; then d_w1=4 d_step=3 d_idle=2 d_w4=5 d_w5=4; else d_w1=20 d_step=5 d_idle=5 d_w4=10 d_w5=10; fi
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server_pid="" measure_pid="" url="" pub="" tmp=$(mktemp -d)
trap 'stop_server; rm -rf "$tmp"' EXIT

wait_healthy() {
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench/run.sh: the server did not start" >&2; exit 1
}

start_server() { # kind [shards]
  case $1 in
    ringcast|ringcast-base)
      local shards=${2:-$threads} cpus=0 bin=build/ringcast
      [ "$1" = ringcast-base ] && bin=$baseline
      for ((i = 1; i < shards; i++)); do cpus="$cpus,0"; done
      # Every bench client shares one address: the per-address limits are off
      # (in builds that have them).
      local open=()
      if "$bin" --help | grep -q -- --connect-rate-per-ip; then
        open=(--max-conns-per-ip 0 --max-handshakes-per-ip 0 --connect-rate-per-ip 0 --max-commands-per-sec 0)
      fi
      "$bin" --listen 127.0.0.1:$port --threads "$shards" --cpus "$cpus" --log-level warn "${open[@]}" \
        >"$tmp/server.log" 2>&1 &
      server_pid=$! measure_pid=$!
      url="ws://127.0.0.1:$port/ws?topics={topic}" pub="http://127.0.0.1:$port/publish" ;;
    node)
      NODE_PATH=/usr/share/nodejs taskset -c 0 node bench/peers/node_ws_broadcast.js $port >"$tmp/server.log" 2>&1 &
      server_pid=$! measure_pid=$!
      url="ws://127.0.0.1:$port/ws?topics={topic}" pub="http://127.0.0.1:$port/publish" ;;
    uws)
      taskset -c 0 $uws_bin $port >"$tmp/server.log" 2>&1 &
      server_pid=$! measure_pid=$!
      url="ws://127.0.0.1:$port/ws?topics={topic}" pub="http://127.0.0.1:$port/publish" ;;
    nchan)
      mkdir -p "$tmp/nginx"
      sed "s#@DIR@#$tmp/nginx#g; s#@PORT@#$port#g" bench/peers/nginx-nchan.conf.in >"$tmp/nginx/nginx.conf"
      taskset -c 0 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" >"$tmp/server.log" 2>&1 &
      server_pid=$!
      url="ws://127.0.0.1:$port/sub/{topic}" pub="http://127.0.0.1:$port/pub/{topic}" ;;
  esac
  wait_healthy
  # nginx's master only supervises: measure its single worker.
  [ "$1" = nchan ] && measure_pid=$(pgrep -P "$server_pid" | head -1)
  return 0
}

stop_server() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}

bench() { # result-name, then ringcast-bench options
  local res=$1; shift
  echo "== $res" >&2
  taskset -c 1 build/ringcast-bench --url "$url" --publish "$pub" --server-pid "$measure_pid" --server-cpu 0 \
    --json "$out/$res.json" "$@" >"$out/$res.txt" 2>"$tmp/bench.err" || true
  grep -vE '^\[' "$tmp/bench.err" >&2 || true
  cat "$out/$res.txt" >&2
}

wanted() { [[ ",$only," == *",$1,"* ]]; }

run_suite() { # server kind, label
  local kind=$1 label=$2
  if wanted W1; then
    start_server "$kind"; bench "W1-20-$label" --conns 10000 --rate 20 --duration $d_w1; stop_server
    start_server "$kind"; bench "W1-200-$label" --conns 10000 --rate 200 --duration $d_w1; stop_server
  fi
  if wanted W3; then
    start_server "$kind"; bench "W3-$label" --scenario idle --conns 15000 --duration $d_idle; stop_server
  fi
  if wanted W2; then
    start_server "$kind"
    bench "W2-$label" --scenario ramp --conns 1000 --ramp-start 200 --ramp-factor 2 --ramp-steps 8 \
      --ramp-step $d_step --p99-bound 50
    stop_server
  fi
  if wanted W4; then
    # ringcast: 60,000 on 4 shards. The peers keep every connection in the process
    # fd table, so RLIMIT_NOFILE (20,000 here) is as many as the machine allows them.
    local w4conns=19000
    if [ "${kind%-base}" = ringcast ]; then start_server "$kind" 4; w4conns=60000; else start_server "$kind"; fi
    bench "W4-$label" --conns $w4conns --threads 4 --topics 100 --rate 100 --duration $d_w4 \
      --source-ips 127.0.0.2-127.0.0.9 --drain 10
    stop_server
  fi
  if wanted W5; then
    start_server "$kind"
    # W5 asks for completeness, not latency: the bound is set out of reach.
    bench "W5-$label" --scenario ramp --conns 10000 --ramp-start 200 --ramp-factor 2 --ramp-steps 4 \
      --ramp-step $d_w5 --p99-bound 600000 --drain 30
    stop_server
  fi
}

if [ -n "$baseline" ]; then
  [ -x "$baseline" ] || { echo "bench/run.sh: --baseline $baseline is not an executable" >&2; exit 2; }
  # Workload by workload, alternating, so drifting machine noise falls on both.
  for w in ${only//,/ }; do
    saved=$only only=$w
    run_suite ringcast "ringcast-t$threads"
    run_suite ringcast-base "ringcast-base-t$threads"
    only=$saved
  done
else
  run_suite ringcast "ringcast-t$threads"
fi
if [ $peers = 1 ]; then
  run_suite node node-ws
  run_suite nchan nginx-nchan
  if [ $uws = 1 ]; then run_suite uws uws; fi
fi
/usr/bin/python3 bench/summarize.py "$out" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "bench/run.sh: results in $out (summary.md, *.png)" >&2
