# SPDX-License-Identifier: MIT
"""Cross-shard wake-ups: with two shards, subscribers on both and topics homed on
both, every publish hops to its home shard and back out to the other shard, waking
whichever sleeps. Over many idle/busy cycles (a batch every 2 ms, the shards idle
between) every delivery must arrive within 50 ms: a lost doorbell shows up as a
delivery that waited for the shard's one-second safety net."""
import json
import os
import subprocess
import tempfile
import unittest

from rcserver import Server

BENCH = os.environ.get("RINGCAST_BENCH", os.path.join(os.path.dirname(__file__), "../../build/ringcast-bench"))
BOUND_MS = 50


class CrossShardWakeups(unittest.TestCase):
    def test_every_delivery_within_bound(self):
        with Server(threads=2) as srv, tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [BENCH, "--url", f"ws://127.0.0.1:{srv.port}/ws?topics={{topic}}",
                   "--publish", f"http://127.0.0.1:{srv.port}/publish", "--json", out.name,
                   "--conns", "64", "--topics", "32", "--rate", "300", "--duration", "15",
                   "--drain", "3"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            res = json.load(open(out.name))
            self.assertEqual((res["connected"], res["missing"], res["gaps"]), (64, 0, 0))
            self.assertGreater(res["published"], 3000)
            lat = res["latency_ms"]
            print(f"{res['published']} published, {lat['count']} deliveries: p50 {lat['p50']} ms, "
                  f"p99 {lat['p99']} ms, max {lat['max']} ms")
            self.assertLess(lat["max"], BOUND_MS,
                            f"a delivery took {lat['max']} ms (a lost wake-up waits ~1000 ms)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
