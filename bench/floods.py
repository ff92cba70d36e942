#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The attacks of issue 8, longer than the test suite runs them, against one
server in its default configuration, each followed by the recovery: RSS before,
at its peak and 30 s after (the bound: within 1.5x of before), and what a
bystander saw (GET /healthz latency on a fresh connection every 100 ms).

  /usr/bin/python3 bench/floods.py [--binary build/ringcast] [--seconds 20] [--only publish,partial,ping]
                                   [--server-args '--max-commands-per-sec 0']

Prints one JSON line per flood; docs/benchmarks.md keeps the figures.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
import rcserver  # noqa: E402
from floods import (PeakRss, Prober, cpu_s, hold_partial_messages, http_publish_flood, masked, pump,  # noqa: E402
                    rss_mb, ws_publish_flood)


def publish(srv, seconds):
    """One WebSocket publisher and two keep-alive HTTP publishers, as fast as they can."""
    out = {}
    ths = [threading.Thread(target=lambda i=i: out.__setitem__(i, http_publish_flood(srv.port, seconds, f"f.h{i}")))
           for i in range(2)]
    for t in ths:
        t.start()
    ws = ws_publish_flood(srv.port, seconds, [f"f.w{i}" for i in range(4)], payload=b'"' + b"x" * 2000 + b'"')
    for t in ths:
        t.join()
    return {"ws_acked": ws["acks"], "ws_refused": ws["errors"],
            "http_ok": sum(r["ok"] for r in out.values()), "http_refused": sum(r["refused"] for r in out.values())}


def partial(srv, seconds):
    """100 connections, each holding an unfinished 1 MB fragmented message."""
    conns = hold_partial_messages(srv.port, 100, 1_000_000)
    time.sleep(seconds)
    for ws in conns:
        ws.close()
    return {"connections": 100}


def ping(srv, seconds):
    """Pings as fast as one connection can send them, never reading."""
    ws = rcserver.RawWs(srv.port, "/ws")
    sent, counts, _, cut = pump(ws.sock, masked(0x9, b"p") * 50_000, seconds, (b"\x8a\x01p",))
    ws.close()
    return {"pings_sent": sent // 7, "pongs": counts[b"\x8a\x01p"], "cut_by_server": cut}


FLOODS = {"publish": publish, "partial": partial, "ping": ping}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=rcserver.BINARY)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--only", default=",".join(FLOODS))
    ap.add_argument("--server-args", default="", help="extra ringcast flags, e.g. '--max-commands-per-sec 0'")
    a = ap.parse_args()
    rcserver.BINARY = a.binary
    for name in a.only.split(","):
        srv = rcserver.Server(*a.server_args.split())
        try:
            pid = srv.proc.pid
            warm = rcserver.RawWs(srv.port, "/ws?topics=warm")
            for i in range(20):
                srv.publish("warm", b"w")
            warm.close()
            time.sleep(1.5)
            before = rss_mb(pid)
            peak = PeakRss(pid)
            probe = Prober(srv.port)
            probe.start()
            c0 = cpu_s(pid)
            result = FLOODS[name](srv, a.seconds)
            cpu = cpu_s(pid) - c0
            p = probe.finish()
            top = peak.finish()
            t0 = time.time()
            back_in = None
            while time.time() - t0 < 30:
                if back_in is None and rss_mb(pid) <= 1.5 * before:
                    back_in = time.time() - t0
                time.sleep(0.5)
            print(json.dumps({"flood": name, "server_args": a.server_args, "seconds": a.seconds, **result, "server_cpu_s": round(cpu, 1),
                              "rss_before_mb": round(before, 1), "rss_peak_mb": round(top, 1),
                              "rss_after_30s_mb": round(rss_mb(pid), 1),
                              "within_1_5x_after_s": None if back_in is None else round(back_in, 1),
                              "healthz_probes": p["probes"], "healthz_failures": len(p["failures"]),
                              "healthz_max_ms": round(p["max_s"] * 1000) if p["max_s"] else None}), flush=True)
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
