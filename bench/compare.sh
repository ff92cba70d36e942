#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two ringcast builds side by side on the same workload, alternating, so machine
# noise falls on both: each server pinned to CPU 0 (--threads 1), ringcast-bench
# pinned to CPU 1.
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [--rounds N] [--name NAME] -- BENCH_ARGS...
#
# BENCH_ARGS are ringcast-bench's (--conns, --rate, --scenario ...); the URL,
# publish target, --server-pid and --json are filled in. Prints one line per run
# and a summary of medians; writes bench/results/NAME/compare-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
shift 2
rounds=2 name="compare-$(date +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *) echo "bench/compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "${1:-}" = "--" ] && shift
out=bench/results/$name
mkdir -p "$out"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
run() { # label binary round bench-args...
  local label=$1 bin=$2 round=$3
  shift 3
  "$bin" --listen 127.0.0.1:$port --threads 1 --cpus 0 --log-level warn >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
  local json=$out/compare-$label-$round.json
  taskset -c 1 build/ringcast-bench --url "ws://127.0.0.1:$port/ws?topics={topic}" \
    --publish "http://127.0.0.1:$port/publish" --server-pid "$pid" --json "$json" "$@" \
    >"$out/compare-$label-$round.txt" 2>&1 || true
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  /usr/bin/python3 - "$json" "$label" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s = d["steps"][-1] if d.get("steps") else {}
lat = d["latency_ms"]
print(f'{sys.argv[2]:4} deliveries/s {s.get("deliveries_per_s", 0):>10,}  CPU s/M {s.get("cpu_s_per_million", 0):7.3f}  '
      f'p50 {lat["p50"]:8.1f} ms  p99 {lat["p99"]:8.1f} ms  missing {d["missing"]}  RSS/conn {d["rss_per_conn_bytes"]} B')
PY
}
shift_args=("$@")
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for which in $order; do
    bin=$old; [ "$which" = new ] && bin=$new
    set -- "${shift_args[@]}"
    run "$which" "$bin" "$r" "$@"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import glob, json, statistics, sys
for which in ("old", "new"):
    rows = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/compare-{which}-*.json"))]
    if not rows: continue
    st = [r["steps"][-1] for r in rows if r.get("steps")]
    med = lambda xs: statistics.median(xs) if xs else 0
    print(f"median {which}: CPU s/M {med([s['cpu_s_per_million'] for s in st]):.3f}, "
          f"deliveries/s {med([s['deliveries_per_s'] for s in st]):,.0f}, "
          f"p50 {med([r['latency_ms']['p50'] for r in rows]):.1f} ms, p99 {med([r['latency_ms']['p99'] for r in rows]):.1f} ms, "
          f"RSS/conn {med([r['rss_per_conn_bytes'] for r in rows]):.0f} B")
PY
