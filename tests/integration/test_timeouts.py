# SPDX-License-Identifier: MIT
"""Slow-loris and idle clients: --handshake-timeout answers 408 to a client that
never completes its request, --ping-interval pings silent WebSocket clients, and
--idle-timeout closes those that never answer while pong-answering clients stay."""
import asyncio
import json
import select
import socket
import subprocess
import sys
import time
import unittest

import websockets

from rcserver import BINARY, Server, recv_subscribe_acks, subscriber


class Timeouts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--handshake-timeout", "1", "--idle-timeout", "3", "--ping-interval", "1")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def read_all(self, s, limit=10):
        s.settimeout(limit)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk

    def test_slow_loris_gets_408(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        t0 = time.time()
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        for _ in range(20):  # a header byte every 0.3 s never completes the head
            s.sendall(b"X")
            if select.select([s], [], [], 0.3)[0]:
                break
        out = self.read_all(s)
        self.assertTrue(out.startswith(b"HTTP/1.1 408 "), out)
        self.assertLess(time.time() - t0, 4)
        s.close()

    def test_silent_connection_gets_408(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        self.assertTrue(self.read_all(s).startswith(b"HTTP/1.1 408 "))
        s.close()

    def test_idle_keep_alive_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.time()
        out = self.read_all(s)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 1, "served, then closed without another response")
        self.assertGreater(time.time() - t0, 2.5, "after --idle-timeout, not --handshake-timeout")
        s.close()

    def test_unanswered_pings_close_the_connection(self):
        c = subscriber(self.srv.port, ["timeout.t"])
        t0 = time.time()
        pings = 0
        while True:
            op, _ = c.recv_frame()
            if op == 0x9:
                pings += 1  # never answered
            elif op == 0x8 or op is None:
                break
        self.assertGreaterEqual(pings, 2)
        self.assertGreater(time.time() - t0, 2.5)
        self.assertLess(time.time() - t0, 6)
        c.close()

    def test_answering_client_stays(self):
        async def run():
            async with websockets.connect(self.srv.url("?topics=timeout.ok"), ping_interval=None) as ws:
                await recv_subscribe_acks(ws, ["timeout.ok"])
                await asyncio.sleep(4.5)  # longer than --idle-timeout; pongs keep it alive
                self.srv.publish("timeout.ok", b'{"still":"here"}')
                self.assertEqual(json.loads(await ws.recv())["data"], {"still": "here"})
        asyncio.run(run())
        self.assertGreaterEqual(self.srv.metrics()["ringcast_keepalive_pings_total"], 3)

    def test_ping_interval_must_be_shorter_than_idle_timeout(self):
        r = subprocess.run([BINARY, "--ping-interval", "5", "--idle-timeout", "5"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--ping-interval", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
