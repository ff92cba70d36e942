# SPDX-License-Identifier: MIT
"""A ringcast cluster for integration tests (issue 12, scale-out through Redis):
Debian's redis-server on a free port in a temp dir (stoppable, killable and
restartable on the same port), N ringcast nodes linked to it (each on its own
free port, killable with SIGKILL and restartable), and a real nginx in front of
them configured from docs/deploy/nginx.conf, so clients connect through one port.
Everything listens on 127.0.0.1; every wait is bounded.

What the tests expect of the scale-out (key names, metric names, the wording of
refusals) is in one place, `Expect` below, so a change of the design is one edit.

Also here: a minimal RESP2 client (no new packages), a paced HTTP publisher
thread, and `Stream`, the checker of one subscriber's view of one topic (every
seq once, in order, or an explicit gap accounting for it)."""
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from rcserver import Server, free_port  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
SCRIPTS = os.path.join(ROOT, "src/session")


class Expect:
    """The scale-out as the tests expect it (issue 12's design). Adjust here."""

    # Key layout for topic T: what the server passes to the scripts.
    @staticmethod
    def meta(topic):
        return f"rc:{{{topic}}}:meta"

    @staticmethod
    def log(topic):
        return f"rc:{{{topic}}}:log"

    @staticmethod
    def nodes(topic):
        return f"rc:{{{topic}}}:nodes"

    @staticmethod
    def channel(topic):
        return f"rc:{{{topic}}}"

    @staticmethod
    def node_args(redis_url, name):
        return ["--redis", redis_url, "--node-id", name]

    # Metrics (GET /metrics on each node; totals unless marked gauge).
    UP = "ringcast_redis_up"  # gauge 0/1
    CONNECTS = "ringcast_redis_connects_total"
    DISCONNECTS = "ringcast_redis_disconnects_total"
    PUBLISHES = 'ringcast_redis_publishes_total{{result="{}"}}'  # ok, error, refused
    MESSAGES = "ringcast_redis_messages_total"  # channel messages received
    DUPLICATES = "ringcast_redis_duplicates_total"
    REFILLED = "ringcast_redis_refilled_total"  # messages filled from the stream
    GAPS = "ringcast_redis_gaps_total"  # explicit gap messages
    CHANNELS = "ringcast_redis_channels"  # gauge: channels subscribed
    EPOCHS = "ringcast_redis_epochs_total"  # new epochs met (Redis lost or rolled back a topic)

    # A publish while Redis is away: this HTTP status, a body naming Redis
    # (case-insensitive); a publish command gets an error reply naming it too.
    DOWN_STATUS = 503
    DOWN_WORD = "redis"
    # The reason of a gap message caused by losing Redis: a gap in the
    # topic's run of seqs that Redis' stream could not fill.
    GAP_REASON = "redis"
    # ... and when Redis lost the topic itself (a new epoch: from 1, to the
    # new epoch's seq): the reason protocol.md gives a server that forgot.
    EPOCH_GAP_REASON = "epoch"

    # Bounded waits, seconds: a node noticing Redis went or came back (its
    # reconnect backoff included), a channel (un)subscribe reaching Redis, a
    # node renewing its count in {T}:nodes.
    RECONNECT_WAIT = 30
    INTEREST_WAIT = 10
    COUNT_WAIT = 15

    # Wildcards across nodes (--redis): a NATS pattern is followed through one
    # Redis pattern subscription (PSUBSCRIBE) per node and glob; the glob is
    # the pattern's literal prefix up to its first wildcard, then `*`
    # (`quotes.*`, `quotes.>`, `quotes.*.bid`: `rc:{quotes.*`; `*.AAPL`: `rc:{*`).
    @staticmethod
    def glob(pattern):
        cut = min(i for i in (pattern.find("*"), pattern.find(">"), len(pattern)) if i >= 0)
        return "rc:{" + pattern[:cut] + "*"

    PATTERNS = "ringcast_redis_patterns"  # gauge: Redis pattern subscriptions the node holds
    PATTERN_MESSAGES = "ringcast_redis_pattern_messages_total"  # pattern messages received from Redis
    PATTERN_MISSES = "ringcast_redis_pattern_misses_total"  # ... that no local pattern wanted (dropped)


class RedisError(Exception):
    pass


class Resp:
    """A minimal RESP2 client: one connection, commands as arrays of bulk
    strings, replies as Python values (bytes, int, list, None; errors raise
    RedisError)."""

    def __init__(self, port, timeout=10, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        if password is not None:
            self.call("AUTH", password)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(args))

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        """The next reply; an error reply is returned as a RedisError, not raised
        (inside arrays too); call() raises it."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.send(*args)
        r = self.reply()
        if isinstance(r, RedisError):
            raise r
        return r

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def script(name):
    """The text of one of the scale-out's Lua scripts (src/session/redis_NAME.lua)."""
    with open(os.path.join(SCRIPTS, f"redis_{name}.lua"), "rb") as f:
        return f.read()


class Redis:
    """Debian's redis-server on 127.0.0.1, a free port, a temp dir. persist=True
    keeps data across a restart (append-only file, fsync'd before every reply:
    what Redis acknowledged survives kill -9); persist="snapshot" keeps only
    what the last SAVE wrote (a restart goes back to it); by default nothing is
    kept, so a restart is a Redis that lost everything."""

    def __init__(self, persist=False, password=None, port=None):
        self.port = free_port() if port is None else port
        self.persist = persist
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="rc-redis-")
        self.proc = None
        self.starts = 0
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def url(self):
        # Percent-escaped: a password may hold ':', '@' or '/'.
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    @property
    def log_path(self):
        return os.path.join(self.dir, "redis.log")

    def start(self, wipe=False):
        """Starts (or starts again, on the same port) and waits until it answers
        PING. wipe: remove what a persistent Redis kept first."""
        assert self.proc is None or self.proc.poll() is not None, "redis-server already running"
        if wipe:
            for name in os.listdir(self.dir):
                if name != "redis.log":
                    p = os.path.join(self.dir, name)
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--logfile", self.log_path, "--daemonize", "no", "--save", ""]
        if self.persist == "snapshot":
            args += ["--appendonly", "no", "--dbfilename", "dump.rdb"]
        elif self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.time() + 15
        while True:
            try:
                if self.call("PING") == b"PONG":
                    return
            except (OSError, RedisError):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self._reap()
                raise RuntimeError("redis-server did not start:\n" + self.log_text()[-3000:])
            time.sleep(0.02)

    def _reap(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout=15):
        """SIGTERM: Redis closes its clients and exits (a persistent one writes
        its file first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._reap()
                raise

    def kill(self):
        """kill -9 (a paused Redis too)."""
        self._reap()

    def pause(self):
        """SIGSTOP: connections stay open, nothing is answered (nor executed)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def restart(self, wipe=False):
        self.stop()
        self.start(wipe=wipe)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def connect(self, timeout=10):
        return Resp(self.port, timeout=timeout, password=self.password)

    def call(self, *args):
        with self.connect() as r:
            return r.call(*args)

    def cli(self, *args, timeout=20):
        """redis-cli against this server; returns (exit status, stdout, stderr)."""
        cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)]
        if self.password is not None:
            cmd += ["--no-auth-warning", "-a", self.password]
        r = subprocess.run(cmd + list(args), capture_output=True, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def info(self, section):
        """INFO <section> as {field: value}; commandstats as
        {command: {"calls": n, "usec": n, ...}} (command names lowercase)."""
        text = self.call("INFO", section).decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            if key.startswith("cmdstat_"):
                stats = {}
                for part in value.split(","):
                    k, v = part.split("=", 1)
                    stats[k] = float(v) if "." in v else int(v)
                out[key[len("cmdstat_"):]] = stats
            else:
                try:
                    out[key] = int(value)
                except ValueError:
                    out[key] = value
        return out

    def calls(self, command):
        """How many times a command ran (INFO commandstats), 0 if never."""
        return self.info("commandstats").get(command.lower(), {}).get("calls", 0)

    def numsub(self, channel):
        reply = self.call("PUBSUB", "NUMSUB", channel)
        return int(reply[1])

    def meta(self, topic):
        """(epoch, seq) of a topic as Redis has it; (None, 0) if none."""
        epoch, seq = self.call("HMGET", Expect.meta(topic), "epoch", "seq")
        return (epoch.decode() if epoch is not None else None), int(seq or 0)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self._reap()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def numpat(self):
        """PUBSUB NUMPAT: distinct patterns subscribed at Redis, all clients
        together (Redis 7 counts each pattern once however many clients hold
        it; pattern_subscriptions() counts them per client)."""
        return int(self.call("PUBSUB", "NUMPAT"))

    def clients(self):
        """CLIENT LIST as [{field: value}] (values as text)."""
        out = []
        for line in self.call("CLIENT", "LIST").decode().splitlines():
            out.append(dict(part.split("=", 1) for part in line.split(" ") if "=" in part))
        return out

    def pattern_subscriptions(self):
        """Pattern subscriptions held at Redis, client by client, summed
        (CLIENT LIST's psub): one per node and glob when each node holds each
        of its globs once."""
        return sum(int(cl.get("psub", 0)) for cl in self.clients())


def port_is_free(port):
    """Whether a listener could bind 127.0.0.1:port (SO_REUSEADDR, no
    SO_REUSEPORT: ringcast's check for a server already there)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Node:
    """One ringcast node linked to Redis: rcserver's Server with the cluster
    arguments, on its own free port; kill() is kill -9, restart() starts it again
    on the same port with the same arguments."""

    def __init__(self, name, redis_url, args=(), threads=1):
        self.name = name
        self.redis_url = redis_url
        self.args = list(Expect.node_args(redis_url, name)) + list(args)
        self.threads = threads
        self.old_logs = []
        self.srv = Server(*self.args, threads=threads)
        self.port = self.srv.port

    @property
    def alive(self):
        return self.srv is not None and self.srv.proc.poll() is None

    def kill(self):
        assert self.alive, f"{self.name} is not running"
        self.srv.proc.kill()
        self.srv.proc.wait()
        self._retire()

    def _retire(self):
        self.srv.log.close()
        self.old_logs.append(self.srv.log_text())
        os.unlink(self.srv.log.name)
        self.srv = None

    def restart(self, timeout=15):
        """Starts it again on its port, once the port is free: a killed node's
        sockets outlive it briefly (the kernel tears an io_uring instance down
        after the process has gone, direct descriptors and all), and until then
        ringcast refuses the address as served by another process."""
        assert self.srv is None, f"{self.name} is still running"
        deadline = time.time() + timeout
        while not port_is_free(self.port):
            if time.time() > deadline:
                raise AssertionError(f"{self.name}'s port {self.port} still in use {timeout} s after it stopped")
            time.sleep(0.02)
        self.srv = Server(*self.args, threads=self.threads, port=self.port)

    def stop(self):
        """SIGTERM; returns the exit status (None if it was not running)."""
        if self.srv is None:
            return None
        rc = self.srv.stop()
        self._retire()
        return rc

    def metrics(self):
        return self.srv.metrics()

    def metric(self, name):
        return self.srv.metrics().get(name, 0.0)

    def publish(self, topic, body, timeout=10):
        """POST /publish/topic: (status, body text)."""
        status, _, data = self.srv.http("POST", f"/publish/{topic}", body=body, timeout=timeout)
        return status, data.decode(errors="replace")

    def url(self, query=""):
        return f"ws://127.0.0.1:{self.port}/ws{query}"

    def log_text(self):
        return "".join(self.old_logs) + (self.srv.log_text() if self.srv is not None else "")


def _nginx_conf(tmp, http_port, https_port, node_ports, max_clients):
    """test_deploy's adaptation of docs/deploy/nginx.conf (ports, paths, one
    worker), with the upstream holding every node and room for max_clients
    proxied WebSockets (two connections each)."""
    from test_deploy import nginx_conf  # the shipped file, each replacement checked there
    conf = nginx_conf(tmp, http_port, https_port, "NODES")
    with open(conf) as f:
        text = f.read()
    conns = max(1024, 2 * max_clients + 256)
    subs = [("        server 127.0.0.1:NODES;\n",
             "".join(f"        server 127.0.0.1:{p};\n" for p in node_ports)),
            ("worker_connections 1024;", f"worker_connections {conns};"),
            ("worker_rlimit_nofile 4096;", f"worker_rlimit_nofile {conns + 64};")]
    for old, new in subs:
        assert text.count(old) == 1, f"test_deploy's nginx.conf should contain {old!r} once"
        text = text.replace(old, new)
    with open(conf, "w") as f:
        f.write(text)
    return conf


class Nginx:
    """nginx (docs/deploy/nginx.conf) in front of the given node ports."""

    def __init__(self, node_ports, max_clients=100):
        from test_deploy import make_cert, nginx_args
        self.tmp = tempfile.mkdtemp(prefix="rc-nginx-")
        os.chmod(self.tmp, 0o755)  # the workers run as www-data
        self.proc = None
        try:
            make_cert(self.tmp)
            self.port, self.https_port = free_port(), free_port()
            conf = _nginx_conf(self.tmp, self.port, self.https_port, node_ports, max_clients)
            self.err = open(os.path.join(self.tmp, "stderr"), "w+")
            self.proc = subprocess.Popen(nginx_args(self.tmp, conf), stdout=self.err, stderr=self.err)
            deadline = time.time() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError("nginx did not start:\n" + self.log_text())
                    time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    def url(self, query=""):
        return f"ws://127.0.0.1:{self.port}/ws{query}"

    def log_text(self):
        out = []
        for name in ("stderr", "ringcast-error.log"):
            try:
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "".join(out)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master waits for its workers
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "err", None) is not None:
            self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Cluster:
    """redis-server, n nodes named node1..nodeN (extra args for each, e.g.
    --history), and with nginx=True nginx in front of them. A context manager:
    everything started is stopped on the way out, failure or not; a node that
    crashed (exited other than 0 on SIGTERM) fails a test that was passing, and
    a failing test gets every log's tail on stderr."""

    def __init__(self, n=3, args=(), nginx=False, persist=False, threads=2, max_clients=100, password=None,
                 db=None):
        self.stack = contextlib.ExitStack()
        self.nodes = []
        self.nginx = None
        try:
            self.redis = Redis(persist=persist, password=password)
            self.stack.callback(self.redis.close)
            self.url = self.redis.url + (f"/{db}" if db is not None else "")
            for i in range(n):
                node = Node(f"node{i + 1}", self.url, args, threads=threads)
                self.nodes.append(node)
            # A node listens before its links to Redis are up (its publishes get
            # 503 until then): tests start from linked nodes.
            self.wait_redis_up(True)
            if nginx:
                self.nginx = Nginx([nd.port for nd in self.nodes], max_clients=max_clients)
        except BaseException:
            self._close(failed=True)
            raise

    def __getitem__(self, i):
        return self.nodes[i]

    def wait_all(self, pred, what, timeout):
        """Polls pred(node) on every running node until all hold; raises naming what."""
        deadline = time.time() + timeout
        while True:
            bad = [nd.name for nd in self.nodes if nd.alive and not pred(nd)]
            if not bad:
                return
            if time.time() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s on {bad}")
            time.sleep(0.05)

    def wait_redis_up(self, up=True, timeout=Expect.RECONNECT_WAIT):
        want = 1.0 if up else 0.0
        self.wait_all(lambda nd: nd.metric(Expect.UP) == want, f"{Expect.UP} == {want}", timeout)

    def sum_metric(self, name):
        return sum(nd.metric(name) for nd in self.nodes if nd.alive)

    def dump_logs(self):
        out = sys.stderr
        for nd in self.nodes:
            print(f"----- {nd.name} (port {nd.port}) log tail -----\n{nd.log_text()[-4000:]}", file=out)
        print(f"----- redis-server log tail -----\n{self.redis.log_text()[-2000:]}", file=out)
        if self.nginx is not None:
            print(f"----- nginx log tail -----\n{self.nginx.log_text()[-2000:]}", file=out)

    def _close(self, failed):
        if failed:
            with contextlib.suppress(Exception):
                self.dump_logs()
        crashed = []
        if self.nginx is not None:
            self.nginx.close()
        for nd in self.nodes:
            if nd.srv is None:
                continue
            try:
                rc = nd.stop()
            except Exception:
                rc = "no exit after SIGTERM"
            if rc not in (0, None):
                crashed.append((nd.name, rc))
        self.stack.close()
        return crashed

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        crashed = self._close(failed=exc_type is not None)
        if crashed and exc_type is None:
            raise AssertionError(f"nodes exited badly on SIGTERM: {crashed}")


class Publisher(threading.Thread):
    """POST /publish/T at a steady rate, round-robin over node ports and topics,
    on keep-alive connections. Each payload is {"n": k} with k unique over the
    publisher, so a subscriber's stream can be matched against what was
    acknowledged. acked: [(k, topic)] answered 200; refused: [(k, topic, status,
    body)] for anything else (a refused publish may still have been published,
    when Redis ran it and the answer was lost: tests only rely on acked ones)."""

    def __init__(self, ports, topics, rate, limit=None):
        super().__init__(daemon=True)
        self.ports, self.topics, self.rate, self.limit = list(ports), list(topics), rate, limit
        self.acked, self.refused = [], []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.paused = threading.Event()
        self.conns = {}
        self.sent = 0
        self.error = None

    def _post(self, port, topic, body):
        for attempt in range(2):
            c = self.conns.get(port)
            if c is None:
                c = self.conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                c.request("POST", f"/publish/{topic}", body=body)
                r = c.getresponse()
                return r.status, r.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as e:
                c.close()
                del self.conns[port]
                if attempt == 1:
                    return None, repr(e)
                # A kept-alive connection the node closed meanwhile: once more on a new one.

    def run(self):
        try:
            t0 = time.monotonic()
            k = 0
            while not self.stop_event.is_set() and (self.limit is None or k < self.limit):
                if self.paused.is_set():
                    time.sleep(0.01)
                    t0 = time.monotonic() - k / self.rate
                    continue
                due = t0 + k / self.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                elif now - due > 1:
                    t0 = now - k / self.rate  # fell far behind: do not burst to catch up
                topic = self.topics[k % len(self.topics)]
                port = self.ports[k % len(self.ports)]
                status, body = self._post(port, topic, json.dumps({"n": k}))
                with self.lock:
                    if status == 200:
                        self.acked.append((k, topic))
                    else:
                        self.refused.append((k, topic, status, body))
                k += 1
                self.sent = k
        except BaseException as e:  # reported by finish()
            self.error = e
        finally:
            for c in self.conns.values():
                c.close()

    def counts(self):
        with self.lock:
            return len(self.acked), len(self.refused)

    def wait_acked(self, n, timeout=60):
        """Waits until n publishes in all have been acknowledged."""
        deadline = time.time() + timeout
        while self.counts()[0] < n:
            if self.error is not None or not self.is_alive():
                raise AssertionError(f"publisher ended early: {self.error!r}")
            if time.time() > deadline:
                raise AssertionError(f"publisher: {self.counts()} acked/refused, wanted {n} acked "
                                     f"within {timeout} s; last refusals {self.refused[-3:]}")
            time.sleep(0.02)

    def wait_done(self, timeout=120):
        """Waits for a publisher with a limit to have sent them all."""
        self.join(timeout)
        if self.error is not None:
            raise self.error
        assert not self.is_alive(), f"publisher still running after {timeout} s: {self.counts()}"

    def finish(self):
        self.stop_event.set()
        self.join(timeout=30)
        if self.error is not None:
            raise self.error


class Stream:
    """One subscriber's view of one topic. Fed every frame about the topic, it
    checks that each message is the next seq (in the current epoch), or that an
    explicit gap message accounts for the seqs skipped: same epoch, `from` the
    next seq expected; or a new epoch (the run of seqs started again). Anything
    else (a skip with no notice, a repeat, a regression, an unknown frame) is
    recorded in errors. got: [(epoch, seq, data)]."""

    def __init__(self, topic):
        self.topic = topic
        self.epoch = None
        self.last = None
        self.got = []
        self.gaps = []
        self.acks = []
        self.errors = []

    def feed(self, m):
        kind = m.get("type")
        if kind == "ack" and m.get("op") == "subscribe":
            self.acks.append(m)
            if "epoch" not in m or "seq" not in m:
                self.errors.append(("ack without a position", m))
            elif self.epoch is None:
                self.epoch, self.last = m["epoch"], m["seq"]
            elif m.get("recovered") is True:
                if m["epoch"] != self.epoch or m["seq"] < self.last:
                    self.errors.append(("recovered ack that does not continue the stream", m, self.epoch, self.last))
            elif m.get("recovered") is None:
                self.errors.append(("a resubscribe without since", m))
            # recovered false: the gap message that follows accounts for it
        elif kind == "gap":
            self.gaps.append(m)
            if not isinstance(m.get("from"), int) or not isinstance(m.get("to"), int) or "epoch" not in m:
                self.errors.append(("gap without from, to and epoch", m))
            elif self.last is None:
                self.errors.append(("gap before the ack", m))
            elif m["epoch"] != self.epoch:
                # A new run of seqs: the gap names all of it that went before.
                if m["from"] != 1:
                    self.errors.append(("new epoch gap not from 1", m))
                self.epoch, self.last = m["epoch"], m["to"]
            elif m.get("from") != self.last + 1 or m["to"] < self.last:
                self.errors.append(("gap that does not start at the next seq", m, self.last))
                self.last = max(self.last, m["to"])
            else:
                self.last = m["to"]
        elif kind == "msg":
            if self.last is None:
                self.errors.append(("message before the ack", m))
            elif m["seq"] != self.last + 1:
                self.errors.append(("seq is not the next one (silent skip, repeat or reorder)", m["seq"], self.last))
            self.last = m["seq"]
            self.got.append((self.epoch, m["seq"], m.get("data")))
        else:
            self.errors.append(("unexpected frame", m))

    def resume_from(self, epoch, seq):
        """Positions a new stream where a client resuming with since= stands."""
        self.epoch, self.last = epoch, seq

    def position(self):
        return self.epoch, self.last

    def since(self):
        """This stream's resume position for since=: TOPIC:EPOCH:SEQ."""
        return f"{self.topic}:{self.epoch}:{self.last}"

    def payloads(self):
        return [d["n"] for _, _, d in self.got if isinstance(d, dict) and "n" in d]


def wait_until(pred, what, timeout):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


class RedisCluster:
    """A real Redis Cluster of n masters, no replicas (test_scaleout_cluster):
    each redis-server on a free port with its nodes-P.conf in one temp dir;
    kill(i) is kill -9 and restart(i) brings master i back on its port with its
    nodes.conf (so with its slots, without its data: no persistence)."""

    def __init__(self, n=3):
        self.tmp = tempfile.mkdtemp(prefix="rc-rcluster-")
        self.ports = [self._cluster_port() for _ in range(n)]
        self.procs = [None] * n
        try:
            for i in range(n):
                self.start(i)
            for p in self.ports:
                wait_until(lambda p=p: self._pings(p), f"redis {p} up", 10)
            subprocess.run([REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                            "--cluster-replicas", "0", "--cluster-yes"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            wait_until(self.ok, "cluster_state:ok on every master", 20)
        except BaseException:
            self.close()
            raise

    def start(self, i):
        p = self.ports[i]
        log = open(os.path.join(self.tmp, f"redis-{p}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [REDIS_SERVER, "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", os.path.join(self.tmp, f"nodes-{p}.conf"), "--dir", self.tmp,
             "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    @staticmethod
    def _cluster_port():
        """A free port whose cluster bus port (port + 10000) is valid and free."""
        while True:
            p = free_port()
            if p + 10000 <= 65535 and port_is_free(p + 10000):
                return p

    @staticmethod
    def _pings(port):
        try:
            with Resp(port, timeout=1) as r:
                return r.call("PING") == b"PONG"
        except OSError:
            return False

    def call(self, i, *args):
        with Resp(self.ports[i]) as r:
            return r.call(*args)

    def ok(self):
        try:
            return all(b"cluster_state:ok" in self.call(i, "CLUSTER", "INFO") for i in range(len(self.ports)))
        except (OSError, RedisError):
            return False

    def url(self, i=0):
        return f"redis://127.0.0.1:{self.ports[i]}"

    def owner(self, key):
        """The index of the master that serves key's slot."""
        slot = self.call(0, "CLUSTER", "KEYSLOT", key)
        for first, last, master, *_ in self.call(0, "CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return self.ports.index(master[1])
        raise AssertionError(f"no master for slot {slot}")

    def calls(self, i, command):
        """INFO commandstats calls= of command (lower case) on master i."""
        for line in self.call(i, "INFO", "commandstats").decode().splitlines():
            if line.startswith(f"cmdstat_{command}:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()

    def restart(self, i):
        wait_until(lambda: port_is_free(self.ports[i]), f"redis {self.ports[i]} port free", 10)
        self.start(i)
        wait_until(lambda: self._pings(self.ports[i]), f"redis {self.ports[i]} back", 10)

    def close(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
