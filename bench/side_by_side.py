#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Side-by-side runs of ringcast builds and peers under ringcast-bench, alternating.

  bench/side_by_side.py --out DIR [--runs 2] [--workloads w1,n500,n1000] NAME=KIND:BINARY...

KIND is ringcast (subscribes with ?topics=T&format=raw, started with --threads 1
--cpus 0) or uws (build/peers/uws_broadcast). Every server runs under taskset -c 0,
ringcast-bench under taskset -c 1 with --server-pid and --server-cpu 0. Each round
runs every server once (the order reversed every other round), each workload on a
freshly started server. Before a run the script waits until CPUs 0 and 1 have been
idle for 5 s; a run in which other tasks (not the server, the bench or ksoftirqd)
took more than 0.6 CPU s is repeated, up to six times. Writes DIR/*.json (the
bench's), DIR/*.txt and DIR/all.json, and prints a Markdown table.

Workloads (128-byte payloads, one topic, 20 s):
  w1     10,000 subscribers, 20 msg/s    w1_10  10,000 subscribers, 10 msg/s
  n500   1,000 subscribers, 500 msg/s    n1000  1,000 subscribers, 1,000 msg/s
"""
import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "build", "ringcast-bench")
WORKLOADS = {
    "w1": dict(conns=10000, rate=20), "w1_10": dict(conns=10000, rate=10),
    "n500": dict(conns=1000, rate=500), "n1000": dict(conns=1000, rate=1000),
}
HZ = os.sysconf("SC_CLK_TCK")


def cpu_busy():
    """Non-idle seconds of CPUs 0 and 1."""
    busy = 0.0
    for line in open("/proc/stat"):
        if line.startswith(("cpu0 ", "cpu1 ")):
            v = list(map(int, line.split()[1:]))
            busy += (sum(v) - v[3] - v[4]) / HZ
    return busy


def proc_cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / HZ
    except OSError:
        return 0.0


def ksoftirqd_cpu():
    t = 0.0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if open(f"/proc/{p}/comm").read().strip() in ("ksoftirqd/0", "ksoftirqd/1"):
                    t += proc_cpu(int(p))
            except OSError:
                pass
    return t


def wait_quiet():
    while True:
        b0 = cpu_busy()
        time.sleep(5)
        if cpu_busy() - b0 < 0.25:
            return
        print("# CPUs 0/1 busy with something else; waiting", file=sys.stderr, flush=True)
        time.sleep(10)


def start(kind, binary):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if kind == "ringcast":
        cmd = [binary, "--listen", f"127.0.0.1:{port}", "--threads", "1", "--cpus", "0", "--log-level", "warn"]
        # Every bench client shares one address: the per-address limits are off
        # (in builds that have them).
        if b"--connect-rate-per-ip" in subprocess.run([binary, "--help"], capture_output=True).stdout:
            cmd += ["--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0", "--connect-rate-per-ip", "0",
                    "--max-commands-per-sec", "0"]
        url = f"ws://127.0.0.1:{port}/ws?topics={{topic}}&format=raw"
    elif kind == "uws":
        cmd = [binary, str(port)]
        url = f"ws://127.0.0.1:{port}/ws?topics={{topic}}"
    else:
        sys.exit(f"side_by_side.py: unknown kind {kind}")
    p = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return p, url, f"http://127.0.0.1:{port}/publish"
        except Exception:
            time.sleep(0.05)
    p.kill()
    sys.exit(f"side_by_side.py: {binary} did not start")


def run_one(name, kind, binary, wl, out, tag):
    wait_quiet()
    srv, url, pub = start(kind, binary)
    js = os.path.join(out, f"{wl}-{name}-{tag}.json")
    w = WORKLOADS[wl]
    load = open("/proc/loadavg").read().split()[0]
    busy0, srv0, ks0 = cpu_busy(), proc_cpu(srv.pid), ksoftirqd_cpu()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    bench = subprocess.run(["taskset", "-c", "1", BENCH, "--url", url, "--publish", pub, "--conns", str(w["conns"]),
                            "--rate", str(w["rate"]), "--duration", "20", "--server-pid", str(srv.pid),
                            "--server-cpu", "0", "--json", js], capture_output=True, text=True, timeout=600)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, srv_cpu, ks = cpu_busy() - busy0, proc_cpu(srv.pid) - srv0, ksoftirqd_cpu() - ks0
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        srv.wait()
    with open(os.path.join(out, f"{wl}-{name}-{tag}.txt"), "w") as f:
        f.write(bench.stdout)
    r = json.load(open(js))
    s = r["steps"][0]
    bench_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return dict(name=name, workload=wl, run=tag, deliveries_per_s=s["deliveries_per_s"],
                missing=r["missing"] + r["gaps"], server_cpu_s_per_million=s["cpu_s_per_million"],
                server_cpu_pct=100 * s["server_cpu_frac"], cpu0_s_per_million=s["cpu_busy_s_per_million"],
                cpu0_pct=100 * s["cpu_busy_frac"], p50_ms=s["p50_ms"], p99_ms=s["p99_ms"],
                ksoftirqd_s=round(ks, 2), foreign_cpu_s=round(busy - srv_cpu - bench_cpu - ks, 2), load1=load)


def table(rows):
    print("| workload | server | run | deliveries/s | missing | server CPU s/M | server % | CPU 0 s/M | CPU 0 % "
          "| ksoftirqd s | p50 ms | p99 ms | other CPU s | load |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["workload"], r["run"], r["name"])):
        print(f"| {r['workload']} | {r['name']} | {r['run']} | {r['deliveries_per_s']:,.0f} | {r['missing']} | "
              f"{r['server_cpu_s_per_million']:.3f} | {r['server_cpu_pct']:.1f} | {r['cpu0_s_per_million']:.3f} | "
              f"{r['cpu0_pct']:.1f} | {r['ksoftirqd_s']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['foreign_cpu_s']:.2f} | {r['load1']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--workloads", default="w1,n500,n1000")
    ap.add_argument("servers", nargs="+", metavar="NAME=KIND:BINARY")
    a = ap.parse_args()
    servers = []
    for s in a.servers:
        name, rest = s.split("=", 1)
        kind, binary = rest.split(":", 1)
        servers.append((name, kind, os.path.abspath(binary)))
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for run in range(a.runs):
        for name, kind, binary in (servers if run % 2 == 0 else servers[::-1]):
            for wl in a.workloads.split(","):
                for _ in range(6):
                    r = run_one(name, kind, binary, wl, a.out, f"r{run + 1}")
                    if r["foreign_cpu_s"] < 0.6:
                        break
                    print(f"# disturbed, repeating: {json.dumps(r)}", file=sys.stderr, flush=True)
                rows.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    with open(os.path.join(a.out, "all.json"), "w") as f:
        json.dump(rows, f, indent=1)
    table(rows)


if __name__ == "__main__":
    main()
