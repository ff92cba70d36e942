# SPDX-License-Identifier: MIT
"""SIGTERM with --drain-seconds: /readyz turns 503 while /healthz stays 200, new
upgrades are refused with 503 and Retry-After, every enveloped WebSocket client
gets one {"type":"reconnect","after_ms":J} (J spread over the window) after the
messages published before the drain, then a 1001 at its own time (the closes
spread over the window, not bunched at its start); raw streams get only the
1001. A second SIGTERM or a SIGINT ends the drain at once. Timing asserts are
loose: the test machine is shared and loaded."""
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import unittest

from rcserver import RawWs, Server, subscriber

WINDOW_S = 3


def http_get(port, path, timeout=10):
    """One request on a new connection: (status, headers text, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        head = head.decode()
        length = int(next((l.split(":", 1)[1] for l in head.split("\r\n") if l.lower().startswith("content-length:")), "0"))
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
        return int(head.split(" ", 2)[1]), head, body


def read_until_close(ws, out):
    """Collects (time, opcode, payload) until the close frame (or EOF), and
    answers the close as a client library would."""
    try:
        while True:
            op, payload = ws.recv_frame()
            out.append((time.monotonic(), op, payload))
            if op is None:
                return
            if op == 0x8:
                ws.send(0x8, payload[:2])
                ws.close()
                return
    except OSError as e:
        out.append((time.monotonic(), "error", str(e).encode()))


def finish(srv):
    """Stops the server if the test has not, and removes its log."""
    if srv.proc.poll() is None:
        srv.stop()
    else:
        srv.log.close()
    os.unlink(srv.log.name)


def metric(srv, name):
    status, _, body = http_get(srv.port, "/metrics")
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


class Drain(unittest.TestCase):
    def test_paced_drain(self):
        srv = Server("--drain-seconds", str(WINDOW_S), threads=2)
        try:
            self.assertEqual(http_get(srv.port, "/readyz")[0], 200)
            clients = [subscriber(srv.port, ["drain.t"], timeout=20) for _ in range(30)]
            # A raw stream has no ack: its 101 waits until the topic is live.
            raws = [RawWs(srv.port, "/ws?topics=drain.r&format=raw", timeout=20) for _ in range(3)]
            published = 20
            for i in range(published):
                srv.publish("drain.t", json.dumps({"n": i}))
                srv.publish("drain.r", json.dumps({"n": i}))
            frames = [[] for _ in clients + raws]
            threads = [threading.Thread(target=read_until_close, args=(ws, out))
                       for ws, out in zip(clients + raws, frames)]
            for t in threads:
                t.start()
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            # Not ready any more, still alive; new clients are sent elsewhere.
            deadline = time.time() + 5
            while http_get(srv.port, "/readyz")[0] != 503:
                self.assertLess(time.time(), deadline, "/readyz did not turn 503")
                time.sleep(0.02)
            status, head, _ = http_get(srv.port, "/healthz")
            self.assertEqual(status, 200)
            self.assertIn("Connection: close", head, "responses while draining end the connection")
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                head = s.recv(4096)
                self.assertTrue(head.startswith(b"HTTP/1.1 503"), head)
                self.assertIn(b"Retry-After:", head)
            self.assertEqual(metric(srv, "ringcast_drain_reconnect_notices_total"), len(clients))

            for t in threads:
                t.join(WINDOW_S + 15)
                self.assertFalse(t.is_alive(), "a client was not closed")
            rc = srv.proc.wait(timeout=15)
            self.assertEqual(rc, 0)

            afters, close_times = [], []
            for i, got in enumerate(frames):
                raw = i >= len(clients)
                self.assertEqual(got[-1][1], 0x8, got[-3:])
                self.assertEqual(struct.unpack("!H", got[-1][2][:2])[0], 1001)
                close_times.append(got[-1][0] - t0)
                texts = [json.loads(p) for _, op, p in got[:-1] if op == 0x1]
                if raw:
                    # Payloads only, every one, and nothing else.
                    self.assertEqual(texts, [{"n": n} for n in range(published)])
                    continue
                msgs = [m for m in texts if m.get("type") == "msg"]
                self.assertEqual([json.loads(m["data"]) if isinstance(m["data"], str) else m["data"] for m in msgs],
                                 [{"n": n} for n in range(published)], "every message published before the drain")
                notes = [m for m in texts if m.get("type") == "reconnect"]
                self.assertEqual(len(notes), 1, texts[-3:])
                self.assertEqual(texts[-1], notes[0], "the reconnect notice comes after the queued messages")
                self.assertEqual(sorted(notes[0]), ["after_ms", "type"])
                after = notes[0]["after_ms"]
                self.assertTrue(0 <= after < WINDOW_S * 1000, after)
                afters.append(after)
            # Spread over the window: distinct, covering most of it.
            self.assertEqual(len(set(afters)), len(afters), afters)
            self.assertLess(min(afters), WINDOW_S * 1000 * 0.2, afters)
            self.assertGreater(max(afters), WINDOW_S * 1000 * 0.8, afters)
            # The closes are paced, not bunched in the first tenth of the window.
            late = [t for t in close_times if t > WINDOW_S * 0.5]
            self.assertGreater(len(late), len(close_times) // 4, sorted(close_times))
            log = srv.log_text()
            self.assertIn("SIGTERM: draining", log)
            self.assertIn("drain: every connection closed", log)
            self.assertIn("stopped", log)
        finally:
            finish(srv)

    def check_cut_short(self, second):
        srv = Server("--drain-seconds", "60", threads=2)
        try:
            clients = [subscriber(srv.port, ["cut.t"]) for _ in range(6)]
            t0 = time.monotonic()
            if second is not None:
                srv.proc.send_signal(signal.SIGTERM)
                deadline = time.time() + 5
                while http_get(srv.port, "/readyz")[0] != 503:
                    self.assertLess(time.time(), deadline)
                    time.sleep(0.02)
                srv.proc.send_signal(second)
            else:
                srv.proc.send_signal(signal.SIGINT)
            codes = []
            for c in clients:
                codes.append(c.recv_close())
                c.send(0x8, struct.pack("!H", 1001))
            self.assertEqual(codes, [1001] * len(clients))
            self.assertEqual(srv.proc.wait(timeout=10), 0)
            self.assertLess(time.monotonic() - t0, 8, "stopped at once, not after the 60 s window")
        finally:
            for c in clients:
                c.close()
            finish(srv)

    def test_second_sigterm_stops_at_once(self):
        self.check_cut_short(signal.SIGTERM)

    def test_sigint_during_drain_stops_at_once(self):
        self.check_cut_short(signal.SIGINT)

    def test_sigint_is_immediate(self):
        self.check_cut_short(None)

    def test_keepalive_closes_after_its_response(self):
        srv = Server("--drain-seconds", "60", threads=2)
        try:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            c.sendall(req)
            head = c.recv(4096)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            self.assertNotIn(b"Connection: close", head)
            # A few more connections, so this one's turn to close comes late.
            others = [subscriber(srv.port, ["ka.t"]) for _ in range(6)]
            srv.proc.send_signal(signal.SIGTERM)
            deadline = time.time() + 5
            while http_get(srv.port, "/readyz")[0] != 503:
                self.assertLess(time.time(), deadline)
                time.sleep(0.02)
            c.sendall(req)
            head = c.recv(4096)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            self.assertIn(b"Connection: close", head, "its response is its last")
            while c.recv(4096):
                pass  # then the server closes it
            c.close()
            srv.proc.send_signal(signal.SIGINT)
            for ws in others:
                self.assertEqual(ws.recv_close(), 1001)
                ws.close()
            self.assertEqual(srv.proc.wait(timeout=10), 0)
        finally:
            finish(srv)

    def test_idle_server_exits_at_once(self):
        srv = Server("--drain-seconds", "60", threads=2)
        t0 = time.monotonic()
        rc = srv.stop()
        os.unlink(srv.log.name)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 8, "nothing to drain: no wait")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
