# SPDX-License-Identifier: MIT
"""Headless Chromium's own WebSocket, driven over the DevTools protocol: a page
served from an allowed origin opens wss:// with its token in ?token= (a browser
cannot set headers on a WebSocket), receives published messages in order and
renews its token with an auth command; the same page loaded from another origin
is refused (the socket fails to open and the server counts an origin refusal).
Skipped when no chromium is installed."""
import asyncio
import http.server
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

from rcserver import check_subscribe_acks, free_port
from test_auth import AUD, ISS, Keys
from tlsutil import TlsServer, cleanup

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = b"""<!doctype html><title>ringcast</title><script>
window.run = (url, renew) => new Promise((resolve) => {
  const got = [];
  const ws = new WebSocket(url);
  ws.onopen = () => { if (renew) ws.send(JSON.stringify({op: "auth", token: renew, id: "renew"})); };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    got.push(m);
    if (got.filter((x) => x.type === "msg" && x.topic === "browser.t").length === 5) { ws.close(1000); resolve({ok: true, got}); }
  };
  ws.onerror = () => resolve({ok: false, got});
  setTimeout(() => resolve({ok: false, timeout: true, got}), 15000);
});
</script>"""


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


class Chromium:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="ringcast-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        self.ws_url = None
        while time.time() < deadline and not self.ws_url:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                self.ws_url = m.group(1)
        if not self.ws_url:
            self.close()
            raise RuntimeError("chromium did not start its DevTools endpoint")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    async def evaluate_in(self, page_url, expression):
        async with websockets.connect(self.ws_url, max_size=None) as cdp:
            n = 0

            async def call(method, params=None, session=None):
                nonlocal n
                n += 1
                msg = {"id": n, "method": method, "params": params or {}}
                if session:
                    msg["sessionId"] = session
                await cdp.send(json.dumps(msg))
                while True:
                    r = json.loads(await cdp.recv())
                    if r.get("id") == n:
                        if "error" in r:
                            raise RuntimeError(r["error"])
                        return r["result"]

            target = (await call("Target.createTarget", {"url": page_url}))["targetId"]
            session = (await call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
            for _ in range(100):
                ready = await call("Runtime.evaluate", {"expression": "typeof window.run"}, session)
                if ready["result"].get("value") == "function":
                    break
                await asyncio.sleep(0.1)
            r = await call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session)
            await call("Target.closeTarget", {"targetId": target})
            return r["result"]["value"]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@unittest.skipUnless(CHROMIUM, "chromium is not installed")
class Browser(unittest.TestCase):
    def test_chromium_websocket_over_wss_with_token_and_origin(self):
        keys = Keys()
        page_port = free_port()
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), Page)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        srv = TlsServer("--jwt-key", keys.files["hs.secret"], "--jwt-audience", AUD, "--jwt-issuer", ISS,
                        "--allow-origin", f"http://localhost:{page_port}")
        browser = Chromium()
        try:
            pub = {"Authorization": "Bearer " + keys.token(sub=(), pub=("browser.t",))}

            def publish_soon():
                time.sleep(1.5)
                for i in range(5):
                    srv.http("POST", "/publish/browser.t", body=json.dumps({"i": i}), headers=pub)

            token = keys.token(sub=("browser.*",))
            url = f"wss://localhost:{srv.tls_port}/ws?topics=browser.t&token={token}"
            threading.Thread(target=publish_soon, daemon=True).start()
            result = asyncio.run(browser.evaluate_in(
                f"http://localhost:{page_port}/", f"window.run({json.dumps(url)}, {json.dumps(keys.token(sub=('browser.*',), exp_in=600))})"))
            self.assertTrue(result["ok"], result)
            # The URL subscription's ack comes first (seq 0: nothing published yet), then
            # the messages from the seq after it.
            ack = check_subscribe_acks(result["got"][:1], ["browser.t"])["browser.t"]
            msgs = [m for m in result["got"] if m.get("type") == "msg" and m.get("topic") == "browser.t"]
            self.assertEqual([m["data"]["i"] for m in msgs], list(range(5)))
            self.assertEqual([m["seq"] for m in msgs], list(range(ack["seq"] + 1, ack["seq"] + 6)))
            self.assertTrue(any(m.get("type") == "ack" and m.get("op") == "auth" for m in result["got"]))
            self.assertEqual(len(result["got"]), 7, "the two acks and five messages, nothing else")

            # The same page from another origin (127.0.0.1 is not localhost) is refused.
            before = srv.metrics().get('ringcast_auth_refusals_total{reason="origin"}', 0)
            result = asyncio.run(browser.evaluate_in(
                f"http://127.0.0.1:{page_port}/", f"window.run({json.dumps(url)}, null)"))
            self.assertFalse(result["ok"], result)
            self.assertEqual(srv.metrics()['ringcast_auth_refusals_total{reason="origin"}'], before + 1)
            self.assertIn(f"upgrade from origin http://127.0.0.1:{page_port} refused with 403", srv.log_text())
        finally:
            browser.close()
            httpd.shutdown()
            keys.cleanup()
            cleanup()
            srv.stop_clean()


if __name__ == "__main__":
    unittest.main(verbosity=2)
