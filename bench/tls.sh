#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The TLS measurements of docs/benchmarks.md ("TLS (wss://)"), each server fresh,
# pinned to CPU 0 with ringcast-bench on CPU 1 as in bench/run.sh, and a table:
#
#   bench/tls.sh [--quick] [--peers] [--only w1,storm,idle] [--w1-conns N] [--name NAME]
#
#   w1     W1 at 200 msg/s (10,000 subscribers, or --w1-conns, one topic, 128-byte
#          messages) over ws and wss side by side: server CPU per million
#          deliveries (the process, and CPU 0 busy), the wss/ws ratios, delivery,
#          p50/p99; ringcast's wss with ChaCha20-Poly1305 (its choice) and with
#          AES-128-GCM (the only suite the bench offers)
#   storm  10,000 wss subscribers drop and reconnect at once, with and without
#          session resumption, P-256 and RSA-2048 certificates: time until all
#          are back, handshakes per second, handshakes per server CPU second
#   idle   15,000 idle subscribers, ws and wss: server RSS per connection
#   --peers  w1 and idle also against node ws (https.createServer) and
#          nginx+Nchan over TLS (Debian nginx-light, libnginx-mod-nchan, node-ws)
#   --quick  short phases (a smoke run)
# Every run is bounded (timeout), traffic stays on 127.0.0.1. Writes
# bench/results/NAME/*.json, *.txt and table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 peers=0 only="w1,storm,idle" name="" w1_conns=10000
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; shift ;;
    --peers) peers=1; shift ;;
    --only) only=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --w1-conns) w1_conns=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench/tls.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$name" ] || name="tls-$(date +%Y%m%d-%H%M%S)"
out=bench/results/$name
mkdir -p "$out"
[ -x build/ringcast-bench ] || scripts/build.sh build -DCMAKE_BUILD_TYPE=Release >/dev/null
if [ $peers = 1 ]; then
  for p in nginx-light libnginx-mod-nchan node-ws nodejs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      { echo "bench/tls.sh: --peers needs $p (apt-get install nginx-light libnginx-mod-nchan node-ws nodejs)" >&2; exit 2; }
  done
fi
if [ $quick = 1 ]; then d_w1=4 d_storm=20 d_idle=2; else d_w1=10 d_storm=60 d_idle=5; fi

tmp=$(mktemp -d)
server_pid="" measure_pid=""
trap 'stop_server; rm -rf "$tmp"' EXIT
for kind in ec rsa; do
  [ $kind = ec ] && newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) || newkey=(-newkey rsa:2048)
  openssl req -x509 "${newkey[@]}" -nodes -keyout "$tmp/$kind.key" -out "$tmp/$kind.crt" -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
done
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

wait_healthy() { # scheme
  for _ in $(seq 200); do curl -skf "$1://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "bench/tls.sh: the server did not start" >&2; cat "$tmp/server.log" >&2; exit 1
}

start_server() { # kind (ringcast, node, nchan), tls (0/1), certificate (ec/rsa)
  local kind=$1 tls=$2 cert=$3 scheme=http
  [ "$tls" = 1 ] && scheme=https
  case $kind in
    ringcast)
      local listen=(--listen 127.0.0.1:$port)
      [ "$tls" = 1 ] && listen=(--listen "127.0.0.1:$port,tls" --tls-cert "$tmp/$cert.crt" --tls-key "$tmp/$cert.key")
      # Every bench client shares one address: the per-address limits are off.
      build/ringcast "${listen[@]}" --threads 1 \
        --cpus 0 --log-level warn --max-conns-per-ip 0 --max-handshakes-per-ip 0 --connect-rate-per-ip 0 \
        --max-commands-per-sec 0 >"$tmp/server.log" 2>&1 &
      server_pid=$! measure_pid=$!
      url="ws://127.0.0.1:$port/ws?topics={topic}" pub="$scheme://127.0.0.1:$port/publish" ;;
    node)
      if [ "$tls" = 1 ]; then
        NODE_PATH=/usr/share/nodejs taskset -c 0 node bench/peers/node_wss_broadcast.js $port "$tmp/$cert.crt" \
          "$tmp/$cert.key" >"$tmp/server.log" 2>&1 &
      else
        NODE_PATH=/usr/share/nodejs taskset -c 0 node bench/peers/node_ws_broadcast.js $port >"$tmp/server.log" 2>&1 &
      fi
      server_pid=$! measure_pid=$!
      url="ws://127.0.0.1:$port/ws?topics={topic}" pub="$scheme://127.0.0.1:$port/publish" ;;
    nchan)
      local conf=bench/peers/nginx-nchan.conf.in
      [ "$tls" = 1 ] && conf=bench/peers/nginx-nchan-tls.conf.in
      rm -rf "$tmp/nginx"; mkdir -p "$tmp/nginx"
      sed "s#@DIR@#$tmp/nginx#g; s#@PORT@#$port#g; s#@CERT@#$tmp/$cert.crt#g; s#@KEY@#$tmp/$cert.key#g" \
        $conf >"$tmp/nginx/nginx.conf"
      taskset -c 0 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" >"$tmp/server.log" 2>&1 &
      server_pid=$!
      url="ws://127.0.0.1:$port/sub/{topic}" pub="$scheme://127.0.0.1:$port/pub/{topic}" ;;
  esac
  [ "$tls" = 1 ] && url="wss${url#ws}"
  wait_healthy $scheme
  # nginx's master only supervises: measure its single worker.
  if [ "$kind" = nchan ]; then measure_pid=$(pgrep -P "$server_pid" | head -1); fi
  return 0
}

stop_server() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}

bench() { # result name, seconds allowed, then ringcast-bench options
  local res=$1 limit=$2; shift 2
  echo "== $res" >&2
  timeout --signal=INT --kill-after=10 "$limit" taskset -c 1 build/ringcast-bench --url "$url" --publish "$pub" \
    --server-pid "$measure_pid" --server-cpu 0 --json "$out/$res.json" "$@" >"$out/$res.txt" 2>"$tmp/bench.err" || true
  grep -vE '^\[' "$tmp/bench.err" >&2 || true
  cat "$out/$res.txt" >&2
}

wanted() { [[ ",$only," == *",$1,"* ]]; }

# 10,000 full handshakes take the bench about 40 s on these machines: the limits
# leave room for that and the phase.
if wanted w1; then
  servers=(ringcast)
  [ $peers = 1 ] && servers+=(node nchan)
  for s in "${servers[@]}"; do
    for tls in 0 1; do
      start_server "$s" $tls ec
      bench "w1-$s-$([ $tls = 1 ] && echo wss || echo ws)" $((d_w1 + 150)) --conns "$w1_conns" --rate 200 --duration $d_w1
      stop_server
    done
  done
  start_server ringcast 1 ec
  bench w1-ringcast-wss-aesgcm $((d_w1 + 150)) --conns "$w1_conns" --rate 200 --duration $d_w1 \
    --tls-ciphers TLS13-AES128-GCM-SHA256
  stop_server
fi
if wanted storm; then
  # One message a second: the storm's server CPU is the handshakes', not the fan-out's.
  # The drop comes a third into --duration; 10,000 P-256 handshakes took the bench
  # about 35 s, so 60 s leaves time to see every one receive again.
  for cert in ec rsa; do
    for resume in 1 0; do
      start_server ringcast 1 $cert
      flag=(); [ $resume = 0 ] && flag=(--no-resume)
      bench "storm-$cert-$([ $resume = 1 ] && echo resume || echo full)" $((3 * d_storm + 120)) --scenario storm \
        --conns 10000 --rate 1 --duration $d_storm --drain 5 "${flag[@]}"
      stop_server
    done
  done
fi
if wanted idle; then
  servers=(ringcast)
  [ $peers = 1 ] && servers+=(node nchan)
  for s in "${servers[@]}"; do
    for tls in 0 1; do
      start_server "$s" $tls ec
      bench "idle-$s-$([ $tls = 1 ] && echo wss || echo ws)" $((d_idle + 200)) --scenario idle --conns 15000 \
        --duration $d_idle
      stop_server
    done
  done
fi

/usr/bin/python3 - "$out" <<'EOF' | tee "$out/table.md"
import json, os, sys
out = sys.argv[1]
def load(n):
    try:
        with open(os.path.join(out, n + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
rows = sorted(f[:-5] for f in os.listdir(out) if f.endswith(".json"))
w1 = [r for r in rows if r.startswith("w1-")]
if w1:
    print("| W1 200 msg/s | delivered/s | missing | p50 ms | p99 ms | server CPU s/M | CPU 0 busy s/M | wss/ws (process, CPU 0) | bench saturated |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in w1:
        j = load(r)
        if not j or not j.get("steps"):
            print(f"| {r} | (no result) |||||||"); continue
        s = j["steps"][0]
        base = None
        if "-wss" in r:
            b = load(r.split("-wss")[0] + "-ws")
            base = b["steps"][0] if b and b.get("steps") else None
        ratio = (f"{s['cpu_s_per_million'] / base['cpu_s_per_million']:.2f}x, "
                 f"{s['cpu_busy_s_per_million'] / base['cpu_busy_s_per_million']:.2f}x") if base else ""
        print(f"| {r[3:]} | {s['deliveries_per_s']:,.0f} | {j['missing']} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
              f"{s['cpu_s_per_million']:.3f} | {s['cpu_busy_s_per_million']:.3f} | {ratio} | {j['saturated']} |")
    print()
storm = [r for r in rows if r.startswith("storm-")]
if storm:
    print("| storm, 10,000 wss | all back s | all receiving s | full | resumed | handshakes/s | server CPU s | handshakes per server CPU s | failed | missing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in storm:
        j = load(r)
        if not j:
            print(f"| {r} | (no result) |||||||||"); continue
        print(f"| {r[6:]} | {j['storm_reconnect_s']:.2f} | {j['storm_recover_s']:.2f} | {j['storm_tls_full']} | "
              f"{j['storm_tls_resumed']} | {j['storm_handshakes_per_s']:.0f} | {j['storm_server_cpu_s']:.2f} | "
              f"{j['storm_handshakes_per_cpu_s']:.0f} | {j['failed']} | {j['missing']} |")
    print()
idle = [r for r in rows if r.startswith("idle-")]
if idle:
    print("| idle, 15,000 | connected | server RSS KiB | bytes per connection |")
    print("|---|---|---|---|")
    for r in idle:
        j = load(r)
        if not j:
            print(f"| {r} | (no result) |||"); continue
        print(f"| {r[5:]} | {j['connected']} | {j['server_rss_kb']} | {j['rss_per_conn_bytes']:,.0f} |")
EOF
echo "bench/tls.sh: results in $out (table.md)" >&2
