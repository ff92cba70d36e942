# SPDX-License-Identifier: MIT
"""TLS for the integration tests: throw-away certificates made with the openssl
command line (ECDSA P-256 and RSA-2048), a ringcast started with a cleartext port
(for /metrics) and a TLS port, and client contexts that trust the certificate."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from rcserver import Server, free_port

_DIR = None


def certs():
    """{'ec': (cert, key), 'rsa': (cert, key)}, made once per test process."""
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="ringcast-tls-")
        ec_key, ec_crt = os.path.join(_DIR, "ec.key"), os.path.join(_DIR, "ec.crt")
        rsa_key, rsa_crt = os.path.join(_DIR, "rsa.key"), os.path.join(_DIR, "rsa.crt")
        subj = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", ec_key, "-out", ec_crt, "-days", "2", *subj],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", rsa_key,
                        "-out", rsa_crt, "-days", "2", *subj], check=True, capture_output=True)
    return {"ec": (os.path.join(_DIR, "ec.crt"), os.path.join(_DIR, "ec.key")),
            "rsa": (os.path.join(_DIR, "rsa.crt"), os.path.join(_DIR, "rsa.key"))}


def cleanup():
    if _DIR:
        shutil.rmtree(_DIR, ignore_errors=True)


class TlsServer(Server):
    """ringcast with its cleartext port (self.port) and a TLS port (self.tls_port)."""

    def __init__(self, *args, kind="ec", threads=2):
        self.tls_port = free_port()
        self.cert, self.key = certs()[kind]
        super().__init__("--listen", f"127.0.0.1:{self.tls_port},tls", "--tls-cert", self.cert,
                         "--tls-key", self.key, *args, threads=threads)

    def client_context(self, version=None):
        ctx = ssl.create_default_context(cafile=self.cert)
        if version:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx

    def wss(self, query=""):
        return f"wss://localhost:{self.tls_port}/ws{query}"

    def tls_metrics(self):
        m = self.metrics()
        return {k: v for k, v in m.items() if k.startswith("ringcast_tls_")}

    def failures(self, reason):
        return self.metrics().get(f'ringcast_tls_failures_total{{reason="{reason}"}}', 0)


class MemoryTls:
    """A TLS client driven by hand over a raw socket (ssl.MemoryBIO), for what a
    client library will not do: a ClientHello sent byte by byte, a record cut in
    the middle, a record header that lies about its length."""

    def __init__(self, port, ctx, server_hostname="localhost", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=server_hostname)

    def pending_out(self):
        return self.out.read()

    def handshake(self, first_flight_sender=None):
        first = True
        while True:
            try:
                self.obj.do_handshake()
                data = self.pending_out()
                if data:
                    self.sock.sendall(data)
                return
            except ssl.SSLWantReadError:
                data = self.pending_out()
                if data:
                    if first and first_flight_sender:
                        first_flight_sender(self.sock, data)
                    else:
                        self.sock.sendall(data)
                first = False
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed during the handshake")
                self.inc.write(chunk)

    def write(self, data):
        """Encrypts data; returns the records instead of sending them."""
        self.obj.write(data)
        return self.pending_out()

    def read_until(self, marker, limit=1 << 20):
        got = b""
        while marker not in got and len(got) < limit:
            try:
                got += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.inc.write(chunk)
        return got

    def close(self):
        self.sock.close()
