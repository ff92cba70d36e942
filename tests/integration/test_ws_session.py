# SPDX-License-Identifier: MIT
"""WebSocket commands and their replies, and protocol errors closing with the
right code while an unrelated subscriber keeps receiving."""
import asyncio
import json
import struct
import sys
import unittest

import websockets

from rcserver import RawWs, Server, recv_subscribe_acks, subscriber


class WsSession(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-message", "64k")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_commands(self):
        async def run():
            async with websockets.connect(self.srv.url(), ping_interval=None) as ws:
                async def cmd(obj):
                    await ws.send(json.dumps(obj))
                    return json.loads(await ws.recv())
                self.assertEqual(await cmd({"op": "ping", "id": 1}), {"type": "pong", "op": "ping", "id": 1})
                await ws.send(json.dumps({"op": "subscribe", "topics": ["cmd.a", "cmd.b"], "id": "s"}))
                acks = await recv_subscribe_acks(ws, ["cmd.a", "cmd.b"], id="s")  # one per topic, seq 0
                self.assertEqual(await cmd({"op": "subscribe", "topics": ["cmd.b"], "id": "again"}),
                                 {"type": "ack", "op": "subscribe", "id": "again", "topic": "cmd.b",
                                  "already_subscribed": True})
                self.srv.publish("cmd.b", b'{"v":1}')
                msg = json.loads(await ws.recv())
                self.assertEqual(msg, {"type": "msg", "topic": "cmd.b", "seq": 1, "data": {"v": 1}})
                self.assertEqual(acks["cmd.b"]["seq"] + 1, msg["seq"], "the ack's seq is the seam")
                ack = await cmd({"op": "unsubscribe", "topics": ["cmd.b", "cmd.zzz"]})
                self.assertEqual(ack["not_subscribed"], ["cmd.zzz"])
                self.srv.publish("cmd.b", b"ignored")
                self.srv.publish("cmd.a", b"plain text")
                msg = json.loads(await ws.recv())
                self.assertEqual((msg["topic"], msg["data"]), ("cmd.a", "plain text"))
                err = await cmd({"op": "subscribe", "topics": ["no spaces"], "id": 9})
                self.assertEqual((err["type"], err["id"]), ("error", 9))
                self.assertIn("invalid topic name", err["error"])
                err = await cmd({"op": "fly"})
                self.assertIn("unknown \"op\"", err["error"])
                await ws.send("{not json")
                self.assertIn("not valid JSON", json.loads(await ws.recv())["error"])
                await ws.send(b"\x01\x02")
                self.assertIn("binary messages are not commands", json.loads(await ws.recv())["error"])
                await ws.send(json.dumps({"op": "publish", "topic": "cmd.a", "data": "x" * 70000}))
                with self.assertRaises(websockets.ConnectionClosedError) as cm:
                    await ws.recv()
                self.assertEqual(cm.exception.rcvd.code, 1009, "a message over --max-message")
        asyncio.run(run())

    def test_ack_seq_counts_what_was_published_before(self):
        holder = RawWs(self.srv.port, "/ws?topics=cmd.seam")  # keeps the topic (and its seq) alive
        epochs = {holder.recv_subscribe_acks(["cmd.seam"])["cmd.seam"]["epoch"]}
        for i in range(3):
            self.srv.publish("cmd.seam", b"%d" % i)
        # Stamped once the holder has them (an HTTP 200 may come before the home shard stamps).
        self.assertEqual([json.loads(holder.recv_frame()[1])["seq"] for _ in range(3)], [1, 2, 3])
        late = RawWs(self.srv.port, "/ws?topics=cmd.seam")
        epochs.add(late.recv_subscribe_acks(["cmd.seam"], seqs=3)["cmd.seam"]["epoch"])  # three before
        cmd = RawWs(self.srv.port)
        cmd.send_text(json.dumps({"op": "subscribe", "topics": ["cmd.seam"], "id": 5}))
        epochs.add(cmd.recv_subscribe_acks(["cmd.seam"], seqs=3, id=5)["cmd.seam"]["epoch"])
        self.srv.publish("cmd.seam", b"after")
        for ws in (holder, late, cmd):
            self.assertEqual(json.loads(ws.recv_frame()[1])["seq"], 4, "the seq after the ack's")
            ws.close()
        self.assertEqual(len(epochs), 1, "one epoch while the topic lives")

    def test_raw_connection_refuses_more_topics(self):
        async def run():
            async with websockets.connect(self.srv.url("?topics=cmd.raw&format=raw"), ping_interval=None) as ws:
                await ws.send(json.dumps({"op": "subscribe", "topics": ["other"]}))
                self.assertIn("format=raw", json.loads(await ws.recv())["error"])
                self.srv.publish("cmd.raw", b"\xff\x00")
                self.assertEqual(await ws.recv(), b"\xff\x00", "binary payloads go out as binary frames")
        asyncio.run(run())

    def test_ping_pong_and_fragments(self):
        c = RawWs(self.srv.port)
        c.send(0x9, b"are you there")
        self.assertEqual(c.recv_frame(), (0xA, b"are you there"))
        msg = json.dumps({"op": "ping", "id": "frag"}).encode()
        c.send(0x1, msg[:5], fin=False)
        c.send(0x9, b"mid")  # a control frame between fragments is allowed
        c.send(0x0, msg[5:10], fin=False)
        c.send(0x0, msg[10:])
        self.assertEqual(c.recv_frame(), (0xA, b"mid"))
        op, payload = c.recv_frame()
        self.assertEqual(json.loads(payload)["id"], "frag")
        c.send(0x8, struct.pack("!H", 1000) + b"bye")
        self.assertEqual(c.recv_close(), 1000)
        c.close()

    def test_protocol_errors_close_with_the_right_code(self):
        cases = [
            ("unmasked", dict(opcode=0x1, payload=b"{}", mask=False), 1002),
            ("reserved bit", dict(opcode=0x1, payload=b"{}", rsv=4), 1002),
            ("unknown opcode", dict(opcode=0x3, payload=b""), 1002),
            ("long ping", dict(opcode=0x9, payload=b"x" * 126), 1002),
            ("fragmented ping", dict(opcode=0x9, payload=b"x", fin=False), 1002),
            ("lone continuation", dict(opcode=0x0, payload=b"x"), 1002),
            ("bad utf-8", dict(opcode=0x1, payload=b"\xc0\xaf"), 1007),
            ("too big", dict(opcode=0x2, payload=b"x" * 70000), 1009),
            ("1-byte close", dict(opcode=0x8, payload=b"\x03"), 1002),
            ("bad close code", dict(opcode=0x8, payload=struct.pack("!H", 1005)), 1002),
            ("bad close reason", dict(opcode=0x8, payload=struct.pack("!H", 1000) + b"\xff"), 1007),
        ]
        watcher = subscriber(self.srv.port, ["cmd.watch"])
        for i, (name, frame, code) in enumerate(cases):
            c = RawWs(self.srv.port)
            op = frame.pop("opcode")
            payload = frame.pop("payload")
            c.send(op, payload, **frame)
            self.assertEqual(c.recv_close(), code, name)
            c.close()
            self.srv.publish("cmd.watch", str(i).encode())
            op, data = watcher.recv_frame()
            self.assertEqual(json.loads(data)["seq"], i + 1, "other subscribers keep receiving")
        c = RawWs(self.srv.port)
        c.send(0x1, b"{", fin=False)
        c.send(0x1, b"}")
        self.assertEqual(c.recv_close(), 1002, "new message inside a fragmented one")
        watcher.close()
        self.assertGreaterEqual(self.srv.metrics()["ringcast_protocol_errors_total"], len(cases))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
