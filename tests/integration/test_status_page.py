# SPDX-License-Identifier: MIT
"""The status page (GET /) and its feed, $sys.stats: the page's headers and its
Content-Security-Policy hashes; $ topics refused to publishers and unmatched by
leading wildcards; the feed's numbers against what the test did; --stats-interval
0; --admin-listen taking page and topic off the public port; and headless
Chromium drawing live numbers while ringcast-bench runs traffic, with a
screenshot written to $RC_TEST_OUTPUT (default build/test-output/status_page.png).
The browser part is skipped when no chromium is installed."""
import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

from rcserver import BINARY, RawWs, Server, free_port, subscriber
from test_auth import AUD, ISS, Keys

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BENCH = os.environ.get("RINGCAST_BENCH", os.path.join(os.path.dirname(BINARY), "ringcast-bench"))
STATS = "$sys.stats"
KEYS = {"ts", "uptime_s", "interval_ms", "connections", "published_per_s", "delivered_per_s",
        "latency_ms", "shards", "topics", "memory"}


def output_dir():
    d = os.environ.get("RC_TEST_OUTPUT") or os.path.join(os.path.dirname(os.path.abspath(BINARY)), "test-output")
    os.makedirs(d, exist_ok=True)
    return d


def csp_hash(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def http_on(port, method, path):
    """One request to another listener of the server (the admin address)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


async def stats_messages(url, count, timeout=10):
    """The first count $sys.stats envelopes on a socket subscribed at url, after
    its subscribe ack (checked)."""
    async with websockets.connect(url) as ws:
        ack = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        assert ack.get("type") == "ack" and ack.get("topic") == STATS, ack
        out = []
        while len(out) < count:
            m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            assert m.get("type") == "msg" and m["topic"] == STATS, m
            out.append(m)
        return out


def check_payload(test, d, nshards):
    test.assertEqual(set(d), KEYS, d)
    test.assertEqual(set(d["connections"]), {"websocket", "http"})
    test.assertEqual(set(d["latency_ms"]), {"p50", "p90", "p99", "samples"})
    test.assertEqual(set(d["memory"]), {"charged_bytes", "budget_bytes"})
    test.assertEqual([s["id"] for s in d["shards"]], list(range(nshards)))
    for s in d["shards"]:
        test.assertEqual(set(s), {"id", "connections", "published_per_s", "delivered_per_s", "backlog_bytes"})
    test.assertLess(abs(d["ts"] / 1000 - time.time()), 60)
    for q in ("p50", "p90", "p99"):
        test.assertTrue(d["latency_ms"][q] is None or d["latency_ms"][q] >= 0, d["latency_ms"])
    if d["latency_ms"]["samples"] == 0:
        test.assertIsNone(d["latency_ms"]["p50"], "an interval without sends has no percentiles")


class StatsFeed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_clean()

    def test_page_headers_and_head(self):
        status, headers, body = self.srv.http("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(headers["Cache-Control"], "no-cache")
        self.assertEqual(headers["X-Ringcast-Stats-Interval"], "1000")
        self.assertEqual(int(headers["Content-Length"]), len(body))
        page = body.decode()
        self.assertTrue(page.startswith("<!doctype html>"))
        self.assertIn("$sys.stats", page)
        self.assertNotIn("http://", page.replace("http://www.w3.org", ""), "nothing from elsewhere")
        # The policy allows exactly the page's own inline script and style.
        csp = headers["Content-Security-Policy"]
        script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
        style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
        self.assertIn("script-src " + csp_hash(script) + ";", csp)
        self.assertIn("style-src " + csp_hash(style) + ";", csp)
        self.assertIn("default-src 'none'", csp)
        self.assertIn("connect-src 'self'", csp)
        self.assertNotIn("unsafe", csp)
        status, headers, body = self.srv.http("HEAD", "/")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertEqual(int(headers["Content-Length"]), len(page.encode()))
        status, headers, body = self.srv.http("POST", "/", body=b"x")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")

    def test_clients_may_not_publish_to_reserved_topics(self):
        status, _, body = self.srv.http("POST", "/publish/$sys.stats", body=b"{}")
        self.assertEqual(status, 403)
        self.assertIn("reserved", json.loads(body)["error"])
        status, _, body = self.srv.http("POST", "/publish", body=b"ok.t 1\nx\n$sys.stats 2\n{}\n")
        self.assertEqual(status, 403)
        self.assertIn("record 2", json.loads(body)["error"])
        # The first record was not published either: all or nothing.
        status, _, body = self.srv.http("POST", "/publish/a$b", body=b"{}")
        self.assertEqual(status, 400, "'$' only leads a name")

        async def over_ws():
            async with websockets.connect(self.srv.url()) as ws:
                await ws.send(json.dumps({"op": "publish", "topic": "$sys.stats", "data": {"fake": 1}, "id": 9}))
                return json.loads(await asyncio.wait_for(ws.recv(), 10))

        reply = asyncio.run(over_ws())
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["id"], 9)
        self.assertIn("reserved for the server", reply["error"])

    def test_wildcards_need_the_dollar_segment(self):
        async def run():
            async with websockets.connect(self.srv.url("?topics=%3E")) as everything, \
                    websockets.connect(self.srv.url("?topics=%24sys.%3E")) as sys_all:
                for ws, pattern in ((everything, ">"), (sys_all, "$sys.>")):
                    ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    self.assertEqual(ack, {"type": "ack", "op": "subscribe", "pattern": pattern})
                m = json.loads(await asyncio.wait_for(sys_all.recv(), 10))
                self.assertEqual(m["topic"], STATS)
                self.srv.publish("plain.t", b"1")
                m = json.loads(await asyncio.wait_for(everything.recv(), 10))
                self.assertEqual(m["topic"], "plain.t", "'>' gets ordinary topics, never $sys.stats")
                # Two more stats periods: '>' still sees none of them.
                with self.assertRaises(asyncio.TimeoutError):
                    m = await asyncio.wait_for(everything.recv(), 2.5)
                    raise AssertionError(f"'>' delivered {m}")

        asyncio.run(run())

    def test_numbers_match_what_happened(self):
        subs = [subscriber(self.srv.port, ["count.t"]) for _ in range(5)]
        try:
            stop = threading.Event()

            def publish():
                while not stop.is_set():
                    self.srv.publish("count.t", b'{"n":1}')
                    time.sleep(0.02)

            t = threading.Thread(target=publish, daemon=True)
            t.start()
            try:
                msgs = asyncio.run(stats_messages(self.srv.url("?topics=%24sys.stats"), 4))
            finally:
                stop.set()
                t.join()
        finally:
            for s in subs:
                s.close()
        seqs = [m["seq"] for m in msgs]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 4)), "one message a tick, in order")
        ts = [m["data"]["ts"] for m in msgs]
        for a, b in zip(ts, ts[1:]):
            self.assertTrue(300 <= b - a <= 5000, ts)
        for m in msgs:
            d = m["data"]
            check_payload(self, d, 2)
            self.assertGreaterEqual(d["connections"]["websocket"], 6, "the 5 subscribers and this one")
            # Each gauge is exact, but they are read a moment apart while the
            # publisher opens and closes connections: only roughly together.
            self.assertGreaterEqual(sum(s["connections"] for s in d["shards"]), 6)
            self.assertGreaterEqual(d["topics"], 2)
            self.assertEqual(d["interval_ms"], 1000)
        last = msgs[-1]["data"]
        # About 50 publishes a second to 5 subscribers: rates, loosely (2 shared cores).
        self.assertGreater(last["published_per_s"], 5, last)
        self.assertGreater(last["delivered_per_s"], 25, last)
        self.assertGreaterEqual(last["published_per_s"], sum(s["published_per_s"] for s in last["shards"]) - 0.5)


class StatsSettings(unittest.TestCase):
    def test_interval_zero_turns_the_feed_off(self):
        with Server("--stats-interval", "0") as srv:
            status, headers, _ = srv.http("HEAD", "/")
            self.assertEqual(status, 200)
            self.assertEqual(headers["X-Ringcast-Stats-Interval"], "0")
            ws = subscriber(srv.port, [STATS], timeout=2.5)
            try:
                with self.assertRaises(OSError):
                    ws.recv_frame()  # nothing is ever published: the read times out
            finally:
                ws.close()

    def test_admin_listen_takes_page_and_topics_off_the_public_port(self):
        admin = free_port()
        with Server("--admin-listen", f"127.0.0.1:{admin}") as srv:
            status, _, body = srv.http("GET", "/")
            self.assertEqual(status, 404)
            self.assertIn(b"--admin-listen", body)
            with self.assertRaises(AssertionError):
                RawWs(srv.port, "/ws?topics=%24sys.stats")

            async def public_command():
                async with websockets.connect(srv.url()) as ws:
                    await ws.send(json.dumps({"op": "subscribe", "topics": ["$sys.>"], "id": 1}))
                    return json.loads(await asyncio.wait_for(ws.recv(), 10))

            reply = asyncio.run(public_command())
            self.assertEqual(reply["type"], "error")
            self.assertIn("--admin-listen", reply["error"])

            status, headers, _ = http_on(admin, "GET", "/")
            self.assertEqual(status, 200)
            self.assertIn("sha256-", headers["Content-Security-Policy"])
            msgs = asyncio.run(stats_messages(f"ws://127.0.0.1:{admin}/ws?topics=%24sys.stats", 1))
            check_payload(self, msgs[0]["data"], 2)
            with self.assertRaises(AssertionError):
                RawWs(admin, "/ws?topics=quotes.x")

            async def admin_commands():
                async with websockets.connect(f"ws://127.0.0.1:{admin}/ws") as ws:
                    out = []
                    for cmd in ({"op": "publish", "topic": "x", "data": 1, "id": 1},
                                {"op": "subscribe", "topics": ["x"], "id": 2},
                                {"op": "subscribe", "topics": ["$sys.stats"], "id": 3}):
                        await ws.send(json.dumps(cmd))
                        out.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                    return out

            pub, sub_x, sub_sys = asyncio.run(admin_commands())
            self.assertEqual(pub["type"], "error")
            self.assertIn("--admin-listen", pub["error"])
            self.assertEqual(sub_x["type"], "error")
            self.assertEqual((sub_sys["type"], sub_sys["topic"]), ("ack", STATS))

    def test_with_keys_a_grant_must_name_the_dollar_topic(self):
        keys = Keys()
        try:
            with Server("--jwt-key", keys.files["hs.secret"], "--jwt-audience", AUD, "--jwt-issuer", ISS) as srv:
                url = f"ws://127.0.0.1:{srv.port}/ws?topics=%24sys.stats&token="
                with self.assertRaises(AssertionError):
                    RawWs(srv.port, "/ws?topics=%24sys.stats&token=" + keys.token(sub=(">",)))
                msgs = asyncio.run(stats_messages(url + keys.token(sub=("$sys.>",)), 1))
                check_payload(self, msgs[0]["data"], 2)
                # The page itself needs no credential; its socket does (?token=).
                self.assertEqual(srv.http("GET", "/")[0], 200)
        finally:
            keys.cleanup()


class Cdp:
    """A DevTools session on one page target of a headless Chromium."""

    def __init__(self, ws):
        self.ws, self.n, self.session = ws, 0, None

    async def call(self, method, params=None):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        await self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if r.get("id") == self.n:
                if "error" in r:
                    raise RuntimeError(r["error"])
                return r["result"]

    async def text(self, element_id):
        r = await self.call("Runtime.evaluate", {
            "expression": f"(document.getElementById({json.dumps(element_id)}) || {{}}).textContent",
            "returnByValue": True})
        return r["result"].get("value")


def number(text):
    try:
        return float(text.replace(",", ""))
    except (AttributeError, ValueError):
        return None


@unittest.skipUnless(CHROMIUM, "chromium is not installed")
class BrowserPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.profile = tempfile.mkdtemp(prefix="ringcast-chromium-")
        cls.browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             f"--user-data-dir={cls.profile}", "--window-size=1200,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        cls.cdp_url = None
        while time.time() < deadline and not cls.cdp_url:
            m = re.search(r"DevTools listening on (ws://\S+)", cls.browser.stderr.readline())
            cls.cdp_url = m and m.group(1)
        if not cls.cdp_url:
            cls.tearDownClass()
            raise RuntimeError("chromium did not start its DevTools endpoint")
        threading.Thread(target=cls.browser.stderr.read, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.browser.terminate()
        try:
            cls.browser.wait(10)
        except subprocess.TimeoutExpired:
            cls.browser.kill()
            cls.browser.wait()
        cls.browser.stderr.close()
        shutil.rmtree(cls.profile, ignore_errors=True)

    def test_token_in_the_page_url_reaches_the_socket(self):
        keys = Keys()
        try:
            with Server("--jwt-key", keys.files["hs.secret"], "--jwt-audience", AUD, "--jwt-issuer", ISS) as srv:
                async def status_of(url, want):
                    async with websockets.connect(self.cdp_url, max_size=None) as ws:
                        cdp = Cdp(ws)
                        target = (await cdp.call("Target.createTarget", {"url": url}))["targetId"]
                        cdp.session = (await cdp.call("Target.attachToTarget",
                                                      {"targetId": target, "flatten": True}))["sessionId"]
                        text = ""
                        for _ in range(100):
                            text = await cdp.text("status") or ""
                            if want in text:
                                break
                            await asyncio.sleep(0.1)
                        await cdp.call("Target.closeTarget", {"targetId": target})
                        return text

                base = f"http://127.0.0.1:{srv.port}/"
                token = keys.token(sub=("$sys.>",))
                self.assertTrue(asyncio.run(status_of(base + "?token=" + token, "live")).startswith("live"))
                refused = asyncio.run(status_of(base, "refused"))
                self.assertIn("token", refused, "without a token the page says what is missing")
        finally:
            keys.cleanup()

    def test_page_shows_live_numbers_under_traffic(self):
        started = time.time()
        srv = Server()
        cdp_url = self.cdp_url
        bench = None
        try:
            async def run():
                nonlocal bench, srv
                async with websockets.connect(cdp_url, max_size=None) as ws:
                    cdp = Cdp(ws)
                    target = (await cdp.call("Target.createTarget", {"url": f"http://127.0.0.1:{srv.port}/"}))["targetId"]
                    cdp.session = (await cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
                    # The script runs only if the policy's hashes match it: "live"
                    # means the page loaded, connected and drew a sample.
                    for _ in range(100):
                        if (await cdp.text("status") or "").startswith("live"):
                            break
                        await asyncio.sleep(0.1)
                    self.assertTrue((await cdp.text("status")).startswith("live"), await cdp.text("status"))
                    idle_conns = number(await cdp.text("connections"))
                    self.assertIsNotNone(idle_conns)
                    bench = subprocess.Popen(
                        [BENCH, "--url", f"ws://127.0.0.1:{srv.port}/ws?topics={{topic}}",
                         "--publish", f"http://127.0.0.1:{srv.port}/publish", "--conns", "20",
                         "--topics", "2", "--rate", "400", "--size", "64", "--duration", "8"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    best = {"connections": 0.0, "delivered": 0.0, "published": 0.0}
                    shot = None
                    t0 = time.time()
                    while time.time() - t0 < 12:
                        await asyncio.sleep(0.5)
                        for k in best:
                            v = number(await cdp.text(k))
                            if v is not None:
                                best[k] = max(best[k], v)
                        if shot is None and best["delivered"] > 1000 and best["connections"] >= 20:
                            await asyncio.sleep(2.2)  # more samples, so the sparklines have a shape
                            shot = (await cdp.call("Page.captureScreenshot", {"format": "png"}))["data"]
                        if shot and bench.poll() is not None:
                            break
                    rows = await cdp.call("Runtime.evaluate", {
                        "expression": "document.getElementById('shards').tBodies[0].rows.length", "returnByValue": True})
                    # A server that goes away and comes back on the same port: the
                    # page says so, backs off, reconnects and is live again.
                    port = srv.port
                    srv.stop_clean()
                    srv = None
                    down = ""
                    for _ in range(50):
                        down = await cdp.text("status") or ""
                        if "reconnecting" in down:
                            break
                        await asyncio.sleep(0.1)
                    srv = Server(port=port)
                    back = ""
                    for _ in range(150):
                        back = await cdp.text("status") or ""
                        # A new server's $sys.stats starts again from seq 1.
                        if back.startswith("live") and (number(await cdp.text("seq")) or 99) < 10:
                            break
                        await asyncio.sleep(0.1)
                    await cdp.call("Target.closeTarget", {"targetId": target})
                    return best, shot, rows["result"]["value"], idle_conns, down, back

            best, shot, rows, idle_conns, down, back = asyncio.run(asyncio.wait_for(run(), 45))
            self.assertGreaterEqual(best["connections"], idle_conns + 20, best)
            self.assertGreater(best["published"], 100, best)
            self.assertGreater(best["delivered"], 1000, best)
            self.assertEqual(rows, 2, "one row per shard")
            self.assertIsNotNone(shot, "no screenshot while the traffic ran")
            self.assertIn("reconnecting", down)
            self.assertTrue(back.startswith("live"), f"not live again after the restart: {back!r}")
            path = os.path.join(output_dir(), "status_page.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot))
            print(f"\nstatus page screenshot: {path} (test took {time.time() - started:.1f} s)", flush=True)
        finally:
            if bench and bench.poll() is None:
                bench.send_signal(signal.SIGTERM)
                try:
                    bench.wait(5)
                except subprocess.TimeoutExpired:
                    bench.kill()
                    bench.wait()
            if srv:
                srv.stop_clean()


if __name__ == "__main__":
    unittest.main(verbosity=2)
