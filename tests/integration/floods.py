# SPDX-License-Identifier: MIT
"""Hostile load for the robustness tests and bench/floods.py: each flood runs for a
bounded time against 127.0.0.1 and stops by itself, and reports what the server
answered. Also RSS and CPU readings of the server's process."""
import os
import selectors
import socket
import struct
import threading
import time

from rcserver import RawWs


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_get(port, path, timeout=5):
    """GET path on a new connection (Connection: close); (status, raw response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0, data


def hold_partial_messages(port, n, size):
    """n WebSocket connections, each having sent the first fragment (size bytes)
    of a text message it never finishes."""
    part = masked(0x1, b"a" * size, fin=False)
    conns = []
    for _ in range(n):
        ws = RawWs(port, "/ws")
        ws.sock.sendall(part)
        conns.append(ws)
    return conns


def masked(opcode, payload, fin=True):
    """A client frame with an all-zero mask (valid, and cheap to build in bulk)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class Drain(threading.Thread):
    """Reads a socket until it closes, counting what arrived."""

    def __init__(self, sock, patterns=()):
        super().__init__(daemon=True)
        self.sock, self.patterns = sock, patterns
        self.bytes = 0
        self.counts = {p: 0 for p in patterns}
        self.tail = b""
        self.samples = []

    def run(self):
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return
                self.bytes += len(chunk)
                data = self.tail + chunk
                for p in self.patterns:
                    self.counts[p] += data.count(p) - self.tail.count(p)
                if len(self.samples) < 4 and b"error" in chunk:
                    i = chunk.find(b'"error":')
                    self.samples.append(chunk[i:i + 200])
                self.tail = data[-64:]
        except OSError:
            return


def pump(sock, blob, seconds, patterns):
    """Sends blob over and over for `seconds` while reading everything that comes
    back (one thread, non-blocking, so the reader never falls behind the writer);
    then reads until the server has been quiet for a second or closed. Returns
    (bytes sent, counts of each pattern, first error excerpts, whether the
    server closed first)."""
    sock.setblocking(False)
    counts = {p: 0 for p in patterns}
    tail, samples, sent = b"", [], 0
    closed_by_server = False
    view, off = memoryview(blob), 0
    end = time.time() + seconds
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    writing = True
    quiet_since = 0.0
    while True:
        now = time.time()
        if writing and now >= end:
            # Stop sending, and read what the server still owes until it has
            # been quiet for a second (at most 10 s), so every answer is counted.
            writing = False
            sel.modify(sock, selectors.EVENT_READ)
            end = now + 10
            quiet_since = now
        elif not writing and (now >= end or now - quiet_since > 1.0):
            break
        for _, ev in sel.select(0.2):
            if ev & selectors.EVENT_READ:
                try:
                    chunk = sock.recv(1 << 20)
                except BlockingIOError:
                    chunk = None
                except OSError:
                    chunk = b""
                if chunk == b"":
                    closed_by_server = writing
                    sel.close()
                    return sent, counts, samples, closed_by_server
                if chunk:
                    quiet_since = time.time()
                    data = tail + chunk
                    for p in patterns:
                        counts[p] += data.count(p) - tail.count(p)
                    if len(samples) < 3 and b'"error":' in chunk:
                        i = chunk.find(b'"error":')
                        samples.append(chunk[i:i + 160])
                    tail = data[-64:]
            if writing and ev & selectors.EVENT_WRITE:
                try:
                    n = sock.send(view[off:off + (1 << 18)])
                except BlockingIOError:
                    n = 0
                except OSError:
                    writing = False
                    n = 0
                sent += n
                off = (off + n) % len(blob)
    sel.close()
    return sent, counts, samples, closed_by_server


def ws_publish_flood(port, seconds, topics, payload=b'"' + b"x" * 100 + b'"'):
    """One WebSocket publisher sending publish commands as fast as it can for
    `seconds`, reading (and counting) the acks and errors it gets back."""
    ws = RawWs(port, "/ws")
    frames = b"".join(masked(0x1, b'{"op":"publish","topic":"%s","data":%s}' % (t.encode(), payload))
                      for t in topics) * max(1, 2000 // len(topics))
    sent, counts, samples, cut = pump(ws.sock, frames, seconds, (b'"type":"ack"', b'"type":"error"'))
    ws.close()
    return {"sent_bytes": sent, "acks": counts[b'"type":"ack"'], "errors": counts[b'"type":"error"'],
            "samples": samples, "closed_by_server": cut}


def http_publish_flood(port, seconds, topic, body=b"y" * 100):
    """Keep-alive POST /publish/<topic> as fast as possible, pipelined; counts
    the 200s and 503s."""
    s = socket.create_connection(("127.0.0.1", port))
    req = (b"POST /publish/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (topic.encode(), len(body))
           + body) * 500
    sent, counts, samples, cut = pump(s, req, seconds, (b"HTTP/1.1 200", b"HTTP/1.1 503"))
    s.close()
    return {"ok": counts[b"HTTP/1.1 200"], "refused": counts[b"HTTP/1.1 503"], "samples": samples,
            "closed_by_server": cut}


class Prober(threading.Thread):
    """A bystander: every `period` s, times GET /healthz on a new connection."""

    def __init__(self, port, period=0.1):
        super().__init__(daemon=True)
        self.port, self.period = port, period
        self.latencies, self.failures = [], []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t0 = time.time()
            try:
                status, data = http_get(self.port, "/healthz", timeout=10)
                if status != 200:
                    self.failures.append(data[:80])
                self.latencies.append(time.time() - t0)
            except OSError as e:
                self.failures.append(repr(e))
            self.stop.wait(self.period)

    def finish(self):
        self.stop.set()
        self.join(15)
        lat = sorted(self.latencies)
        return {"probes": len(lat), "failures": self.failures,
                "max_s": lat[-1] if lat else None, "p50_s": lat[len(lat) // 2] if lat else None}


class PeakRss(threading.Thread):
    """The highest RSS of a process, sampled every 50 ms until finish()."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.join()
        return self.peak
