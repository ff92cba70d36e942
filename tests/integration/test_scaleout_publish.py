# SPDX-License-Identifier: MIT
"""HTTP publishes through Redis (--redis): POST /publish/<topic> is answered once
Redis answered, with the message's seq; the batch form once Redis answered every
message; requests pipelined behind a publish wait for it and are answered in
order; with Redis away both get 503 naming Redis and nothing is published; a
Redis that keeps its connections but answers nothing (stopped) is taken for gone
after 5 s, so a waiting publisher gets its answer."""
import asyncio
import json
import os
import socket
import sys
import unittest

import websockets

sys.path.insert(0, os.path.dirname(__file__))
from rccluster import Cluster  # noqa: E402


def raw_requests(port, data, n, timeout=10):
    """Sends data (several pipelined requests) and reads n responses: [(status, body)]."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf, out = b"", []
        while len(out) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
                if len(rest) < length:
                    break
                out.append((int(head.split(b" ")[1]), rest[:length].decode()))
                buf = rest[length:]
        return out


def post(topic, body, close=False):
    b = body.encode()
    return (f"POST /publish/{topic} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(b)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + b


def batch(records):
    body = b"".join(f"{t} {len(p)}\n".encode() + p.encode() + b"\n" for t, p in records)
    return f"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class PublishThroughRedis(unittest.TestCase):
    def test_answers_wait_for_redis(self):
        with Cluster(2) as c:
            a, b = c.nodes

            async def run():
                ws = await websockets.connect(f"ws://127.0.0.1:{b.port}/ws?topics=p.one,p.two")
                acks = [json.loads(await ws.recv()) for _ in range(2)]
                self.assertEqual({x["topic"] for x in acks}, {"p.one", "p.two"})
                # Three single publishes and a batch, pipelined on one connection,
                # then a health check: answered in order, each with Redis' seq.
                data = (post("p.one", "s1") + post("p.one", "s2") + post("p.two", "s3")
                        + batch([("p.one", "b1"), ("p.two", "b2"), ("p.one", "b3")])
                        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                got = raw_requests(a.port, data, 5)
                self.assertEqual([st for st, _ in got], [200] * 5, got)
                self.assertEqual([json.loads(bd).get("seq") for _, bd in got[:3]], [1, 2, 1])
                self.assertEqual(json.loads(got[3][1]), {"ok": True, "published": 3})
                self.assertTrue(got[4][1].startswith("ok"), got[4])
                msgs = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(6)]
                by_topic = {}
                for m in msgs:
                    by_topic.setdefault(m["topic"], []).append((m["seq"], m["data"]))
                self.assertEqual(by_topic, {"p.one": [(1, "s1"), (2, "s2"), (3, "b1"), (4, "b3")],
                                            "p.two": [(1, "s3"), (2, "b2")]})
                await ws.close()

            asyncio.run(run())
            c.redis.stop()
            c.wait_redis_up(False)
            for data in (post("p.one", "down"), batch([("p.one", "down")])):
                (status, body), = raw_requests(a.port, data, 1)
                self.assertEqual(status, 503, body)
                self.assertIn("redis", body.lower())

    def test_a_silent_redis_is_taken_for_gone(self):
        with Cluster(1) as c:
            a = c.nodes[0]
            self.assertEqual(a.publish("p.s", "before")[0], 200)
            c.redis.pause()
            try:
                # Waits for Redis, then for the link's 5 s reply deadline.
                (status, body), = raw_requests(a.port, post("p.s", "while stopped"), 1, timeout=20)
                self.assertEqual(status, 503, body)
                self.assertIn("may or may not", body)
                self.assertEqual(a.metric("ringcast_redis_up"), 0)
            finally:
                c.redis.resume()
            c.wait_redis_up(True)
            self.assertEqual(a.publish("p.s", "after")[0], 200)

    def test_foreign_messages_and_a_lost_meta(self):
        """Someone else publishing on a topic's channel costs one sync, not a
        loop; a topic whose meta Redis lost (evicted, deleted) starts a new epoch
        without its old stream, announced, and publishing goes on."""
        with Cluster(1, args=["--history", "100"]) as c:
            a = c.nodes[0]

            async def run():
                ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/ws?topics=p.f")
                ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
                self.assertEqual(a.publish("p.f", "one")[0], 200)
                self.assertEqual(json.loads(await asyncio.wait_for(ws.recv(), 5))["data"], "one")
                syncs = a.metric("ringcast_redis_syncs_total")
                c.redis.call("PUBLISH", "rc:{p.f}", "0123456789abcdef:2:bogus")
                c.redis.call("PUBLISH", "rc:{p.f}", f"{ack['epoch']}:999:bogus")
                await asyncio.sleep(1.5)
                self.assertLessEqual(a.metric("ringcast_redis_syncs_total") - syncs, 2, "one sync each at most")
                self.assertGreaterEqual(a.metric("ringcast_redis_foreign_total"), 2)
                self.assertEqual(a.publish("p.f", "two")[0], 200)
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                self.assertEqual((m["seq"], m["data"]), (2, "two"), "the bogus ones were not delivered")

                c.redis.call("DEL", "rc:{p.f}:meta")
                status, body = a.publish("p.f", "three")
                self.assertEqual(status, 200, body)
                gap = json.loads(await asyncio.wait_for(ws.recv(), 5))
                self.assertEqual((gap["type"], gap["reason"], gap["from"], gap["to"]), ("gap", "epoch", 1, 0),
                                 "a new run, nothing of it missed")
                self.assertNotEqual(gap["epoch"], ack["epoch"])
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                self.assertEqual((m["seq"], m["data"]), (1, "three"))
                await ws.close()
                # A resume from the new epoch's start sees only the new run.
                ws = await websockets.connect(f"ws://127.0.0.1:{a.port}/ws?topics=p.f&since=p.f:{gap['epoch']}:0")
                ack2 = json.loads(await asyncio.wait_for(ws.recv(), 5))
                self.assertTrue(ack2.get("recovered"), ack2)
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                self.assertEqual((m["seq"], m["data"]), (1, "three"))
                await ws.close()

            asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
