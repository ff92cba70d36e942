# SPDX-License-Identifier: MIT
"""SIGTERM: every WebSocket client gets a 1001 close, idle HTTP connections are
closed, and the process exits 0 within a bounded time."""
import asyncio
import signal
import socket
import sys
import time
import unittest

import websockets

from rcserver import RawWs, Server


class Shutdown(unittest.TestCase):
    def check(self, sig):
        srv = Server("--demo-feed", threads=2)
        raws = [RawWs(srv.port, "/ws?topics=quotes.AAPL") for _ in range(5)]
        idle_http = socket.create_connection(("127.0.0.1", srv.port), timeout=10)

        async def run():
            clients = [await websockets.connect(srv.url("?topics=quotes.MSFT"), ping_interval=None)
                       for _ in range(20)]
            await asyncio.sleep(0.3)  # the demo feed is flowing
            t0 = time.time()
            srv.proc.send_signal(sig)
            codes = []
            for ws in clients:
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 10)
                except websockets.ConnectionClosed as e:
                    codes.append(e.rcvd.code if e.rcvd else None)
            return codes, t0
        codes, t0 = asyncio.run(run())
        self.assertEqual(codes, [1001] * 20)
        self.assertEqual([r.recv_close() for r in raws], [1001] * 5)
        self.assertEqual(idle_http.recv(1), b"", "idle HTTP connections are closed")
        rc = srv.proc.wait(timeout=10)
        self.assertEqual(rc, 0)
        self.assertLess(time.time() - t0, 5)
        self.assertIn("stopped", srv.log_text())
        srv.stop()

    def test_sigterm(self):
        self.check(signal.SIGTERM)

    def test_sigint(self):
        self.check(signal.SIGINT)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
