# SPDX-License-Identifier: MIT
"""Behaviour fixed while cutting the core into layers: a WebSocket publish is
acknowledged after its home shard stamped it, with the seq; two back-to-back
frames near --max-message both pass; a text frame with invalid UTF-8 early in it
fails as soon as that piece arrives, not once the whole frame is in."""
import json
import struct
import time
import unittest

from rcserver import RawWs, Server, subscriber


class PublishAck(unittest.TestCase):
    def test_ack_carries_the_seq_the_subscribers_see(self):
        with Server(threads=2) as srv:
            topics = [f"ack.{i}" for i in range(16)]  # homed on both shards
            sub = subscriber(srv.port, topics)  # one ack per topic, seq 0
            pub = RawWs(srv.port, "/ws")
            for rnd in range(3):
                for i, t in enumerate(topics):
                    pub.send_text(json.dumps({"op": "publish", "topic": t, "data": {"n": rnd},
                                              "id": f"{t}/{rnd}"}))
            acks = {}
            while len(acks) < 3 * len(topics):
                op, payload = pub.recv_frame()
                self.assertEqual(op, 1)
                m = json.loads(payload)
                self.assertEqual((m["type"], m["op"]), ("ack", "publish"), m)
                acks[m["id"]] = m
            got = {}
            while len(got) < 3 * len(topics):
                op, payload = sub.recv_frame()
                m = json.loads(payload)
                got[(m["topic"], m["data"]["n"])] = m["seq"]
            for t in topics:
                for rnd in range(3):
                    a = acks[f"{t}/{rnd}"]
                    self.assertEqual(a["topic"], t)
                    self.assertEqual(a["seq"], got[(t, rnd)], "the ack names the delivered seq")
                    self.assertEqual(a["seq"], rnd + 1)
            # An id that is a number comes back as a number; no id, no id.
            pub.send_text(json.dumps({"op": "publish", "topic": topics[0], "data": 1, "id": 42}))
            pub.send_text(json.dumps({"op": "publish", "topic": topics[1], "data": 1}))
            seen = [json.loads(pub.recv_frame()[1]) for _ in range(2)]
            self.assertIn(42, [m.get("id") for m in seen])
            self.assertIn(None, [m.get("id") for m in seen])
            pub.close()
            sub.close()


class FramesNearTheLimit(unittest.TestCase):
    def test_two_back_to_back_frames_near_max_message(self):
        with Server("--echo", "--max-message", "64k") as srv:
            ws = RawWs(srv.port, "/echo")
            a, b = b"a" * 65536, b"b" * 65530  # at the limit, and just under it
            ws.sock.sendall(RawWs.frame(0x2, a) + RawWs.frame(0x2, b))
            self.assertEqual(ws.recv_frame(), (0x2, a))
            self.assertEqual(ws.recv_frame(), (0x2, b))
            ws.close()

    def test_message_over_the_limit_across_fragments(self):
        with Server("--echo", "--max-message", "64k") as srv:
            ws = RawWs(srv.port, "/echo")
            ws.sock.sendall(RawWs.frame(0x2, b"x" * 40000, fin=False) + RawWs.frame(0x0, b"y" * 40000))
            self.assertEqual(ws.recv_close(), 1009)
            ws.close()


class Utf8FailsFast(unittest.TestCase):
    def test_invalid_utf8_early_in_a_partial_frame(self):
        with Server("--echo") as srv:
            ws = RawWs(srv.port, "/echo")
            payload = b"ok \xff" + b"x" * 199996
            frame = RawWs.frame(0x1, payload)
            ws.sock.sendall(frame[:2000])  # the frame is far from complete
            ws.sock.settimeout(5)
            start = time.time()
            self.assertEqual(ws.recv_close(), 1007)
            self.assertLess(time.time() - start, 4, "closed without waiting for the rest")
            ws.close()

    def test_code_point_split_across_pieces_is_fine(self):
        with Server("--echo") as srv:
            ws = RawWs(srv.port, "/echo")
            payload = ("é" * 5000).encode()
            frame = RawWs.frame(0x1, payload)
            for i in range(0, len(frame), 777):  # pieces cut inside code points
                ws.sock.sendall(frame[i:i + 777])
                time.sleep(0.002)
            self.assertEqual(ws.recv_frame(), (0x1, payload))
            ws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
