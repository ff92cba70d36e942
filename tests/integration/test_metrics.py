# SPDX-License-Identifier: MIT
"""The ten signals of GET /metrics (docs/operations.md) against the real server:
each moves as the traffic that drives it says (active connections by kind,
attempts by result, closes by cause adding up to every close, the duration
histogram, reconnects, messages in and out, message sizes, send latency, memory,
queues), the exposition passes promtool, and a real Prometheus scrapes it and
answers queries over it."""
import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import websockets

from rcserver import SANITIZED, RawWs, Server, free_port, recv_subscribe_acks, subscriber

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"

CLOSE_REASONS = ["client_close", "server_close", "slow_consumer", "protocol_error", "timeout", "idle",
                 "auth", "rate_limited", "refused", "overload", "reset", "shutdown"]


def closed(m, reason):
    return m[f'ringcast_connections_closed_total{{reason="{reason}"}}']


def closes(m):
    return sum(closed(m, r) for r in CLOSE_REASONS)


def attempts(m, result):
    return m[f'ringcast_connection_attempts_total{{result="{result}"}}']


def active(m, kind):
    return m[f'ringcast_connections_active{{kind="{kind}"}}']


def durations(m):
    return sum(m[f'ringcast_connection_duration_seconds_count{{kind="{k}"}}'] for k in ("http", "websocket"))


def wait_metrics(srv, pred, what, timeout=10):
    """Scrapes until pred(metrics) holds; fails naming `what` otherwise."""
    deadline = time.time() + timeout
    while True:
        m = srv.metrics()
        if pred(m):
            return m
        if time.time() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.05)


def settled(srv):
    """A scrape taken once every earlier scrape's connection is closed: only
    the scraping connection itself is open and uncounted."""
    return wait_metrics(srv, lambda m: active(m, "http") == 1 and active(m, "websocket") == 0,
                        "all connections closed")


class Signals(unittest.TestCase):
    def test_each_signal_moves_with_its_traffic(self):
        with Server("--history", "50", "--max-queue", "64k", threads=2) as srv:
            asyncio.run(self.live(srv))
            self.protocol_errors(srv)
            self.slow_consumer(srv)
            asyncio.run(self.reconnects(srv))
            m = settled(srv)
            self.assertEqual(durations(m), closes(m), "every close observed once in the duration histogram")
            self.assertEqual(m["ringcast_connections_accepted_total"], closes(m) + active(m, "http") + active(m, "websocket"),
                             "every connection accepted is open or counted closed, once")
            self.assertEqual(sum(attempts(m, r) for r in ("accepted", "refused_full", "refused_limit",
                                                            "handshake_failed", "auth_failed")),
                             closes(m), "one attempt per connection closed (the scraping one is not decided yet)")
            self.assertEqual(m["ringcast_connection_duration_seconds_bucket" + '{kind="websocket",le="+Inf"}'],
                             m['ringcast_connection_duration_seconds_count{kind="websocket"}'])
            for s in ("0", "1"):
                self.assertEqual(m[f'ringcast_inbox_depth{{shard="{s}"}}'], 0, "nothing waits once quiet")
                self.assertEqual(m[f'ringcast_inbox_oldest_age_seconds{{shard="{s}"}}'], 0)
            self.assertGreater(m["ringcast_process_resident_memory_bytes"], 1 << 20)
            self.assertIn("ringcast_pool_bytes", m)
            if not SANITIZED:
                for k in ("allocated", "active", "resident"):
                    self.assertGreater(m[f"ringcast_jemalloc_{k}_bytes"], 0, k)
                self.assertLessEqual(m["ringcast_jemalloc_allocated_bytes"], m["ringcast_jemalloc_active_bytes"])
            self.promtool(srv)

    async def live(self, srv):
        base = settled(srv)
        async with websockets.connect(srv.url("?topics=m.t"), ping_interval=None) as a, \
                websockets.connect(srv.url("?topics=m.t"), ping_interval=None) as b:
            await recv_subscribe_acks(a, ["m.t"])
            await recv_subscribe_acks(b, ["m.t"])
            keep = socket.create_connection(("127.0.0.1", srv.port))
            keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(keep.recv(4096).startswith(b"HTTP/1.1 200"))
            m = wait_metrics(srv, lambda m: active(m, "http") == 2, "the kept-alive HTTP connection and the scraper")
            self.assertEqual(active(m, "websocket"), 2)

            before = srv.metrics()
            payload = b"p" * 300
            loop = asyncio.get_running_loop()
            status, _, _ = await loop.run_in_executor(None, lambda: srv.http("POST", "/publish/m.t", body=payload))
            self.assertEqual(status, 200)
            for ws in (a, b):
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(msg["topic"], "m.t")
            m = wait_metrics(srv, lambda m: m["ringcast_send_latency_seconds_count"]
                             >= before["ringcast_send_latency_seconds_count"] + 2,
                             "a latency sample per subscriber's send")
            self.assertEqual(m["ringcast_messages_published_total"] - before["ringcast_messages_published_total"], 1)
            self.assertEqual(m["ringcast_messages_delivered_total"] - before["ringcast_messages_delivered_total"], 2,
                             "one delivery per subscriber")
            # 300 bytes: above the 256 bound, within 1024.
            d = {le: m[f'ringcast_message_size_bytes_bucket{{le="{le}"}}']
                 - before[f'ringcast_message_size_bytes_bucket{{le="{le}"}}'] for le in ("256", "1024", "+Inf")}
            self.assertEqual(d, {"256": 0, "1024": 1, "+Inf": 1})
            self.assertEqual(m["ringcast_message_size_bytes_sum"] - before["ringcast_message_size_bytes_sum"], 300)
            lat = m["ringcast_send_latency_seconds_sum"] - before["ringcast_send_latency_seconds_sum"]
            self.assertTrue(0 <= lat < 5, lat)
            self.assertEqual(m['ringcast_send_latency_seconds_bucket{le="+Inf"}'],
                             m["ringcast_send_latency_seconds_count"])
            keep.close()
        # Both WebSockets closed by the client (a close frame each), the kept
        # connection by its EOF.
        m = settled(srv)
        self.assertGreaterEqual(closed(m, "client_close") - closed(base, "client_close"), 3)
        self.assertEqual(attempts(m, "accepted") - attempts(base, "accepted") >= 4, True)
        self.assertEqual(closes(m) - closes(base), closed(m, "client_close") - closed(base, "client_close"),
                         "nothing but client closes so far")

    def protocol_errors(self, srv):
        base = settled(srv)
        ws = RawWs(srv.port)
        ws.send(0x1, b"x", rsv=1)  # reserved bit without an extension
        self.assertEqual(ws.recv_close(), 1002)
        ws.close()
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        s.settimeout(10)
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 400"))
        s.close()
        # A 404 on a keep-alive connection is an exchange that worked; a failed
        # upgrade (no Sec-WebSocket-Key: 400, closed) is not.
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(10)
        s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 404"))
        s.close()
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(10)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 400"))
        s.close()
        m = wait_metrics(srv, lambda m: closed(m, "protocol_error") - closed(base, "protocol_error") == 2
                         and closed(m, "server_close") - closed(base, "server_close") == 1,
                         "two protocol-error closes and the refused upgrade's")
        self.assertEqual(attempts(m, "handshake_failed") - attempts(base, "handshake_failed"), 2,
                         "the malformed request and the failed upgrade never completed a handshake (the 404 did)")
        self.assertEqual(m["ringcast_protocol_errors_total"] - base["ringcast_protocol_errors_total"], 2)

    def slow_consumer(self, srv):
        base = settled(srv)
        slow = RawWs(srv.port, "/ws?topics=m.slow", rcvbuf=4096)
        slow.recv_subscribe_acks(["m.slow"])
        payload = b"s" * 4096
        body = b"".join(b"m.slow %d\n%s\n" % (len(payload), payload) for _ in range(64))
        deadline = time.time() + 20
        while srv.metrics()["ringcast_slow_consumer_disconnects_total"] == base["ringcast_slow_consumer_disconnects_total"]:
            status, _, data = srv.http("POST", "/publish", body=body)
            self.assertEqual(status, 200, data)
            self.assertLess(time.time(), deadline, "the non-reading subscriber was never cut")
        self.assertEqual(slow.recv_close(), 1008)
        slow.close()
        m = wait_metrics(srv, lambda m: closed(m, "slow_consumer") - closed(base, "slow_consumer") == 1,
                         "one slow-consumer close")
        self.assertEqual(closed(m, "protocol_error"), closed(base, "protocol_error"))

    async def reconnects(self, srv):
        base = settled(srv)
        async with websockets.connect(srv.url("?topics=m.h"), ping_interval=None) as ws:
            epoch = (await recv_subscribe_acks(ws, ["m.h"]))["m.h"]["epoch"]
        for i in range(60):
            srv.publish("m.h", b"h%d" % i)
        # seq 55 is in history (the last 50 of 60): recovered; seq 1 is not: a gap.
        for since, want in ((55, {"recovered": 1, "gap": 0}), (1, {"recovered": 1, "gap": 1})):
            async with websockets.connect(srv.url(f"?topics=m.h&since=m.h:{epoch}:{since}"),
                                          ping_interval=None) as ws:
                ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
                self.assertEqual(ack["recovered"], since == 55, ack)
            m = srv.metrics()
            got = {o: m[f'ringcast_reconnects_total{{outcome="{o}"}}'] - base[f'ringcast_reconnects_total{{outcome="{o}"}}']
                   for o in ("recovered", "gap")}
            self.assertEqual(got, want)

    def promtool(self, srv):
        status, _, data = srv.http("GET", "/metrics")
        self.assertEqual(status, 200)
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=data, capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""), "promtool finds nothing to fix")


class Limits(unittest.TestCase):
    def test_refused_full_counts_an_attempt_and_a_close(self):
        with Server("--max-conns", "3", threads=1) as srv:
            base = settled(srv)
            time.sleep(0.3)  # the scraping connection's slot comes back
            held = []
            for _ in range(3):
                held.append(socket.create_connection(("127.0.0.1", srv.port)))
            # The table holds three: the fourth is answered 503 and closed.
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.settimeout(10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 503"))
            s.close()
            # Two slots free for the scrapes, even while a closing one lingers.
            held.pop().close()
            held.pop().close()
            time.sleep(0.3)
            m = wait_metrics(srv, lambda m: closed(m, "refused") == 1, "the refused connection's close")
            self.assertEqual(attempts(m, "refused_full") - attempts(base, "refused_full"), 1)
            self.assertEqual(m["ringcast_connections_refused_total"], 1)
            self.assertEqual(m["ringcast_connections_accepted_total"], closes(m) + active(m, "http"))
            for h in held:
                h.close()

    def test_timeouts_are_told_apart(self):
        with Server("--handshake-timeout", "1", "--idle-timeout", "2", "--ping-interval", "1", threads=1) as srv:
            base = settled(srv)
            loris = socket.create_connection(("127.0.0.1", srv.port))
            loris.sendall(b"GET /healthz HTTP/1.1\r\n")
            idle = subscriber(srv.port, ["m.idle"])
            loris.settimeout(10)
            self.assertTrue(loris.recv(4096).startswith(b"HTTP/1.1 408"))
            self.assertEqual(idle.recv_close(), 1001)
            m = wait_metrics(srv, lambda m: closed(m, "idle") == 1 and closed(m, "timeout") == 1,
                             "one handshake timeout and one idle close")
            self.assertEqual(attempts(m, "handshake_failed") - attempts(base, "handshake_failed"), 1)
            loris.close()
            idle.close()


class Auth(unittest.TestCase):
    def test_refused_credential_is_auth_failed_and_closed_for_auth(self):
        keys = tempfile.NamedTemporaryFile("w", prefix="ringcast-keys-", delete=False)
        keys.write("pk-0123456789abcdef-metrics\n")
        keys.close()
        self.addCleanup(os.unlink, keys.name)
        with Server("--publish-key-file", keys.name, threads=1) as srv:
            base = settled(srv)
            status, _, _ = srv.http("POST", "/publish/a", body=b"x",
                                    headers={"Authorization": "Bearer pk-wrong-key-of-the-same-size"})
            self.assertEqual(status, 401)
            m = wait_metrics(srv, lambda m: closed(m, "auth") - closed(base, "auth") == 1, "one auth close")
            self.assertEqual(attempts(m, "auth_failed") - attempts(base, "auth_failed"), 1)
            self.assertEqual(attempts(m, "handshake_failed"), attempts(base, "handshake_failed"))


class Tls(unittest.TestCase):
    def test_latency_over_wss_and_a_failed_handshake(self):
        from tlsutil import TlsServer, cleanup
        self.addCleanup(cleanup)
        with TlsServer(threads=2) as srv:
            async def run():
                async with websockets.connect(srv.wss("?topics=tls.m"), ssl=srv.client_context(),
                                              ping_interval=None) as sub:
                    await recv_subscribe_acks(sub, ["tls.m"])
                    # Past the handshake: only the message's records carry a stamp.
                    before = srv.metrics()
                    for i in range(5):
                        srv.publish("tls.m", b"x%d" % i)
                        self.assertEqual(json.loads(await asyncio.wait_for(sub.recv(), 10))["topic"], "tls.m")
                    m = wait_metrics(srv, lambda m: m["ringcast_send_latency_seconds_count"]
                                     >= before["ringcast_send_latency_seconds_count"] + 5,
                                     "a latency sample per record batch sent over TLS")
                    self.assertEqual(active(m, "websocket"), 1)
            asyncio.run(run())
            base = settled(srv)
            # Not TLS at all on the TLS port: the stream's failure, before any handshake.
            s = socket.create_connection(("127.0.0.1", srv.tls_port))
            s.sendall(b"\x00\x01garbage")
            s.settimeout(10)
            while s.recv(4096):
                pass
            s.close()
            m = wait_metrics(srv, lambda m: closed(m, "protocol_error") - closed(base, "protocol_error") == 1,
                             "the TLS failure closed as a protocol error")
            self.assertEqual(attempts(m, "handshake_failed") - attempts(base, "handshake_failed"), 1)


class RealPrometheus(unittest.TestCase):
    def test_prometheus_scrapes_and_queries(self):
        if not os.access(PROMETHEUS, os.X_OK):
            self.skipTest("no /usr/bin/prometheus (scripts/setup.sh installs it)")
        with Server("--history", "10", threads=2) as srv:
            sub = subscriber(srv.port, ["prom.t"])
            for i in range(7):
                srv.publish("prom.t", b"m%d" % i)
            for _ in range(7):
                op, _ = sub.recv_frame()
                self.assertEqual(op, 0x1)
            wait_metrics(srv, lambda m: m["ringcast_send_latency_seconds_count"] >= 1, "a latency sample")
            tmp = tempfile.mkdtemp(prefix="ringcast-prom-")
            port = free_port()
            cfg = os.path.join(tmp, "prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: ringcast\n    static_configs:\n"
                        f"      - targets: ['127.0.0.1:{srv.port}']\n")
            log = open(os.path.join(tmp, "prometheus.log"), "w")
            prom = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                                     f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
            try:
                def query(q):
                    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
                    with urllib.request.urlopen(url, timeout=5) as r:
                        body = json.load(r)
                    self.assertEqual(body["status"], "success", body)
                    return body["data"]["result"]

                deadline = time.time() + 30
                while True:
                    try:
                        if query('ringcast_messages_published_total{job="ringcast"}'):
                            break
                    except OSError:
                        pass
                    self.assertIsNone(prom.poll(), "prometheus exited")
                    self.assertLess(time.time(), deadline, "prometheus never scraped ringcast")
                    time.sleep(0.2)
                self.assertEqual(float(query("ringcast_messages_published_total")[0]["value"][1]), 7)
                self.assertEqual(float(query('ringcast_connections_active{kind="websocket"}')[0]["value"][1]), 1)
                self.assertEqual(float(query('up{job="ringcast"}')[0]["value"][1]), 1)
                q = query("histogram_quantile(0.99, sum by (le) (ringcast_send_latency_seconds_bucket))")
                p99 = float(q[0]["value"][1])
                self.assertTrue(math.isfinite(p99) and 0 <= p99 < 10, p99)
                q = query('sum(ringcast_connections_closed_total) == sum(ringcast_connection_duration_seconds_count)')
                self.assertEqual(len(q), 1, "Prometheus sees every close in the duration histogram")
            finally:
                prom.terminate()
                try:
                    prom.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
                log.close()
                shutil.rmtree(tmp, ignore_errors=True)
            sub.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
