# SPDX-License-Identifier: MIT
"""Starts the real ringcast binary on a free port for integration tests, and a raw
WebSocket client for the cases real client libraries refuse to produce."""
import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

BINARY = os.environ.get("RINGCAST_BIN", os.path.join(os.path.dirname(__file__), "../../build/ringcast"))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EPOCH = re.compile(r"[0-9a-f]{16}\Z")
NO_ID = object()  # check_subscribe_acks: the acks carry no "id" (URL subscriptions, commands without one)


def _sanitized():
    try:
        with open(BINARY, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__tsan_init" in data


# Under ASan or TSan the allocator is the sanitizer's (quarantine, shadow memory):
# memory figures say nothing about ringcast's, so tests skip those assertions.
SANITIZED = _sanitized()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_subscribe_acks(acks, topics, seqs=0, id=NO_ID):
    """Asserts acks (parsed JSON objects, in any order: topics are acknowledged as
    each goes live) are exactly one new-subscription ack per topic:
    {"type":"ack","op":"subscribe"[,"id":id],"topic":T,"seq":N,"epoch":"<16 hex>"}.
    seqs is the seq each must carry (the messages published on the topic before it
    went live): one int for every topic, or a dict by topic. Returns {topic: ack}."""
    by_topic = {}
    for ack in acks:
        assert isinstance(ack, dict) and ack.get("type") == "ack" and ack.get("op") == "subscribe", ack
        topic = ack.get("topic")
        assert topic in topics and topic not in by_topic, (ack, topics)
        want = seqs if isinstance(seqs, int) else seqs[topic]
        expect = {"type": "ack", "op": "subscribe", "topic": topic, "seq": want, "epoch": ack.get("epoch")}
        if id is not NO_ID:
            expect["id"] = id
        assert ack == expect, (ack, expect)
        assert isinstance(ack["epoch"], str) and EPOCH.match(ack["epoch"]), ack
        by_topic[topic] = ack
    assert sorted(by_topic) == sorted(set(topics)), (acks, topics)
    return by_topic


async def recv_subscribe_acks(ws, topics, seqs=0, id=NO_ID, timeout=10):
    """Reads and checks (check_subscribe_acks) the next len(topics) frames of a
    websockets client: the acks after a connect with ?topics= or a subscribe command."""
    acks = [json.loads(await asyncio.wait_for(ws.recv(), timeout)) for _ in set(topics)]
    return check_subscribe_acks(acks, topics, seqs, id)


class Server:
    """The binary on a free port (or port=, e.g. to start a --takeover successor
    on another server's port). Servers stop at once on SIGTERM unless the test
    passes its own --drain-seconds: stop() and the tests that count on a quick
    exit predate draining."""

    def __init__(self, *args, threads=2, port=None):
        self.port = free_port() if port is None else port
        self.log = tempfile.NamedTemporaryFile(prefix="ringcast-", suffix=".log", delete=False)
        drain = [] if any(a.startswith("--drain-seconds") for a in args) else ["--drain-seconds", "0"]
        cmd = [BINARY, "--listen", f"127.0.0.1:{self.port}", "--threads", str(threads), "--no-pin", *drain, *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while True:
            # On a shared port another server may answer: ours says in its log
            # when it listens.
            try:
                if (port is None or "listening on " in self.log_text()) and self.http("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("ringcast did not start:\n" + self.log_text())
            time.sleep(0.05)

    def log_text(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def http(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def publish(self, topic, body):
        status, _, data = self.http("POST", f"/publish/{topic}", body=body)
        assert status == 200, (status, data)

    def metrics(self):
        status, _, data = self.http("GET", "/metrics")
        assert status == 200
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def url(self, query=""):
        return f"ws://127.0.0.1:{self.port}/ws{query}"

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.log.close()
        died_early = self.proc.poll() is not None
        if not died_early:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if died_early or rc != 0:
            # A crash or sanitizer report: show it, since the log file goes away.
            print(f"ringcast exited with {rc}{' before the test stopped it' if died_early else ''}:\n"
                  + self.log_text()[-6000:], file=sys.stderr)
        return rc

    def stop_clean(self):
        """Stops the server and removes its log; raises unless it exited with 0
        (no crash, no sanitizer report)."""
        rc = self.stop()
        os.unlink(self.log.name)
        if rc != 0:
            raise AssertionError(f"ringcast exited with {rc}")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        os.unlink(self.log.name)
        # A crash or a sanitizer report at shutdown fails the test, unless it
        # is already failing for something else (stop() printed the log).
        if rc != 0 and exc_type is None:
            raise AssertionError(f"ringcast exited with {rc}")


class RawWs:
    """A deliberately minimal client that sends exactly the bytes a test asks for."""

    def __init__(self, port, path="/ws", timeout=10, rcvbuf=None):
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        else:
            # A small receive buffer, set before connecting so the window never
            # grows past it: a reader that stops reading backs up at the server.
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        want = base64.b64encode(hashlib.sha1(key + GUID).digest())
        assert b"Sec-WebSocket-Accept: " + want in head, head

    @staticmethod
    def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length_override is None else length_override
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n <= 0xFFFF:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    def send(self, opcode, payload=b"", **kw):
        self.sock.sendall(self.frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send(0x1, text.encode())

    def recv_frame(self):
        """Returns (opcode, payload), or (None, b"") once the server has closed TCP."""
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                off = 2
                if n == 126:
                    if len(self.buf) < 4:
                        n = None
                    else:
                        n = struct.unpack("!H", self.buf[2:4])[0]
                        off = 4
                elif n == 127:
                    if len(self.buf) < 10:
                        n = None
                    else:
                        n = struct.unpack("!Q", self.buf[2:10])[0]
                        off = 10
                if n is not None and len(self.buf) >= off + n:
                    op = self.buf[0] & 0x0F
                    payload = self.buf[off:off + n]
                    self.buf = self.buf[off + n:]
                    return op, payload
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None, b""
            self.buf += chunk

    def recv_close(self):
        """Skips data frames; returns the close code (None if TCP closed without one)."""
        while True:
            op, payload = self.recv_frame()
            if op is None:
                return None
            if op == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005

    def recv_subscribe_acks(self, topics, seqs=0, id=NO_ID):
        """Reads and checks (check_subscribe_acks) the next frames: one text ack per topic."""
        acks = []
        for _ in set(topics):
            op, payload = self.recv_frame()
            assert op == 0x1, (op, payload)
            acks.append(json.loads(payload))
        return check_subscribe_acks(acks, topics, seqs, id)

    def close(self):
        self.sock.close()


def subscriber(port, topics, seqs=0, query="", timeout=10):
    """A RawWs subscribed at connect (?topics=a,b plus query, e.g. "&token=..."),
    its subscribe acks read and checked: what follows is messages."""
    ws = RawWs(port, "/ws?topics=" + ",".join(topics) + query, timeout=timeout)
    ws.recv_subscribe_acks(topics, seqs)
    return ws
