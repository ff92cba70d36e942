#!/usr/bin/python3
"""Join races on many shards (run against the ASan build: RINGCAST_BIN=build-asan/ringcast):
pipelined subscribe/unsubscribe frames sent with the upgrade request (before the
101), connections closed mid-join, subscribe+unsubscribe+subscribe bursts, since=
with bad epochs / huge seqs / ':' topics, snapshot, patterns, while a publisher
runs. Then a well-behaved subscriber must still get every message in order, and
the server must exit 0 (no sanitizer report) with memory back near its start.

Exit 1 on a crash, sanitizer report, a hang, or a wrong delivery."""
import base64
import json
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rcserver import RawWs, Server, subscriber  # noqa: E402

random.seed(int(os.environ.get("SEED", "1")))


def frame(text):
    p = text.encode()
    key = os.urandom(4)
    n = len(p)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(p))


def upgrade(path):
    key = base64.b64encode(os.urandom(16))
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")


def racer(port, stop, errs):
    while not stop.is_set():
        topics = [f"r{random.randrange(40)}" for _ in range(random.randrange(1, 30))]
        q = "/ws?topics=" + ",".join(sorted(set(topics)))
        kind = random.randrange(6)
        if kind == 0:
            q += "&since=" + ",".join(f"{t}:{random.getrandbits(64):016x}:{random.randrange(10**18)}" for t in set(topics))
        elif kind == 1:
            q += "&snapshot=1&policy=conflate"
        elif kind == 2:
            q = "/ws?topics=x:y:z,r1&since=x:y:z:0000000000000000:5,r1:0000000000000000:0"
        cmds = []
        for _ in range(random.randrange(0, 20)):
            t = [f"r{random.randrange(40)}" for _ in range(random.randrange(1, 10))]
            op = random.choice(["subscribe", "unsubscribe", "subscribe"])
            c = {"op": op, "topics": t}
            if op == "subscribe" and random.random() < 0.3:
                c["since"] = {x: {"epoch": f"{random.getrandbits(64):016x}", "seq": random.randrange(100)} for x in t}
            if random.random() < 0.2:
                c["topics"] = [random.choice(["z.*", "z.>", "r.*", "*.q"])]
            cmds.append(frame(json.dumps(c)))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(upgrade(q) + b"".join(cmds))
            how = random.randrange(3)
            if how == 0:
                pass  # close at once, mid-join
            elif how == 1:
                s.recv(100)
            else:
                end = time.time() + random.random() * 0.3
                while time.time() < end:
                    if not s.recv(65536):
                        break
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)) if random.random() < 0.5 else None
            s.close()
        except OSError as e:
            if not stop.is_set():
                errs.append(repr(e))


def main():
    threads = int(os.environ.get("THREADS", "4"))
    dur = float(os.environ.get("DUR", "15"))
    with Server("--connect-rate-per-ip", "0", "--max-handshakes-per-ip", "0", "--history", "50",
                "--topic-heartbeat", "1", "--max-commands-per-sec", "0", threads=threads) as srv:
        base = srv.metrics().get("ringcast_memory_charged_bytes", 0)
        good = subscriber(srv.port, ["r7", "r8"])
        stop = threading.Event()
        errs = []
        ts = [threading.Thread(target=racer, args=(srv.port, stop, errs)) for _ in range(6)]
        for t in ts:
            t.start()
        pub_n = 0
        seen = {"r7": 0, "r8": 0}
        bad = []
        good.sock.settimeout(0.001)
        end = time.time() + dur
        while time.time() < end:
            body = b"".join(b"r%d 2\n%02d\n" % (i, pub_n % 100) for i in range(40))
            st, _, data = srv.http("POST", "/publish", body=body)
            if st != 200:
                bad.append(("publish", st, data[:100]))
            pub_n += 1
            try:
                while True:
                    op, p = good.recv_frame()
                    if op is None:
                        bad.append("good subscriber closed")
                        break
                    m = json.loads(p)
                    if m["type"] == "msg":
                        if m["seq"] != seen[m["topic"]] + 1:
                            bad.append(("seq", m["topic"], seen[m["topic"]], m["seq"]))
                        seen[m["topic"]] = m["seq"]
            except (socket.timeout, BlockingIOError):
                pass
            except OSError as e:
                bad.append(repr(e))
                break
            time.sleep(0.002)
        stop.set()
        for t in ts:
            t.join(20)
            if t.is_alive():
                bad.append("racer hung")
        good.sock.settimeout(5)
        while min(seen.values()) < pub_n:
            op, p = good.recv_frame()
            if op is None:
                bad.append("closed")
                break
            m = json.loads(p)
            if m["type"] == "msg":
                if m["seq"] != seen[m["topic"]] + 1:
                    bad.append(("seq", m["topic"], seen[m["topic"]], m["seq"]))
                seen[m["topic"]] = m["seq"]
        good.close()
        time.sleep(4)
        m = srv.metrics()
        conns = {k: v for k, v in m.items() if "connections" in k and "total" not in k}
        after = m.get("ringcast_memory_charged_bytes", 0)
        print("published rounds", pub_n, "seen", seen, "charged", base, "->", after, conns)
        rc = srv.stop()
        if rc != 0:
            bad.append(f"server exit {rc}")
            print(srv.log_text()[-4000:])
        if after - base > (4 << 20):
            bad.append(f"memory charged grew {base}->{after}")
        if bad:
            print("BUG:", bad[:10])
            return 1
        print("ok; client errors:", errs[:3])
        return 0


sys.exit(main())
