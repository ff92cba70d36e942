# SPDX-License-Identifier: MIT
"""Slow-consumer policies against the real binary. A subscriber that asked for
policy=conflate and stops reading is not closed: when it reads again it gets
what was already queued, then for each topic a gap notice naming exactly the
messages it skipped, then the newest; a healthy subscriber beside it gets every
message. Under --slow-policy disconnect a lone slow subscriber is closed with
1008 as before."""
import asyncio
import json
import sys
import threading
import time
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rcserver import RawWs, Server  # noqa: E402

import websockets  # noqa: E402

TOPICS = ["cf.a", "cf.b", "cf.c"]
PAYLOAD = "x" * 4000


def batch(topics, n, i0):
    """A POST /publish body of n messages per topic (bench/README: TOPIC LEN\nDATA\n)."""
    out = []
    for k in range(n):
        for t in topics:
            data = json.dumps({"i": i0 + k, "pad": PAYLOAD}).encode()
            out.append(b"%s %d\n%s\n" % (t.encode(), len(data), data))
    return b"".join(out)


def publisher(srv, stop, counts):
    # About 600 messages (2.4 MB) a second: past the slow reader's socket
    # buffers within seconds, easy for the healthy reader.
    i = 0
    while not stop.is_set():
        status, _, data = srv.http("POST", "/publish", body=batch(TOPICS, 10, i))
        assert status == 200, data
        for t in TOPICS:
            counts[t] += 10
        i += 10
        time.sleep(0.05)


class Conflation(unittest.TestCase):
    def test_a_reader_that_pauses_gets_gap_notices_then_the_newest_and_others_everything(self):
        with Server(threads=2) as srv:
            slow = RawWs(srv.port, "/ws?topics=" + ",".join(TOPICS) + "&policy=conflate", rcvbuf=8192)
            counts = {t: 0 for t in TOPICS}
            healthy_seen = {t: 0 for t in TOPICS}

            async def healthy(stop_reading):
                async with websockets.connect(srv.url("?topics=" + ",".join(TOPICS)), max_queue=None) as ws:
                    acked = 0
                    while acked < len(TOPICS):
                        acked += json.loads(await ws.recv())["type"] == "ack"
                    ready.set()
                    while not (stop_reading.is_set() and all(healthy_seen[t] == counts[t] for t in TOPICS)):
                        try:
                            m = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        except asyncio.TimeoutError:
                            continue
                        self.assertEqual(m["type"], "msg", m)
                        self.assertEqual(m["seq"], healthy_seen[m["topic"]] + 1, "the healthy one misses nothing")
                        healthy_seen[m["topic"]] = m["seq"]

            ready = threading.Event()
            done = threading.Event()
            th = threading.Thread(target=lambda: asyncio.run(healthy(done)))
            th.start()
            self.assertTrue(ready.wait(15))
            # The slow one's acks are read; then it stops reading for 10 s.
            acks = 0
            while acks < len(TOPICS):
                op, payload = slow.recv_frame()
                acks += json.loads(payload)["type"] == "ack"
            stop = threading.Event()
            pub = threading.Thread(target=publisher, args=(srv, stop, counts))
            pub.start()
            time.sleep(10)
            stop.set()
            pub.join()
            done.set()
            th.join(60)
            self.assertFalse(th.is_alive())
            self.assertEqual(healthy_seen, counts)
            m = srv.metrics()
            self.assertGreater(m["ringcast_conflated_messages_total"], 0, "the slow one did conflate")
            self.assertEqual(m["ringcast_slow_consumer_disconnects_total"], 0)
            # Reading again: every topic's seqs, with the gaps announced, cover
            # 1..last exactly once, and each topic ends at its newest message.
            covered = {t: 0 for t in TOPICS}
            gaps = 0
            slow.sock.settimeout(10)
            while any(covered[t] < counts[t] for t in TOPICS):
                op, payload = slow.recv_frame()
                self.assertEqual(op, 0x1, "not closed")
                msg = json.loads(payload)
                t = msg["topic"]
                if msg["type"] == "gap":
                    self.assertTrue(msg["conflated"])
                    self.assertEqual(msg["from"], covered[t] + 1, msg)
                    self.assertGreaterEqual(msg["to"], msg["from"])
                    covered[t] = msg["to"]
                    gaps += 1
                    continue
                self.assertEqual(msg["type"], "msg", msg)
                self.assertEqual(msg["seq"], covered[t] + 1, f"{t}: after its gap, the next message")
                covered[t] = msg["seq"]
            self.assertGreater(gaps, 0)
            self.assertEqual(covered, counts, "ends holding the last message of every topic")
            slow.close()

    def test_a_lone_slow_subscriber_is_still_closed_under_disconnect(self):
        with Server("--max-queue", "256k", threads=1) as srv:
            slow = RawWs(srv.port, "/ws?topics=cf.lone", rcvbuf=4096)
            op, payload = slow.recv_frame()
            self.assertEqual(json.loads(payload)["type"], "ack")

            async def healthy():
                async with websockets.connect(srv.url("?topics=cf.lone"), max_queue=None) as ws:
                    await ws.recv()
                    loop = asyncio.get_running_loop()
                    for start in range(0, 3000, 20):
                        # A burst, read by the healthy one before the next: it
                        # never lags, while the one that stopped reading does.
                        status, _, _ = await loop.run_in_executor(
                            None, lambda: srv.http("POST", "/publish", body=batch(["cf.lone"], 20, start)))
                        self.assertEqual(status, 200)
                        for i in range(start, start + 20):
                            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                            self.assertEqual(m["seq"], i + 1)
            asyncio.run(healthy())
            self.assertEqual(slow.recv_close(), 1008)
            m = srv.metrics()
            self.assertEqual(m["ringcast_slow_consumer_disconnects_total"], 1)
            self.assertEqual(m["ringcast_overload_shed_total"], 0, "one slow reader is not an overloaded shard")
            slow.close()

    def test_a_shard_that_is_behind_sheds_instead_of_closing_everyone(self):
        # Every subscriber stops reading at once: the shard, not they, is behind.
        # Under --slow-policy disconnect none is closed; each conflates, and the
        # shedding is counted.
        with Server("--max-queue", "256k", threads=1) as srv:
            subs = [RawWs(srv.port, "/ws?topics=cf.all", rcvbuf=4096) for _ in range(6)]
            for w in subs:
                self.assertEqual(json.loads(w.recv_frame()[1])["type"], "ack")
            published = 0
            for start in range(0, 3000, 50):
                status, _, _ = srv.http("POST", "/publish", body=batch(["cf.all"], 50, start))
                self.assertEqual(status, 200)
                published += 50
            m = srv.metrics()
            self.assertEqual(m["ringcast_slow_consumer_disconnects_total"], 0)
            self.assertGreater(m["ringcast_overload_shed_total"], 0)
            for w in subs:
                covered = 0
                w.sock.settimeout(10)
                while covered < published:
                    op, payload = w.recv_frame()
                    self.assertEqual(op, 0x1, "not closed")
                    msg = json.loads(payload)
                    if msg["type"] == "gap":
                        self.assertEqual(msg["from"], covered + 1)
                        covered = msg["to"]
                    else:
                        self.assertEqual(msg["seq"], covered + 1)
                        covered = msg["seq"]
                w.close()

    def test_raw_cannot_conflate(self):
        with Server(threads=1) as srv:
            status, _, body = srv.http("GET", "/ws?topics=a&format=raw&policy=conflate", headers={
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
            self.assertEqual(status, 400)
            self.assertIn("policy=conflate needs the JSON envelope", body.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
