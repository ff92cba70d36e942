# SPDX-License-Identifier: MIT
"""wss:// and https:// against clients no one here wrote: Python's ssl with
websockets and http.client, the openssl command line (TLS 1.2 and 1.3 accepted;
1.0, 1.1 and weak suites refused), curl publishing over https. Session tickets
resume in both versions. Hostile input on the TLS port (cleartext HTTP, noise, a
ClientHello byte by byte, a stalled handshake, a record cut short, an oversized
record, a renegotiation) each gets its end, its log line and its counter, while a
wss subscriber on the same server keeps every message, in order."""
import asyncio
import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import time
import unittest

import websockets

from rcserver import BINARY, recv_subscribe_acks
from tlsutil import MemoryTls, TlsServer, certs, cleanup


@contextlib.contextmanager
def tls_server(*args, **kw):
    """A TlsServer that must exit cleanly (no crash, no sanitizer report)."""
    srv = TlsServer(*args, **kw)
    try:
        yield srv
    finally:
        srv.stop_clean()


def https_get(srv, path, ctx=None, session=None):
    ctx = ctx or srv.client_context()
    c = http.client.HTTPSConnection("localhost", srv.tls_port, context=ctx, timeout=10)
    c.connect()
    if session is not None:
        c.sock.close()
        raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
        c.sock = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    info = {"version": c.sock.version(), "reused": c.sock.session_reused, "session": c.sock.session,
            "alpn": c.sock.selected_alpn_protocol()}
    c.close()
    return r.status, body, info


def s_client(port, *flags, send=b"", wait=0.5):
    """openssl s_client with `send` written after the handshake; its output."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                          "localhost", *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    time.sleep(wait)
    try:
        out, _ = p.communicate(send, timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out.decode(errors="replace")


def s_client_steps(port, steps, *flags, pause=0.5):
    """openssl s_client fed its input a step at a time (so "K", "R" are read as
    its commands, not data), stdin kept open until the end; its output."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                          "localhost", *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    for step in steps:
        time.sleep(pause)
        p.stdin.write(step)
        p.stdin.flush()
    time.sleep(pause)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out.decode(errors="replace")


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def closed_by_server(sock, timeout=5):
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True, got
            got += chunk
    except ConnectionResetError:
        return True, got
    except socket.timeout:
        return False, got


class Clients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = TlsServer()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_clean()

    def test_websockets_over_wss_every_message_in_order(self):
        srv, n = self.srv, 3000

        async def run():
            async with websockets.connect(srv.wss("?topics=tls.order"), ssl=srv.client_context(),
                                          max_size=None) as sub:
                await recv_subscribe_acks(sub, ["tls.order"])
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as pub:
                    for i in range(n):
                        await pub.send(json.dumps({"op": "publish", "topic": "tls.order", "data": i}))
                    seqs = []
                    while len(seqs) < n:
                        m = json.loads(await asyncio.wait_for(sub.recv(), 20))
                        if m.get("topic") == "tls.order" and "seq" in m and "data" in m:
                            self.assertEqual(m["data"], len(seqs))
                            seqs.append(m["seq"])
                    self.assertEqual(seqs, list(range(seqs[0], seqs[0] + n)))
                    # Past its handshake a ChaCha20 connection seals its own records:
                    # its wolfSSL object is gone.
                    self.assertGreaterEqual(srv.tls_metrics()["ringcast_tls_connections_without_wolfssl"], 1)
                    big = "y" * 900_000
                    await pub.send(json.dumps({"op": "publish", "topic": "tls.order", "data": big}))
                    while True:
                        m = json.loads(await asyncio.wait_for(sub.recv(), 20))
                        if m.get("data") == big:
                            break

        before = srv.tls_metrics()
        asyncio.run(run())
        after = srv.tls_metrics()
        records = after["ringcast_tls_records_total"] - before.get("ringcast_tls_records_total", 0)
        # Queued frames share records: fewer records than messages.
        self.assertLess(records, n, after)
        self.assertGreater(after["ringcast_tls_plaintext_bytes_total"], 900_000)

    def test_python_ssl_both_versions_and_alpn(self):
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            ctx = self.srv.client_context(version)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            status, body, info = https_get(self.srv, "/healthz", ctx)
            self.assertEqual((status, info["version"], info["alpn"]), (200, name, "http/1.1"), body)
        # A client offering only another protocol gets no ALPN answer and HTTP/1.1.
        ctx = self.srv.client_context()
        ctx.set_alpn_protocols(["h2"])
        status, _, info = https_get(self.srv, "/healthz", ctx)
        self.assertEqual((status, info["alpn"]), (200, None))

    def test_session_tickets_resume_in_both_versions(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = self.srv.client_context(version)
            status, _, first = https_get(self.srv, "/healthz", ctx)
            self.assertEqual(status, 200)
            self.assertFalse(first["reused"])
            self.assertIsNotNone(first["session"])
            status, _, second = https_get(self.srv, "/healthz", ctx, session=first["session"])
            self.assertEqual(status, 200)
            self.assertTrue(second["reused"], version)
        self.assertGreaterEqual(self.srv.metrics()['ringcast_tls_handshakes_total{kind="resumed"}'], 2)

    def test_openssl_s_client_versions_and_suites(self):
        req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        for flag, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            out = s_client(self.srv.tls_port, flag, "-CAfile", self.srv.cert, "-ign_eof", send=req)
            self.assertIn(f"Protocol  : {proto}", out)
            self.assertIn("Verify return code: 0 (ok)", out)
            self.assertIn("HTTP/1.1 200 OK", out)
        # A TLS 1.3 KeyUpdate (s_client's "K") on an AES-GCM connection, whose
        # records wolfSSL keeps, is answered and the connection goes on under the
        # new keys; on a ChaCha20 connection, whose records are sealed here from
        # keys without the secret they derive from, it ends the connection.
        out = s_client_steps(self.srv.tls_port, [b"K\n", req], "-tls1_3", "-CAfile", self.srv.cert,
                             "-ciphersuites", "TLS_AES_128_GCM_SHA256")
        self.assertIn("KEYUPDATE", out)
        self.assertIn("HTTP/1.1 200 OK", out)
        before = self.srv.failures("post_handshake_message")
        out = s_client_steps(self.srv.tls_port, [b"K\n"], "-tls1_3", "-CAfile", self.srv.cert)
        self.assertIn("KEYUPDATE", out)
        self.assertIn("alert unexpected message", out)
        self.assertEqual(self.srv.failures("post_handshake_message"), before + 1)
        before = self.srv.failures("version")
        for flag in ("-tls1", "-tls1_1"):
            out = s_client(self.srv.tls_port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertIn("alert protocol version", out)
        self.assertEqual(self.srv.failures("version"), before + 2)
        before = self.srv.failures("cipher")
        for suite in ("AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"):
            out = s_client(self.srv.tls_port, "-tls1_2", "-cipher", suite)
            self.assertIn("alert handshake failure", out, suite)
        self.assertEqual(self.srv.failures("cipher"), before + 3)

    def test_curl_publishes_over_https_with_keepalive(self):
        srv = self.srv

        async def run():
            async with websockets.connect(srv.wss("?topics=tls.curl"), ssl=srv.client_context()) as sub:
                await recv_subscribe_acks(sub, ["tls.curl"])
                url = f"https://localhost:{srv.tls_port}/publish/tls.curl"
                one = ["-sS", "--cacert", srv.cert, "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null"]
                out = subprocess.run(["curl", *one, "-d", '{"n":1}', url, "--next", *one, "-d", '{"n":2}', url],
                                     capture_output=True, timeout=20)
                lines = [l for l in out.stdout.decode().splitlines() if l.startswith("200")]
                self.assertEqual(len(lines), 2, out)
                self.assertEqual(lines[1].split()[1], "0", "the second publish reused the connection")
                got = []
                while len(got) < 2:
                    m = json.loads(await asyncio.wait_for(sub.recv(), 10))
                    if m.get("topic") == "tls.curl" and "data" in m:
                        data = m["data"]
                        got.append((json.loads(data) if isinstance(data, str) else data)["n"])
                self.assertEqual(got, [1, 2])

        asyncio.run(run())


class RsaCertificate(unittest.TestCase):
    def test_rsa_2048_serves_both_versions(self):
        with tls_server(kind="rsa") as srv:
            for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
                status, _, info = https_get(srv, "/healthz", srv.client_context(version))
                self.assertEqual((status, info["version"]), (200, name))
            out = s_client(srv.tls_port, "-tls1_2", "-CAfile", srv.cert, "-ign_eof",
                           send=b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertIn("ECDHE-RSA-", out)


class Hostile(unittest.TestCase):
    """Each attack ends with its answer and its counter; a bystander subscriber
    over wss sees every message published between them, in order."""

    def test_attacks_on_the_tls_port(self):
        with tls_server("--handshake-timeout", "2") as srv:
            asyncio.run(self.attack_with_bystander(srv))
            log = srv.log_text()
            for line in ("cleartext HTTP on a TLS port", "is not a TLS handshake record",
                         "left during the TLS handshake", "ended in the middle of a record",
                         "TLS record refused"):
                self.assertIn(line, log)

    async def attack_with_bystander(self, srv):
        async with websockets.connect(srv.wss("?topics=tls.bystander"), ssl=srv.client_context()) as sub:
            await recv_subscribe_acks(sub, ["tls.bystander"])
            published = 0
            for attack in (self.cleartext_http, self.noise, self.byte_by_byte, self.stalled_handshake,
                           self.left_mid_handshake, self.truncated_record, self.oversized_record,
                           self.renegotiation):
                await asyncio.to_thread(attack, srv)
                published += 1
                srv.publish("tls.bystander", json.dumps({"after": attack.__name__}))
            got = []
            while len(got) < published:
                m = json.loads(await asyncio.wait_for(sub.recv(), 10))
                if m.get("topic") == "tls.bystander" and "data" in m:
                    got.append(m["seq"])
            self.assertEqual(got, list(range(got[0], got[0] + published)))

    def cleartext_http(self, srv):
        s = socket.create_connection(("127.0.0.1", srv.tls_port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        done, got = closed_by_server(s)
        s.close()
        self.assertTrue(done)
        self.assertTrue(got.startswith(b"HTTP/1.1 400 "), got)
        self.assertIn(b"this port speaks TLS", got)
        self.assertTrue(wait_for(lambda: srv.failures("plaintext_http") == 1))

    def noise(self, srv):
        s = socket.create_connection(("127.0.0.1", srv.tls_port))
        s.sendall(b"\x00\xff\x13garbage")
        done, got = closed_by_server(s)
        s.close()
        self.assertTrue(done)
        self.assertEqual(got, b"")
        self.assertTrue(wait_for(lambda: srv.failures("not_tls") == 1))

    def byte_by_byte(self, srv):
        def trickle(sock, data):
            for i in range(len(data)):
                sock.sendall(data[i:i + 1])
                time.sleep(0.002)

        c = MemoryTls(srv.tls_port, srv.client_context())
        c.handshake(first_flight_sender=trickle)
        c.sock.sendall(c.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        self.assertIn(b"HTTP/1.1 200 OK", c.read_until(b"ok"))
        c.close()

    def stalled_handshake(self, srv):
        c = MemoryTls(srv.tls_port, srv.client_context())
        try:
            c.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = c.pending_out()
        c.sock.sendall(hello[:20])  # then nothing: --handshake-timeout is 2 s
        done, _ = closed_by_server(c.sock, timeout=6)
        c.close()
        self.assertTrue(done)
        self.assertTrue(wait_for(lambda: srv.failures("handshake_timeout") == 1))

    def left_mid_handshake(self, srv):
        s = socket.create_connection(("127.0.0.1", srv.tls_port))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00")
        time.sleep(0.1)
        s.close()
        self.assertTrue(wait_for(lambda: srv.failures("handshake_incomplete") >= 1))

    def truncated_record(self, srv):
        c = MemoryTls(srv.tls_port, srv.client_context())
        c.handshake()
        records = c.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        c.sock.sendall(records[:len(records) // 2])
        time.sleep(0.1)
        c.close()
        self.assertTrue(wait_for(lambda: srv.failures("truncated_record") == 1))

    def oversized_record(self, srv):
        before = srv.failures("protocol")
        c = MemoryTls(srv.tls_port, srv.client_context(ssl.TLSVersion.TLSv1_2))
        c.handshake()
        # An application-data record claiming 20,000 bytes: past 2^14 + 2048.
        c.sock.sendall(b"\x17\x03\x03\x4e\x20" + b"\x00" * 20000)
        done, got = closed_by_server(c.sock)
        c.close()
        self.assertTrue(done)
        self.assertTrue(got.startswith(b"\x15\x03\x03"), got[:8])  # an alert record first
        self.assertTrue(wait_for(lambda: srv.failures("protocol") == before + 1))

    def renegotiation(self, srv):
        before = srv.failures("protocol")
        out = s_client(srv.tls_port, "-tls1_2", send=b"R\n", wait=0.7)
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("alert", out)
        self.assertTrue(wait_for(lambda: srv.failures("protocol") == before + 1))


class Configuration(unittest.TestCase):
    def run_bin(self, *args):
        return subprocess.run([BINARY, "--listen", "127.0.0.1:0", *args], capture_output=True, timeout=10)

    def test_bad_settings_are_refused_with_a_message(self):
        ec, rsa = certs()["ec"], certs()["rsa"]
        r = self.run_bin("--tls-cert", ec[0])
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--tls-cert is given without --tls-key", r.stderr)
        r = subprocess.run([BINARY, "--listen", "127.0.0.1:0,tls"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"no certificate is given", r.stderr)
        r = subprocess.run([BINARY, "--listen", "127.0.0.1:0,ssl"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"HOST:PORT,tls", r.stderr)
        r = self.run_bin("--tls-cert", ec[0], "--tls-key", rsa[1])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"does not match the certificate", r.stderr)
        r = self.run_bin("--tls-cert", "/nonexistent.pem", "--tls-key", ec[1])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"not a readable PEM certificate chain", r.stderr)


def tearDownModule():
    cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
