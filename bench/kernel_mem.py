#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Kernel memory per idle connection: what ringcast's RSS (W3) does not show.

Starts ringcast (one shard, pinned to CPU 0), holds --conns idle subscribers with
ringcast-bench --scenario idle (CPU 1), and compares the kernel's slab memory
(/proc/slabinfo: every cache's active objects times object size; /proc/meminfo
Slab as a cross-check) before and while they are connected. Both ends of every
connection live in this kernel (loopback), so the per-socket figure is the
delta over twice the connection count: an idle server socket and an idle client
socket hold the same objects (struct tcp_sock, socket inode, file, dentry).
Idle sockets hold no buffer memory (nothing queued); net.ipv4.tcp_mem and
sockstat's "mem" count that separately, under load. The whole machine's slab is
measured: other work on it is noise, so run it on a quiet machine and repeat.

  /usr/bin/python3 bench/kernel_mem.py [--conns 10000] [--json FILE]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def slab_bytes():
    total, per = 0, {}
    with open("/proc/slabinfo") as f:
        for line in f:
            if line.startswith(("slabinfo", "#")):
                continue
            parts = line.split()
            n = int(parts[1]) * int(parts[3])
            per[parts[0]] = n
            total += n
    return total, per


def meminfo_slab():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Slab in /proc/meminfo")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--hold", type=float, default=8.0, help="seconds the connections are held")
    ap.add_argument("--server", default=os.path.join(ROOT, "build/ringcast"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build/ringcast-bench"))
    ap.add_argument("--json", help="write the result here")
    a = ap.parse_args()
    port = free_port()
    srv = subprocess.Popen(["taskset", "-c", "0", a.server, "--listen", f"127.0.0.1:{port}", "--threads", "1",
                            "--log-level", "warn", "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0",
                            "--connect-rate-per-ip", "0"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        base_total, base_per = slab_bytes()
        base_meminfo = meminfo_slab()
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.wait(0.5):
                samples.append((slab_bytes(), meminfo_slab()))

        t = threading.Thread(target=sample)
        t.start()
        r = subprocess.run(["taskset", "-c", "1", a.bench, "--url", f"ws://127.0.0.1:{port}/ws?topics={{topic}}",
                            "--scenario", "idle", "--conns", str(a.conns), "--duration", str(a.hold),
                            "--server-pid", str(srv.pid)], capture_output=True, text=True, timeout=a.hold + 120)
        stop.set()
        t.join()
        if r.returncode != 0:
            sys.exit("ringcast-bench failed:\n" + r.stdout + r.stderr)
        # The plateau: the largest sample, once every connection is up.
        (peak_total, peak_per), peak_meminfo = max(samples, key=lambda s: s[0][0])
        caches = {k: peak_per.get(k, 0) - base_per.get(k, 0) for k in peak_per}
        top = dict(sorted(((k, v) for k, v in caches.items() if v > 0), key=lambda kv: -kv[1])[:8])
        sockets = 2 * a.conns
        out = {
            "conns": a.conns,
            "sockets": sockets,
            "slab_delta_bytes": peak_total - base_total,
            "meminfo_slab_delta_bytes": peak_meminfo - base_meminfo,
            "kernel_bytes_per_socket": round((peak_total - base_total) / sockets),
            "meminfo_bytes_per_socket": round((peak_meminfo - base_meminfo) / sockets),
            "top_caches_delta_bytes": top,
            "kernel": os.uname().release,
        }
        print(json.dumps(out, indent=2))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=2)
                f.write("\n")
    finally:
        srv.terminate()
        srv.wait(timeout=20)


if __name__ == "__main__":
    main()
