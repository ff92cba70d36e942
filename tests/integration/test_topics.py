# SPDX-License-Identifier: MIT
"""Topics have a life cycle: a topic lives while it has subscribers (or a publish
on its way) and is reclaimed after, on every shard; --max-topics is checked
before anything is created; a refused command changes nothing (no topic left
behind, no partial subscription); commands are bounded in size and topics. What
filled the old insert-only table for good (one 710 KB batch of 65,536 names) now
leaves nothing behind."""
import json
import time
import unittest

from rcserver import RawWs, Server, subscriber


def topics_alive(srv):
    return srv.metrics()["ringcast_topics"]


def wait_topics(srv, want, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = topics_alive(srv)
        if n == want:
            return n
        time.sleep(0.05)
    return topics_alive(srv)


def command(ws, obj):
    ws.send_text(json.dumps(obj))
    while True:
        op, payload = ws.recv_frame()
        msg = json.loads(payload)
        if msg.get("type") in ("ack", "error", "pong"):
            return msg


def subscribe(ws, names, seqs=0):
    """The subscribe command, its one ack per topic read and checked; returns {topic: ack}."""
    ws.send_text(json.dumps({"op": "subscribe", "topics": names}))
    return ws.recv_subscribe_acks(names, seqs)


def batch_body(names, payload=b"x"):
    return b"".join(b"%s %d\n%s\n" % (n.encode(), len(payload), payload) for n in names)


class Lifecycle(unittest.TestCase):
    def test_topics_are_reclaimed_on_every_shard(self):
        srv = Server()
        try:
            self.assertEqual(topics_alive(srv), 0)
            names = [f"life.{i}" for i in range(64)]  # homes on both shards
            subs = [RawWs(srv.port, "/ws") for _ in range(6)]  # spread over both shards
            epochs = [subscribe(ws, names)["life.3"]["epoch"] for ws in subs]
            self.assertEqual(len(set(epochs)), 1, "one epoch per topic, whichever shard asks")
            self.assertEqual(topics_alive(srv), 64)
            srv.publish("life.3", b"one")
            for ws in subs:
                self.assertEqual(json.loads(ws.recv_frame()[1])["seq"], 1)
            for ws in subs[:3]:
                command(ws, {"op": "unsubscribe", "topics": names})
            self.assertEqual(topics_alive(srv), 64, "still subscribed elsewhere")
            for ws in subs[3:5]:
                ws.close()
            command(subs[5], {"op": "unsubscribe", "topics": names[:32]})
            self.assertEqual(wait_topics(srv, 32), 32, "reclaimed once no shard subscribes")
            subs[5].close()
            self.assertEqual(wait_topics(srv, 0), 0)
            # A reclaimed topic starts again: its sequence begins at 1.
            ws = RawWs(srv.port, "/ws?topics=life.3")
            self.assertNotEqual(ws.recv_subscribe_acks(["life.3"], 0)["life.3"]["epoch"], epochs[0],
                                "a new epoch says the numbering started again")
            srv.publish("life.3", b"again")
            self.assertEqual(json.loads(ws.recv_frame()[1])["seq"], 1)
            ws.close()
            for ws in subs[:3]:
                ws.close()
        finally:
            srv.stop()

    def test_publishing_to_many_new_topics_leaves_nothing_behind(self):
        srv = Server()
        try:
            names = [f"fill.{i:05d}" for i in range(70000)]
            body = batch_body(names)
            self.assertGreater(len(body), 700_000)
            status, _, data = srv.http("POST", "/publish", body=body, timeout=30)
            self.assertEqual(status, 200, data)
            self.assertEqual(json.loads(data)["published"], 70000)
            self.assertEqual(wait_topics(srv, 0, timeout=10), 0, "no subscribers: nothing kept")
            status, _, data = srv.http("POST", "/publish", body=batch_body([f"r.{i}" for i in range(100001)]),
                                       timeout=30)
            self.assertEqual(status, 413, data)
            self.assertIn(b"more than 100000 records", data)
            self.assertEqual(topics_alive(srv), 0)
            ws = subscriber(srv.port, ["fill.new"])
            srv.publish("fill.new", b"still works")
            self.assertEqual(json.loads(ws.recv_frame()[1])["data"], "still works")
            ws.close()
        finally:
            srv.stop()


class MaxTopics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-topics", "100")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_refused_commands_change_nothing(self):
        srv = self.srv
        holder = RawWs(srv.port, "/ws")
        held = [f"held.{i}" for i in range(90)]
        subscribe(holder, held)
        self.assertEqual(topics_alive(srv), 90)

        # A subscribe that would pass --max-topics: refused whole, nothing created.
        ws = RawWs(srv.port, "/ws")
        err = command(ws, {"op": "subscribe", "id": 1, "topics": [f"new.{i}" for i in range(20)]})
        self.assertEqual(err["type"], "error")
        self.assertIn("--max-topics", err["error"])
        self.assertEqual(wait_topics(srv, 90), 90, "the topics made before the refusal are gone")
        srv.publish("new.0", b"nobody")
        # One bad name in a list: nothing subscribed, nothing created.
        err = command(ws, {"op": "subscribe", "topics": ["ok.1", "ok.2", "bad name"]})
        self.assertIn("invalid topic name", err["error"])
        self.assertEqual(wait_topics(srv, 90), 90)
        # A batch publish naming too many new topics: 503, nothing published.
        status, headers, data = srv.http("POST", "/publish", body=batch_body(["held.1"] + [f"b.{i}" for i in range(20)]))
        self.assertEqual(status, 503, data)
        self.assertIn(b"--max-topics", data)
        self.assertIn(b"nothing was published", data)
        self.assertEqual(headers.get("Retry-After"), "1")
        self.assertEqual(wait_topics(srv, 90), 90)
        # The holder got nothing: neither the refused batch's held.1 record nor new.0.
        srv.publish("held.2", b"marker")
        msg = json.loads(holder.recv_frame()[1])
        self.assertEqual((msg["topic"], msg["data"]), ("held.2", "marker"))
        # Within the limit everything works.
        subscribe(ws, ["ok.1", "ok.2"])
        self.assertEqual(topics_alive(srv), 92)
        ws.close()
        holder.close()
        self.assertEqual(wait_topics(srv, 0), 0)

    def test_subscription_limit_is_all_or_nothing(self):
        srv = self.srv
        ws = RawWs(srv.port, "/ws")
        # 1,024 per connection; topics here are bounded by --max-topics 100, so
        # use a server without that bound.
        ws.close()
        big = Server()
        try:
            ws = RawWs(big.port, "/ws")
            first = [f"lim.{i}" for i in range(1000)]
            subscribe(ws, first)
            more = [f"more.{i}" for i in range(30)]
            err = command(ws, {"op": "subscribe", "topics": first[:5] + more})
            self.assertIn("subscription limit of 1024", err["error"])
            self.assertIn("nothing subscribed", err["error"])
            self.assertEqual(wait_topics(big, 1000), 1000, "none of the 30 kept")
            big.publish("more.0", b"not for you")
            big.publish("lim.0", b"for you")
            msg = json.loads(ws.recv_frame()[1])
            self.assertEqual((msg["topic"], msg["data"]), ("lim.0", "for you"))
            err = command(ws, {"op": "unsubscribe", "topics": [f"x.{i}" for i in range(1025)]})
            self.assertIn("more than 1024 topics in one command", err["error"])
            ws.close()
        finally:
            big.stop()

    def test_command_size_is_bounded(self):
        srv = Server("--max-command-bytes", "4k")
        try:
            ws = RawWs(srv.port, "/ws")
            err = command(ws, {"op": "subscribe", "topics": [f"long.name.{i:06d}" for i in range(400)]})
            self.assertIn("exceeds --max-command-bytes (4096)", err["error"])
            self.assertEqual(topics_alive(srv), 0)
            ack = command(ws, {"op": "publish", "topic": "p", "data": "x" * 10000})
            self.assertEqual(ack["type"], "ack", "a publish is bounded by --max-message instead")
            ws.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
