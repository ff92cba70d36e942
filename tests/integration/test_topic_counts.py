# SPDX-License-Identifier: MIT
"""GET /topics/<name>: a topic's subscribers. One node counts its own; with
--redis every node answers for all of them, from the per-node entries in Redis
(rc:{T}:nodes), and a node killed with -9 drops out once its entry expires
(10 s without renewal). Bad names get 400, a method other than GET 405, and with
Redis away the answer is 503 naming it."""
import asyncio
import http.client
import json
import os
import sys
import time
import unittest

import websockets

sys.path.insert(0, os.path.dirname(__file__))
from rccluster import Cluster  # noqa: E402
from rcserver import Server  # noqa: E402


def get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def wait_for(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


class TopicCounts(unittest.TestCase):
    def test_one_node_counts_its_own(self):
        with Server("--threads", "2") as srv:
            async def run():
                subs = [await websockets.connect(f"ws://127.0.0.1:{srv.port}/ws?topics=c.one") for _ in range(3)]
                for ws in subs:
                    json.loads(await ws.recv())  # the ack: subscribed
                status, body = get(srv.port, "/topics/c.one")
                self.assertEqual((status, json.loads(body)), (200, {"topic": "c.one", "subscribers": 3}))
                await subs[0].close()
                wait_for(lambda: json.loads(get(srv.port, "/topics/c.one")[1])["subscribers"] == 2,
                         "the count follows a close")
                for ws in subs[1:]:
                    await ws.close()
            asyncio.run(run())
            self.assertEqual(json.loads(get(srv.port, "/topics/never")[1]), {"topic": "never", "subscribers": 0})
            status, body = get(srv.port, "/topics/bad%20name")
            self.assertEqual(status, 400, body)
            self.assertIn("invalid topic name", body)
            self.assertEqual(get(srv.port, "/topics/c.one", "DELETE")[0], 405)

    def test_counts_across_nodes_and_a_dead_nodes_expire(self):
        with Cluster(3) as c:
            a, b, d = c.nodes
            async def run():
                on_a = [await websockets.connect(f"ws://127.0.0.1:{a.port}/ws?topics=c.all") for _ in range(2)]
                on_b = [await websockets.connect(f"ws://127.0.0.1:{b.port}/ws?topics=c.all")]
                for ws in on_a + on_b:
                    json.loads(await ws.recv())
                want = {"topic": "c.all", "subscribers": 3, "nodes": {a.name: 2, b.name: 1}}
                for nd in (a, b, d):  # d has none, and answers for all
                    wait_for(lambda nd=nd: json.loads(get(nd.port, "/topics/c.all")[1]) == want,
                             f"{nd.name} answering {want}")
                a.kill()  # its clients are gone with it; its entry is not
                wait_for(lambda: json.loads(get(d.port, "/topics/c.all")[1])
                         == {"topic": "c.all", "subscribers": 1, "nodes": {b.name: 1}},
                         "the dead node's count expiring", timeout=25)
                for ws in on_b:
                    await ws.close()
            asyncio.run(run())
            c.redis.stop()
            status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(get(d.port, "/topics/c.all")),
                                    "503 with Redis away")
            self.assertIn("redis", body.lower())


if __name__ == "__main__":
    unittest.main()
