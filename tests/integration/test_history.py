# SPDX-License-Identifier: MIT
"""History, epochs, resume (since=), snapshots and topic heartbeats against the
real binary, with Python's websockets as the independent client. Topics are
spread over four shards, so most subscribers are not on their topic's home."""
import asyncio
import json
import re
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, __import__("os").path.dirname(__file__))
from rcserver import Server  # noqa: E402

import websockets  # noqa: E402

EPOCH = re.compile(r"^[0-9a-f]{16}$")


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def acks(ws, n):
    """The n per-topic subscribe acks that open a URL subscription, by topic."""
    out = {}
    for _ in range(n):
        m = await recv_json(ws)
        assert m["type"] == "ack" and m["op"] == "subscribe", m
        assert EPOCH.match(m["epoch"]), m
        out[m["topic"]] = m
    return out


def publish(srv, topic, body):
    srv.publish(topic, json.dumps(body))


class History(unittest.TestCase):
    def test_resume_replays_what_was_missed_with_no_gap_or_duplicate_at_the_seam(self):
        topics = [f"h.t{i}" for i in range(8)]  # homes spread over the four shards
        with Server("--history", "1000", threads=4) as srv:
            async def run():
                async with websockets.connect(srv.url("?topics=" + ",".join(topics))) as ws:
                    first = await acks(ws, len(topics))
                    for t in topics:
                        self.assertEqual(first[t]["seq"], 0)
                    for i in range(3):
                        for t in topics:
                            publish(srv, t, {"i": i})
                    last = {}
                    for _ in range(3 * len(topics)):
                        m = await recv_json(ws)
                        self.assertEqual(m["type"], "msg")
                        self.assertEqual(m["seq"], last.get(m["topic"], 0) + 1)
                        last[m["topic"]] = m["seq"]
                # Away: more is published, and goes on being published while the
                # client comes back, so the seam between replay and live is crossed.
                for i in range(3, 6):
                    for t in topics:
                        publish(srv, t, {"i": i})
                stop = threading.Event()

                def keep_publishing():
                    i = 6
                    while not stop.is_set() and i < 60:
                        for t in topics:
                            publish(srv, t, {"i": i})
                        i += 1

                pub = threading.Thread(target=keep_publishing)
                pub.start()
                try:
                    since = ",".join(f"{t}:{first[t]['epoch']}:{last[t]}" for t in topics)
                    async with websockets.connect(srv.url(f"?topics={','.join(topics)}&since={since}")) as ws:
                        await asyncio.get_running_loop().run_in_executor(None, pub.join)
                        want = 60  # every message of each topic: 3 + 3 + 54
                        seen = dict(last)
                        acked = set()
                        while len(acked) < len(topics) or any(seen[t] < want for t in topics):
                            m = await recv_json(ws)
                            if m["type"] == "ack":
                                # Each topic's ack comes before its replay, and says so.
                                self.assertTrue(m["recovered"], m)
                                self.assertEqual(m["epoch"], first[m["topic"]]["epoch"])
                                acked.add(m["topic"])
                                continue
                            self.assertEqual(m["type"], "msg", m)
                            self.assertIn(m["topic"], acked, "a topic's ack precedes its messages")
                            self.assertEqual(m["seq"], seen[m["topic"]] + 1, "exactly once, in order")
                            self.assertEqual(m["data"]["i"], m["seq"] - 1)
                            seen[m["topic"]] = m["seq"]
                finally:
                    stop.set()
                    pub.join()
            asyncio.run(run())

    def test_resume_by_command_and_snapshot(self):
        with Server("--history", "100", threads=4) as srv:
            async def run():
                for i in range(1, 6):
                    publish(srv, "h.cmd", {"v": i})
                publish(srv, "h.quiet", {"last": "quote"})
                async with websockets.connect(srv.url()) as ws:
                    await ws.send(json.dumps({"op": "subscribe", "id": 1, "topics": ["h.quiet"], "snapshot": True}))
                    ack = await recv_json(ws)
                    self.assertEqual((ack["type"], ack["id"], ack["topic"], ack["seq"], ack["snapshot"]),
                                     ("ack", 1, "h.quiet", 1, True))
                    snap = await recv_json(ws)
                    self.assertEqual((snap["type"], snap["seq"], snap["data"]), ("msg", 1, {"last": "quote"}))
                    epoch = None
                    await ws.send(json.dumps({"op": "subscribe", "id": "c", "topics": ["h.cmd"]}))
                    ack = await recv_json(ws)
                    self.assertEqual((ack["topic"], ack["seq"]), ("h.cmd", 5))
                    self.assertNotIn("recovered", ack)
                    epoch = ack["epoch"]
                async with websockets.connect(srv.url()) as ws:
                    await ws.send(json.dumps({"op": "subscribe", "id": 2, "topics": ["h.cmd"],
                                              "since": {"h.cmd": {"epoch": epoch, "seq": 2}}}))
                    ack = await recv_json(ws)
                    self.assertEqual((ack["seq"], ack["recovered"], ack["epoch"]), (5, True, epoch))
                    self.assertEqual([(await recv_json(ws))["seq"] for _ in range(3)], [3, 4, 5])
                    publish(srv, "h.cmd", {"v": 6})
                    self.assertEqual((await recv_json(ws))["seq"], 6)
            asyncio.run(run())

    def test_resume_older_than_history_gets_the_explicit_gap_then_live(self):
        with Server("--history", "5", threads=2) as srv:
            async def run():
                async with websockets.connect(srv.url("?topics=h.short")) as ws:
                    epoch = (await acks(ws, 1))["h.short"]["epoch"]
                    for i in range(1, 21):
                        publish(srv, "h.short", {"v": i})
                    for _ in range(20):
                        await recv_json(ws)
                async with websockets.connect(srv.url(f"?topics=h.short&since=h.short:{epoch}:2")) as ws:
                    ack = (await acks(ws, 1))["h.short"]
                    self.assertEqual((ack["seq"], ack["recovered"]), (20, False))
                    gap = await recv_json(ws)
                    self.assertEqual(gap, {"type": "gap", "topic": "h.short", "from": 3, "to": 20,
                                           "recovered": False, "epoch": epoch, "reason": "history"})
                    publish(srv, "h.short", {"v": 21})
                    m = await recv_json(ws)
                    self.assertEqual((m["type"], m["seq"]), ("msg", 21), "no partial replay: live next")
            asyncio.run(run())

    def test_resume_after_a_restart_gets_the_epoch_gap(self):
        with Server("--history", "100", threads=2) as srv:
            async def before():
                async with websockets.connect(srv.url("?topics=h.restart")) as ws:
                    epoch = (await acks(ws, 1))["h.restart"]["epoch"]
                    publish(srv, "h.restart", {"v": 1})
                    await recv_json(ws)
                    return epoch
            old = asyncio.run(before())
        with Server("--history", "100", threads=2) as srv:
            async def after():
                publish(srv, "h.restart", {"v": "new"})
                async with websockets.connect(srv.url(f"?topics=h.restart&since=h.restart:{old}:1")) as ws:
                    ack = (await acks(ws, 1))["h.restart"]
                    self.assertNotEqual(ack["epoch"], old)
                    self.assertFalse(ack["recovered"])
                    gap = await recv_json(ws)
                    self.assertEqual((gap["type"], gap["reason"], gap["epoch"], gap["from"], gap["to"]),
                                     ("gap", "epoch", ack["epoch"], 1, 1))
            asyncio.run(after())

    def test_a_replay_larger_than_the_queue_allows_is_an_explicit_gap(self):
        with Server("--history", "1000", "--max-queue", "64k", threads=2) as srv:
            async def run():
                async with websockets.connect(srv.url("?topics=h.big")) as ws:
                    epoch = (await acks(ws, 1))["h.big"]["epoch"]
                for i in range(1, 201):
                    publish(srv, "h.big", {"v": i, "pad": "x" * 1000})
                async with websockets.connect(srv.url(f"?topics=h.big&since=h.big:{epoch}:1")) as ws:
                    ack = (await acks(ws, 1))["h.big"]
                    self.assertEqual((ack["seq"], ack["recovered"]), (200, False))
                    gap = await recv_json(ws)
                    self.assertEqual((gap["type"], gap["from"], gap["to"], gap["reason"]),
                                     ("gap", 2, 200, "replay exceeds half of --max-queue"))
                    publish(srv, "h.big", {"v": 201})
                    self.assertEqual((await recv_json(ws))["seq"], 201)
                # A short one still replays.
                async with websockets.connect(srv.url(f"?topics=h.big&since=h.big:{epoch}:198")) as ws:
                    self.assertTrue((await acks(ws, 1))["h.big"]["recovered"])
                    self.assertEqual([(await recv_json(ws))["seq"] for _ in range(3)], [199, 200, 201])
            asyncio.run(run())

    def test_history_off_snapshot_is_refused_in_the_ack(self):
        with Server(threads=2) as srv:
            async def run():
                publish(srv, "h.none", {"v": 1})
                async with websockets.connect(srv.url("?topics=h.none&snapshot=1")) as ws:
                    ack = (await acks(ws, 1))["h.none"]
                    self.assertFalse(ack["snapshot"])
                    publish(srv, "h.none", {"v": 2})
                    m = await recv_json(ws)
                    self.assertEqual(m["type"], "msg")
            asyncio.run(run())

    def test_history_ttl_forgets(self):
        with Server("--history", "100", "--history-ttl", "1", threads=2) as srv:
            async def run():
                async with websockets.connect(srv.url("?topics=h.ttl")) as ws:
                    epoch = (await acks(ws, 1))["h.ttl"]["epoch"]
                    publish(srv, "h.ttl", {"v": 1})
                    await recv_json(ws)
                    publish(srv, "h.ttl", {"v": 2})
                    await recv_json(ws)
                    await asyncio.sleep(2.5)
                    # Still subscribed: the topic lives on, its history is gone.
                    async with websockets.connect(srv.url(f"?topics=h.ttl&since=h.ttl:{epoch}:1")) as ws2:
                        ack = (await acks(ws2, 1))["h.ttl"]
                        self.assertEqual((ack["epoch"], ack["recovered"]), (epoch, False))
                        gap = await recv_json(ws2)
                        self.assertEqual((gap["from"], gap["to"], gap["reason"]), (2, 2, "history"))
            asyncio.run(run())

    def test_bad_positions_are_refused_with_reasons(self):
        with Server("--history", "10", threads=2) as srv:
            for q, why in [("?topics=a&since=a:xyz:1", "bad since item"),
                           ("?topics=a&since=b:0123456789abcdef:1", "which topics= does not"),
                           ("?topics=a&since=a:0123456789abcdef:-1", "bad since item"),
                           ("?topics=a&format=raw&since=a:0123456789abcdef:1", "format=raw"),
                           ("?topics=a&snapshot=maybe", "bad snapshot")]:
                status, _, body = srv.http("GET", "/ws" + q, headers={
                    "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
                self.assertEqual(status, 400, q)
                self.assertIn(why, body.decode(), q)

            async def run():
                async with websockets.connect(srv.url()) as ws:
                    for cmd, why in [
                        ({"op": "subscribe", "topics": ["a"], "since": {"b": {"epoch": "0123456789abcdef", "seq": 1}}},
                         "which \"topics\" does not"),
                        ({"op": "subscribe", "topics": ["a"], "since": {"a": {"epoch": "short", "seq": 1}}},
                         "must be {\"epoch\""),
                        ({"op": "subscribe", "topics": ["a"], "since": {"a": {"epoch": "0123456789abcdef", "seq": 1.5}}},
                         "must be {\"epoch\""),
                        ({"op": "subscribe", "topics": ["a"], "snapshot": 1}, "true or false"),
                    ]:
                        await ws.send(json.dumps(cmd))
                        m = await recv_json(ws)
                        self.assertEqual(m["type"], "error", m)
                        self.assertIn(why, m["error"])
                    # A position ahead of the topic: said, then live from the real seq.
                    publish(srv, "a", {"v": 1})
                    await ws.send(json.dumps({"op": "subscribe", "topics": ["a"]}))
                    epoch = (await recv_json(ws))["epoch"]
                async with websockets.connect(srv.url(f"?topics=a&since=a:{epoch}:99")) as ws:
                    ack = (await acks(ws, 1))["a"]
                    self.assertFalse(ack["recovered"])
                    err = await recv_json(ws)
                    self.assertEqual(err["type"], "error")
                    self.assertIn("past this topic's seq 1", err["error"])
            asyncio.run(run())


class Pipelined(unittest.TestCase):
    def test_an_unsubscribe_sent_before_the_101_does_not_hold_the_101_back(self):
        # The 101 waits for the URL topics to go live; a client that sends an
        # unsubscribe right behind its request (before the 101) ends one while
        # pending: the 101 must still come, and only the other topic is acked.
        import base64
        import os
        import socket
        from rcserver import RawWs
        with Server(threads=4) as srv:
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            key = base64.b64encode(os.urandom(16))
            req = (b"GET /ws?topics=p.a,p.b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
            cmd = json.dumps({"op": "unsubscribe", "topics": ["p.a"]}).encode()
            sock.sendall(req + RawWs.frame(0x1, cmd))
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(4096)
                self.assertTrue(chunk, "closed before the 101")
                buf += chunk
            self.assertTrue(buf.startswith(b"HTTP/1.1 101"), buf[:40])
            ws = RawWs.__new__(RawWs)
            ws.sock, ws.buf = sock, buf.split(b"\r\n\r\n", 1)[1]
            got = [json.loads(ws.recv_frame()[1]) for _ in range(2)]
            kinds = sorted((m["type"], m["op"], m.get("topic", "")) for m in got)
            self.assertEqual(kinds, [("ack", "subscribe", "p.b"), ("ack", "unsubscribe", "")])
            publish(srv, "p.b", {"v": 1})
            publish(srv, "p.a", {"v": 1})
            m = json.loads(ws.recv_frame()[1])
            self.assertEqual((m["type"], m["topic"]), ("msg", "p.b"))
            sock.close()


class Heartbeat(unittest.TestCase):
    def test_quiet_topics_get_one_heartbeat_per_period_with_the_last_seq(self):
        with Server("--topic-heartbeat", "1", threads=4) as srv:
            async def run():
                async with websockets.connect(srv.url("?topics=hb.a,hb.b")) as ws, \
                        websockets.connect(srv.url("?topics=hb.a&format=raw")) as raw:
                    await acks(ws, 2)
                    publish(srv, "hb.a", {"v": 1})
                    m = await recv_json(ws)
                    self.assertEqual((m["type"], m["seq"]), ("msg", 1))
                    self.assertEqual(json.loads(await asyncio.wait_for(raw.recv(), 10)), {"v": 1})
                    beats = {}
                    t0 = time.monotonic()
                    while len(beats) < 2 or min(len(v) for v in beats.values()) < 2:
                        m = await recv_json(ws, timeout=15)
                        self.assertEqual(m["type"], "hb", m)
                        beats.setdefault(m["topic"], []).append(m["seq"])
                    self.assertEqual(set(beats["hb.a"]), {1})
                    self.assertEqual(set(beats["hb.b"]), {0})
                    self.assertLess(time.monotonic() - t0, 12)
                    # The raw stream carries payloads only: no heartbeat reached it.
                    publish(srv, "hb.a", {"v": 2})
                    self.assertEqual(json.loads(await asyncio.wait_for(raw.recv(), 10)), {"v": 2})
            asyncio.run(run())
            m = srv.metrics()
            self.assertGreaterEqual(sum(v for k, v in m.items() if k.startswith("ringcast_topic_heartbeats_total")), 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
