# SPDX-License-Identifier: MIT
"""Scale-out through Redis (issue 12), against real processes: redis-server,
ringcast nodes linked to it (--redis, --node-id) and nginx in front of them
(rccluster.py). Checked here:

- publishes on any node reach subscribers on every node (and through nginx) in
  one order, with Redis' seqs and epoch, publishers interleaving;
- a node subscribes to a topic's channel once, and only while it has local
  subscribers (PUBSUB NUMSUB, the channel gauge, channel messages received);
  each node's subscriber count lives in {T}:nodes and a dead node's expires;
- a client resumes on a node that never had the topic, or that followed it
  only from a later seq, from Redis' stream; from before what the stream kept,
  it gets the explicit history gap;
- the URL's password (percent-escaped) and database; a wrong password;
- Redis stopped: publishes refused (503 / an error reply naming Redis),
  subscribers stay; a fresh Redis: reconnect, a new epoch announced;
- a node whose channel subscription Redis dropped refills what it missed from
  the stream, with no gap, or as an explicit gap what the stream lost;
- an acknowledged publish is never lost when Redis dies with it in flight;
- Redis back from an older snapshot: a new epoch, never a seq given twice;
- Redis killed and restarted under load, with and without its data: every
  stream in order, each missing seq explained by a gap, the counters showing it;
- a node killed under 1,000 subscribers: its clients resume through nginx on
  the others and nobody misses or repeats a message; the node comes back.

What the tests expect of names, metrics and refusals is rccluster.Expect."""
import asyncio
import hashlib
import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from rccluster import Cluster, Expect, Node, Publisher, Resp, Stream, script, wait_until  # noqa: E402

import websockets  # noqa: E402
import websockets.exceptions  # noqa: E402

HISTORY = ["--history", "1000"]
WS_CLOSED = (websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidHandshake, OSError,
             asyncio.TimeoutError)


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


class Sub:
    """A websockets subscriber (URL subscription) whose frames go to one Stream
    per topic; other replies (publish acks, errors, pongs) to replies."""

    def __init__(self, url, topics, since=None):
        """since: {topic: (epoch, seq)} to resume from (sent as since=)."""
        self.url, self.topics = url, list(topics)
        self.streams = {t: Stream(t) for t in self.topics}
        self.since = since or {}
        for t, (epoch, seq) in self.since.items():
            self.streams[t].resume_from(epoch, seq)
        self.replies = []
        self.ws = None

    async def open(self):
        query = "&since=" + ",".join(self.streams[t].since() for t in self.since) if self.since else ""
        self.ws = await websockets.connect(self.url + "?topics=" + ",".join(self.topics) + query,
                                           ping_interval=None, open_timeout=10, close_timeout=2)
        while any(not s.acks for s in self.streams.values()):
            self.feed(await recv_json(self.ws))
        return self

    def feed(self, m):
        if m.get("topic") in self.streams and m.get("type") in ("ack", "msg", "gap") and m.get("op") != "publish":
            self.streams[m["topic"]].feed(m)
        else:
            self.replies.append(m)

    def ack(self, topic):
        return self.streams[topic].acks[-1]

    async def read_until(self, pred, what, timeout=15):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not within {timeout} s; streams at "
                                     f"{ {t: s.position() for t, s in self.streams.items()} }")
            self.feed(await recv_json(self.ws, left))

    async def read_seq(self, topic, seq, timeout=15):
        st = self.streams[topic]
        await self.read_until(lambda: st.last is not None and st.last >= seq, f"{topic} up to seq {seq}", timeout)

    async def reply(self, pred, timeout=10):
        """The first reply (not a message of a stream) that pred accepts."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.replies:
                if pred(m):
                    self.replies.remove(m)
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such reply within {timeout} s; replies {self.replies[-5:]}")
            self.feed(await recv_json(self.ws, left))

    async def close(self):
        if self.ws is not None:
            await self.ws.close()

    def errors(self):
        return {t: s.errors for t, s in self.streams.items() if s.errors}


async def follow(url, topics, streams, stats, backoff=(0.05, 0.5)):
    """Keeps a connection subscribed to topics until cancelled, feeding streams
    ({topic: Stream}); after losing it, reconnects with since= for every topic
    acknowledged so far (stats counts reconnects and failed attempts)."""
    while True:
        since = [streams[t].since() for t in topics if streams[t].epoch is not None]
        query = "?topics=" + ",".join(topics) + ("&since=" + ",".join(since) if since else "")
        try:
            async with websockets.connect(url + query, ping_interval=None, open_timeout=15,
                                          close_timeout=1) as ws:
                if since:
                    stats["resumed"] += 1
                async for raw in ws:
                    m = json.loads(raw)
                    st = streams.get(m.get("topic"))
                    if st is None:
                        stats["other"].append(m)
                    else:
                        st.feed(m)
            stats["closed"] += 1
        except WS_CLOSED:
            stats["failed"] += 1
        await asyncio.sleep(random.uniform(*backoff))


def new_stats():
    return {"resumed": 0, "closed": 0, "failed": 0, "other": []}


def reached(stream, target):
    """Whether a stream stands at (epoch, seq) target or past it in that epoch."""
    epoch, seq = stream.position()
    return epoch == target[0] and seq is not None and seq >= target[1]


async def wait_streams(streams, final, what, timeout=30):
    """Waits until every stream has reached its topic's (epoch, seq) in final
    (or passed it, while publishing goes on)."""
    deadline = time.monotonic() + timeout
    while True:
        behind = [(s.topic, s.position(), final[s.topic]) for s in streams if not reached(s, final[s.topic])]
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {len(behind)} of {len(streams)} streams short of the end after "
                                 f"{timeout} s, e.g. (topic, at, end) {behind[:5]}")
        await asyncio.sleep(0.05)


def counts_by_node(redis, topic):
    """{node id: subscriber count} from {T}:nodes, live entries only (values are
    "count:expiry in ms")."""
    now_s, now_us = redis.call("TIME")
    now = int(now_s) * 1000 + int(now_us) // 1000
    flat = redis.call("HGETALL", Expect.nodes(topic))
    out = {}
    for i in range(0, len(flat), 2):
        count, expires = flat[i + 1].decode().split(":")
        if int(expires) > now:
            out[flat[i].decode()] = int(count)
    return out


class ScaleOut(unittest.TestCase):
    def test_publishes_reach_every_node_in_one_order(self):
        with Cluster(3, args=HISTORY, nginx=True) as c:
            a, b, cc = c.nodes
            one, mix = "so.one", "so.mix"

            async def run():
                subs = [await Sub(nd.url(), [one, mix]).open() for nd in c.nodes]
                via = await Sub(c.nginx.url(), [one, mix]).open()
                everyone = subs + [via]
                # Every node acknowledges with Redis' position: one epoch, seq 0.
                for t in (one, mix):
                    epoch, seq = c.redis.meta(t)
                    self.assertEqual(seq, 0)
                    self.assertIsNotNone(epoch, "a subscribe fixes the topic's epoch in Redis")
                    self.assertEqual({(s.ack(t)["epoch"], s.ack(t)["seq"]) for s in everyone}, {(epoch, 0)})

                # Published on A: B, C (and A, and nginx's pick) get them all, in order.
                for i in range(30):
                    status, body = a.publish(one, json.dumps({"n": i}))
                    self.assertEqual(status, 200, body)
                for s in everyone:
                    await s.read_seq(one, 30)
                    self.assertEqual([(seq, d) for _, seq, d in s.streams[one].got],
                                     [(i + 1, {"n": i}) for i in range(30)])

                # A (HTTP) and C (publish commands) publish to one topic at once:
                # one order everywhere, consecutive seqs, each publisher's own
                # messages in the order it sent them.
                n = 60

                def publish_on_a():
                    for i in range(n):
                        status, body = a.publish(mix, json.dumps({"src": "A", "i": i}))
                        assert status == 200, (status, body)

                pub = threading.Thread(target=publish_on_a)
                pub.start()
                try:
                    on_c = subs[2]
                    for i in range(n):
                        await on_c.ws.send(json.dumps({"op": "publish", "topic": mix, "id": f"c{i}",
                                                       "data": {"src": "C", "i": i}}))
                    c_acks = {}
                    for i in range(n):
                        r = await on_c.reply(lambda m: m.get("op") == "publish")
                        self.assertEqual((r["type"], r["topic"]), ("ack", mix), r)
                        c_acks[r["id"]] = r["seq"]
                finally:
                    await asyncio.get_running_loop().run_in_executor(None, pub.join)
                for s in everyone:
                    await s.read_seq(mix, 2 * n)
                orders = [[(seq, d) for _, seq, d in s.streams[mix].got] for s in everyone]
                self.assertEqual([seq for seq, _ in orders[0]], list(range(1, 2 * n + 1)))
                for other in orders[1:]:
                    self.assertEqual(other, orders[0], "every node delivers one order")
                for src in ("A", "C"):
                    self.assertEqual([d["i"] for _, d in orders[0] if d["src"] == src], list(range(n)))
                # C's acks carry the seq every subscriber saw.
                self.assertEqual({f"c{d['i']}": seq for seq, d in orders[0] if d["src"] == "C"}, c_acks)
                for s in everyone:
                    self.assertEqual(s.errors(), {})
                    await s.close()

            asyncio.run(run())
            self.assertEqual(c.redis.meta(mix)[1], 120)
            self.assertEqual(c.redis.call("XLEN", Expect.log(mix)), 120)
            # Every publish went through the script, once.
            self.assertGreaterEqual(c.redis.calls("evalsha"), 30 + 120)
            self.assertEqual([nd.metric(Expect.PUBLISHES.format("ok")) for nd in c.nodes], [30 + 60, 0, 60])
            for nd in c.nodes:
                self.assertEqual(nd.metric(Expect.UP), 1)
                self.assertEqual(nd.metric(Expect.PUBLISHES.format("error")), 0)
                self.assertEqual(nd.metric(Expect.PUBLISHES.format("refused")), 0)

    def test_a_node_listens_to_a_channel_only_while_it_has_subscribers(self):
        with Cluster(3, args=HISTORY) as c:
            a, b, cc = c.nodes
            t = "so.interest"
            chan = Expect.channel(t)

            def interest(want, what):
                wait_until(lambda: c.redis.numsub(chan) == want, f"PUBSUB NUMSUB {chan} == {want} ({what})",
                           Expect.INTEREST_WAIT)

            c_messages = cc.metric(Expect.MESSAGES)
            self.assertEqual(c.redis.numsub(chan), 0)

            async def run():
                # Six on A (spread over its shards: SO_REUSEPORT hashes each
                # connection to one), one on B.
                on_a = [await Sub(a.url(), [t]).open() for _ in range(6)]
                on_b = await Sub(b.url(), [t]).open()
                shards_a = [v for k, v in a.metrics().items()
                            if k.startswith("ringcast_shard_connections_open{")]
                # Two nodes with subscribers: two channel subscriptions, one per
                # node however many subscribers (and shards with some) it has.
                interest(2, f"A with six subscribers (connections per shard {shards_a}), B with one")
                self.assertEqual([nd.metric(Expect.CHANNELS) for nd in c.nodes], [1, 1, 0])
                before = {nd.name: nd.metric(Expect.MESSAGES) for nd in (a, b)}
                for i in range(20):
                    self.assertEqual(a.publish(t, json.dumps({"n": i}))[0], 200)
                # A publish on the node without subscribers does not make it listen.
                for i in range(20, 30):
                    self.assertEqual(cc.publish(t, json.dumps({"n": i}))[0], 200)
                for s in on_a + [on_b]:
                    await s.read_seq(t, 30)
                    self.assertEqual(s.streams[t].payloads(), list(range(30)))
                    self.assertEqual(s.errors(), {})
                self.assertEqual(c.redis.numsub(chan), 2)
                self.assertEqual(cc.metric(Expect.MESSAGES), c_messages, "C received a channel it has no use for")
                self.assertEqual(cc.metric(Expect.CHANNELS), 0)
                for nd in (a, b):
                    self.assertEqual(nd.metric(Expect.MESSAGES) - before[nd.name], 30,
                                     f"{nd.name}: each channel message once per node")

                # The last subscriber on B leaves: B unsubscribes the channel.
                await on_b.close()
                interest(1, "B's last subscriber left")
                wait_until(lambda: b.metric(Expect.CHANNELS) == 0, "B's channels gauge back to 0",
                           Expect.INTEREST_WAIT)
                # Five of A's six leave: A keeps listening for the last.
                for s in on_a[:5]:
                    await s.close()
                wait_until(lambda: a.metric('ringcast_connections_active{kind="websocket"}') == 1,
                           "A closed five subscribers", 10)
                self.assertEqual(c.redis.numsub(chan), 1)
                self.assertEqual(a.publish(t, json.dumps({"n": 30}))[0], 200)
                await on_a[5].read_seq(t, 31)
                await on_a[5].close()
                interest(0, "no subscriber left anywhere")
                self.assertEqual([nd.metric(Expect.CHANNELS) for nd in c.nodes], [0, 0, 0])

            asyncio.run(run())

    def test_each_node_counts_its_subscribers_in_redis(self):
        with Cluster(3, args=HISTORY) as c:
            a, b, cc = c.nodes
            t = "so.count"

            def counts(want, what):
                wait_until(lambda: counts_by_node(c.redis, t) == want, f"{Expect.nodes(t)} == {want} ({what})",
                           Expect.COUNT_WAIT)

            async def run():
                on_a = [await Sub(a.url(), [t]).open() for _ in range(2)]
                on_b = await Sub(b.url(), [t]).open()
                counts({a.name: 2, b.name: 1}, "two on A, one on B")
                await on_b.close()
                counts({a.name: 2}, "B's only one left")
                await on_a[0].close()
                counts({a.name: 1}, "one of A's left")
                await on_a[1].close()
                counts({}, "nobody left")
                # A node that dies stops renewing: its count expires by itself.
                on_c = await Sub(cc.url(), [t]).open()
                counts({cc.name: 1}, "one on C")
                cc.kill()
                counts({}, "C killed")
                await on_c.close()

            asyncio.run(run())

    def test_resume_on_another_node_from_redis_stream(self):
        with Cluster(3, args=HISTORY) as c:
            a, b, cc = c.nodes
            t = "so.resume"

            async def run():
                first = await Sub(a.url(), [t]).open()
                epoch = first.ack(t)["epoch"]
                for i in range(10):
                    self.assertEqual(b.publish(t, json.dumps({"n": i}))[0], 200)
                await first.read_seq(t, 10)
                await first.close()
                # Away: more is published on B, and goes on being published while
                # the client comes back on C (which never had the topic), so the
                # seam between what C fetches from Redis and live is crossed.
                for i in range(10, 30):
                    self.assertEqual(b.publish(t, json.dumps({"n": i}))[0], 200)

                def keep_publishing():
                    for i in range(30, 80):
                        assert b.publish(t, json.dumps({"n": i}))[0] == 200

                pub = threading.Thread(target=keep_publishing)
                pub.start()
                try:
                    back = await Sub(cc.url(), [t], since={t: (epoch, 10)}).open()
                    ack = back.ack(t)
                    self.assertEqual((ack["recovered"], ack["epoch"]), (True, epoch), ack)
                    self.assertGreaterEqual(ack["seq"], 30)
                finally:
                    await asyncio.get_running_loop().run_in_executor(None, pub.join)
                await back.read_seq(t, 80)
                self.assertEqual(b.publish(t, json.dumps({"n": 80}))[0], 200)
                await back.read_seq(t, 81)
                st = back.streams[t]
                self.assertEqual(st.errors, [])
                self.assertEqual(st.gaps, [])
                self.assertEqual([(seq, d["n"]) for _, seq, d in st.got], [(i + 1, i) for i in range(10, 81)],
                                 "every missed message exactly once, then live")
                await back.close()

            asyncio.run(run())

    def test_redis_down_refuses_publishes_and_keeps_subscribers(self):
        with Cluster(2, args=HISTORY) as c:
            a, b = c.nodes
            t = "so.down"

            async def run():
                on_a = await Sub(a.url(), [t]).open()
                on_b = await Sub(b.url(), [t]).open()
                for i in range(3):
                    self.assertEqual(a.publish(t, json.dumps({"n": i}))[0], 200)
                for s in (on_a, on_b):
                    await s.read_seq(t, 3)
                old_epoch = on_b.streams[t].epoch
                connects = {nd.name: nd.metric(Expect.CONNECTS) for nd in c.nodes}

                def refusals():
                    return sum(a.metric(Expect.PUBLISHES.format(r)) for r in ("refused", "error"))

                c.redis.stop()
                c.wait_redis_up(False)
                before = refusals()
                status, body = a.publish(t, json.dumps({"n": "refused"}))
                self.assertEqual(status, Expect.DOWN_STATUS, body)
                self.assertIn(Expect.DOWN_WORD, body.lower())
                with self.subTest("metrics"):  # a miscount fails the test, and the rest still runs
                    self.assertEqual(refusals(), before + 1, "an HTTP publish refused for Redis counts in "
                                     + Expect.PUBLISHES.format("refused|error"))
                await on_a.ws.send(json.dumps({"op": "publish", "topic": t, "id": "down", "data": "refused"}))
                r = await on_a.reply(lambda m: m.get("id") == "down")
                self.assertEqual((r["type"], r["op"]), ("error", "publish"), r)
                self.assertIn(Expect.DOWN_WORD, r["error"].lower())
                with self.subTest("metrics"):
                    self.assertEqual(refusals() - before, 2, "a publish command refused for Redis counts in "
                                     + Expect.PUBLISHES.format("refused|error"))
                # Subscribers stay connected, and the connection works.
                for s in (on_a, on_b):
                    await s.ws.send(json.dumps({"op": "ping", "id": "still"}))
                    self.assertEqual(await s.reply(lambda m: m.get("id") == "still"),
                                     {"type": "pong", "op": "ping", "id": "still"})

                c.redis.start()  # a fresh Redis: every key is gone
                c.wait_redis_up(True)
                for nd in c.nodes:
                    self.assertGreater(nd.metric(Expect.CONNECTS), connects[nd.name], nd.name)
                for i in range(2):
                    status, body = a.publish(t, json.dumps({"n": f"after{i}"}))
                    self.assertEqual(status, 200, body)
                new_epoch, new_seq = c.redis.meta(t)
                for s in (on_a, on_b):
                    await s.read_until(lambda: s.streams[t].position() == (new_epoch, new_seq),
                                       f"{t} at Redis' new position")
                    st = s.streams[t]
                    self.assertEqual(st.errors, [], "every skip explained, nothing repeated")
                    self.assertEqual(st.payloads()[-2:], ["after0", "after1"])
                    self.assertNotIn("refused", st.payloads())
                    if new_epoch != old_epoch:
                        # Redis forgot the topic: a new run of seqs, announced.
                        self.assertTrue(st.gaps, "a new epoch with no notice")
                        self.assertEqual((st.gaps[-1]["epoch"], st.gaps[-1].get("reason")),
                                         (new_epoch, Expect.EPOCH_GAP_REASON), st.gaps)
                    await s.close()

            asyncio.run(run())
            for nd in c.nodes:
                self.assertGreaterEqual(nd.metric(Expect.DISCONNECTS), 1, nd.name)
                self.assertGreaterEqual(nd.metric(Expect.GAPS), 1, nd.name)

    def test_resume_from_before_the_node_followed_the_topic(self):
        # A follows the topic from seq 50 on; a resume there from 10 needs 11 to
        # 50 from Redis' stream, and 51 on from A's own.
        with Cluster(2, args=HISTORY) as c:
            a, b = c.nodes
            t = "so.older"

            async def run():
                for i in range(50):
                    self.assertEqual(b.publish(t, json.dumps({"n": i}))[0], 200)
                live = await Sub(a.url(), [t]).open()
                epoch = live.ack(t)["epoch"]
                self.assertEqual(live.ack(t)["seq"], 50)
                for i in range(50, 60):
                    self.assertEqual(b.publish(t, json.dumps({"n": i}))[0], 200)
                await live.read_seq(t, 60)
                back = await Sub(a.url(), [t], since={t: (epoch, 10)}).open()
                self.assertEqual((back.ack(t)["recovered"], back.ack(t)["seq"]), (True, 60), back.ack(t))
                self.assertEqual(a.publish(t, json.dumps({"n": 60}))[0], 200)
                await back.read_seq(t, 61)
                st = back.streams[t]
                self.assertEqual((st.errors, st.gaps), ([], []))
                self.assertEqual([(q, d["n"]) for _, q, d in st.got], [(i + 1, i) for i in range(10, 61)])
                for s in (live, back):
                    await s.close()

            asyncio.run(run())

    def test_resume_from_before_what_redis_kept_is_an_explicit_gap(self):
        # --history 5: the stream keeps about 5 (MAXLEN ~ trims whole nodes of
        # 100 entries), never 300; a resume from 1 is a gap, never a partial replay.
        with Cluster(2, args=["--history", "5"]) as c:
            a, b = c.nodes
            t = "so.trimmed"

            async def run():
                first = await Sub(a.url(), [t]).open()
                epoch = first.ack(t)["epoch"]
                await first.close()
                for i in range(300):
                    self.assertEqual(a.publish(t, json.dumps({"n": i}))[0], 200)
                self.assertLess(c.redis.call("XLEN", Expect.log(t)), 299)
                back = await Sub(b.url(), [t], since={t: (epoch, 1)}).open()
                self.assertEqual((back.ack(t)["recovered"], back.ack(t)["seq"]), (False, 300), back.ack(t))
                self.assertEqual(a.publish(t, json.dumps({"n": 300}))[0], 200)
                await back.read_seq(t, 301)
                st = back.streams[t]
                self.assertEqual(st.errors, [])
                self.assertEqual(st.gaps, [{"type": "gap", "topic": t, "from": 2, "to": 300, "recovered": False,
                                            "epoch": epoch, "reason": "history"}])
                self.assertEqual([q for _, q, _ in st.got], [301], "no partial replay: live next")
                await back.close()

            asyncio.run(run())

    def test_password_and_database_from_the_url(self):
        with Cluster(2, args=HISTORY, password="s3cret:@/x", db=3) as c:
            a, b = c.nodes
            t = "so.auth"
            self.assertEqual(c.url, f"redis://:s3cret%3A%40%2Fx@127.0.0.1:{c.redis.port}/3")

            async def run():
                s = await Sub(b.url(), [t]).open()
                self.assertEqual(a.publish(t, json.dumps({"n": 0}))[0], 200)
                await s.read_seq(t, 1)
                self.assertEqual(s.streams[t].payloads(), [0])
                await s.close()

            asyncio.run(run())
            with c.redis.connect() as r:
                r.call("SELECT", 3)
                self.assertEqual(r.call("HGET", Expect.meta(t), "seq"), b"1")
                r.call("SELECT", 0)
                self.assertEqual(r.call("EXISTS", Expect.meta(t)), 0, "the keys belong in database 3")
            # A wrong password: the node never counts Redis as up, and refuses
            # publishes as it does with Redis away (or refuses to start at all).
            bad_url = f"redis://:wrong@127.0.0.1:{c.redis.port}/3"
            try:
                bad = Node("bad", bad_url, HISTORY)
            except RuntimeError as e:
                self.assertIn(Expect.DOWN_WORD, str(e).lower())
                return
            try:
                status, body = bad.publish(t, "x")
                self.assertEqual((status, Expect.DOWN_WORD in body.lower()), (Expect.DOWN_STATUS, True), body)
                self.assertEqual(bad.metric(Expect.UP), 0)
                with self.subTest("metrics"):
                    self.assertEqual(bad.metric(Expect.CONNECTS), 0, "a connection Redis refused (AUTH) is not "
                                     "a connect")
            finally:
                self.assertEqual(bad.stop(), 0)

    def test_a_node_that_lost_its_channel_refills_from_the_stream(self):
        """Redis stays up but drops every node's subscriber connection, and in
        the same breath (one pipeline: Redis runs it before any node can
        reconnect) 50 messages are published through the script, as another
        node would: every node misses them on the channel and must fill them
        from the stream when it is back, with no gap."""
        with Cluster(2, args=HISTORY) as c:
            t = "so.refill"

            async def run():
                subs = [await Sub(nd.url(), [t]).open() for nd in c.nodes]
                for i in range(5):
                    self.assertEqual(c.nodes[i % 2].publish(t, json.dumps({"n": i}))[0], 200)
                for s in subs:
                    await s.read_seq(t, 5)
                connects = {nd.name: nd.metric(Expect.CONNECTS) for nd in c.nodes}
                sha = hashlib.sha1(script("publish")).hexdigest()
                with c.redis.connect() as r:
                    r.sock.sendall(b"".join(
                        [Resp.encode(["CLIENT", "KILL", "TYPE", "pubsub"])]
                        + [Resp.encode(["EVALSHA", sha, 2, Expect.meta(t), Expect.log(t), Expect.channel(t),
                                        json.dumps({"n": i}), 1000, "PUBLISH"]) for i in range(5, 55)]))
                    killed = r.reply()
                    seqs = [r.reply()[0] for _ in range(50)]
                self.assertGreaterEqual(killed, 2, "each node's subscriber connection")
                self.assertEqual(seqs, list(range(6, 56)))
                c.wait_all(lambda nd: nd.metric(Expect.CONNECTS) > connects[nd.name] and nd.metric(Expect.UP) == 1,
                           "nodes reconnected", Expect.RECONNECT_WAIT)
                for i in range(55, 60):
                    self.assertEqual(c.nodes[i % 2].publish(t, json.dumps({"n": i}))[0], 200)
                for s in subs:
                    await s.read_seq(t, 60)
                    st = s.streams[t]
                    self.assertEqual((st.errors, st.gaps), ([], []))
                    self.assertEqual(st.payloads(), list(range(60)))
                    await s.close()

            asyncio.run(run())
            for nd in c.nodes:
                self.assertGreaterEqual(nd.metric(Expect.REFILLED), 1, f"{nd.name} filled nothing from the stream")
                self.assertEqual(nd.metric(Expect.GAPS), 0, nd.name)

    def test_what_the_stream_no_longer_holds_is_an_explicit_gap(self):
        """As above, but the stream keeps only the newest 5 (--history 5, and
        Redis told to trim exactly): what a node missed and Redis no longer
        has is announced as a gap, reason Expect.GAP_REASON, in the same epoch."""
        with Cluster(2, args=["--history", "5"]) as c:
            t = "so.lost"
            c.redis.call("CONFIG", "SET", "stream-node-max-entries", 1)  # MAXLEN ~ trims to the entry

            async def run():
                subs = [await Sub(nd.url(), [t]).open() for nd in c.nodes]
                epoch = subs[0].ack(t)["epoch"]
                for i in range(5):
                    self.assertEqual(c.nodes[i % 2].publish(t, json.dumps({"n": i}))[0], 200)
                for s in subs:
                    await s.read_seq(t, 5)
                connects = {nd.name: nd.metric(Expect.CONNECTS) for nd in c.nodes}
                sha = hashlib.sha1(script("publish")).hexdigest()
                with c.redis.connect() as r:
                    r.sock.sendall(b"".join(
                        [Resp.encode(["CLIENT", "KILL", "TYPE", "pubsub"])]
                        + [Resp.encode(["EVALSHA", sha, 2, Expect.meta(t), Expect.log(t), Expect.channel(t),
                                        json.dumps({"n": i}), 5, "PUBLISH"]) for i in range(5, 55)]))
                    self.assertGreaterEqual(r.reply(), 2)
                    self.assertEqual([r.reply()[0] for _ in range(50)], list(range(6, 56)))
                self.assertLessEqual(c.redis.call("XLEN", Expect.log(t)), 10)
                c.wait_all(lambda nd: nd.metric(Expect.CONNECTS) > connects[nd.name] and nd.metric(Expect.UP) == 1,
                           "nodes reconnected", Expect.RECONNECT_WAIT)
                for i in range(55, 60):
                    self.assertEqual(c.nodes[i % 2].publish(t, json.dumps({"n": i}))[0], 200)
                for s in subs:
                    await s.read_seq(t, 60)
                    st = s.streams[t]
                    self.assertEqual(st.errors, [], "every seq received or in a gap, once, in order")
                    self.assertTrue(st.gaps, "seqs 6 on were missed and the stream lost some: a gap is due")
                    self.assertEqual({(g["epoch"], g["reason"], g["from"]) for g in st.gaps[:1]},
                                     {(epoch, Expect.GAP_REASON, 6)}, st.gaps)
                    self.assertEqual({(g["epoch"], g["reason"]) for g in st.gaps}, {(epoch, Expect.GAP_REASON)})
                    self.assertEqual(st.payloads()[:5], list(range(5)))
                    self.assertEqual(st.payloads()[-5:], list(range(55, 60)))
                    await s.close()

            asyncio.run(run())
            for nd in c.nodes:
                self.assertGreaterEqual(nd.metric(Expect.GAPS), 1, nd.name)

    def test_an_acknowledged_publish_is_never_lost_when_redis_dies_mid_flight(self):
        """Redis paused (SIGSTOP: the link looks up, nothing is answered), a
        publish over HTTP and one as a command sent to it, then Redis killed
        and started again with its data. Each publish may be refused (503, an
        error reply) or acknowledged, but what was acknowledged must arrive."""
        with Cluster(2, args=HISTORY, persist=True) as c:
            a, b = c.nodes
            t = "so.midflight"

            async def run():
                on_b = await Sub(b.url(), [t]).open()
                on_a = await Sub(a.url(), [t]).open()
                self.assertEqual(a.publish(t, json.dumps({"n": "before"}))[0], 200)
                await on_b.read_seq(t, 1)
                c.redis.pause()
                http_answer = {}

                def post():
                    http_answer["r"] = a.publish(t, json.dumps({"n": "http"}), timeout=30)

                poster = threading.Thread(target=post)
                poster.start()
                await on_a.ws.send(json.dumps({"op": "publish", "topic": t, "id": "cmd", "data": {"n": "cmd"}}))
                # However long the node takes to send them, an answer may come
                # only from Redis or from losing it: give both time to be sent.
                await asyncio.sleep(1)
                c.redis.kill()
                c.redis.start()
                await asyncio.get_running_loop().run_in_executor(None, poster.join, 30)
                self.assertFalse(poster.is_alive(), "the HTTP publish never got an answer")
                cmd = await on_a.reply(lambda m: m.get("id") == "cmd", timeout=30)
                await asyncio.get_running_loop().run_in_executor(None, c.wait_redis_up)
                status, body = a.publish(t, json.dumps({"n": "after"}))
                self.assertEqual(status, 200, body)
                for s in (on_a, on_b):
                    await s.read_until(lambda: "after" in s.streams[t].payloads(), "the publish after")
                    got = s.streams[t].payloads()
                    self.assertEqual(s.streams[t].errors, [])
                    with self.subTest("POST /publish", node=s.url):
                        if http_answer["r"][0] == 200:
                            self.assertIn("http", got, f"POST /publish answered {http_answer['r']} and the "
                                          "message never came")
                        else:
                            self.assertEqual(http_answer["r"][0], Expect.DOWN_STATUS, http_answer)
                    with self.subTest("publish command", node=s.url):
                        if cmd["type"] == "ack":
                            self.assertIn("cmd", got, f"the publish command was acknowledged ({cmd}) and the "
                                          "message never came")
                        else:
                            self.assertEqual((cmd["type"], cmd["op"]), ("error", "publish"), cmd)
                    await s.close()

            asyncio.run(run())

    def test_redis_back_from_an_older_snapshot_never_reuses_a_seq(self):
        """Redis saved at seq 10, then 10 more published and delivered, then
        killed and started from the snapshot: it would give 11 to 20 again.
        The nodes see Redis behind what they delivered; the topic goes on under
        a new epoch, announced, and no subscriber gets a seq twice."""
        with Cluster(2, args=HISTORY, persist="snapshot") as c:
            t = "so.rollback"

            async def run():
                subs = [await Sub(nd.url(), [t]).open() for nd in c.nodes]
                old = subs[0].ack(t)["epoch"]
                for i in range(10):
                    self.assertEqual(c.nodes[i % 2].publish(t, json.dumps({"n": i}))[0], 200)
                c.redis.call("SAVE")
                for i in range(10, 20):
                    self.assertEqual(c.nodes[i % 2].publish(t, json.dumps({"n": i}))[0], 200)
                for s in subs:
                    await s.read_seq(t, 20)
                c.redis.kill()
                c.redis.start()
                self.assertEqual(c.redis.meta(t), (old, 10), "Redis came back from the snapshot")
                await asyncio.get_running_loop().run_in_executor(None, c.wait_redis_up)
                for i in range(20, 25):
                    status, body = c.nodes[i % 2].publish(t, json.dumps({"n": i}))
                    self.assertEqual(status, 200, body)
                new, seq = c.redis.meta(t)
                self.assertNotEqual(new, old, "Redis kept the epoch whose seqs 11..20 were given already")
                for s in subs:
                    await s.read_until(lambda: s.streams[t].position() == (new, seq), f"{t} at ({new}, {seq})")
                    st = s.streams[t]
                    self.assertEqual(st.errors, [], "no seq twice, every skip explained")
                    self.assertEqual([(g["epoch"], g["reason"], g["from"]) for g in st.gaps],
                                     [(new, Expect.EPOCH_GAP_REASON, 1)], st.gaps)
                    self.assertEqual(st.payloads(), list(range(25)))
                    await s.close()

            asyncio.run(run())
            for nd in c.nodes:
                self.assertGreaterEqual(nd.metric(Expect.EPOCHS), 1, nd.name)

    def test_redis_restart_under_load(self):
        """Redis killed (-9) and restarted twice under a steady load, first with
        its data (appendfsync always: what it acknowledged survives), then
        without. Subscribers on every node."""
        topics = ["so.load.a", "so.load.b", "so.load.c"]
        with Cluster(3, args=HISTORY, persist=True) as c:
            async def run():
                streams, tasks, on_node = [], [], {}
                for nd in c.nodes:
                    for _ in range(2):
                        by_topic = {t: Stream(t) for t in topics}
                        streams += by_topic.values()
                        on_node.setdefault(nd.name, []).append(by_topic)
                        tasks.append(asyncio.create_task(follow(nd.url(), topics, by_topic, new_stats())))
                pub = Publisher([nd.port for nd in c.nodes], topics, rate=300)
                loop = asyncio.get_running_loop()
                try:
                    await wait_streams_acked(streams)
                    pub.start()
                    await loop.run_in_executor(None, pub.wait_acked, 300)

                    # 1: kill -9, back with its data.
                    c.redis.kill()
                    await loop.run_in_executor(None, c.wait_redis_up, False)
                    c.redis.start()
                    await loop.run_in_executor(None, c.wait_redis_up, True)
                    await loop.run_in_executor(None, pub.wait_acked, pub.counts()[0] + 300)
                    acked = list(pub.acked)
                    final = {t: c.redis.meta(t) for t in topics}
                    await wait_streams(streams, final, "after a restart with the data kept")
                    for st in streams:
                        self.assertEqual(st.errors, [], st.topic)
                        self.assertEqual(st.gaps, [], "Redis kept every message: the stream fills what was missed")
                        self.assertLessEqual({k for k, t in acked if t == st.topic}, set(st.payloads()),
                                             f"{st.topic}: acknowledged publishes missing")
                    # What each node delivered came from the channel or the stream.
                    for nd in c.nodes:
                        # Its subscribers all take every topic: one holds what it delivered.
                        delivered = sum(len(st.got) for st in on_node[nd.name][0].values())
                        m = nd.metrics()
                        self.assertGreaterEqual(m[Expect.MESSAGES] - m[Expect.DUPLICATES] + m[Expect.REFILLED],
                                                delivered, nd.name)
                        self.assertGreaterEqual(m[Expect.CONNECTS], 2, nd.name)
                        self.assertGreaterEqual(m[Expect.DISCONNECTS], 1, nd.name)
                    gaps_before = {nd.name: nd.metric(Expect.GAPS) for nd in c.nodes}
                    kept = dict(final)

                    # 2: kill -9, back with nothing.
                    c.redis.kill()
                    await loop.run_in_executor(None, c.wait_redis_up, False)
                    c.redis.start(wipe=True)
                    await loop.run_in_executor(None, c.wait_redis_up, True)
                    mark = pub.sent  # publishes from here on find every node linked again
                    await loop.run_in_executor(None, pub.wait_acked, pub.counts()[0] + 300)
                finally:
                    await loop.run_in_executor(None, pub.finish)
                acked_after = {k for k, _ in pub.acked if k >= mark}
                final = {t: c.redis.meta(t) for t in topics}
                await wait_streams(streams, final, "after a restart that lost the data")
                renewed = [t for t in topics if final[t][0] != kept[t][0]]
                for st in streams:
                    self.assertEqual(st.errors, [], st.topic)
                    if st.topic in renewed:
                        # Redis forgot the topic: a new run of seqs, announced.
                        self.assertTrue(st.gaps, f"{st.topic}: Redis lost the topic, and nobody was told")
                        self.assertEqual({(g["epoch"], g.get("reason")) for g in st.gaps},
                                         {(final[st.topic][0], Expect.EPOCH_GAP_REASON)}, st.gaps)
                    self.assertLessEqual({k for k, t in pub.acked if k in acked_after and t == st.topic},
                                         set(st.payloads()), f"{st.topic}: acknowledged publishes missing")
                for nd in c.nodes:
                    self.assertGreaterEqual(nd.metric(Expect.GAPS) - gaps_before[nd.name], len(renewed), nd.name)
                    self.assertTrue(nd.alive, nd.name)
                self.assertGreater(len(pub.refused), 0, "the load ran while Redis was away")
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run(run())

    def test_kill_a_node_under_load_its_clients_resume_elsewhere(self):
        """1,000 subscribers through nginx, a publisher at 500 messages a second
        for about 10 s, one node killed (-9) half-way: its clients reconnect
        through nginx with since= to the other two, and in the end every
        subscriber has every message once, in order."""
        n_clients, n_topics, rate, total = 1000, 100, 500, 5000
        topics = [f"so.kill.{i}" for i in range(n_topics)]
        args = HISTORY + ["--max-handshakes-per-ip", "0", "--connect-rate-per-ip", "0"]
        with Cluster(3, args=args, nginx=True, max_clients=n_clients) as c:
            a, victim, cc = c.nodes

            async def run():
                streams, tasks, stats = [], [], []
                for i in range(n_clients):
                    st, s = Stream(topics[i % n_topics]), new_stats()
                    streams.append(st)
                    stats.append(s)
                    tasks.append(asyncio.create_task(follow(c.nginx.url(), [st.topic], {st.topic: st}, s,
                                                            backoff=(0.1, 1.0))))
                pub = Publisher([a.port, cc.port], topics, rate=rate, limit=total)
                loop = asyncio.get_running_loop()
                try:
                    await wait_streams_acked(streams, n_clients, timeout=60)
                    on_victim = victim.metric('ringcast_connections_active{kind="websocket"}')
                    for nd in c.nodes:
                        self.assertGreater(nd.metric('ringcast_connections_active{kind="websocket"}'), 0,
                                           f"nginx sent {nd.name} no client")
                    pub.start()
                    await loop.run_in_executor(None, pub.wait_acked, total // 2)
                    victim.kill()
                    await loop.run_in_executor(None, pub.wait_done)
                    self.assertEqual((len(pub.acked), pub.refused[:3]), (total, []))
                    final = {t: c.redis.meta(t) for t in topics}
                    await wait_streams(streams, final, "every subscriber at the end", timeout=60)
                finally:
                    pub.stop_event.set()
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                errors = [(st.topic, st.errors[:3]) for st in streams if st.errors]
                self.assertEqual(errors[:5], [], f"{len(errors)} subscribers with broken streams")
                self.assertEqual([st.gaps for st in streams if st.gaps][:5], [])
                acked = {}
                for k, t in pub.acked:
                    acked.setdefault(t, []).append(k)
                for st in streams:
                    self.assertEqual(st.payloads(), acked[st.topic], f"{st.topic}: every message once, in order")
                resumed = sum(s["resumed"] for s in stats)
                self.assertGreaterEqual(resumed, on_victim, "every client of the killed node resumed")
                self.assertEqual(sum(len(s["other"]) for s in stats), 0, [s["other"][:2] for s in stats][:3])

            asyncio.run(run())
            self.assertTrue(a.alive and cc.alive)

            # The killed node back, with no memory of any topic: a client resuming
            # there is served from Redis' stream, and it publishes again.
            victim.restart()
            t = topics[0]
            epoch, seq = c.redis.meta(t)

            async def back():
                s = await Sub(victim.url(), [t], since={t: (epoch, 10)}).open()
                self.assertEqual((s.ack(t)["recovered"], s.ack(t)["seq"]), (True, seq), s.ack(t))
                self.assertEqual(victim.publish(t, json.dumps({"n": "again"}))[0], 200)
                await s.read_seq(t, seq + 1)
                st = s.streams[t]
                self.assertEqual((st.errors, st.gaps), ([], []))
                self.assertEqual([q for _, q, _ in st.got], list(range(11, seq + 2)))
                self.assertEqual(st.payloads()[-1], "again")
                await s.close()

            asyncio.run(back())


async def wait_streams_acked(streams, n=None, timeout=30):
    """Waits until every stream (and n of them, when they are still being made)
    has its subscribe ack."""
    deadline = time.monotonic() + timeout
    while (n is not None and len(streams) < n) or any(s.epoch is None for s in streams):
        if time.monotonic() > deadline:
            raise AssertionError(f"subscribers not all acknowledged within {timeout} s: "
                                 f"{sum(s.epoch is not None for s in streams)} of {n or len(streams)}")
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    unittest.main()
