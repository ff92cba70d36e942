# SPDX-License-Identifier: MIT
"""A subscriber that never reads is closed with 1008 once its queue passes
--max-queue, while a reading subscriber of the same topic receives everything."""
import asyncio
import json
import sys
import time
import unittest

import websockets

from rcserver import Server, recv_subscribe_acks, subscriber

MESSAGES = 3000
SIZE = 4096


class SlowConsumer(unittest.TestCase):
    def test_slow_subscriber_is_cut_and_others_unaffected(self):
        with Server("--max-queue", "256k", threads=2) as srv:
            slow = subscriber(srv.port, ["slow.t"])
            asyncio.run(self.scenario(srv))
            m = srv.metrics()
            self.assertEqual(m["ringcast_slow_consumer_disconnects_total"], 1)
            # The slow client reads at last: data, then the 1008 close frame.
            self.assertEqual(slow.recv_close(), 1008)
            slow.close()
            self.assertIn("slow consumer", srv.log_text())

    async def scenario(self, srv):
        async with websockets.connect(srv.url("?topics=slow.t"), max_size=None, ping_interval=None) as fast:
            await recv_subscribe_acks(fast, ["slow.t"])
            payload = b"x" * SIZE
            loop = asyncio.get_running_loop()
            seqs = []
            # Bursts of 80 KiB, each read by the fast subscriber before the next is
            # published: it never lags by more than one burst, well under
            # --max-queue, while the subscriber that stopped reading falls behind.
            for start in range(0, MESSAGES, 20):
                body = b"".join(b"slow.t %d\n%s\n" % (len(payload), payload) for _ in range(20))
                status, _, data = await loop.run_in_executor(None, lambda: srv.http("POST", "/publish", body=body))
                self.assertEqual(status, 200, data)
                for _ in range(20):
                    seqs.append(json.loads(await asyncio.wait_for(fast.recv(), 60))["seq"])
            self.assertEqual(seqs, list(range(1, MESSAGES + 1)))
            deadline = time.time() + 10
            while srv.metrics()["ringcast_slow_consumer_disconnects_total"] < 1 and time.time() < deadline:
                await asyncio.sleep(0.05)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
