# SPDX-License-Identifier: MIT
"""Smoke runs of every ringcast-bench scenario against the real server, a few
seconds each: no loss reported where there is none, and an injected gap is
caught (non-zero exit). Over wss:// too: every message delivered, and a storm's
reconnects resume their TLS sessions (or, with --no-resume, do not). With
history (--history), subscribers that drop at random and come back asking
since= (the churn scenario, and storm --resume) get every message exactly once,
in order; without it, what they missed is an announced gap, counted as loss."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

from rcserver import Server
from tlsutil import TlsServer, certs, cleanup as tls_cleanup

BENCH = os.environ.get("RINGCAST_BENCH", os.path.join(os.path.dirname(__file__), "../../build/ringcast-bench"))


class BenchSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-queue", "256k", "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0",
                         "--connect-rate-per-ip", "0", threads=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def bench(self, *args, expect_rc=0, srv=None):
        srv = srv or self.srv
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [BENCH, "--url", f"ws://127.0.0.1:{srv.port}/ws?topics={{topic}}",
                   "--publish", f"http://127.0.0.1:{srv.port}/publish", "--json", out.name,
                   "--server-pid", str(srv.proc.pid), "--drain", "3", *args]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, expect_rc, r.stdout + r.stderr + srv.log_text()[-3000:])
            with open(out.name) as f:
                return json.load(f), r.stdout + r.stderr

    def assertClean(self, res, conns):
        self.assertEqual(res["connected"], conns)
        self.assertEqual((res["failed"], res["missing"], res["gaps"], res["duplicates"], res["reorders"]),
                         (0, 0, 0, 0, 0))

    def test_fanout_batch_publish_zipf(self):
        res, out = self.bench("--scenario", "fanout", "--conns", "300", "--topics", "3",
                              "--distribution", "zipf", "--rate", "300", "--duration", "2")
        self.assertClean(res, 300)
        self.assertGreater(res["published"], 500)
        self.assertEqual(res["delivered"] > 0, True)
        self.assertGreater(res["latency_ms"]["count"], 0)
        self.assertIn("deliveries/s", out)

    def test_fanout_single_and_ws_publish(self):
        res, _ = self.bench("--publish", f"http://127.0.0.1:{self.srv.port}/publish/{{topic}}",
                            "--publish-mode", "single", "--conns", "100", "--topics", "2",
                            "--rate", "200", "--duration", "1.5")
        self.assertClean(res, 100)
        res, _ = self.bench("--publish", f"ws://127.0.0.1:{self.srv.port}/ws", "--conns", "100",
                            "--topics", "2", "--rate", "200", "--duration", "1.5")
        self.assertClean(res, 100)
        self.assertEqual(res["publish_mode"], "ws")

    def test_generic_template_with_subscribe_message(self):
        res, _ = self.bench("--url", f"ws://127.0.0.1:{self.srv.port}/ws",
                            "--sub-message", '{"op":"subscribe","topics":["{topic}"]}',
                            "--topics", "gen.a,gen.b", "--conns", "100", "--rate", "100", "--duration", "1.5")
        self.assertClean(res, 100)
        self.assertGreater(res["delivered"], 0)

    def test_ramp(self):
        res, out = self.bench("--scenario", "ramp", "--conns", "200", "--ramp-start", "100",
                              "--ramp-factor", "2", "--ramp-steps", "3", "--ramp-step", "1",
                              "--p99-bound", "600000")  # no latency bound: tests never assert on timings
        self.assertClean(res, 200)
        self.assertEqual(len(res["steps"]), 3)
        self.assertGreater(res["highest_sustainable_per_s"], 0)
        self.assertIn("highest sustainable", out)

    def test_idle_reports_memory(self):
        res, _ = self.bench("--scenario", "idle", "--conns", "1000", "--duration", "1")
        self.assertEqual(res["connected"], 1000)
        self.assertGreater(res["rss_per_conn_bytes"], 0)

    def test_storm(self):
        res, _ = self.bench("--scenario", "storm", "--conns", "300", "--rate", "100", "--duration", "3")
        self.assertClean(res, 300)
        self.assertGreater(res["storm_recover_s"], 0)

    def test_slow(self):
        # Its own server: the shared one's flags, but --max-queue 4m. Every
        # subscriber's queue takes a whole turn's worth of messages at once,
        # before any of it is sent: at 300 16 KiB messages a second, a publish
        # batch, or a home shard that fell behind (ASan, a busy CPU: it drains
        # up to 1,024 inbox items in one turn), carrying 16 of them passed 256k,
        # and the server rightly closed every reader; 126 passed 2m. 4 MiB holds
        # about 250 (0.85 s of the stream). A slow subscriber passes it after about
        # 8.6 MB (the server's send buffer grows to tcp_wmem's 4 MiB, the bench
        # fixes its own at 512 KiB): 1.75 s into the 3 s phase; it reads again
        # 1.25 s after its close, well within the server's 3 s close grace.
        flags = list(self.srv.proc.args[self.srv.proc.args.index("--no-pin") + 1:])
        if "--max-queue" in flags:
            del flags[flags.index("--max-queue"):flags.index("--max-queue") + 2]
        srv = Server(*flags, "--max-queue", "4m", threads=2)
        try:
            res, out = self.bench("--scenario", "slow", "--conns", "20", "--size", "16384", "--rate", "300",
                                  "--duration", "6", "--slow-fraction", "0.1", srv=srv)
            log = out + srv.log_text()[-3000:]
        finally:
            srv.stop()
        # The readers: none closed, nothing lost, and each one received every
        # message published while the slow ones were not reading.
        self.assertEqual(res["closed_by_server"], 0, log)
        self.assertEqual((res["missing"], res["gaps"]), (0, 0), log)
        self.assertEqual([s["missing"] for s in res["steps"]], [0, 0], "baseline, then with slow subscribers")
        readers = res["conns"] - res["slow_subscribers"]
        self.assertGreaterEqual(res["steps"][1]["delivered"], readers * res["steps"][1]["published"], log)
        self.assertGreater(res["steps"][1]["published"], 0, log)
        # The slow ones: closed by the server with 1008, which each one read once
        # it read again, within the server's close grace.
        self.assertEqual((res["slow_subscribers"], res["slow_stopped"]), (2, 2), log)
        self.assertEqual((res["slow_closed"], res["slow_closed_1008"]), (2, 2), log)
        self.assertIn("with-slow", out)

    def test_injected_gap_is_caught(self):
        res, out = self.bench("--conns", "50", "--rate", "100", "--duration", "1", "--inject-gap-every", "10",
                              expect_rc=1)
        self.assertGreater(res["gaps"], 0)
        self.assertIn("FAILED", out)

    def test_without_history_a_resume_is_an_announced_gap(self):
        # This server keeps no history: each resume is refused with a gap message,
        # which the bench counts as loss (exit 1), announced and not silent, and
        # exactly what the publisher's own numbering says is missing.
        res, out = self.bench("--scenario", "churn", "--resume", "--conns", "100", "--topics", "10",
                              "--rate", "100", "--duration", "3", "--churn-every", "1", "--churn-down", "0.5",
                              expect_rc=1)
        c = res["continuity"]
        self.assertGreater(c["reconnects"], 0, out)
        self.assertEqual(c["since_asked"], c["reconnects"], out)
        self.assertGreater(c["not_recovered"], 0, out)
        self.assertGreater(c["gap_messages"], 0, out)
        self.assertGreater(c["lost_announced"], 0, out)
        self.assertEqual((c["lost_silent"], c["duplicates"], c["reorders"], c["protocol_errors"]), (0, 0, 0, 0), out)
        self.assertEqual(res["missing"], c["lost_announced"], out)
        self.assertIn("FAILED", out)

    def test_bad_flag(self):
        r = subprocess.run([BENCH, "--conns", "0"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--conns", r.stderr)


class BenchResume(unittest.TestCase):
    """Churn and storm with --resume against a server with history on four
    shards: every reconnect asks since= and is recovered, and every subscriber
    ends with every message of its topic exactly once, in order (lost,
    duplicates and reorders 0 on the server's numbering and the publisher's).
    Nothing here is timed: the figures asserted are counts."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--history", "100000", "--topic-heartbeat", "1", "--max-queue", "4m",
                         "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0", "--connect-rate-per-ip", "0",
                         "--max-commands-per-sec", "0", threads=4)

    @classmethod
    def tearDownClass(cls):
        # A crash or a sanitizer report during the churn fails the class here.
        cls.srv.stop_clean()

    def bench(self, *args, url=None):
        srv = self.srv
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [BENCH, "--url", url or f"ws://127.0.0.1:{srv.port}/ws?topics={{topic}}",
                   "--publish", f"http://127.0.0.1:{srv.port}/publish", "--json", out.name,
                   "--server-pid", str(srv.proc.pid), "--drain", "20", *args]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            log = r.stdout + r.stderr[-3000:] + srv.log_text()[-3000:]
            self.assertIsNone(srv.proc.poll(), "the server died:\n" + log)
            self.assertEqual(r.returncode, 0, log)
            with open(out.name) as f:
                return json.load(f), log

    def assertExactlyOnce(self, res, log, conns, per_topic):
        c = res["continuity"]
        self.assertEqual((res["connected"], res["failed"], res["closed_by_server"]), (conns, 0, 0), log)
        # The server's numbering: every reconnect asked since= and was recovered
        # (but those dropped again before their ack: the next one asks again),
        # nothing lost, repeated or late.
        self.assertGreater(c["reconnects"], 0, log)
        self.assertEqual((c["since_asked"], c["since_unavailable"]), (c["reconnects"], 0), log)
        self.assertEqual((c["recovered"] + c["since_unanswered"], c["not_recovered"]), (c["reconnects"], 0), log)
        self.assertEqual((c["lost"], c["lost_silent"], c["lost_announced"], c["gap_messages"]), (0, 0, 0, 0), log)
        self.assertEqual((c["duplicates"], c["reorders"], c["protocol_errors"], c["epoch_changes"]), (0, 0, 0, 0), log)
        self.assertEqual(c["streams"], conns, log)
        # The publisher's numbering, checked across the reconnects too.
        self.assertEqual((res["missing"], res["gaps"], res["duplicates"], res["reorders"]), (0, 0, 0, 0), log)
        # Each subscriber got each message of its topic once: replayed or live.
        self.assertGreater(res["published"], 0, log)
        self.assertEqual(res["delivered"], per_topic * res["published"], log)
        self.assertEqual(c["received"], res["delivered"], log)

    def test_churn_resumes_every_message(self):
        res, log = self.bench("--scenario", "churn", "--resume", "--conns", "400", "--topics", "40",
                              "--rate", "200", "--duration", "6", "--churn-every", "1.5", "--churn-down", "0.3",
                              "--seed", "3")
        self.assertExactlyOnce(res, log, 400, 10)
        self.assertGreater(res["churn_drops"], 0, log)
        self.assertEqual(res["continuity"]["reconnects"], res["churn_drops"], log)
        self.assertGreater(res["continuity"]["replayed"], 0, log)
        self.assertEqual((res["resume"], res["scenario"]), (True, "churn"), log)
        self.assertIn("churn:", log)

    def test_churn_resumes_by_subscribe_command(self):
        res, log = self.bench("--scenario", "churn", "--resume", "--conns", "200", "--topics", "20",
                              "--sub-message", '{"op":"subscribe","topics":["{topic}"],"id":"b1"}',
                              "--rate", "100", "--duration", "4", "--churn-every", "1", "--churn-down", "0.3",
                              url=f"ws://127.0.0.1:{self.srv.port}/ws")
        self.assertExactlyOnce(res, log, 200, 10)

    def test_storm_resumes_every_message(self):
        res, log = self.bench("--scenario", "storm", "--resume", "--conns", "300", "--topics", "30",
                              "--rate", "100", "--duration", "3")
        self.assertExactlyOnce(res, log, 300, 10)
        self.assertEqual(res["continuity"]["reconnects"], 300, log)
        self.assertGreater(res["storm_recover_s"], 0, log)


class BenchTls(unittest.TestCase):
    """ringcast-bench over wss:// and https://, verifying the server (--ca)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = TlsServer("--max-queue", "256k", "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0",
                            "--connect-rate-per-ip", "0", "--max-commands-per-sec", "0")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        tls_cleanup()

    def bench(self, *args):
        srv = self.srv
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [BENCH, "--url", f"wss://localhost:{srv.tls_port}/ws?topics={{topic}}",
                   "--publish", f"https://localhost:{srv.tls_port}/publish", "--ca", srv.cert,
                   "--token", "bench-token", "--json", out.name, "--server-pid", str(srv.proc.pid),
                   "--drain", "3", *args]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            log = r.stdout + r.stderr + srv.log_text()[-3000:]
            self.assertEqual(r.returncode, 0, log)
            with open(out.name) as f:
                return json.load(f), log

    def resumed_on_server(self):
        return self.srv.tls_metrics().get('ringcast_tls_handshakes_total{kind="resumed"}', 0)

    def test_wss_fanout_delivers_everything(self):
        res, log = self.bench("--conns", "300", "--topics", "2", "--rate", "200", "--duration", "3")
        self.assertEqual(res["connected"], 300, log)
        self.assertEqual((res["failed"], res["missing"], res["gaps"], res["duplicates"], res["reorders"]),
                         (0, 0, 0, 0, 0), log)
        self.assertGreaterEqual(res["delivered"], 150 * res["published"], log)  # two topics, 150 each
        self.assertGreater(res["published"], 400, log)
        self.assertEqual((res["tls"], res["tls_verified"], res["tls_full"]), (True, True, 300), log)
        self.assertIn("TLS handshakes (whole run): 300 full", log)

    def test_wss_storm_resumes_sessions(self):
        before = self.resumed_on_server()
        res, log = self.bench("--scenario", "storm", "--conns", "200", "--rate", "50", "--duration", "3")
        self.assertEqual((res["connected"], res["failed"], res["missing"], res["gaps"]), (200, 0, 0, 0), log)
        self.assertGreater(res["storm_recover_s"], 0, log)
        self.assertGreater(res["storm_tls_resumed"], 0, log)
        self.assertEqual(res["storm_tls_full"] + res["storm_tls_resumed"], 200, log)
        self.assertGreater(res["storm_handshakes_per_s"], 0, log)
        self.assertGreater(self.resumed_on_server() - before, 0, log)

    def test_wss_storm_no_resume(self):
        before = self.resumed_on_server()
        res, log = self.bench("--scenario", "storm", "--no-resume", "--conns", "100", "--rate", "50",
                              "--duration", "2")
        self.assertEqual((res["failed"], res["missing"], res["gaps"]), (0, 0, 0), log)
        self.assertEqual((res["storm_tls_full"], res["storm_tls_resumed"], res["tls_resume"]), (100, 0, False), log)
        self.assertEqual(self.resumed_on_server(), before, log)

    def test_wrong_ca_fails_the_handshake(self):
        other = "rsa" if self.srv.cert.endswith("ec.crt") else "ec"
        r = subprocess.run([BENCH, "--url", f"wss://localhost:{self.srv.tls_port}/ws?topics={{topic}}",
                            "--publish", f"https://localhost:{self.srv.tls_port}/publish",
                            "--ca", certs()[other][0], "--conns", "3", "--duration", "0.5", "--drain", "0"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("TLS", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
