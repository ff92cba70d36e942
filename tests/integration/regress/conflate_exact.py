#!/usr/bin/python3
"""Conflation accounting: a policy=conflate subscriber with exact topics and a
wildcard reads in bursts (stops, resumes) while a publisher floods. For every
topic each seq must be either delivered once or inside exactly one gap notice,
in order (gap.from == last+1), and it must end with each topic's last message.

Exit 1 on any violation."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rcserver import RawWs, Server  # noqa: E402

NEX = 20
NPAT = 20


def main():
    with Server("--connect-rate-per-ip", "0", "--topic-heartbeat", "1", threads=int(os.environ.get("THREADS", "2"))) as srv:
        exact = [f"e{i}" for i in range(NEX)]
        pat = [f"w.{i}" for i in range(NPAT)]
        # create the pattern topics first, so their seq starts at 1 for us too
        ws = RawWs(srv.port, "/ws?topics=" + ",".join(exact) + ",w.*&policy=conflate", rcvbuf=4096, timeout=10)
        acks = 0
        while acks < NEX + 1:
            op, p = ws.recv_frame()
            m = json.loads(p)
            assert m["type"] == "ack", m
            acks += 1
        last = {t: 0 for t in exact + pat}
        bad = []
        stop = threading.Event()
        published = {t: 0 for t in exact + pat}

        def pub():
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            r = 0
            while not stop.is_set():
                body = b"".join(b"%s 300\n%s\n" % (t.encode(), b"y" * 300) for t in exact + pat)
                c.request("POST", "/publish", body=body)
                resp = c.getresponse()
                resp.read()
                if resp.status == 200:
                    for t in published:
                        published[t] += 1
                r += 1
                time.sleep(0.001)
            c.close()

        pt = threading.Thread(target=pub)
        pt.start()
        gaps = 0

        def handle(m):
            nonlocal gaps
            t = m.get("topic")
            if m["type"] == "msg":
                if m["seq"] != last[t] + 1:
                    bad.append(("msg", t, last[t], m["seq"]))
                last[t] = m["seq"]
            elif m["type"] == "gap":
                gaps += 1
                if m["from"] != last[t] + 1 or m["to"] < m["from"]:
                    bad.append(("gap", t, last[t], m["from"], m["to"]))
                last[t] = m["to"]
            elif m["type"] == "hb":
                if m["seq"] < last[t]:
                    bad.append(("hb", t, last[t], m["seq"]))

        end = time.time() + float(os.environ.get("DUR", "8"))
        phase = 0
        while time.time() < end:
            phase += 1
            if phase % 2:
                time.sleep(0.7)  # stop reading
            else:
                ws.sock.settimeout(0.05)
                t_end = time.time() + 0.5
                try:
                    while time.time() < t_end:
                        op, p = ws.recv_frame()
                        if op is None:
                            bad.append("closed")
                            break
                        if op == 1:
                            handle(json.loads(p))
                except (socket.timeout, BlockingIOError):
                    pass
            if bad:
                break
        stop.set()
        pt.join()
        ws.sock.settimeout(3)
        try:
            while any(last[t] < published[t] for t in last):
                op, p = ws.recv_frame()
                if op is None:
                    bad.append("closed")
                    break
                if op == 1:
                    handle(json.loads(p))
        except socket.timeout:
            bad.append(("stuck", {t: (last[t], published[t]) for t in last if last[t] < published[t]}))
        ws.close()
        print("gaps", gaps, "published/topic", published["e0"])
        if bad:
            print("BUG:", bad[:8])
            return 1
        print("ok")
        return 0


sys.exit(main())
