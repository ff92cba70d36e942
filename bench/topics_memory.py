#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Memory per idle topic at a million live topics (issue 8: options markets have
over a million instruments). Opens CONNS WebSocket connections, then each
subscribes to PER distinct topics in one command (names like opt.000123.C, as an
options chain would have), and reads the server's RSS and ringcast_topics before
and after; then closes them and reads the RSS once the topics are reclaimed.

  /usr/bin/python3 bench/topics_memory.py [--binary build/ringcast] [--conns 1000] [--per 1000]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
import rcserver  # noqa: E402
from floods import rss_mb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=rcserver.BINARY)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--per", type=int, default=1000)
    a = ap.parse_args()
    rcserver.BINARY = a.binary
    srv = rcserver.Server()
    try:
        pid = srv.proc.pid
        conns = [rcserver.RawWs(srv.port, "/ws") for _ in range(a.conns)]
        time.sleep(1)
        base = rss_mb(pid)
        t0 = time.time()
        for c, ws in enumerate(conns):
            names = [f"opt.{c * a.per + i:07d}.C" for i in range(a.per)]
            ws.send_text(json.dumps({"op": "subscribe", "topics": names}))
        for ws in conns:
            op, payload = ws.recv_frame()
            assert json.loads(payload)["type"] == "ack", payload[:200]
        took = time.time() - t0
        time.sleep(1)
        full = rss_mb(pid)
        topics = srv.metrics()["ringcast_topics"]
        per_topic = (full - base) * 1024 * 1024 / topics
        for ws in conns:
            ws.close()
        deadline = time.time() + 30
        while srv.metrics()["ringcast_topics"] > 0 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        after = rss_mb(pid)
        print(json.dumps({"topics": topics, "connections": a.conns, "subscribe_s": round(took, 2),
                          "rss_before_mb": round(base, 1), "rss_with_topics_mb": round(full, 1),
                          "bytes_per_idle_topic": round(per_topic), "rss_after_close_mb": round(after, 1),
                          "topics_left": srv.metrics()["ringcast_topics"]}))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
