# SPDX-License-Identifier: MIT
"""2,000 python-websockets subscribers over eight topics on four shards (more shards
than cores, so fan-out crosses shards): every message published over HTTP (single
and batch) and over WebSocket arrives exactly once, in order, with contiguous
sequence numbers, in both the envelope and the raw format."""
import asyncio
import json
import sys
import unittest
import urllib.request

import websockets

from rcserver import Server, recv_subscribe_acks

SUBSCRIBERS = 2000
TOPICS = [f"fan.t{i}" for i in range(8)]
PER_KIND = 20  # messages per topic per publishing path


def topics_of(i):
    return sorted({TOPICS[i % 8], TOPICS[(i + 3) % 8]})


class FanoutTest(unittest.TestCase):
    def test_every_subscriber_gets_everything_in_order(self):
        with Server("--max-conns", "4000", "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0", "--connect-rate-per-ip", "0", threads=4) as srv:
            asyncio.run(self.run_scenario(srv))
            m = srv.metrics()
            self.assertEqual(m["ringcast_messages_published_total"], len(TOPICS) * PER_KIND * 3)
            self.assertEqual(m["ringcast_slow_consumer_disconnects_total"], 0)
            shards_with_conns = sum(1 for k, v in m.items()
                                    if k.startswith("ringcast_shard_connections_accepted_total{") and v > 100)
            self.assertGreaterEqual(shards_with_conns, 3, "SO_REUSEPORT spreads connections over shards")

    async def run_scenario(self, srv):
        expected_per_topic = PER_KIND * 3
        conns = []
        for start in range(0, SUBSCRIBERS, 250):
            batch = [websockets.connect(srv.url("?topics=" + ",".join(topics_of(i))), max_size=None,
                                        ping_interval=None, close_timeout=1)
                     for i in range(start, min(start + 250, SUBSCRIBERS))]
            conns += await asyncio.gather(*batch)
        # Each envelope subscriber's topics are acknowledged (seq 0: nothing published
        # yet), each topic with one epoch for all; format=raw connections get no acks.
        acks = await asyncio.gather(*(recv_subscribe_acks(ws, topics_of(i), timeout=60)
                                      for i, ws in enumerate(conns)))
        epochs = {}
        for by_topic in acks:
            for t, ack in by_topic.items():
                self.assertEqual(epochs.setdefault(t, ack["epoch"]), ack["epoch"], f"one epoch for {t}")
        self.assertEqual(sorted(epochs), TOPICS)
        raw_topic = TOPICS[5]
        raws = [await websockets.connect(srv.url(f"?topics={raw_topic}&format=raw"), ping_interval=None)
                for _ in range(5)]

        async def collect(ws, n):
            got = []
            while len(got) < n:
                got.append(await asyncio.wait_for(ws.recv(), 60))
            return got

        receivers = [asyncio.create_task(collect(ws, expected_per_topic * len(topics_of(i))))
                     for i, ws in enumerate(conns)]
        raw_receivers = [asyncio.create_task(collect(ws, expected_per_topic)) for ws in raws]

        loop = asyncio.get_running_loop()
        # 1) single HTTP publishes
        def http_publishes():
            for k in range(PER_KIND):
                for t in TOPICS:
                    srv.publish(t, json.dumps({"via": "http", "k": k, "t": t}).encode())
        await loop.run_in_executor(None, http_publishes)
        # 2) one batch request per round, all topics
        def batch_publishes():
            for k in range(PER_KIND):
                body = b""
                for t in TOPICS:
                    payload = json.dumps({"via": "batch", "k": k, "t": t}).encode()
                    body += f"{t} {len(payload)}\n".encode() + payload + b"\n"
                status, _, data = srv.http("POST", "/publish", body=body)
                assert status == 200 and json.loads(data)["published"] == len(TOPICS), data
        await loop.run_in_executor(None, batch_publishes)
        # 3) WebSocket publish commands, each acknowledged
        async with websockets.connect(srv.url(), ping_interval=None) as pub:
            for k in range(PER_KIND):
                for t in TOPICS:
                    await pub.send(json.dumps({"op": "publish", "topic": t, "id": k,
                                               "data": {"via": "ws", "k": k, "t": t}}))
                    ack = json.loads(await pub.recv())
                    assert ack["type"] == "ack" and ack["id"] == k, ack

        results = await asyncio.gather(*receivers)
        raw_results = await asyncio.gather(*raw_receivers)
        order = {}  # topic -> list of payloads by seq, identical for every subscriber
        for i, msgs in enumerate(results):
            per_topic = {}
            for text in msgs:
                m = json.loads(text)
                self.assertEqual(m["type"], "msg")
                per_topic.setdefault(m["topic"], []).append(m)
            self.assertEqual(sorted(per_topic), topics_of(i))
            for t, ms in per_topic.items():
                self.assertEqual([m["seq"] for m in ms], list(range(1, expected_per_topic + 1)),
                                 f"subscriber {i} topic {t}: contiguous, in order, exactly once")
                datas = [m["data"] for m in ms]
                if t not in order:
                    order[t] = datas
                    kinds = sorted((d["via"], d["k"]) for d in datas)
                    self.assertEqual(kinds, sorted((v, k) for v in ("http", "batch", "ws")
                                                   for k in range(PER_KIND)))
                    self.assertTrue(all(d["t"] == t for d in datas))
                else:
                    self.assertEqual(order[t], datas, "every subscriber sees one order")
        for msgs in raw_results:
            self.assertEqual([json.loads(x) for x in msgs], order[raw_topic], "raw = payload only")
        for ws in conns + raws:
            await ws.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
