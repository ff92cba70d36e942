# SPDX-License-Identifier: MIT
"""Scale-out through a Redis Cluster (docs/deploy/redis.md, Redis Cluster):
a real 3-master cluster (rccluster.RedisCluster) and two ringcast nodes whose
--redis names one master. Checked here:

- publishes on 50 topics from both nodes reach the other node's subscribers
  in order, with consecutive seqs;
- the scripts run on all three masters, and channels are sharded
  (SSUBSCRIBE; PUBSUB SHARDNUMSUB on the owning master);
- a resume with since= on a node that never followed the topic comes from
  Redis' stream;
- a master killed (-9) and restarted under publishing: no crash, subscribers
  stay, its topics' publishes get 503 while it is away, and every stream is
  in order afterwards with gaps only where announced;
- a wildcard subscribe gets the error that says why it cannot work."""
import asyncio
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from rccluster import Node, RedisCluster, Stream, wait_until  # noqa: E402

import websockets  # noqa: E402

TOPICS = [f"cl.t{i}" for i in range(50)]


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


class Sub:
    """A subscriber of topics on one node; frames go to one Stream per topic."""

    def __init__(self, url, topics, since=None):
        self.url, self.topics, self.since = url, list(topics), since or {}
        self.streams = {t: Stream(t) for t in self.topics}
        for t, (epoch, seq) in self.since.items():
            self.streams[t].resume_from(epoch, seq)
        self.replies = []

    async def open(self):
        query = "&since=" + ",".join(self.streams[t].since() for t in self.since) if self.since else ""
        self.ws = await websockets.connect(self.url + "?topics=" + ",".join(self.topics) + query,
                                           ping_interval=None, open_timeout=10, close_timeout=2,
                                           max_size=None)
        while any(not s.acks for s in self.streams.values()):
            self.feed(await recv_json(self.ws))
        return self

    def feed(self, m):
        if m.get("topic") in self.streams and m.get("type") in ("ack", "msg", "gap") and m.get("op") != "publish":
            self.streams[m["topic"]].feed(m)
        else:
            self.replies.append(m)

    async def drain_until(self, pred, what, timeout=20):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not within {timeout} s")
            self.feed(await recv_json(self.ws, left))

    def errors(self):
        return {t: s.errors for t, s in self.streams.items() if s.errors}


class ScaleoutCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rc = RedisCluster(3)
        args = ["--history", "100"]
        cls.nodes = []
        try:
            cls.nodes = [Node(n, cls.rc.url(0), args, threads=2) for n in ("a", "b")]
            for n in cls.nodes:
                wait_until(lambda n=n: n.metric("ringcast_redis_up") == 1 and
                           n.metric("ringcast_redis_cluster_masters") == 3, f"{n.name} linked to 3 masters", 15)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        failed = False
        for n in cls.nodes:
            failed |= not n.alive
            if n.alive:
                n.stop()
        if failed:
            for n in cls.nodes:
                sys.stderr.write(f"--- {n.name}\n{n.log_text()[-4000:]}\n")
        cls.rc.close()

    def publish_ok(self, node, topic, n):
        status, body = node.publish(topic, json.dumps({"n": n}))
        self.assertEqual(status, 200, body)

    def test_a_order_spread_and_resume(self):
        a, b = self.nodes

        async def run():
            on_a = await Sub(a.url(), TOPICS[:25]).open()
            on_b = await Sub(b.url(), TOPICS[25:]).open()
            for n in range(1, 5):
                for i, t in enumerate(TOPICS):
                    self.publish_ok(b if i < 25 else a, t, n)  # the other node's subscribers
            for s in (on_a, on_b):
                await s.drain_until(lambda s=s: all(len(st.got) == 4 for st in s.streams.values()),
                                    "4 messages on every topic")
                self.assertEqual(s.errors(), {})
                for st in s.streams.values():
                    seqs = [q for _, q, _ in st.got]
                    self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 4)), st.topic)
                    self.assertEqual(st.payloads(), [1, 2, 3, 4], st.topic)
            # (b) the scripts ran on every master; channels are sharded.
            for i in range(3):
                self.assertGreater(self.rc.calls(i, "evalsha"), 0, f"master {i}")
            self.assertGreater(sum(self.rc.calls(i, "ssubscribe") for i in range(3)), 0)
            t = TOPICS[30]
            owner = self.rc.owner(f"rc:{{{t}}}")
            reply = self.rc.call(owner, "PUBSUB", "SHARDNUMSUB", f"rc:{{{t}}}")
            self.assertGreaterEqual(reply[1], 1, reply)
            # (c) a node that never followed TOPICS[30] resumes it from the stream.
            st = on_b.streams[t]
            first = st.got[0][1]
            res = await Sub(a.url(), [t], since={t: (st.epoch, first + 1)}).open()
            await res.drain_until(lambda: len(res.streams[t].got) == 2, "resume from the stream")
            self.assertIs(res.streams[t].acks[-1].get("recovered"), True, res.streams[t].acks)
            self.assertEqual(res.streams[t].payloads(), [3, 4])
            for s in (on_a, on_b, res):
                await s.ws.close()

        asyncio.run(run())

    def test_b_master_killed_and_back(self):
        a, b = self.nodes
        topics = [f"cl.k{i}" for i in range(12)]
        victim = 1 if self.rc.owner("seed") != 1 else 2
        owned = [t for t in topics if self.rc.owner(f"rc:{{{t}}}") == victim]
        self.assertTrue(owned, "some topic on the master to kill")

        async def run():
            subs = [await Sub(n.url(), topics).open() for n in (a, b)]
            sent = {t: 0 for t in topics}
            refused = 0

            def publish_round():
                nonlocal refused
                for i, t in enumerate(topics):
                    node = (a, b)[(sent[t] + i) % 2]
                    status, body = node.publish(t, json.dumps({"n": sent[t] + 1}))
                    if status == 200:
                        sent[t] += 1
                    else:
                        self.assertEqual(status, 503, body)
                        refused += t in owned

            async def pump(seconds):
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    publish_round()
                    for s in subs:  # keep reading so nobody falls behind
                        try:
                            while True:
                                s.feed(await recv_json(s.ws, 0.01))
                        except asyncio.TimeoutError:
                            pass
                    await asyncio.sleep(0.02)

            await pump(1.0)
            self.rc.kill(victim)
            await pump(2.0)
            self.assertGreater(refused, 0, "publishes to the dead master's topics got 503")
            self.rc.restart(victim)
            for n in (a, b):
                deadline = time.monotonic() + 20
                while n.metric("ringcast_redis_up") != 1:
                    self.assertLess(time.monotonic(), deadline, f"{n.name} back on the cluster")
                    await pump(0.2)
            await pump(1.0)
            for s in subs:
                await s.drain_until(lambda s=s: all(st.payloads()[-1:] == [sent[st.topic]]
                                                    for st in s.streams.values()),
                                    "every acknowledged publish delivered after the restart")
                self.assertEqual(s.errors(), {})
                for st in s.streams.values():
                    # No silent loss: every payload acknowledged once Redis kept
                    # it arrives unless a gap message accounted for it.
                    self.assertEqual(st.payloads(), sorted(set(st.payloads())), st.topic)
                self.assertIsNone(s.ws.close_code, "subscribers stay connected")
            self.assertTrue(a.alive and b.alive)
            self.assertGreater(a.metric("ringcast_redis_disconnects_total"), 0)
            for s in subs:
                await s.ws.close()

        asyncio.run(run())

    def test_c_wildcards_refused(self):
        async def run():
            ws = await websockets.connect(self.nodes[0].url("?topics=cl.x"), ping_interval=None, open_timeout=10)
            await recv_json(ws)
            await ws.send(json.dumps({"op": "subscribe", "topics": ["quotes.*"], "id": 7}))
            m = await recv_json(ws)
            while m.get("type") != "error":
                m = await recv_json(ws)
            self.assertIn("wildcards need classic pub/sub", m.get("error", "") + m.get("message", ""), m)
            self.assertIn("sharded pub/sub, which has no patterns", json.dumps(m))
            await ws.close()
        asyncio.run(run())
        status, _, body = self.nodes[1].srv.http(
            "GET", "/ws?topics=quotes.*", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                   "Sec-WebSocket-Version": "13"})
        self.assertEqual(status, 400)
        self.assertIn(b"sharded pub/sub, which has no patterns", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
