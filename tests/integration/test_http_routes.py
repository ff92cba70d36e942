# SPDX-License-Identifier: MIT
"""HTTP on the WebSocket port: routes, status codes with reasons, keep-alive,
pipelining, publish and batch publish (all-or-nothing), metrics and health."""
import json
import socket
import sys
import unittest

from rcserver import Server


class HttpRoutes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--max-message", "1k")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def raw(self, data, read_until_close=True):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                break
        s.close()
        return out

    def assertError(self, status, want_status, data, fragment):
        self.assertEqual(status, want_status, data)
        self.assertIn(fragment, json.loads(data)["error"])

    def test_healthz_and_metrics(self):
        status, _, body = self.srv.http("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"ok\nauth: open"), body)
        status, headers, data = self.srv.http("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        text = data.decode()
        for name in ("ringcast_connections_open", "ringcast_connections_accepted_total",
                     "ringcast_messages_published_total", "ringcast_frames_delivered_total",
                     "ringcast_bytes_delivered_total", "ringcast_slow_consumer_disconnects_total"):
            self.assertIn(f"# TYPE {name} ", text)
            self.assertIn(f"\n{name} ", text)
            self.assertIn(name.replace("ringcast_", "ringcast_shard_") + '{shard="1"}', text)

    def test_not_found_and_wrong_method(self):
        status, _, data = self.srv.http("GET", "/nope")
        self.assertError(status, 404, data, "no route for GET /nope")
        status, headers, data = self.srv.http("POST", "/metrics", body=b"")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET")
        status, headers, _ = self.srv.http("GET", "/publish/x")
        self.assertEqual((status, headers["Allow"]), (405, "POST"))

    def test_bad_upgrades(self):
        status, _, data = self.srv.http("GET", "/ws")
        self.assertError(status, 400, data, "Upgrade: websocket")
        base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        status, headers, data = self.srv.http("GET", "/ws", headers={**base, "Sec-WebSocket-Version": "8"})
        self.assertEqual(status, 426)
        self.assertEqual(headers["Sec-WebSocket-Version"], "13")
        status, _, data = self.srv.http("GET", "/ws", headers={**base, "Sec-WebSocket-Key": "short"})
        self.assertError(status, 400, data, "Sec-WebSocket-Key")
        status, _, data = self.srv.http("GET", "/ws", headers={**base, "Connection": "keep-alive"})
        self.assertError(status, 400, data, "Connection: Upgrade")
        status, _, data = self.srv.http("GET", "/ws?topics=ok,bad%20name", headers=base)
        self.assertError(status, 400, data, "invalid topic name 'bad name'")
        status, _, data = self.srv.http("GET", "/ws?topics=a,b&format=raw", headers=base)
        self.assertError(status, 400, data, "exactly one topic")
        status, _, data = self.srv.http("GET", "/ws?topics=a&format=xml", headers=base)
        self.assertError(status, 400, data, "unknown format")
        status, _, data = self.srv.http("GET", "/ws?topics=%zz", headers=base)
        self.assertError(status, 400, data, "percent-encoding")

    def test_malformed_and_oversized_requests(self):
        self.assertTrue(self.raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(self.raw(b"GET / HTTP/3.0\r\n\r\n").startswith(b"HTTP/1.1 505 "))
        self.assertTrue(self.raw(b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414 "))
        self.assertTrue(self.raw(b"GET / HTTP/1.1\r\nX: " + b"v" * 9000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 "))
        out = self.raw(b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 501 "), out)
        out = self.raw(b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)
        out = self.raw(b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)
        out = self.raw(b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + b"x" * 2048)
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out)
        out = self.raw(b"POST /publish/x HTTP/1.1\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 411 "), out)
        status, _, data = self.srv.http("POST", "/publish/x", body=b"x" * 2000)
        self.assertError(status, 413, data, "--max-message")
        out = self.raw(b"POST /publish/x HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)

    def test_publish_and_invalid_topic(self):
        status, _, data = self.srv.http("POST", "/publish/routes.one", body=b"hello")
        self.assertEqual((status, json.loads(data)), (200, {"ok": True, "published": 1}))
        status, _, data = self.srv.http("POST", "/publish/bad%20topic", body=b"x")
        self.assertError(status, 400, data, "invalid topic name")

    def test_chunked_publish(self):
        body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\n"
        out = self.raw(b"POST /publish/routes.chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n" + body)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK"), out)

    def test_batch_is_all_or_nothing(self):
        before = self.srv.metrics()["ringcast_messages_published_total"]
        good = b"routes.a 2\nhi\nroutes.b 4\nyo\n!\n"
        status, _, data = self.srv.http("POST", "/publish", body=good)
        self.assertEqual((status, json.loads(data)["published"]), (200, 2))
        bad = b"routes.a 2\nhi\nroutes.b 9\nshort\n"
        status, _, data = self.srv.http("POST", "/publish", body=bad)
        self.assertError(status, 400, data, "nothing was published")
        status, _, data = self.srv.http("POST", "/publish", body=b"")
        self.assertError(status, 400, data, "empty batch")
        status, _, data = self.srv.http("POST", "/publish", body=b"bad@@!! 1\nx\n")
        self.assertEqual(status, 400)
        self.assertEqual(self.srv.metrics()["ringcast_messages_published_total"], before + 2)

    def test_keep_alive_and_pipelining(self):
        req = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /publish/routes.p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        out = self.raw(req)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 3, out)
        self.assertIn(b"Connection: close", out.rsplit(b"HTTP/1.1", 1)[1])
        out = self.raw(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK"), "HTTP/1.0 closes after one response")

    def test_request_split_across_reads(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        for piece in (b"POST /publ", b"ish/routes.s HTTP/1.1\r\nContent-Le", b"ngth: 5\r\n\r\nab", b"cde"):
            s.sendall(piece)
        out = s.recv(4096)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK"), out)
        s.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
