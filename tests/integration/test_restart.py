# SPDX-License-Identifier: MIT
"""Seamless restarts: `ringcast --takeover` takes the running server's listening
sockets over its control socket, so a client connecting every few milliseconds
across the hand-over (and the old server's drain) is never refused or reset,
and connections waiting in the old server's accept queue at that moment are
served by the new one. A second server without --takeover on the same address
is refused with a message that names the address, the pid and the fix;
--takeover with no server to take from is a clear error; --pid-file holds the
pid and goes at exit."""
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from rcserver import BINARY, Server, free_port, subscriber

# The loaded test machine gets generous timeouts; the figures that matter are
# the counts, not the times.
TIMEOUT = 10


def ws_upgrade_request():
    return (b"GET /ws?topics=restart.t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def http_get(port, path):
    """(status, body) of one request on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionResetError("closed before a complete response head")
        data += chunk
    return data


class Connector(threading.Thread):
    """Connects every `every` seconds, alternating a WebSocket upgrade and a
    GET /healthz, and counts what each attempt got."""

    def __init__(self, port, every=0.003):
        super().__init__(daemon=True)
        self.port, self.every = port, every
        self.stop_flag = threading.Event()
        self.ok = self.refused = self.reset = self.failed = 0
        self.errors = []

    def attempt(self, i):
        self.phase = "connect"
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            self.phase = f"answer (local port {s.getsockname()[1]})"
            if i % 2:
                s.sendall(ws_upgrade_request())
                head = read_head(s)
                if not head.startswith(b"HTTP/1.1 101"):
                    raise AssertionError(head[:80])
            else:
                s.sendall(HEALTHZ)
                head = read_head(s)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise AssertionError(head[:80])

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            try:
                self.attempt(i)
                self.ok += 1
            except ConnectionRefusedError as e:
                self.refused += 1
                self.errors.append(repr(e))
            except (ConnectionResetError, BrokenPipeError) as e:
                self.reset += 1
                self.errors.append(repr(e))
            except Exception as e:  # a timeout, a wrong answer
                self.failed += 1
                self.errors.append(f"{e!r} waiting for the {self.phase} at {time.monotonic():.3f}")
            time.sleep(self.every)

    def finish(self):
        self.stop_flag.set()
        self.join(TIMEOUT * 2)


def cleanup(srv):
    if srv.proc.poll() is None:
        srv.stop()
    else:
        srv.log.close()
    os.unlink(srv.log.name)


# ---- freezing a server's shard threads (ptrace), so its accepts stall ----

PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def shard_threads(pid):
    """Every thread but the main one (which answers the control socket), and
    not io_uring's kernel workers."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            comm = f.read().strip()
        if int(tid) != pid and not comm.startswith("iou-"):
            out.append(int(tid))
    return out


def freeze(tids):
    """Stops each thread alone (SIGSTOP would stop the whole process). Returns
    None, or why it cannot be done here."""
    for tid in tids:
        if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
            return f"ptrace(PTRACE_SEIZE): {os.strerror(ctypes.get_errno())}"
        if libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
            return f"ptrace(PTRACE_INTERRUPT): {os.strerror(ctypes.get_errno())}"
        os.waitpid(tid, WALL)
    return None


def thaw(tids):
    for tid in tids:
        libc.ptrace(PTRACE_DETACH, tid, None, None)


class Restart(unittest.TestCase):
    def test_takeover_under_steady_connects(self):
        """Two hand-overs in a row (A to B, B to C, each with a different
        shard count) while a client connects every ~3 ms."""
        common = ("--connect-rate-per-ip", "0", "--max-handshakes-per-ip", "0", "--drain-seconds", "2")
        a = Server(*common, threads=2)
        servers = [a]
        conn = Connector(a.port)
        subs, handovers = [], []
        try:
            conn.start()
            time.sleep(0.5)
            old = a
            for threads in (3, 1):
                before = conn.ok
                # Long-lived subscribers of the old server: told to reconnect,
                # then closed with 1001 within its drain.
                subs = [subscriber(old.port, ["restart.sub"]) for _ in range(8)]
                handovers.append(f"{time.monotonic():.3f}")
                new = Server(*common, "--takeover", threads=threads, port=a.port)
                handovers.append(f"{time.monotonic():.3f}")
                servers.append(new)
                for ws in subs:
                    op, payload = ws.recv_frame()
                    self.assertEqual(op, 0x1)
                    note = json.loads(payload)
                    self.assertEqual(note["type"], "reconnect", note)
                    self.assertTrue(0 <= note["after_ms"] < 2000, note)
                    self.assertEqual(ws.recv_close(), 1001)
                    ws.send(0x8, struct.pack("!H", 1001))
                    ws.close()
                self.assertEqual(old.proc.wait(timeout=20), 0, old.log_text())
                log = old.log_text()
                self.assertIn(f"pid {new.proc.pid} took over the listeners", log)
                self.assertIn("stopped", log)
                self.assertIn(f"taking over from pid {old.proc.pid}", new.log_text())
                time.sleep(0.5)
                self.assertGreater(conn.ok, before, "clients were served across the hand-over")
                old = new
            conn.finish()
            print(f"\nsteady connects across two hand-overs: {conn.ok} served, {conn.refused} refused, "
                  f"{conn.reset} reset, {conn.failed} failed", file=sys.stderr)
            self.assertEqual((conn.refused, conn.reset, conn.failed), (0, 0, 0),
                             f"{conn.errors[:5]}; hand-overs at {handovers}; logs:\n" +
                             "\n".join(s.log_text() for s in servers))
            self.assertGreater(conn.ok, 200)
            # The last server serves alone now, and can itself be stopped.
            self.assertEqual(old.http("GET", "/readyz")[0], 200)
        finally:
            conn.finish()
            for ws in subs:
                ws.close()
            for s in servers:
                cleanup(s)

    def test_queued_connections_are_served_by_the_successor(self):
        """With A's shard frozen, connections pile up in A's accept queue; B
        takes the sockets over and serves every one of them while A is still
        frozen, so none depended on A."""
        a = Server("--connect-rate-per-ip", "0", "--max-handshakes-per-ip", "0", "--drain-seconds", "1",
                   threads=1)
        b = None
        tids = shard_threads(a.proc.pid)
        why = freeze(tids)
        if why:
            cleanup(a)
            self.skipTest(f"cannot stop a single thread here ({why})")
        socks = []
        try:
            for _ in range(64):
                s = socket.create_connection(("127.0.0.1", a.port), timeout=TIMEOUT)
                s.sendall(HEALTHZ)
                socks.append(s)
            # Nobody answers them: they wait in A's queue.
            socks[0].settimeout(0.5)
            with self.assertRaises(socket.timeout):
                socks[0].recv(1)
            socks[0].settimeout(TIMEOUT)
            b = Server("--takeover", threads=2, port=a.port)
            served = 0
            for s in socks:
                if read_head(s).startswith(b"HTTP/1.1 200"):
                    served += 1
            self.assertEqual(served, len(socks), "every queued connection served by the successor")
            self.assertIsNone(a.proc.poll(), "A is still there, frozen")
        finally:
            thaw(tids)
            for s in socks:
                s.close()
        try:
            self.assertEqual(a.proc.wait(timeout=20), 0, a.log_text())
            self.assertIn("took over the listeners", a.log_text())
        finally:
            cleanup(a)
            if b:
                cleanup(b)

    def test_sigterm_after_handover_keeps_draining(self):
        """A service manager stopping the replaced server (one SIGTERM) does not
        cut its drain short; a second SIGTERM does."""
        a = Server("--drain-seconds", "30", threads=2)
        b = None
        subs = [subscriber(a.port, ["restart.long"]) for _ in range(4)]
        try:
            b = Server("--takeover", threads=2, port=a.port)
            for ws in subs:
                op, payload = ws.recv_frame()
                self.assertEqual(json.loads(payload)["type"], "reconnect")
            a.proc.send_signal(signal.SIGTERM)
            deadline = time.time() + TIMEOUT
            while "draining already since the hand-over" not in a.log_text():
                self.assertLess(time.time(), deadline, a.log_text())
                time.sleep(0.02)
            time.sleep(0.3)
            self.assertIsNone(a.proc.poll(), "still draining")
            a.proc.send_signal(signal.SIGTERM)
            codes = []
            for ws in subs:
                codes.append(ws.recv_close())
                ws.send(0x8, struct.pack("!H", 1001))
            self.assertEqual(codes, [1001] * len(subs))
            self.assertEqual(a.proc.wait(timeout=TIMEOUT), 0)
        finally:
            for ws in subs:
                ws.close()
            cleanup(a)
            if b:
                cleanup(b)

    def test_takeover_of_a_draining_server(self):
        """A server draining after SIGTERM still holds its listeners (refusing
        new upgrades): a successor can take them, and the drain goes on."""
        a = Server("--drain-seconds", "30", threads=2)
        b = None
        ws = subscriber(a.port, ["restart.draining"])
        try:
            a.proc.send_signal(signal.SIGTERM)
            self.assertEqual(json.loads(ws.recv_frame()[1])["type"], "reconnect")
            self.assertEqual(a.http("GET", "/readyz")[0], 503)
            r = subprocess.run([BINARY, "--listen", f"127.0.0.1:{a.port}", "--threads", "1", "--no-pin"],
                               capture_output=True, text=True, timeout=TIMEOUT)
            self.assertIn("already served", r.stderr)
            b = Server("--takeover", threads=1, port=a.port)
            deadline = time.time() + TIMEOUT
            while "took over the listeners; the drain goes on, " not in a.log_text():
                self.assertLess(time.time(), deadline, a.log_text())
                time.sleep(0.02)
            # Only the successor answers now.
            for _ in range(20):
                self.assertEqual(b.http("GET", "/readyz")[0], 200)
            self.assertIsNone(a.proc.poll(), "still draining its subscriber")
            a.proc.send_signal(signal.SIGINT)
            self.assertEqual(ws.recv_close(), 1001)
            ws.send(0x8, struct.pack("!H", 1001))
            self.assertEqual(a.proc.wait(timeout=TIMEOUT), 0)
        finally:
            ws.close()
            cleanup(a)
            if b:
                cleanup(b)

    def test_admin_listener_is_handed_over(self):
        admin_port = free_port()
        admin = ("--admin-listen", f"127.0.0.1:{admin_port}")
        a = Server(*admin, threads=2)
        b = None
        try:
            b = Server(*admin, "--takeover", threads=1, port=a.port)
            self.assertEqual(a.proc.wait(timeout=TIMEOUT), 0, a.log_text())
            self.assertIn("handing 3 listening sockets", a.log_text(), "two shards' and the admin one")
            status, body = http_get(admin_port, "/readyz")
            self.assertEqual((status, body), (200, b"ready\n"))
            self.assertEqual(http_get(admin_port, "/metrics")[0], 200)
            self.assertEqual(b.http("GET", "/metrics")[0], 404, "/metrics stays on the admin port")
        finally:
            cleanup(a)
            if b:
                cleanup(b)

    def control(self, port):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        c.settimeout(TIMEOUT)
        c.connect(f"\0ringcast:127.0.0.1:{port}")
        return c

    def test_failed_takeover_keeps_serving(self):
        """A successor that dies after receiving the sockets (before saying it
        accepts), one that speaks another version, and one of another user:
        the server keeps serving, and says why in its log."""
        a = Server("--drain-seconds", "1", threads=2)
        try:
            c = self.control(a.port)
            c.send(b"RCHELLO 1")
            head = c.recv(256).decode()
            self.assertEqual(head, "RCFDS 1 2", "one listening socket per shard")
            msg, fds, _, _ = socket.recv_fds(c, 256, 64)
            self.assertEqual((msg, len(fds)), (b"RCBATCH 2", 2))
            for fd in fds:
                os.close(fd)
            c.close()
            deadline = time.time() + TIMEOUT
            while "failed (it went away); still serving" not in a.log_text():
                self.assertLess(time.time(), deadline, a.log_text())
                time.sleep(0.05)
            self.assertEqual(a.http("GET", "/readyz")[0], 200)

            c = self.control(a.port)
            c.send(b"RCHELLO 99")
            self.assertTrue(c.recv(256).startswith(b"RCERR version 99 is not supported"))
            c.close()
            self.assertEqual(a.http("GET", "/readyz")[0], 200)

            if os.geteuid() == 0 and os.path.exists("/usr/bin/python3"):
                # Another user may not take the port.
                code = ("import socket; c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); "
                        f"c.connect('\\0ringcast:127.0.0.1:{a.port}'); c.send(b'RCHELLO 1'); "
                        "c.settimeout(5); print(c.recv(256))")
                r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                                   timeout=TIMEOUT, user=65534)
                # Closed unanswered: an empty read, or a reset or broken pipe,
                # depending on when the close overtook the hello.
                self.assertNotIn("RCFDS", r.stdout)
                self.assertTrue(r.stdout.strip() == "b''" or "ConnectionResetError" in r.stderr
                                or "BrokenPipeError" in r.stderr, r.stdout + r.stderr)
                self.assertIn("not our user nor root", a.log_text())
            self.assertEqual(a.http("GET", "/readyz")[0], 200)
            self.assertEqual(a.stop(), 0)
        finally:
            cleanup(a)

    def test_second_server_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            pid_file = os.path.join(d, "a.pid")
            a = Server("--pid-file", pid_file, threads=1)
            try:
                # Written once the server listens, before it answers anything.
                with open(pid_file) as f:
                    self.assertEqual(f.read(), f"{a.proc.pid}\n")
                r = subprocess.run([BINARY, "--listen", f"127.0.0.1:{a.port}", "--threads", "1", "--no-pin"],
                                   capture_output=True, text=True, timeout=TIMEOUT)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"127.0.0.1:{a.port} is already served by another process (pid {a.proc.pid})",
                              r.stderr)
                self.assertIn("--takeover", r.stderr)
                # A wildcard address overlapping it is refused too.
                r = subprocess.run([BINARY, "--listen", f"0.0.0.0:{a.port}", "--threads", "1", "--no-pin"],
                                   capture_output=True, text=True, timeout=TIMEOUT)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("already served", r.stderr)
                # The first keeps serving, alone.
                self.assertEqual(a.http("GET", "/readyz")[0], 200)
                self.assertEqual(a.stop(), 0)
                self.assertFalse(os.path.exists(pid_file), "the pid file goes at exit")
            finally:
                cleanup(a)

    def test_takeover_without_a_server(self):
        # Nothing runs: --takeover starts fresh (a blue/green unit always passes it).
        a = Server("--takeover", threads=1)
        try:
            self.assertEqual(a.http("GET", "/readyz")[0], 200)
            self.assertEqual(a.stop(), 0)
            self.assertIn("starting fresh", a.log_text())
        finally:
            cleanup(a)
        # Something that is not a ringcast holds the address: refused, clearly.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            r = subprocess.run([BINARY, "--listen", f"127.0.0.1:{port}", "--takeover", "--threads", "1", "--no-pin"],
                               capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"no ringcast answers on the control socket @ringcast:127.0.0.1:{port}", r.stderr)
        self.assertIn("already served", r.stderr)

    def test_a_squatted_control_name_does_not_block_a_start(self):
        # Review: an abstract name has no permissions; another user binding the
        # control name first must not keep --takeover (the blue/green unit's
        # start) from starting, nor fill the log.
        if os.geteuid() != 0:
            self.skipTest("needs root to bind the name as another user")
        port = free_port()
        r, w = os.pipe()
        squatter = os.fork()
        if squatter == 0:
            try:
                os.close(r)
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.bind(f"\0ringcast:127.0.0.1:{port}")
                s.listen(64)
                os.write(w, b"x")
                time.sleep(30)
            finally:
                os._exit(0)
        os.close(w)
        try:
            self.assertEqual(os.read(r, 1), b"x")
            a = Server("--takeover", threads=1, port=port)
            try:
                self.assertEqual(a.http("GET", "/readyz")[0], 200)
                self.assertEqual(a.stop(), 0)
                log = a.log_text()
                self.assertIn("treating the address as not served by ringcast", log)
            finally:
                cleanup(a)
        finally:
            os.kill(squatter, signal.SIGKILL)
            os.waitpid(squatter, 0)
            os.close(r)

    def test_refusals_of_other_users_are_logged_sparingly(self):
        # Review: any local user may connect to the control socket; a flood of
        # refused connections must not flood the log.
        if os.geteuid() != 0:
            self.skipTest("needs root to connect as another user")
        a = Server(threads=1)
        try:
            child = os.fork()
            if child == 0:
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    for _ in range(300):
                        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
                            try:
                                c.connect(f"\0ringcast:127.0.0.1:{a.port}")
                            except OSError:
                                pass
                finally:
                    os._exit(0)
            os.waitpid(child, 0)
            time.sleep(0.3)
            self.assertEqual(a.http("GET", "/readyz")[0], 200)
            lines = a.log_text().count("control socket: refused a connection")
            self.assertGreaterEqual(lines, 1)
            self.assertLess(lines, 20, "one line a second at most, with a count of the rest")
        finally:
            cleanup(a)

    def test_a_silent_peer_does_not_hold_back_sigterm(self):
        # Review: a peer of our own user that connects to the control socket and
        # says nothing held the main thread 5 s per connection, signals included.
        a = Server(threads=1)
        peers = []
        try:
            for _ in range(3):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                c.connect(f"\0ringcast:127.0.0.1:{a.port}")
                peers.append(c)
            time.sleep(0.3)
            t0 = time.time()
            self.assertEqual(a.stop(), 0)
            # Three silent peers used to cost 15 s before the signal was read.
            self.assertLess(time.time() - t0, 10)
            self.assertIn("before a signal", a.log_text())
        finally:
            for c in peers:
                c.close()
            cleanup(a)

    def test_unwritable_pid_file(self):
        r = subprocess.run([BINARY, "--listen", "127.0.0.1:0", "--pid-file", "/nonexistent/dir/ringcast.pid",
                            "--threads", "1", "--no-pin"], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--pid-file /nonexistent/dir/ringcast.pid: cannot create", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
