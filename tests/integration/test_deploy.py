# SPDX-License-Identifier: MIT
"""The deploy kit in docs/deploy/: the systemd units pass `systemd-analyze verify`
and their system-call filter lets through every system call ringcast makes (traced
with strace under a real workload); nginx.conf passes `nginx -t` and, run in front
of a real ringcast, carries WebSockets and publishes in order, passes the client's
address (and not one the client names itself), and keeps quiet connections open
because ringcast's pings come more often than nginx's proxy_read_timeout.

What this does not prove: systemd is not PID 1 here, so the units never run under
their sandbox; the filter check is against the syscalls one traced run made, on
this kernel, with this build (TLS listeners not exercised)."""
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from rcserver import BINARY, SANITIZED, Server, free_port  # noqa: E402

import websockets  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DEPLOY = os.path.join(ROOT, "docs/deploy")
BIN = os.path.abspath(BINARY)
NGINX = "/usr/sbin/nginx"
UNITS = ("ringcast.service", "ringcast@.service")


def have(path):
    return os.path.exists(path) and os.access(path, os.X_OK)


def unit_with_binary(src, dst_dir, name):
    """The unit with its ExecStart pointing at the built binary, written as name."""
    with open(os.path.join(DEPLOY, src)) as f:
        text = f.read()
    assert text.count("ExecStart=/usr/local/bin/ringcast ") == 1, src
    text = text.replace("/usr/local/bin/ringcast", BIN)
    path = os.path.join(dst_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path, text


def unit_values(text, key):
    return [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith(key + "=")]


_groups = {}


def expand_filter(tokens):
    """The set of system calls a SystemCallFilter= allow-list names, groups expanded
    with `systemd-analyze syscall-filter` (recursively: a group lists groups)."""
    out = set()
    for tok in tokens:
        assert not tok.startswith("~"), "only allow-lists are expanded here: " + tok
        if not tok.startswith("@"):
            out.add(tok)
            continue
        if tok not in _groups:
            r = subprocess.run(["systemd-analyze", "syscall-filter", tok], capture_output=True, text=True,
                               timeout=20)
            assert r.returncode == 0, r.stderr
            members = []
            for line in r.stdout.splitlines()[1:]:
                line = line.strip()
                if line and not line.startswith("#"):
                    members.append(line)
            assert members, f"{tok} expanded to nothing"
            _groups[tok] = expand_filter(members)
        out |= _groups[tok]
    return out


SYSCALL_LINE = re.compile(r"^\d+\s+(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()")


def traced_syscalls(trace_path):
    names = set()
    with open(trace_path, errors="replace") as f:
        for line in f:
            m = SYSCALL_LINE.match(line)
            if m:
                names.add(m.group(1) or m.group(2))
    return names


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class SystemdUnits(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rc-units-")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def verify(self, path):
        # --man=no: the units name no man pages to look up. Run from the unit's
        # directory so a template instance finds its template beside it.
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", path], capture_output=True, text=True,
                           timeout=30, cwd=os.path.dirname(path))
        return r.returncode, (r.stdout + r.stderr).strip()

    def test_units_verify_clean(self):
        for src, name in (("ringcast.service", "ringcast.service"),
                          ("ringcast@.service", "ringcast@.service"),
                          ("ringcast@.service", "ringcast@a.service")):
            path, _ = unit_with_binary(src, self.tmp, name)
            rc, out = self.verify(path)
            self.assertEqual((rc, out), (0, ""), f"{name}: systemd-analyze verify is not clean")

    def test_verify_catches_what_it_should(self):
        # The check above can fail: an unknown key or syscall is a warning (with
        # exit status 0: hence the test on the output), a missing binary an error.
        path, text = unit_with_binary("ringcast.service", self.tmp, "bad.service")
        with open(path, "w") as f:
            f.write(text.replace("UMask=0077", "UMask=0077\nFrobnicate=yes\nSystemCallFilter=io_uring_bogus"))
        rc, out = self.verify(path)
        self.assertIn("Frobnicate", out)
        self.assertIn("io_uring_bogus", out)
        with open(path, "w") as f:
            f.write(text.replace(BIN, "/nonexistent/ringcast"))
        rc, out = self.verify(path)
        self.assertNotEqual(rc, 0)
        self.assertIn("/nonexistent/ringcast", out)

    def test_units_carry_the_settings_the_kit_promises(self):
        for src in UNITS:
            with open(os.path.join(DEPLOY, src)) as f:
                text = f.read()
            for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                              ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"),
                              ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
                              ("ProtectControlGroups", "yes"), ("RestrictNamespaces", "yes"),
                              ("LockPersonality", "yes"), ("MemoryDenyWriteExecute", "yes"),
                              ("SystemCallArchitectures", "native"), ("Restart", "on-failure"),
                              ("KillSignal", "SIGTERM"), ("DynamicUser", "yes"),
                              ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")):
                self.assertEqual(unit_values(text, key), [want], f"{src}: {key}")
            # The fd limit bounds connections per shard (direct descriptors are sized
            # against it): at least the 1M a 100k+ deployment plans with, and no more
            # than the kernel's default fs.nr_open allows without the sysctl file.
            nofile = int(unit_values(text, "LimitNOFILE")[0])
            self.assertGreaterEqual(nofile, 1 << 20, src)
            # Above the drain window (--drain-seconds, default 30) plus the 3 s close grace.
            self.assertGreater(int(unit_values(text, "TimeoutStopSec")[0]), 30 + 3, src)
            self.assertTrue(unit_values(text, "EnvironmentFile"), src)
            self.assertIn("$RINGCAST_OPTS", unit_values(text, "ExecStart")[0], src)
        with open(os.path.join(DEPLOY, "ringcast@.service")) as f:
            template = f.read()
        exec_start = unit_values(template, "ExecStart")[0]
        self.assertIn("--takeover", exec_start)
        self.assertEqual(unit_values(template, "RuntimeDirectoryPreserve"), ["yes"])
        self.assertEqual(unit_values(template, "User"), ["ringcast"])  # both colours: one dynamic user

    def test_filter_allows_io_uring_and_every_syscall_ringcast_makes(self):
        if not shutil.which("strace"):
            self.skipTest("strace not installed")
        if SANITIZED:
            self.skipTest("a sanitizer's runtime makes system calls the release binary does not")
        allowed = {}
        for src in UNITS:
            with open(os.path.join(DEPLOY, src)) as f:
                text = f.read()
            tokens = " ".join(unit_values(text, "SystemCallFilter")).split()
            allowed[src] = expand_filter(tokens)
            for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
                self.assertIn(name, allowed[src], src)
        # The checker can fail: a filter without @aio and without the names misses them.
        narrow = expand_filter(["@basic-io", "@network-io", "@io-event"])
        self.assertNotIn("io_uring_setup", narrow)

        # ringcast under strace: pinned shards (sched_setaffinity), a WebSocket
        # subscriber, publishes, /metrics, and SIGTERM's drain and exit.
        trace = os.path.join(self.tmp, "trace")
        port = free_port()
        cpus = sorted(os.sched_getaffinity(0))[:2]
        proc = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, BIN, "--listen", f"127.0.0.1:{port}",
                                 "--threads", str(len(cpus)), "--cpus", ",".join(map(str, cpus)),
                                 "--log-level", "warn"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 20
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/healthz")
                    status = c.getresponse().status
                    c.close()
                    if status == 200:
                        break
                except OSError:
                    pass
                self.assertIsNone(proc.poll(), "ringcast under strace exited")
                self.assertLess(time.time(), deadline, "ringcast under strace did not start")
                time.sleep(0.1)

            async def workload():
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws?topics=t.a", ping_interval=None) as ws:
                    json.loads(await asyncio.wait_for(ws.recv(), 10))  # the ack
                    for i in range(5):
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                        c.request("POST", "/publish/t.a", body=f"m{i}")
                        self.assertEqual(c.getresponse().status, 200)
                        c.close()
                    for i in range(5):
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        self.assertEqual(msg["data"], f"m{i}")
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/metrics")
                    self.assertEqual(c.getresponse().status, 200)
                    c.close()

            asyncio.run(workload())
        finally:
            # strace passes no signal on (SIGTERM to it detaches and leaves the
            # tracee running): signal ringcast, strace's child, itself.
            tracee = None
            try:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    tracee = int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
            if tracee is not None:
                os.kill(tracee, signal.SIGTERM)
            else:
                proc.kill()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, proc.stderr.read().decode(errors="replace")[-3000:])
        proc.stderr.close()
        used = traced_syscalls(trace)
        for name in ("io_uring_setup", "io_uring_enter", "io_uring_register", "sched_setaffinity"):
            self.assertIn(name, used, "the trace did not catch the workload")
        for src in UNITS:
            self.assertEqual(sorted(used - allowed[src]), [], f"{src}: system calls the filter would refuse")
        # MemoryDenyWriteExecute=yes refuses writable+executable mappings and
        # making memory executable later: ringcast (jemalloc, the rings) does neither.
        with open(trace, errors="replace") as f:
            text = f.read()
        self.assertIsNone(re.search(r"mprotect\([^)]*PROT_EXEC", text))
        self.assertIsNone(re.search(r"mmap\([^)]*PROT_WRITE\|PROT_EXEC", text))
        # RestrictAddressFamilies: the sockets it opens itself.
        families = set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", text))
        self.assertTrue(families, "no socket() in the trace")
        self.assertLessEqual(families, {"AF_INET", "AF_INET6", "AF_UNIX"})


class SysctlFile(unittest.TestCase):
    def settings(self):
        out = {}
        with open(os.path.join(DEPLOY, "99-ringcast.conf")) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                key, sep, value = line.partition("=")
                self.assertTrue(sep, line)
                out[key.strip()] = value.split()
        return out

    def test_keys_exist_and_relations_hold(self):
        s = self.settings()
        for key in s:
            path = "/proc/sys/" + key.lstrip("-").replace(".", "/")
            if key.startswith("-"):
                continue  # optional: skipped where the kernel lacks it
            self.assertTrue(os.path.exists(path), f"{key}: no {path} on this kernel")
        # ringcast's listen backlog is capped by somaxconn.
        with open(os.path.join(ROOT, "src/io/listener.c")) as f:
            backlog = int(re.search(r"\blisten\(\w+, (\d+)\)", f.read()).group(1))
        self.assertGreaterEqual(int(s["net.core.somaxconn"][0]), backlog)
        # The units' and nginx's fd limits must fit under fs.nr_open.
        nr_open = int(s["fs.nr_open"][0])
        for src in UNITS:
            with open(os.path.join(DEPLOY, src)) as f:
                self.assertLessEqual(int(unit_values(f.read(), "LimitNOFILE")[0]), nr_open, src)
        with open(os.path.join(DEPLOY, "nginx.conf")) as f:
            rlimit = int(re.search(r"worker_rlimit_nofile (\d+);", f.read()).group(1))
        self.assertLessEqual(rlimit, nr_open)
        self.assertGreaterEqual(int(s["fs.file-max"][0]), nr_open)
        # tcp_mem: low <= pressure <= max; tcp_rmem/tcp_wmem: min <= default <= max.
        for key in ("net.ipv4.tcp_mem", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"):
            v = [int(x) for x in s[key]]
            self.assertEqual(len(v), 3, key)
            self.assertEqual(v, sorted(v), key)
        lo, hi = (int(x) for x in s["net.ipv4.ip_local_port_range"])
        self.assertLess(lo, hi)
        self.assertEqual(s["-kernel.io_uring_disabled"], ["0"])


# --- nginx -----------------------------------------------------------------------

def nginx_conf(tmp, http_port, https_port, upstream_port, read_timeout=None):
    """docs/deploy/nginx.conf with ports, the upstream, certificate and log paths
    and temp directories moved into tmp. Every replacement must hit, so a change
    of the shipped file that the test no longer follows fails here."""
    with open(os.path.join(DEPLOY, "nginx.conf")) as f:
        text = f.read()
    subs = [
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("/etc/ringcast/tls/", tmp + "/"),
        ("/var/log/nginx/", tmp + "/"),
        ("\nhttp {\n", f"\nhttp {{\n    client_body_temp_path {tmp}/body;\n    proxy_temp_path {tmp}/proxy;\n"
                   f"    fastcgi_temp_path {tmp}/fastcgi;\n    uwsgi_temp_path {tmp}/uwsgi;\n"
                   f"    scgi_temp_path {tmp}/scgi;\n"),
        # One worker, and within what this machine's RLIMIT_NOFILE allows.
        ("worker_processes auto;", "worker_processes 1;"),
        ("worker_rlimit_nofile 1048576;", "worker_rlimit_nofile 4096;"),
        ("worker_connections 262144;", "worker_connections 1024;"),
    ]
    if read_timeout is not None:
        subs.append(("proxy_read_timeout 120s;", f"proxy_read_timeout {read_timeout}s;"))
    for old, new in subs:
        want = 2 if old.startswith("/") else 1  # path prefixes: certificate and key, two logs
        assert text.count(old) == want, f"docs/deploy/nginx.conf should contain {old!r} {want} time(s)"
        text = text.replace(old, new)
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def nginx_args(tmp, conf):
    return [NGINX, "-p", tmp, "-c", conf, "-g", f"daemon off; pid {tmp}/nginx.pid; error_log stderr;"]


def make_cert(tmp):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(tmp, "privkey.pem"), "-out", os.path.join(tmp, "fullchain.pem"),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=30)


class Nginx:
    def __init__(self, upstream_port, read_timeout=None):
        self.tmp = tempfile.mkdtemp(prefix="rc-nginx-")
        os.chmod(self.tmp, 0o755)  # the workers run as www-data
        try:
            make_cert(self.tmp)
            self.http_port, self.https_port = free_port(), free_port()
            self.conf = nginx_conf(self.tmp, self.http_port, self.https_port, upstream_port, read_timeout)
        except BaseException:
            shutil.rmtree(self.tmp)
            raise
        self.err = open(os.path.join(self.tmp, "stderr"), "w+")
        self.proc = subprocess.Popen(nginx_args(self.tmp, self.conf), stdout=self.err, stderr=self.err)
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.close()
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master waits for its workers
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        shutil.rmtree(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ws_via(port, path, source, **kw):
    """A websockets connection to 127.0.0.1:port from the source address given."""
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return websockets.connect(f"ws://127.0.0.1:{port}{path}", sock=s, ping_interval=None, open_timeout=10, **kw)


def post_via(port, path, body, source, headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    c.request("POST", path, body=body, headers=headers or {})
    r = c.getresponse()
    return r.status, r.read(), c


def help_default(flag):
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(re.escape(flag) + r"[^\n]*(?:\n {10,}[^\n]*)*?\(default (\d+)", out)
    assert m, f"--help gives no default for {flag}"
    return int(m.group(1))


@unittest.skipUnless(have(NGINX), "nginx not installed")
class NginxFront(unittest.TestCase):
    def test_config_passes_nginx_t(self):
        tmp = tempfile.mkdtemp(prefix="rc-nginx-t-")
        try:
            make_cert(tmp)
            conf = nginx_conf(tmp, free_port(), free_port(), 8080)
            r = subprocess.run(nginx_args(tmp, conf) + ["-t"], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("test is successful", r.stderr)
            # ... and nginx -t can fail: a directive in the wrong place.
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("proxy_buffering off;", "proxy_buffering sometimes;"))
            r = subprocess.run(nginx_args(tmp, conf) + ["-t"], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
        finally:
            shutil.rmtree(tmp)

    def test_read_timeout_is_above_ringcasts_ping_and_idle_timeout(self):
        with open(os.path.join(DEPLOY, "nginx.conf")) as f:
            text = f.read()
        timeouts = re.findall(r"^\s*proxy_read_timeout (\d+)s;", text, re.M)
        self.assertEqual(len(timeouts), 1)
        read_timeout = int(timeouts[0])
        ping, idle = help_default("--ping-interval"), help_default("--idle-timeout")
        self.assertEqual((ping, idle), (30, 90), "ringcast's defaults changed: check nginx.conf's comments")
        self.assertGreater(read_timeout, ping)
        self.assertGreater(read_timeout, idle)
        for line in ("proxy_http_version 1.1;", "proxy_buffering off;",
                     "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;",
                     "proxy_set_header X-Forwarded-For $remote_addr;", 'proxy_set_header Forwarded "";'):
            self.assertIn(line, text)

    def test_websocket_publish_and_client_address_through_nginx(self):
        # ringcast trusts nginx (127.0.0.1) and allows one connection per client
        # address: a client's second connection is refused, another client's not,
        # which shows ringcast counts the client behind nginx, not nginx.
        with Server("--trust-proxy", "127.0.0.1", "--max-conns-per-ip", "1", "--log-level", "debug",
                    threads=1) as srv, Nginx(srv.port) as ngx:
            async def run():
                async with ws_via(ngx.http_port, "/ws?topics=deploy.a", "127.0.0.5") as ws:
                    ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    self.assertEqual((ack["type"], ack["topic"], ack["seq"]), ("ack", "deploy.a", 0))
                    conn = None
                    for i in range(50):
                        status, body, conn = post_via(ngx.http_port, "/publish/deploy.a", f"msg-{i}",
                                                      "127.0.0.6", conn=conn)
                        self.assertEqual(status, 200, body)
                    conn.close()
                    for i in range(50):
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        self.assertEqual((msg["type"], msg["topic"], msg["seq"], msg["data"]),
                                         ("msg", "deploy.a", i + 1, f"msg-{i}"))
                    # The same client again: over its per-address limit.
                    with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                        async with ws_via(ngx.http_port, "/ws?topics=deploy.a", "127.0.0.5"):
                            pass
                    self.assertEqual(cm.exception.status_code, 503)
                    # Another client through the same nginx: admitted.
                    async with ws_via(ngx.http_port, "/ws?topics=deploy.a", "127.0.0.7") as other:
                        json.loads(await asyncio.wait_for(other.recv(), 10))

            asyncio.run(run())
            # A client that names itself (Forwarded is what ringcast reads first) is
            # still known by the address nginx accepted it from.
            c = http.client.HTTPConnection("127.0.0.1", ngx.http_port, timeout=10, source_address=("127.0.0.8", 0))
            c.request("GET", "/nope", headers={"Forwarded": "for=198.51.100.66",
                                               "X-Forwarded-For": "198.51.100.77", "X-Real-IP": "198.51.100.88"})
            self.assertEqual(c.getresponse().status, 404)
            c.close()
            deadline = time.time() + 5
            while "127.0.0.8:0: HTTP 404" not in srv.log_text() and time.time() < deadline:
                time.sleep(0.05)
            log = srv.log_text()
            self.assertIn("127.0.0.8:0: HTTP 404", log)
            self.assertNotIn("198.51.100.", log)
            self.assertIn("127.0.0.5:0:", log)  # the refused second connection names its client

    def test_wss_through_nginx(self):
        import ssl
        with Server(threads=1) as srv, Nginx(srv.port) as ngx:
            ctx = ssl.create_default_context(cafile=os.path.join(ngx.tmp, "fullchain.pem"))
            ctx.check_hostname = False

            async def run():
                async with websockets.connect(f"wss://127.0.0.1:{ngx.https_port}/ws?topics=deploy.tls", ssl=ctx,
                                              ping_interval=None, open_timeout=10) as ws:
                    json.loads(await asyncio.wait_for(ws.recv(), 10))
                    srv.publish("deploy.tls", "over-tls")
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    self.assertEqual(msg["data"], "over-tls")

            asyncio.run(run())

    def idle_connection_survives(self, server_args, read_timeout, idle):
        """Opens a WebSocket through nginx (proxy_read_timeout read_timeout s), stays
        silent for idle s (the client answers pings, sends none), then publishes
        one message. Returns whether it arrived, and the server's pings sent."""
        with Server(*server_args, threads=1) as srv, Nginx(srv.port, read_timeout=read_timeout) as ngx:
            async def run():
                async with ws_via(ngx.http_port, "/ws?topics=deploy.idle", "127.0.0.5") as ws:
                    json.loads(await asyncio.wait_for(ws.recv(), 10))
                    await asyncio.sleep(idle)
                    try:
                        srv.publish("deploy.idle", "still-here")
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                        return msg["data"] == "still-here"
                    except websockets.exceptions.ConnectionClosed:
                        return False

            ok = asyncio.run(run())
            return ok, srv.metrics().get("ringcast_keepalive_pings_total", 0)

    def test_ringcasts_pings_keep_a_quiet_connection_open_past_proxy_read_timeout(self):
        # The shipped relation, shrunk 30x: proxy_read_timeout 3 s, ringcast pinging
        # clients silent for 1 s. Silent for 5 s, the connection is still there.
        ok, pings = self.idle_connection_survives(["--ping-interval", "1", "--idle-timeout", "4"], 3, 5)
        self.assertTrue(ok, "nginx cut a connection ringcast was pinging")
        self.assertGreaterEqual(pings, 2)
        # Without ringcast's pings nginx does cut it: the relation is what keeps it.
        ok, pings = self.idle_connection_survives(["--ping-interval", "0", "--idle-timeout", "0"], 3, 5)
        self.assertFalse(ok, "the connection survived without pings: the test proves nothing")
        self.assertEqual(pings, 0)


if __name__ == "__main__":
    unittest.main()
