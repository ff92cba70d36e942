# SPDX-License-Identifier: MIT
"""RFC 6455 conformance through GET /echo with a raw client that sends exactly the
bytes each case needs: normal messages of every length form, fragmentation, control
frames, the close handshake, and every kind of malformed input with the close code
the RFC asks for, followed by a closed connection. Meanwhile a subscriber on /ws
keeps receiving every message published, in order and without stalls."""
import json
import os
import struct
import sys
import threading
import time
import unittest

from rcserver import RawWs, Server, subscriber

MAX_MESSAGE = 17 << 20


class Conformance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--echo", "--max-message", str(MAX_MESSAGE), "--max-queue", "64m")
        # A bystander: receives a message every 20 ms for the whole run.
        cls.stop = threading.Event()
        cls.watcher = subscriber(cls.srv.port, ["conf.watch"])
        cls.published = 0

        def publish():
            while not cls.stop.is_set():
                cls.srv.publish("conf.watch", b'{"n":%d}' % cls.published)
                cls.published += 1
                time.sleep(0.02)
        cls.publisher = threading.Thread(target=publish)
        cls.publisher.start()

    @classmethod
    def tearDownClass(cls):
        cls.stop.set()
        cls.publisher.join()
        seqs, last, worst_gap = [], time.time(), 0.0
        cls.watcher.sock.settimeout(10)
        while len(seqs) < cls.published:
            op, data = cls.watcher.recv_frame()
            assert op == 0x1, (op, data)
            now = time.time()
            worst_gap, last = max(worst_gap, now - last), now
            seqs.append(json.loads(data)["seq"])
        cls.watcher.close()
        cls.srv.stop()
        assert seqs == list(range(1, cls.published + 1)), "the bystander lost or reordered messages"
        print(f"\nbystander received all {cls.published} messages in order", file=sys.stderr)

    def echo(self):
        return RawWs(self.srv.port, "/echo")

    def assertClosedWith(self, c, code, what):
        self.assertEqual(c.recv_close(), code, what)
        self.assertEqual(c.recv_frame(), (None, b""), f"{what}: TCP closed after the close frame")
        c.close()

    # ---- normal traffic ---------------------------------------------------------
    def test_lengths_text_and_binary(self):
        c = self.echo()
        for n in (0, 1, 125, 126, 127, 65535, 65536, 100000):
            for op, payload in ((0x1, b"a" * n), (0x2, os.urandom(n))):
                c.send(op, payload)
                self.assertEqual(c.recv_frame(), (op, payload), f"opcode {op} length {n}")
        c.close()

    def test_16_mib_messages(self):
        c = self.echo()
        for op, payload in ((0x2, os.urandom(16 << 20)), (0x1, b"x" * (16 << 20))):
            c.send(op, payload)
            got = c.recv_frame()
            self.assertEqual((got[0], len(got[1])), (op, len(payload)))
            self.assertTrue(got[1] == payload)
        c.close()

    def test_fragmentation(self):
        c = self.echo()
        text = "fragmented κόσμε 😀 message".encode()
        ways = {
            "two halves": [text[:10], text[10:]],
            "one byte each": [text[i:i + 1] for i in range(len(text))],
            "empty first and last": [b"", text, b""],
            "split inside code points": [text[:18], text[18:21], text[21:30], text[30:]],
        }
        for name, parts in ways.items():
            for i, part in enumerate(parts):
                op = 0x1 if i == 0 else 0x0
                c.send(op, part, fin=(i == len(parts) - 1))
            self.assertEqual(c.recv_frame(), (0x1, text), name)
        # Binary, with pings between the fragments: pongs come back at once.
        blob = os.urandom(3000)
        c.send(0x2, blob[:1000], fin=False)
        c.send(0x9, b"p1")
        c.send(0x0, blob[1000:2000], fin=False)
        c.send(0x9, b"p2")
        c.send(0x0, blob[2000:])
        self.assertEqual(c.recv_frame(), (0xA, b"p1"))
        self.assertEqual(c.recv_frame(), (0xA, b"p2"))
        self.assertEqual(c.recv_frame(), (0x2, blob))
        c.close()

    def test_ping_pong(self):
        c = self.echo()
        for n in (0, 1, 64, 125):
            payload = os.urandom(n)
            c.send(0x9, payload)
            self.assertEqual(c.recv_frame(), (0xA, payload), f"pong echoes a {n}-byte ping payload")
        c.send(0xA, b"unsolicited")  # ignored
        c.send(0x1, b"after pong")
        self.assertEqual(c.recv_frame(), (0x1, b"after pong"))
        c.close()

    def test_frames_split_across_reads(self):
        c = self.echo()
        frame = RawWs.frame(0x1, b"split delivery")
        for b in frame:
            c.sock.sendall(bytes([b]))
            time.sleep(0.001)
        self.assertEqual(c.recv_frame(), (0x1, b"split delivery"))
        c.sock.sendall(RawWs.frame(0x1, b"one") + RawWs.frame(0x2, b"two") + RawWs.frame(0x9, b"three"))
        self.assertEqual([c.recv_frame() for _ in range(3)], [(0x1, b"one"), (0x2, b"two"), (0xA, b"three")])
        c.close()

    def test_close_handshake(self):
        for code in (1000, 1001, 1003, 1011, 3000, 4999):
            c = self.echo()
            c.send(0x8, struct.pack("!H", code) + "déjà vu".encode())
            self.assertClosedWith(c, code, f"valid close code {code} is echoed")
        c = self.echo()
        c.send(0x8, b"")
        self.assertClosedWith(c, 1000, "a close without a code")
        c = self.echo()
        c.send(0x8, struct.pack("!H", 1000))
        c.send(0x1, b"data after close")  # ignored
        self.assertClosedWith(c, 1000, "data after a close is ignored")

    # ---- malformed input --------------------------------------------------------
    def test_protocol_errors(self):
        cases = [
            ("unmasked frame", RawWs.frame(0x1, b"hi", mask=False), 1002),
            ("RSV1", RawWs.frame(0x1, b"hi", rsv=4), 1002),
            ("RSV2", RawWs.frame(0x1, b"hi", rsv=2), 1002),
            ("RSV3", RawWs.frame(0x1, b"hi", rsv=1), 1002),
            *[(f"reserved opcode {op:#x}", RawWs.frame(op, b""), 1002) for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)],
            ("ping over 125 bytes", RawWs.frame(0x9, b"x" * 126), 1002),
            ("close over 125 bytes", RawWs.frame(0x8, struct.pack("!H", 1000) + b"x" * 124), 1002),
            ("fragmented ping", RawWs.frame(0x9, b"x", fin=False), 1002),
            ("continuation without a start", RawWs.frame(0x0, b"x"), 1002),
            ("new text inside a fragmented message",
             RawWs.frame(0x1, b"a", fin=False) + RawWs.frame(0x1, b"b"), 1002),
            ("new binary inside a fragmented message",
             RawWs.frame(0x2, b"a", fin=False) + RawWs.frame(0x2, b"b"), 1002),
            ("invalid UTF-8", RawWs.frame(0x1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007),
            ("overlong UTF-8", RawWs.frame(0x1, b"\xc0\x80"), 1007),
            ("truncated UTF-8 at the end", RawWs.frame(0x1, b"abc\xe2\x82"), 1007),
            ("close with a 1-byte payload", RawWs.frame(0x8, b"\x03"), 1002),
            *[(f"close code {code}", RawWs.frame(0x8, struct.pack("!H", code)), 1002)
              for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)],
            ("close reason not UTF-8", RawWs.frame(0x8, struct.pack("!H", 1000) + b"\xff\xfe"), 1007),
            ("16-bit length below 126", b"\x82\xfe\x00\x05" + b"\x00" * 4 + b"x" * 5, 1002),
            ("64-bit length below 65536", b"\x82\xff" + struct.pack("!Q", 200) + b"\x00" * 4, 1002),
            ("64-bit length with the top bit", b"\x82\xff" + struct.pack("!Q", 1 << 63) + b"\x00" * 4, 1002),
            ("message over --max-message", b"\x82\xff" + struct.pack("!Q", MAX_MESSAGE + 1) + b"\x00" * 4, 1009),
        ]
        for name, data, code in cases:
            c = self.echo()
            c.sock.sendall(data)
            self.assertClosedWith(c, code, name)

    def test_utf8_fails_fast_across_fragments(self):
        c = self.echo()
        c.send(0x1, b"ok \xf0\x9f", fin=False)      # valid so far
        c.send(0x0, b"\x28 then more", fin=False)   # 0x28 cannot continue the code point
        # The close arrives without the final fragment ever being sent.
        self.assertClosedWith(c, 1007, "invalid UTF-8 split across fragments")

    def test_fragmented_total_over_max_message(self):
        c = self.echo()
        chunk = b"x" * (6 << 20)
        c.send(0x2, chunk, fin=False)
        c.send(0x0, chunk, fin=False)
        # Only the header of a third 6 MiB fragment: the total is refused from it.
        c.sock.sendall(b"\x00\xff" + struct.pack("!Q", 6 << 20) + b"\x00" * 4)
        self.assertClosedWith(c, 1009, "fragments adding up past --max-message")

    def test_close_frame_survives_unread_input(self):
        # The server stops reading at the error but lingers: the client, still
        # sending, must receive the close frame rather than a reset.
        c = self.echo()
        c.sock.sendall(RawWs.frame(0x1, b"x", mask=False) + RawWs.frame(0x1, b"y" * 100000))
        self.assertClosedWith(c, 1002, "close frame delivered despite unread input")

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
