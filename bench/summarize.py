#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turns a bench/run.sh results folder into summary.md and PNG plots (gnuplot)."""
import glob
import json
import os
import subprocess
import sys

out, commit = sys.argv[1], sys.argv[2]
res = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    with open(path) as f:
        res[os.path.basename(path)[:-5]] = json.load(f)


def servers(prefix):
    return [(k[len(prefix) + 1:], v) for k, v in res.items() if k.startswith(prefix + "-")]


def fmt(x, d=0):
    return f"{x:,.{d}f}"


lines = [f"# ringcast benchmark results ({os.path.basename(out)})", "",
         f"Commit `{commit}`. Server pinned to CPU 0, ringcast-bench to CPU 1, on this 2-core machine; "
         "read the figures as ratios between servers measured in the same run.", ""]

for rate in (20, 200):
    rows = servers(f"W1-{rate}")
    if not rows:
        continue
    lines += [f"## W1 fan-out: 10,000 subscribers, one topic, 128-byte messages, {rate} msg/s "
              f"({fmt(rate * 10000)} deliveries/s asked)", "",
              "| server | msg/s published | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | missing | server CPU s per million | CPU 0 busy s per million | bench saturated |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in rows:
        s = r["steps"][0] if r["steps"] else {}
        lat = r["latency_ms"]
        lines.append(f"| {name} | {r['published'] / r['duration']:.0f} | {fmt(s.get('deliveries_per_s', 0))} | "
                     f"{lat['p50']:.1f} | {lat['p90']:.1f} | "
                     f"{lat['p99']:.1f} | {lat['p999']:.1f} | {r['missing'] + r['gaps']} | "
                     f"{s.get('cpu_s_per_million', 0):.3f} | {s.get('cpu_busy_s_per_million', 0):.3f} | "
                     f"{'yes' if r['saturated'] else 'no'} |")
    lines.append("")

rows = servers("W2")
if rows:
    lines += ["## W2 saturation: 1,000 subscribers, rates doubled until p99 passes 50 ms", "",
              "| server | highest deliveries/s with p99 <= 50 ms and no loss | steps (msg/s: deliveries/s, p99 ms) |",
              "|---|---:|---|"]
    for name, r in rows:
        steps = ", ".join(f"{s['rate']:.0f}: {fmt(s['deliveries_per_s'])}, {s['p99_ms']:.1f}" for s in r["steps"])
        lines.append(f"| {name} | {fmt(r['highest_sustainable_per_s'])} | {steps} |")
    lines.append("")

rows = servers("W3")
if rows:
    lines += ["## W3 idle: 15,000 subscribers", "", "| server | connected | resident memory per connection |",
              "|---|---:|---:|"]
    for name, r in rows:
        lines.append(f"| {name} | {fmt(r['connected'])} | {fmt(r['rss_per_conn_bytes'])} B |")
    lines.append("")

rows = servers("W4")
if rows:
    lines += ["## W4 connections: as many subscribers as the server can hold (ringcast: 60,000 on 4 shards; "
              "the peers: 19,000, as their fds are bounded by RLIMIT_NOFILE 20,000), 100 topics, one message a second each", "",
              "| server | connected | failed | published | delivered | missing |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        lines.append(f"| {name} | {fmt(r['connected'])} | {r['failed']} | {fmt(r['published'])} | "
                     f"{fmt(r['delivered'])} | {r['missing'] + r['gaps']} |")
    lines.append("")

rows = servers("W5")
if rows:
    lines += ["## W5 overload ramp: 10,000 subscribers, 200 to 1,600 msg/s", "",
              "| server | msg/s asked | published | deliveries/s asked | deliveries/s | p99 ms | missing | CPU s per million | delivered completely |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in rows:
        for s in r["steps"]:
            asked = s["rate"] * r["conns"]
            # Complete: nothing lost, the publisher kept its rate, and deliveries kept pace.
            complete = s["ok"] and s["deliveries_per_s"] >= 0.9 * asked
            # Missing with no gap and no connection closed is backlog the drain did
            # not outlast (the bench says so), not loss: a gap or a close would show.
            if complete:
                verdict = "yes"
            elif s["missing"] == 0:
                verdict = "no (falls behind)"
            elif r["gaps"] == 0 and r["closed_by_server"] == 0:
                verdict = "no (falls behind; still queued after the drain)"
            else:
                verdict = "no (loss)"
            lines.append(f"| {name} | {s['rate']:.0f} | {fmt(s['published'])} | {fmt(asked)} | "
                         f"{fmt(s['deliveries_per_s'])} | {s['p99_ms']:.1f} | {s['missing']} | "
                         f"{s['cpu_s_per_million']:.3f} | {verdict} |")
    lines.append("")

with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(lines))

# Plots: deliveries per second over time, and latency percentiles, for W1.
plots = []
for rate in (20, 200):
    rows = servers(f"W1-{rate}")
    if not rows:
        continue
    series_files = []
    for name, r in rows:
        p = os.path.join(out, f"series-W1-{rate}-{name}.dat")
        with open(p, "w") as f:
            for t, v in r["series"]:
                f.write(f"{t} {v}\n")
        series_files.append((name, p))
    png = os.path.join(out, f"W1-{rate}-deliveries.png")
    cmd = [f'set terminal pngcairo size 900,450', f'set output "{png}"',
           f'set title "W1 at {rate} msg/s: deliveries per second"', 'set xlabel "seconds"',
           'set ylabel "deliveries/s"', 'set grid', 'set key bottom right']
    cmd.append("plot " + ", ".join(f'"{p}" using 1:2 with lines lw 2 title "{n}"' for n, p in series_files))
    plots.append("\n".join(cmd))
    lat = os.path.join(out, f"latency-W1-{rate}.dat")
    with open(lat, "w") as f:
        for name, r in rows:
            l = r["latency_ms"]
            f.write(f"{name} {l['p50']} {l['p90']} {l['p99']} {l['p999']}\n")
    png = os.path.join(out, f"W1-{rate}-latency.png")
    plots.append("\n".join([
        'set terminal pngcairo size 900,450', f'set output "{png}"',
        f'set title "W1 at {rate} msg/s: end-to-end latency percentiles (ms, log scale)"',
        'set style data histogram', 'set style histogram clustered gap 1', 'set style fill solid 0.8',
        'set logscale y', 'set ylabel "ms"', 'set grid ytics', 'set key top left',
        f'plot "{lat}" using 2:xtic(1) title "p50", "" using 3 title "p90", "" using 4 title "p99", "" using 5 title "p99.9"']))
for script in plots:
    subprocess.run(["gnuplot"], input=script, text=True, check=False)
print(open(os.path.join(out, "summary.md")).read())
