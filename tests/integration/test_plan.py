# SPDX-License-Identifier: MIT
"""tools/ringcast-plan: on the repository's measurements (every coefficient it
reports is what the cited file holds), on synthetic results whose plan is worked
out by hand below, and its refusals of bad input (missing or foreign files,
negative numbers, results without the figures a plan needs)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
TOOL = os.path.join(ROOT, "tools/ringcast-plan")
PY = "/usr/bin/python3"


def run(*args):
    r = subprocess.run([PY, TOOL, *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def plan_json(*args):
    rc, out, err = run(*args, "--json")
    assert rc == 0, err
    return json.loads(out)


def fanout_result(conns, size, rate, cost, p99_ms, bytes_per_delivery, tls=False):
    dps = conns * rate
    return {"scenario": "fanout", "conns": conns, "connected": conns, "topics": 1, "size": size, "tls": tls,
            "delivered": dps * 10, "bytes": dps * 10 * bytes_per_delivery,
            "steps": [{"rate": rate, "deliveries_per_s": dps, "bytes_per_s": dps * bytes_per_delivery,
                       "cpu_s_per_million": cost, "p99_ms": p99_ms, "missing": 0}]}


class RepositoryInputs(unittest.TestCase):
    def test_market_data_plan_cites_real_files(self):
        p = plan_json("--connections", "50000", "--topics", "200", "--msgs-per-sec", "2000", "--size", "200",
                      "--history", "600", "--node-cores", "16", "--node-memory", "64g")
        self.assertEqual(p["deliveries_per_sec"], 500000)
        self.assertEqual(p["msgs_per_subscriber_per_sec"], 10)
        k = p["coefficients"]
        # Each coefficient is what its file says.
        with open(os.path.join(ROOT, k["kernel_bytes_per_socket"]["source"])) as f:
            self.assertEqual(json.load(f)["kernel_bytes_per_socket"], k["kernel_bytes_per_socket"]["value"])
        with open(os.path.join(ROOT, k["rss_bytes_per_connection"]["source"])) as f:
            self.assertEqual(json.load(f)["rss_per_conn_bytes"], k["rss_bytes_per_connection"]["value"])
        with open(os.path.join(ROOT, k["cpu_us_per_delivery"]["source"])) as f:
            costs = [s["cpu_s_per_million"] for s in json.load(f)["steps"]]
        self.assertIn(k["cpu_us_per_delivery"]["value"], costs)
        # The arithmetic holds together.
        cores = p["cores"]
        self.assertAlmostEqual(cores["deliveries"], 500000 * k["cpu_us_per_delivery"]["value"] / 1e6)
        self.assertAlmostEqual(cores["with_headroom"], cores["load"] * 1.5)
        self.assertEqual(p["nodes"]["needed"], max(v for key, v in p["nodes"].items() if key != "needed"))

    def test_every_default_input_exists_and_is_read(self):
        with open(os.path.join(ROOT, "bench/results/plan-inputs.txt")) as f:
            paths = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        self.assertGreater(len(paths), 10)
        for path in paths:
            self.assertTrue(os.path.isfile(os.path.join(ROOT, path)), path)

    def test_tls_plan_and_text_output(self):
        rc, out, err = run("--connections", "5000", "--topics", "500", "--msgs-per-sec", "10000", "--size", "1024",
                           "--tls", "yes", "--reconnect-within", "30")
        self.assertEqual(rc, 0, err)
        for text in ("cores:", "memory:", "network:", "+ TLS", "full handshakes per core-second",
                     "ringcast_send_latency_seconds", "ringcast_slow_consumer_disconnects_total",
                     "ringcast_connections_active", "ringcast_shard_backlog_bytes"):
            self.assertIn(text, out)


class HandComputed(unittest.TestCase):
    """Synthetic results, and the plan worked out by hand:

    cleartext steps: 10 msg/s per subscriber at 5.0 us per delivery (p99 20 ms),
    100 msg/s at 1.0 us (p99 10 ms); 150 bytes per delivery for 100-byte payloads,
    so the envelope is 50 bytes. Idle: 400 B (ws), 2,000 B (wss) per connection;
    the kernel 4,600 B per socket. wss beside ws at 100 msg/s: 1.6 us, so TLS costs
    0.6 us / 150 B = 4 ns per byte.

    Workload: 10,000 connections over 100 topics, 10,000 msg/s of 100 bytes:
    fan-out 100, 1,000,000 deliveries/s, 100 msg/s per subscriber -> 1.0 us.
    cores: 1e6 x 1.0 us = 1.0, publishes 10,000 x 3.61927 us = 0.0361927;
    x 1.5 = 1.5542891 -> 2 shards.
    frame: 150 + a 4-byte header (over 125) = 154; on the wire, one segment:
    154 + 52 + 38 = 244 B; 1e6 x 244 x 8 = 1.952 Gbit/s, x 1.5 = 2.928.
    memory: 10,000 x (400 + 4,600) = 50,000,000; queues: fan-out of one message
    100 x 1 us / 2 shards = 50 us < p99 10 ms, so 10 ms: 1e6 x 0.01 x (96 + 154)
    + 10,000 x 0.01 x 154 = 2,515,400; x 1.5 = 78,773,100.
    """

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc-plan-")
        self.files = {}
        self.write("slow", fanout_result(1000, 100, 10, 5.0, 20, 150))
        self.write("fast", fanout_result(1000, 100, 100, 1.0, 10, 150))
        self.write("fast-wss", fanout_result(1000, 100, 100, 1.6, 10, 150, tls=True))
        self.write("idle-ws", {"scenario": "idle", "conns": 1000, "tls": False, "rss_per_conn_bytes": 400})
        self.write("idle-wss", {"scenario": "idle", "conns": 1000, "tls": True, "rss_per_conn_bytes": 2000})
        self.write("kmem", {"conns": 1000, "kernel_bytes_per_socket": 4600})
        self.good = list(self.files)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, name, obj):
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        self.files[name] = path
        return path

    def bench_args(self, *names):
        out = []
        for n in names or self.good:
            out += ["--bench", self.files[n]]
        return out

    WORKLOAD = ("--connections", "10000", "--topics", "100", "--msgs-per-sec", "10000", "--size", "100")

    def test_the_worked_example(self):
        p = plan_json(*self.WORKLOAD, "--node-cores", "1", "--node-memory", "50m", *self.bench_args())
        self.assertEqual(p["deliveries_per_sec"], 1e6)
        self.assertEqual(p["msgs_per_subscriber_per_sec"], 100)
        self.assertEqual(p["coefficients"]["cpu_us_per_delivery"]["value"], 1.0)
        self.assertEqual(p["coefficients"]["envelope_bytes"]["value"], 50)
        self.assertAlmostEqual(p["cores"]["publishes"], 10000 * 24.8e6 / (192767 + 6659500) / 1e6)
        self.assertAlmostEqual(p["cores"]["with_headroom"], 1.5542891, places=6)
        self.assertEqual(p["cores"]["shards"], 2)
        self.assertEqual(p["frame_bytes"], 154)
        self.assertEqual(p["wire_bytes_per_delivery"], 244)
        self.assertAlmostEqual(p["network_bits_per_sec"]["with_headroom"], 2.928e9)
        self.assertEqual(p["memory_bytes"]["connections"], 50_000_000)
        self.assertAlmostEqual(p["memory_bytes"]["queues"], 2_515_400)
        self.assertAlmostEqual(p["memory_bytes"]["with_headroom"], 78_773_100)
        # 1.55 cores on 1-core nodes: 2; 75 MiB on 50 MiB nodes: 2.
        self.assertEqual(p["nodes"], {"cpu": 2, "memory": 2, "needed": 2})
        self.assertEqual(p["warnings"], [])

    def test_rates_between_and_below_measured_use_the_slower_figure(self):
        # 20 msg/s per subscriber: between 10 and 100, the 10 msg/s cost (5.0 us).
        p = plan_json("--connections", "10000", "--topics", "100", "--msgs-per-sec", "2000", "--size", "100",
                      *self.bench_args())
        self.assertEqual(p["coefficients"]["cpu_us_per_delivery"]["value"], 5.0)
        self.assertAlmostEqual(p["cores"]["deliveries"], 200000 * 5.0 / 1e6)
        # 1 msg/s: below every run, the lowest rate's cost, with a warning.
        p = plan_json("--connections", "10000", "--fanout", "10000", "--msgs-per-sec", "1", "--size", "100",
                      *self.bench_args())
        self.assertEqual(p["coefficients"]["cpu_us_per_delivery"]["value"], 5.0)
        self.assertTrue(any("fewer than any measured run" in w for w in p["warnings"]), p["warnings"])
        # One message to 10,000 subscribers at 5 us on 1 shard (0.05 cores x 1.5): 50 ms,
        # longer than the step's p99, so queues hold 50 ms of deliveries.
        self.assertAlmostEqual(p["fanout_seconds"], 0.05)
        self.assertAlmostEqual(p["coefficients"]["queue_seconds"]["value"], 0.05)

    def test_tls_and_history(self):
        p = plan_json(*self.WORKLOAD, "--tls", "yes", "--history", "10", *self.bench_args())
        # 4 ns/B x (154 + 22) B = 0.704 us on top of 1.0.
        self.assertAlmostEqual(p["coefficients"]["tls_cpu_us_per_delivery"]["value"], 0.704)
        self.assertAlmostEqual(p["cores"]["deliveries"], 1e6 * 1.704 / 1e6)
        self.assertEqual(p["coefficients"]["rss_bytes_per_connection"]["value"], 2000)
        self.assertEqual(p["wire_bytes_per_delivery"], 154 + 22 + 90)
        # 100 msg/s per topic, --history 10: 10 frames of 154 + 96 B per topic, 100 topics.
        self.assertEqual(p["memory_bytes"]["history"], 100 * 10 * 250)
        # --history-bytes caps a topic's history.
        p = plan_json(*self.WORKLOAD, "--history", "10", "--history-bytes", "1000", *self.bench_args())
        self.assertEqual(p["memory_bytes"]["history"], 100 * 1000)

    def test_bad_input_is_refused_clearly(self):
        cases = [
            (["--bench", os.path.join(self.tmp, "nope.json")], "cannot read " + os.path.join(self.tmp, "nope.json")),
            (["--inputs", os.path.join(self.tmp, "nope.txt")], "cannot read the input list"),
            (["--bench", self.write("garbage", "{not json")], "not JSON"),
            (["--bench", self.write("list", "[1, 2]")], "not a ringcast-bench or bench/kernel_mem.py result"),
            (["--bench", self.write("other", {"hello": 1})], "not a ringcast-bench result"),
            (self.bench_args("idle-ws", "kmem"), "no input gives the envelope's size"),
            (self.bench_args("slow", "kmem"), "no input gives memory per idle ws connection"),
            (self.bench_args("slow", "idle-ws"), "no input gives kernel memory per socket"),
            (["--bench", self.write("bad-idle", {"scenario": "idle", "rss_per_conn_bytes": 0})],
             "without a positive rss_per_conn_bytes"),
            (["--bench", self.write("bad-kmem", {"kernel_bytes_per_socket": -3})], "not a positive number"),
        ]
        for extra, text in cases:
            rc, out, err = run(*self.WORKLOAD, *extra)
            self.assertEqual(rc, 2, (extra, out, err))
            self.assertIn(text, err, extra)
            self.assertEqual(out, "")
        # TLS asked of results with no wss run beside a ws one.
        rc, _, err = run(*self.WORKLOAD, "--tls", "yes", *self.bench_args("slow", "fast", "idle-wss", "kmem"))
        self.assertEqual(rc, 2)
        self.assertIn("TLS's extra CPU per byte", err)
        rc, _, err = run("--connections", "100", "--fanout", "10", "--msgs-per-sec", "1", "--size", "1",
                         "--history", "5", *self.bench_args())
        self.assertEqual(rc, 2)
        self.assertIn("--history needs --topics", err)
        rc, _, err = run("--connections", "10", "--topics", "20", "--msgs-per-sec", "1", "--size", "1",
                         *self.bench_args())
        self.assertEqual(rc, 2)
        self.assertIn("every topic needs a subscriber", err)
        # Negative and malformed numbers: argparse names the flag.
        for flag, value in (("--connections", "-5"), ("--msgs-per-sec", "-1"), ("--size", "0"),
                            ("--headroom", "-0.5"), ("--node-memory", "-4g"), ("--node-cores", "x")):
            args = dict(zip(self.WORKLOAD[::2], self.WORKLOAD[1::2]))
            args[flag] = value
            flat = [f"{k}={v}" for k, v in args.items()]  # "--size=-1": not taken for a flag
            rc, out, err = run(*flat, *self.bench_args())
            self.assertEqual(rc, 2, (flag, value))
            self.assertIn(flag, err)
            self.assertTrue("must be positive" in err or "must not be negative" in err or "not a" in err, err)
        rc, _, err = run("--connections", "10", "--msgs-per-sec", "1", "--size", "1", *self.bench_args())
        self.assertEqual(rc, 2)
        self.assertIn("--fanout", err)


if __name__ == "__main__":
    unittest.main()
