# SPDX-License-Identifier: MIT
"""Wildcard subscriptions (quotes.*, quotes.>) against the real binary, with
Python's websockets as the independent client: every matching message exactly
once and in per-topic order across four shards, topics created after the
pattern included; the overlap, limit and bad-pattern errors; unsubscribing;
token grants; and topics reclaimed once the patterns are gone."""
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from rcserver import Server  # noqa: E402

import websockets  # noqa: E402

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def command(ws, cmd):
    await ws.send(json.dumps(cmd))
    return await recv_json(ws)


async def quiet(ws, seconds=0.5):
    """Nothing more arrives for a while (no duplicate, no stray message)."""
    try:
        m = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return None
    return json.loads(m)


def match(pattern, name):
    p, n = pattern.split("."), name.split(".")
    for i, seg in enumerate(p):
        if seg == ">":
            return len(n) > i and all(n[i:])
        if i >= len(n) or (seg == "*" and not n[i]) or (seg not in ("*", n[i])):
            return False
    return len(p) == len(n)


def metric(srv, name):
    return srv.metrics().get(name, 0)


class Wildcards(unittest.TestCase):
    def test_every_matching_message_exactly_once_in_order_across_shards(self):
        old = [f"w.o{i}.q" for i in range(8)] + [f"w.o{i}.r" for i in range(4)] + ["w.o0.q.deep"]
        new = [f"w.n{i}.q" for i in range(8)] + [f"w.n{i}.r.s" for i in range(4)] + ["v.n0.q"]
        with Server(threads=4) as srv:
            async def run():
                # These exist before any pattern (kept by an exact subscriber), each
                # at seq 1 already.
                keeper = await websockets.connect(srv.url("?topics=" + ",".join(old)))
                for _ in old:
                    await recv_json(keeper)
                for t in old:
                    srv.publish(t, json.dumps({"t": t, "i": 0}))
                for _ in old:
                    self.assertEqual((await recv_json(keeper))["seq"], 1)
                # (what it subscribes to, how): several connections, so shards differ.
                specs = [(["w.*.q"], "url"), (["w.>"], "cmd"), (["w.*.q"], "cmd"), (["w.>"], "url"),
                         (["w.o1.*", "w.n1.*"], "cmd"), (["*.*.q"], "cmd"), (["w.o1.q"], "exact"),
                         (["w.n2.q", "w.*.r"], "cmd")]
                conns = []
                for subs, how in specs:
                    if how == "url":
                        ws = await websockets.connect(srv.url("?topics=" + ",".join(subs)))
                    else:
                        ws = await websockets.connect(srv.url())
                        await ws.send(json.dumps({"op": "subscribe", "id": 7, "topics": subs}))
                    acked = set()
                    while len(acked) < len(subs):
                        m = await recv_json(ws)
                        self.assertEqual((m["type"], m["op"]), ("ack", "subscribe"), m)
                        if "pattern" in m:
                            self.assertNotIn("seq", m, "a pattern's ack carries no seq")
                            self.assertNotIn("epoch", m)
                            acked.add(m["pattern"])
                        else:
                            acked.add(m["topic"])
                        if how != "url":
                            self.assertEqual(m["id"], 7)
                    self.assertEqual(acked, set(subs))
                    conns.append((ws, subs))
                self.assertGreaterEqual(metric(srv, "ringcast_patterns"), 5)
                # Published after every ack: old topics, and new ones created now.
                rounds = 5
                for i in range(1, rounds + 1):
                    for t in old + new:
                        srv.publish(t, json.dumps({"t": t, "i": i}))
                for ws, subs in conns:
                    def wanted(t):
                        return any(match(p, t) if "*" in p or ">" in p else p == t for p in subs)
                    want = {t for t in old + new if wanted(t)}
                    self.assertTrue(want, subs)
                    got = {}
                    while sum(len(v) for v in got.values()) < len(want) * rounds:
                        m = await recv_json(ws)
                        self.assertEqual(m["type"], "msg", m)
                        t = m["topic"]
                        self.assertIn(t, want, f"{subs} got {t}")
                        self.assertEqual(m["data"]["t"], t, "each delivery names its own topic")
                        seqs = got.setdefault(t, [])
                        first = 2 if t in old else 1
                        self.assertEqual(m["seq"], first + len(seqs), f"{subs}: {t} in order, once")
                        self.assertEqual(m["data"]["i"], m["seq"] - 1 if t in old else m["seq"])
                        seqs.append(m["seq"])
                    self.assertEqual(set(got), want)
                    extra = await quiet(ws)
                    self.assertIsNone(extra, f"{subs}: nothing twice")
                for ws, _ in conns:
                    await ws.close()
                await keeper.close()
            asyncio.run(run())

    def test_overlaps_limits_and_bad_patterns_are_refused_with_reasons(self):
        with Server("--max-patterns", "70", threads=2) as srv:
            async def run():
                async with websockets.connect(srv.url()) as ws:
                    m = await command(ws, {"op": "subscribe", "id": 1, "topics": ["q.*"]})
                    self.assertEqual((m["type"], m["pattern"]), ("ack", "q.*"))
                    m = await command(ws, {"op": "subscribe", "topics": ["q.*"]})
                    self.assertEqual((m["type"], m["already_subscribed"]), ("ack", True))
                    for topics, names in [(["q.>"], ("'q.>'", "'q.*'")), (["q.a"], ("'q.a'", "'q.*'")),
                                          (["r.*", "r.x"], ("'r.x'", "'r.*'")),
                                          (["*.b"], ("'*.b'", "'q.*'"))]:
                        m = await command(ws, {"op": "subscribe", "topics": topics})
                        self.assertEqual(m["type"], "error", m)
                        for n in names:
                            self.assertIn(n, m["error"])
                        self.assertIn("twice", m["error"])
                    # All or nothing: r.* of the refused command was not subscribed.
                    m = await command(ws, {"op": "unsubscribe", "topics": ["r.*"]})
                    self.assertEqual(m["not_subscribed"], ["r.*"])
                    for bad in ["q.a*", "a.>.b", "**"]:
                        m = await command(ws, {"op": "subscribe", "topics": [bad]})
                        self.assertEqual(m["type"], "error")
                        self.assertIn(f"'{bad}' is not a valid pattern", m["error"])
                    m = await command(ws, {"op": "subscribe", "topics": ["s.*"], "snapshot": True})
                    self.assertIn("snapshot does not apply to pattern 's.*'", m["error"])
                    # Up to 64 patterns per connection.
                    for i in range(63):
                        m = await command(ws, {"op": "subscribe", "topics": [f"l{i}.*"]})
                        self.assertEqual(m["type"], "ack", m)
                    m = await command(ws, {"op": "subscribe", "topics": ["l99.*"]})
                    self.assertIn("pattern limit of 64 per connection reached at 'l99.*'", m["error"])
                    self.assertEqual(metric(srv, "ringcast_patterns"), 64)
                    # --max-patterns 70, all connections together.
                    async with websockets.connect(srv.url()) as ws2:
                        for i in range(6):
                            m = await command(ws2, {"op": "subscribe", "topics": [f"g{i}.>"]})
                            self.assertEqual(m["type"], "ack", m)
                        m = await command(ws2, {"op": "subscribe", "topics": ["g6.>"]})
                        self.assertIn("limit of 70 distinct patterns (--max-patterns)", m["error"])
                        # A pattern already live elsewhere costs nothing more.
                        m = await command(ws2, {"op": "subscribe", "topics": ["l5.*"]})
                        self.assertEqual(m["type"], "ack", m)
                    self.assertGreaterEqual(sum(v for k, v in srv.metrics().items()
                                                if k.startswith("ringcast_patterns_refused_total")), 2)
                for q, why in [("?topics=q.a*", "not a valid pattern"),
                               ("?topics=q.*&format=raw", "format=raw carries one topic"),
                               ("?topics=q.*&snapshot=1", "snapshot=1 does not apply"),
                               ("?topics=q.*,q.a", "'q.*' overlaps 'q.a'"),
                               ("?topics=q.*,q.>", "overlaps")]:
                    status, _, body = srv.http("GET", "/ws" + q, headers=UPGRADE)
                    self.assertEqual(status, 400, q)
                    self.assertIn(why, body.decode(), q)
            asyncio.run(run())
        with Server("--max-patterns", "0", threads=2) as srv:
            async def off():
                async with websockets.connect(srv.url()) as ws:
                    m = await command(ws, {"op": "subscribe", "topics": ["q.*"]})
                    self.assertIn("wildcards are off", m["error"])
            asyncio.run(off())

    def test_unsubscribe_stops_deliveries_and_topics_are_reclaimed(self):
        with Server(threads=4) as srv:
            async def run():
                base = metric(srv, "ringcast_topics")
                async with websockets.connect(srv.url("?topics=u.sync")) as ws, \
                        websockets.connect(srv.url()) as other:
                    await recv_json(ws)  # u.sync's ack
                    m = await command(ws, {"op": "subscribe", "topics": ["u.p.>"]})
                    self.assertEqual(m["pattern"], "u.p.>")
                    m = await command(other, {"op": "subscribe", "topics": ["u.*.x"]})
                    self.assertEqual(m["pattern"], "u.*.x")
                    names = [f"u.p.t{i}" for i in range(12)] + ["u.p.x"]
                    for t in names:
                        srv.publish(t, "1")
                    got = set()
                    while len(got) < len(names):
                        got.add((await recv_json(ws))["topic"])
                    self.assertEqual((await recv_json(other))["topic"], "u.p.x")
                    # The topics stay while the pattern does (its pins).
                    self.assertGreaterEqual(metric(srv, "ringcast_topics"), base + len(names))
                    m = await command(ws, {"op": "unsubscribe", "topics": ["u.p.>"]})
                    self.assertEqual((m["type"], m["topics"]), ("ack", ["u.p.>"]))
                    self.assertNotIn("not_subscribed", m)
                    for t in names:
                        srv.publish(t, "2")
                    srv.publish("u.sync", "s")
                    m = await recv_json(ws)
                    self.assertEqual(m["topic"], "u.sync", "nothing of u.p.> after its unsubscribe")
                    self.assertEqual((await recv_json(other))["topic"], "u.p.x")
                # Every subscriber gone: the sweep lets the pins go, and the topics.
                deadline = time.monotonic() + 10
                while metric(srv, "ringcast_topics") > base and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                self.assertEqual(metric(srv, "ringcast_topics"), base, "no stale pins")
                self.assertEqual(metric(srv, "ringcast_patterns"), 0)
            asyncio.run(run())


class Grants(unittest.TestCase):
    def test_a_token_pattern_must_cover_the_whole_subscription(self):
        import jwt
        d = tempfile.mkdtemp(prefix="ringcast-wild-")
        try:
            secret = base64.b64encode(os.urandom(33)).decode()
            path = os.path.join(d, "hs.secret")
            with open(path, "w") as f:
                f.write(secret + "\n")
            now = int(time.time())
            tok = jwt.encode({"sub": "w", "iat": now, "exp": now + 300,
                              "ringcast": {"sub": ["quotes.*"], "pub": []}}, secret, algorithm="HS256")
            pub = jwt.encode({"sub": "p", "iat": now, "exp": now + 300,
                              "ringcast": {"sub": [], "pub": ["quotes.*"]}}, secret, algorithm="HS256")
            with Server("--jwt-key", path, threads=2) as srv:
                status, _, body = srv.http("GET", f"/ws?topics=quotes.>&token={tok}", headers=UPGRADE)
                self.assertEqual(status, 403)
                self.assertIn("'quotes.>'", body.decode())

                async def run():
                    async with websockets.connect(srv.url(f"?topics=quotes.*&token={tok}")) as ws:
                        self.assertEqual(await recv_json(ws),
                                         {"type": "ack", "op": "subscribe", "pattern": "quotes.*"})
                        for p in ["quotes.>", ">", "*.AAPL"]:
                            m = await command(ws, {"op": "subscribe", "topics": [p]})
                            self.assertEqual(m["type"], "error", m)
                            self.assertIn("does not allow subscribing", m["error"])
                        status, _, _ = srv.http("POST", "/publish/quotes.AAPL", body="1",
                                                headers={"Authorization": f"Bearer {pub}"})
                        self.assertEqual(status, 200)
                        m = await recv_json(ws)
                        self.assertEqual((m["topic"], m["seq"]), ("quotes.AAPL", 1))
                asyncio.run(run())
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
