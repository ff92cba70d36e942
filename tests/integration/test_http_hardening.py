# SPDX-License-Identifier: MIT
"""HTTP request framing as RFC 9112 requires it: every way of giving a body two
framings (the start of request smuggling) is answered 400 (or 501 for an unknown
coding) and the connection closed, and a request hidden in such a body is never
published. Chunked bodies are decoded as they arrive, each byte once: a 4 MiB body
in 1 KiB chunks costs the server little CPU, where decoding it again on every
receive cost seconds."""
import json
import os
import socket
import time
import unittest

from rcserver import RawWs, Server, subscriber


def exchange(port, data, timeout=5):
    """Sends data, returns everything the server answered until it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        out += b"<still open>"
    s.close()
    return out


def server_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HIDDEN = b"POST /publish/smuggled HTTP/1.1\r\nContent-Length: 4\r\n\r\nevil"


class Smuggling(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.watch = subscriber(cls.srv.port, ["smuggled"])

    @classmethod
    def tearDownClass(cls):
        cls.watch.close()
        cls.srv.stop()

    def refused(self, head, body, status=400):
        answer = exchange(self.srv.port, head + body)
        self.assertTrue(answer.startswith(b"HTTP/1.1 %d " % status), answer[:200])
        self.assertIn(b"Connection: close", answer)
        self.assertNotIn(b"<still open>", answer, "the connection is closed after the answer")
        self.assertEqual(answer.count(b"HTTP/1.1 "), 1, "nothing after the refusal was served")
        return answer

    def test_each_double_framing_is_refused_and_nothing_hidden_is_published(self):
        cases = [
            b"POST /publish/x HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(HIDDEN),
            b"POST /publish/x HTTP/1.1\r\nContent-Length: %d, 0\r\n\r\n" % len(HIDDEN),
            b"POST /publish/x HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            b"POST /publish/x HTTP/1.1\r\nContent-Length: 0\r\n  continued\r\n\r\n",  # obs-fold
        ]
        for head in cases:
            with self.subTest(head=head):
                answer = self.refused(head, HIDDEN)
                self.assertIn(b'"error"', answer)
        answer = self.refused(b"POST /publish/x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HIDDEN, 501)
        self.assertIn(b"chunked", answer)
        # The smuggled request's topic got nothing, and the server still serves.
        self.watch.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            self.watch.recv_frame()
        self.assertEqual(self.srv.http("GET", "/healthz")[0], 200)
        m = self.srv.metrics()
        self.assertEqual(m.get("ringcast_messages_published_total", 0), 0)

    def test_identical_lengths_are_one_length(self):
        body = b"ok"
        answer = exchange(self.srv.port, b"POST /publish/same HTTP/1.1\r\nContent-Length: 2\r\n"
                          b"Content-Length: 2\r\nConnection: close\r\n\r\n" + body)
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])


class LinearChunkedBodies(unittest.TestCase):
    def test_a_large_chunked_body_costs_little_and_arrives_intact(self):
        with Server("--max-message", "8m") as srv:
            sub = RawWs(srv.port, "/ws?topics=big&format=raw")
            payload = bytes((i * 7 + i // 1024) % 251 for i in range(4 << 20))
            chunks = b"".join(b"%x;ext=1\r\n" % 1024 + payload[i:i + 1024] + b"\r\n"
                              for i in range(0, len(payload), 1024))
            body = chunks + b"0\r\nTrailer: t\r\n\r\n"
            cpu0 = server_cpu_s(srv.proc.pid)
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            s.sendall(b"POST /publish/big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(body), 4096):  # many receives, each a little more body
                s.sendall(body[i:i + 4096])
            answer = s.recv(4096)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])
            cpu = server_cpu_s(srv.proc.pid) - cpu0
            s.close()
            sub.sock.settimeout(30)
            op, got = sub.recv_frame()
            self.assertEqual((op, len(got)), (0x2, len(payload)))
            self.assertEqual(got, payload)
            print(f"4 MiB chunked body: {cpu:.2f} CPU s in the server")
            # Decoding from the start on every receive cost 3.3 s; once per byte is ~0.05 s.
            self.assertLess(cpu, 1.0)
            sub.close()

    def test_tiny_chunks_do_not_keep_their_framing(self):
        with Server("--max-message", "1m") as srv:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            s.sendall(b"POST /publish/tiny HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            s.sendall(b"1\r\nx\r\n" * 200000)  # 1.2 MB of framing for 200 KB of data
            s.sendall(b"0\r\n\r\n")
            answer = s.recv(4096)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])
            s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
