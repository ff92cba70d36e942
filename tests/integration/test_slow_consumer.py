# SPDX-License-Identifier: MIT
"""A subscriber that never reads is closed with 1008 once its queue passes
--max-queue, while a reading subscriber of the same topic receives everything."""
import asyncio
import json
import sys
import time
import unittest

import websockets

from rcserver import RawWs, Server

MESSAGES = 3000
SIZE = 4096


class SlowConsumer(unittest.TestCase):
    def test_slow_subscriber_is_cut_and_others_unaffected(self):
        with Server("--max-queue", "256k", threads=2) as srv:
            slow = RawWs(srv.port, "/ws?topics=slow.t")
            asyncio.run(self.scenario(srv))
            m = srv.metrics()
            self.assertEqual(m["ringcast_slow_consumer_disconnects_total"], 1)
            # The slow client reads at last: data, then the 1008 close frame.
            self.assertEqual(slow.recv_close(), 1008)
            slow.close()
            self.assertIn("slow consumer", srv.log_text())

    async def scenario(self, srv):
        async with websockets.connect(srv.url("?topics=slow.t"), max_size=None, ping_interval=None) as fast:
            async def reader():
                seqs = []
                while len(seqs) < MESSAGES:
                    seqs.append(json.loads(await asyncio.wait_for(fast.recv(), 60))["seq"])
                return seqs
            task = asyncio.create_task(reader())
            payload = b"x" * SIZE
            loop = asyncio.get_running_loop()

            def publish_all():
                # Bursts of 80 KiB: well under --max-queue, so only a reader that
                # stops reading can fall behind by 256 KiB.
                for start in range(0, MESSAGES, 20):
                    body = b"".join(b"slow.t %d\n%s\n" % (len(payload), payload) for _ in range(20))
                    status, _, data = srv.http("POST", "/publish", body=body)
                    assert status == 200, data
            await loop.run_in_executor(None, publish_all)
            seqs = await task
            self.assertEqual(seqs, list(range(1, MESSAGES + 1)))
            deadline = time.time() + 10
            while srv.metrics()["ringcast_slow_consumer_disconnects_total"] < 1 and time.time() < deadline:
                await asyncio.sleep(0.05)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
