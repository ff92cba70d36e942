# SPDX-License-Identifier: MIT
"""The normal conformance cases through an independent client library,
python-websockets: every length form up to 16 MiB, fragmented messages, ping
payloads up to 125 bytes, and the close handshake, all through GET /echo."""
import asyncio
import os
import sys
import unittest

import websockets

from rcserver import Server


class ClientConformance(unittest.TestCase):
    def test_echo_with_python_websockets(self):
        with Server("--echo", "--max-message", "17m", "--max-queue", "64m") as srv:
            asyncio.run(self.scenario(srv))

    async def scenario(self, srv):
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/echo", max_size=None,
                                      ping_interval=None) as ws:
            for n in (0, 125, 126, 65535, 65536, 16 << 20):
                blob = os.urandom(n)
                await ws.send(blob)
                self.assertEqual(await ws.recv(), blob, f"binary of {n} bytes")
                text = "é" * (n // 2)
                await ws.send(text)
                self.assertEqual(await ws.recv(), text, f"text of {len(text.encode())} bytes")
            await ws.send([b"frag", b"", b"mented", b"!"])   # an iterable is sent fragmented
            self.assertEqual(await ws.recv(), b"fragmented!")
            await ws.send(["κό", "σμε", " 😀"])
            self.assertEqual(await ws.recv(), "κόσμε 😀")
            for n in (0, 1, 100, 125):
                waiter = await ws.ping(os.urandom(n))
                await asyncio.wait_for(waiter, 5)   # resolves only on a pong with that payload
            await ws.close(code=1000, reason="done")
            self.assertEqual(ws.close_code, 1000)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
