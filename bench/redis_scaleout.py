#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scale-out through Redis (issue 12, docs/benchmarks.md): the publish ceiling of
one Redis, and W1 across three nodes against one node. Driven by
bench/redis_scaleout.sh; standard library only.

Starts redis-server (a temp dir, --save '' --appendonly no, a free port),
ringcast nodes on free ports and ringcast-bench, samples every process's CPU
(/proc/PID/stat utime+stime), the nodes' GET /metrics and Redis' INFO twice a
second, and computes each figure over the steady window: from the first sample
after the work started to the last one before it stopped. Everything started is
stopped by its PID at exit. Writes bench/results/NAME/<run>.json (the figures and
the samples), <run>-bench*.json/.txt (ringcast-bench's own) and summary.md.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGCAST = os.path.join(ROOT, "build", "ringcast")
BENCH = os.path.join(ROOT, "build", "ringcast-bench")
CLK = os.sysconf("SC_CLK_TCK")
STARTED = []  # every Popen this driver started, stopped in reverse at exit


def log(*a):
    print("redis_scaleout:", *a, file=sys.stderr, flush=True)


def stop(p, sig=signal.SIGTERM, wait_s=5.0):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in STARTED:
        STARTED.remove(p)


def stop_all():
    for p in reversed(list(STARTED)):
        stop(p)


def spawn(cmd, out=subprocess.DEVNULL, err=subprocess.DEVNULL):
    p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
    STARTED.append(p)
    return p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpus_busy_s():
    """Non-idle seconds of each CPU (user, nice, system, irq, softirq, steal):
    everything that ran, others' work included, to see a disturbed run."""
    busy = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *v = line.split()
            if name.startswith("cpu") and name != "cpu":
                v = [int(x) for x in v]
                busy[name] = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK
    return busy


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


# ---- Redis, through RESP on a plain socket -------------------------------------

class Redis:
    def __init__(self, tmp, cpu):
        self.port = free_port()
        self.dir = os.path.join(tmp, f"redis-{self.port}")
        os.makedirs(self.dir)
        self.proc = spawn(["taskset", "-c", str(cpu), "redis-server", "--port", str(self.port),
                           "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir,
                           "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"])
        self.pid = self.proc.pid  # taskset execs redis-server
        for _ in range(100):
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")
        self.rf = self.sock.makefile("rb")
        self.lock = threading.Lock()
        assert self.cmd("PING") == "PONG"

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with self.lock:
            self.sock.sendall(out)
            return self._read()

    def _read(self):
        line = self.rf.readline()[:-2]
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.rf.read(n + 2)[:-2].decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"RESP: {line!r}")

    def info(self, section):
        d = {}
        for line in self.cmd("INFO", section).splitlines():
            if ":" not in line or line.startswith("#"):
                continue
            k, v = line.split(":", 1)
            if k.startswith("cmdstat_"):
                d[k] = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in v.split(",")}
            else:
                try:
                    d[k] = float(v)
                except ValueError:
                    d[k] = v
        return d

    def close(self):
        self.sock.close()
        stop(self.proc)


# ---- ringcast nodes ------------------------------------------------------------

class Node:
    def __init__(self, tmp, name, threads=1, cpus="0", redis=None, history=1000, extra=()):
        self.name = name
        self.port = free_port()
        cmd = [RINGCAST, "--listen", f"127.0.0.1:{self.port}", "--threads", str(threads), "--cpus", cpus,
               "--log-level", "warn", "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0",
               "--connect-rate-per-ip", "0", "--max-commands-per-sec", "0", "--drain-seconds", "0",
               "--history", str(history), *extra]
        if redis:
            cmd += ["--redis", f"redis://127.0.0.1:{redis.port}", "--node-id", name]
        self.log = open(os.path.join(tmp, f"node-{name}.log"), "w")
        self.proc = spawn(cmd, out=self.log, err=subprocess.STDOUT)
        self.pid = self.proc.pid
        for _ in range(200):
            try:
                m = self.metrics()
                if not redis or m.get("ringcast_redis_up") == 1:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node {name} did not start (or did not reach Redis)")

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        m = {}
        for line in text.splitlines():
            if not line or line[0] == "#":
                continue
            k, _, v = line.rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                pass
        return m

    def close(self):
        stop(self.proc)
        self.log.close()


def metric(m, name):
    """A family's total: its unlabelled line, else the sum of its labelled ones."""
    if name in m:
        return m[name]
    return sum(v for k, v in m.items() if k.startswith(name + "{"))


NODE_COUNTERS = ["ringcast_messages_published_total", "ringcast_messages_delivered_total",
                 'ringcast_redis_publishes_total{result="ok"}', 'ringcast_redis_publishes_total{result="error"}',
                 'ringcast_redis_publishes_total{result="refused"}', "ringcast_redis_messages_total",
                 "ringcast_publish_refused_backlog_total", "ringcast_redis_gaps_total",
                 "ringcast_redis_disconnects_total", "ringcast_redis_held_overflows_total",
                 "ringcast_slow_consumer_disconnects_total", "ringcast_redis_pattern_messages_total",
                 "ringcast_redis_duplicates_total"]


class Sampler:
    """Samples CPU, node counters and Redis INFO every `every` seconds."""

    def __init__(self, nodes, redis, pids, every=0.5):
        self.nodes, self.redis, self.pids, self.every = nodes, redis, dict(pids), every
        self.samples = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def add_pid(self, name, pid):
        self.pids[name] = pid

    def take(self):
        s = {"t": time.monotonic(), "cpu": {k: cpu_s(p) for k, p in list(self.pids.items())}, "nodes": {},
             "busy": cpus_busy_s()}
        for n in self.nodes:
            try:
                m = n.metrics()
            except OSError:
                m = {}
            s["nodes"][n.name] = {c: metric(m, c) for c in NODE_COUNTERS}
        if self.redis:
            cs = self.redis.info("commandstats")
            st = self.redis.info("stats")
            s["redis"] = {k[8:]: {"calls": v["calls"], "usec": v["usec"]} for k, v in cs.items()}
            s["redis"]["_stats"] = {k: st.get(k, 0) for k in ("total_net_output_bytes", "total_net_input_bytes",
                                                              "total_commands_processed")}
        return s

    def run(self):
        nxt = time.monotonic()
        while not self.done.is_set():
            self.samples.append(self.take())
            nxt += self.every
            self.done.wait(max(0.0, nxt - time.monotonic()))

    def finish(self):
        self.done.set()
        self.thread.join()
        self.samples.append(self.take())
        return self.samples


def progress(s, counter, node=None):
    return sum(v[counter] for k, v in s["nodes"].items() if node in (None, k))


def steady_window(samples, counter, node=None):
    """(first, last) sample indexes: from the first sample after the counter began
    to move to the last one at which it still moved."""
    moved = [i for i in range(1, len(samples))
             if progress(samples[i], counter, node) > progress(samples[i - 1], counter, node)]
    if len(moved) < 3:
        raise RuntimeError(f"{counter} hardly moved ({len(moved)} samples)")
    j = moved[-1]
    while j > moved[0] + 1 and None in samples[j]["cpu"].values():
        j -= 1  # a bench already gone: its CPU time is no longer readable
    return moved[0], j


def busy_pct(a, b):
    dt = b["t"] - a["t"]
    return {k: round(100 * (b["busy"][k] - a["busy"][k]) / dt, 1) for k in sorted(b["busy"])}


def redis_delta(a, b, cmd):
    ca, cb = a["redis"].get(cmd, {"calls": 0, "usec": 0}), b["redis"].get(cmd, {"calls": 0, "usec": 0})
    calls = cb["calls"] - ca["calls"]
    return calls, (cb["usec"] - ca["usec"]) / calls if calls else 0.0


def bench_cmd(cpu, url, publish, mode, conns, rate, duration, topics, json_path, extra=()):
    return ["taskset", "-c", str(cpu), BENCH, "--url", url, "--publish", publish, "--publish-mode", mode,
            "--conns", str(conns), "--rate", str(rate), "--duration", str(duration), "--topics", topics,
            "--drain", "2", "--json", json_path, *extra]


def run_bench(cmds, out, name, delays=None):
    """Runs ringcast-bench processes (cmds[i] after delays[i] s); their reports go to
    out/name-bench[i].txt. Returns their Popen objects (the caller waits)."""
    procs = []
    t0 = time.monotonic()
    for i, cmd in enumerate(cmds):
        if delays:
            time.sleep(max(0.0, t0 + delays[i] - time.monotonic()))
        tag = "" if len(cmds) == 1 else str(i)
        f = open(os.path.join(out, f"{name}-bench{tag}.txt"), "w")
        procs.append((spawn(cmd, out=f, err=subprocess.STDOUT), f))
    return procs


def wait_bench(procs, limit_s):
    end = time.monotonic() + limit_s
    rcs = []
    for p, f in procs:
        try:
            rcs.append(p.wait(max(1.0, end - time.monotonic())))
        except subprocess.TimeoutExpired:
            log("a ringcast-bench outlived its limit: stopped")
            stop(p)
            rcs.append(None)
        if p in STARTED:
            STARTED.remove(p)
        f.close()
    return rcs


# ---- scenario 1: the publish ceiling -----------------------------------------------

def ceiling_run(args, out, tmp, name, redis_on, threads, mode, pubs, rate=0, follow=True):
    """One node (threads shards, all on CPU 0), Redis alone on CPU 1, ringcast-bench
    publishers on CPU 0 with the node: `pubs` processes, each 1 subscriber of its
    own topic and a publisher at `rate` (0: as fast as the node takes). Without
    `follow` the subscriber is of another topic, so nothing follows the published
    one: at --rate 0 the lone subscriber of the published topic, sharing CPU 0
    with the publisher, is soon closed as a slow consumer, and the run would then
    measure an unfollowed topic anyway, unannounced."""
    redis = Redis(tmp, 1) if redis_on else None
    node = Node(tmp, "a", threads=threads, cpus=",".join(["0"] * threads), redis=redis, history=args.history,
                extra=["--max-queue", "64m"])
    pids = {"node": node.pid}
    if redis:
        pids["redis"] = redis.pid
    samp = Sampler([node], redis, pids)
    cmds = []
    for i in range(pubs):
        if mode == "ws":
            publish = f"ws://127.0.0.1:{node.port}/ws"
        else:
            publish = f"http://127.0.0.1:{node.port}/publish/{{topic}}"
        tag = "" if pubs == 1 else str(i)
        url = f"ws://127.0.0.1:{node.port}/ws?topics=" + ("{topic}" if follow else "unfollowed")
        cmds.append(bench_cmd(0, url, publish, mode, 1, rate / pubs,
                              args.ceiling_duration, f"ceil{i}", os.path.join(out, f"{name}-bench{tag}.json"),
                              ["--max-loss", "1000000000"]))
    procs = run_bench(cmds, out, name)
    for i, (p, _) in enumerate(procs):
        samp.add_pid(f"bench{i}", p.pid)
    rcs = wait_bench(procs, args.ceiling_duration + 30)
    samples = samp.finish()
    counter = 'ringcast_redis_publishes_total{result="ok"}' if redis_on else "ringcast_messages_published_total"
    i, j = steady_window(samples, counter)
    a, b = samples[i], samples[j]
    dt = b["t"] - a["t"]
    na, nb = a["nodes"]["a"], b["nodes"]["a"]
    res = {"run": name, "redis": redis_on, "threads": threads, "mode": mode, "publishers": pubs, "rate": rate,
           "followed": follow, "slow_consumer_closes": nb["ringcast_slow_consumer_disconnects_total"],
           "window_s": round(dt, 2), "bench_exit": rcs, "cpus_busy_pct": busy_pct(a, b),
           "acked_per_s": (progress(b, counter) - progress(a, counter)) / dt,
           "refused_per_s": ((nb['ringcast_redis_publishes_total{result="refused"}'] +
                              nb["ringcast_publish_refused_backlog_total"]) -
                             (na['ringcast_redis_publishes_total{result="refused"}'] +
                              na["ringcast_publish_refused_backlog_total"])) / dt,
           "errors": nb['ringcast_redis_publishes_total{result="error"}'],
           "delivered_per_s": (nb["ringcast_messages_delivered_total"] - na["ringcast_messages_delivered_total"]) / dt,
           "cpu_pct": {k: 100 * (b["cpu"][k] - a["cpu"][k]) / dt
                       for k in b["cpu"] if a["cpu"].get(k) is not None and b["cpu"][k] is not None}}
    res["node_us_per_publish"] = 1e4 * res["cpu_pct"]["node"] / res["acked_per_s"]
    if redis_on:
        res["redis_us_per_publish"] = 1e4 * res["cpu_pct"]["redis"] / res["acked_per_s"]
        calls, upc = redis_delta(a, b, "evalsha")
        res["evalsha_per_s"], res["evalsha_usec_per_call"] = calls / dt, upc
        pcalls, pupc = redis_delta(a, b, "publish")
        res["publish_per_s"], res["publish_usec_per_call"] = pcalls / dt, pupc
        res["redis_ceiling_per_s"] = (res["acked_per_s"] / (res["cpu_pct"]["redis"] / 100)
                                      if res["cpu_pct"].get("redis") else None)
        res["redis_commands_end"] = {k: v for k, v in samples[-1]["redis"].items()}
    node.close()
    if redis:
        redis.close()
    res["samples"] = samples
    return res


# ---- scenario 2: W1, one node against three through Redis -----------------------------

def w1_run(args, out, tmp, name, nodes_n, wild=False):
    """wild: the subscribers on the other nodes subscribe to the pattern w1.> (topic w1.q), so the
    message reaches them through each node's Redis pattern subscription."""
    n, rate, d = args.conns, args.rate, args.w1_duration
    topic = "w1.q" if wild else "w1"
    redis = Redis(tmp, 1) if nodes_n > 1 else None
    nodes = [Node(tmp, chr(ord("a") + k), cpus="0", redis=redis, history=args.history) for k in range(nodes_n)]
    pids = {f"node-{x.name}": x.pid for x in nodes}
    if redis:
        pids["redis"] = redis.pid
    samp = Sampler(nodes, redis, pids)
    per = n // nodes_n
    cmds, delays = [], []
    # The others first, subscribers only in effect: ringcast-bench always has a
    # publisher, so theirs publishes one message at its start (a rate of one a
    # million seconds) and nothing after; they listen until A's publisher is done.
    for x in nodes[1:]:
        cmds.append(bench_cmd(1, f"ws://127.0.0.1:{x.port}/ws?topics=" + ("w1.>" if wild else "{topic}"),
                              f"http://127.0.0.1:{x.port}/publish", "batch", per, 0.000001, d + 6, topic,
                              os.path.join(out, f"{name}-bench-{x.name}.json"), ["--max-loss", "1000000000"]))
        delays.append(0)
    a = nodes[0]
    cmds.append(bench_cmd(1, f"ws://127.0.0.1:{a.port}/ws?topics={{topic}}", f"http://127.0.0.1:{a.port}/publish",
                          "batch", n - per * (nodes_n - 1), rate, d, topic,
                          os.path.join(out, f"{name}-bench-{a.name}.json"), ["--server-pid", str(a.pid)]))
    delays.append(3 if nodes_n > 1 else 0)
    procs = run_bench(cmds, out, name, delays)
    numsub = numpat = None
    if redis:
        time.sleep(d / 2)
        numsub = redis.cmd("PUBSUB", "NUMSUB", "rc:{%s}" % topic)[1]
        numpat = redis.cmd("PUBSUB", "NUMPAT")
    rcs = wait_bench(procs, d + 40)
    samples = samp.finish()
    # The steady window is A's publishing: A's subscribers connect with its
    # publisher, so its deliveries move from the first message to the last.
    i, j = steady_window(samples, "ringcast_messages_delivered_total", "a")
    s0, s1 = samples[i], samples[j]
    dt = s1["t"] - s0["t"]
    res = {"run": name, "nodes": nodes_n, "conns": n, "rate": rate, "window_s": round(dt, 2), "bench_exit": rcs,
           "cpus_busy_pct": busy_pct(s0, s1),
           "per_node": {}, "numsub": numsub, "numpat": numpat, "wildcards": wild}
    tot_cpu = tot_del = 0.0
    for x in nodes:
        da = s1["nodes"][x.name]["ringcast_messages_delivered_total"] - s0["nodes"][x.name][
            "ringcast_messages_delivered_total"]
        cpu = s1["cpu"][f"node-{x.name}"] - s0["cpu"][f"node-{x.name}"]
        tot_cpu += cpu
        tot_del += da
        last = samples[-1]["nodes"][x.name]
        res["per_node"][x.name] = {"subscribers": per if x is not a else n - per * (nodes_n - 1),
                                   "deliveries_per_s": da / dt, "cpu_pct": 100 * cpu / dt,
                                   "cpu_ns_per_delivery": 1e9 * cpu / da if da else None,
                                   "redis_messages_total": last["ringcast_redis_messages_total"] +
                                   last.get("ringcast_redis_pattern_messages_total", 0),
                                   "delivered_total": last["ringcast_messages_delivered_total"],
                                   "redis_publishes_ok_total": last['ringcast_redis_publishes_total{result="ok"}'],
                                   "gaps_total": last["ringcast_redis_gaps_total"],
                                   "redis_disconnects_total": last["ringcast_redis_disconnects_total"],
                                   "slow_consumer_closes": last["ringcast_slow_consumer_disconnects_total"]}
    res["deliveries_per_s"] = tot_del / dt
    res["cpu_ns_per_delivery"] = 1e9 * tot_cpu / tot_del
    if redis:
        ev, ev_upc = redis_delta(s0, s1, "evalsha")
        pu, pu_upc = redis_delta(s0, s1, "publish")
        rcpu = s1["cpu"]["redis"] - s0["cpu"]["redis"]
        end, first = samples[-1], samples[0]
        out_b = end["redis"]["_stats"]["total_net_output_bytes"] - first["redis"]["_stats"]["total_net_output_bytes"]
        publishes = end["redis"].get("publish", {"calls": 0})["calls"]
        res["redis"] = {"evalsha_per_s": ev / dt, "evalsha_usec_per_call": ev_upc, "publish_per_s": pu / dt,
                        "publish_usec_per_call": pu_upc, "cpu_pct": 100 * rcpu / dt,
                        "cpu_ns_per_message": 1e9 * rcpu / pu if pu else None,
                        "commands_per_s": (s1["redis"]["_stats"]["total_commands_processed"] -
                                           s0["redis"]["_stats"]["total_commands_processed"]) / dt,
                        "publishes_total": publishes,
                        "evalsha_total": end["redis"].get("evalsha", {"calls": 0})["calls"],
                        "net_output_bytes_run": out_b,
                        "net_output_bytes_per_publish": out_b / publishes if publishes else None,
                        "node_messages_total": sum(v["redis_messages_total"] for v in res["per_node"].values()),
                        "commands_end": end["redis"]}
    for x in nodes:
        x.close()
    if redis:
        redis.close()
    res["samples"] = samples
    return res


# ---- summary ------------------------------------------------------------------------

def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def summarize(out, results, commit):
    lines = [f"# Scale-out through Redis (issue 12): {os.path.basename(out)}", "",
             f"ringcast at `{commit}`; {os.cpu_count()} CPUs; redis-server "
             f"{subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2][2:]}."
             " Figures over each run's steady window.", ""]
    ceil = [r for r in results if "mode" in r]
    if ceil:
        lines += ["## Publish ceiling (node and publishers on CPU 0, Redis alone on CPU 1)", "",
                  "| run | Redis | shards | publisher | rate asked | topic followed | acked/s | vs no Redis | "
                  "refused/s | delivered/s | slow closes | node CPU % | node µs/publish | Redis CPU % | "
                  "Redis µs/publish | publishers' CPU % | evalsha/s | evalsha µs/call | one Redis core at this cost | "
                  "CPU 0 / CPU 1 busy % |",
                  "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in ceil:
            base = next((x for x in ceil if not x["redis"] and x["mode"] == r["mode"] and x["rate"] == r["rate"]
                         and x["followed"] == r["followed"] and x["threads"] == 1), None)
            bcpu = sum(v for k, v in r["cpu_pct"].items() if k.startswith("bench"))
            lines.append("| " + " | ".join([
                r["run"], "yes" if r["redis"] else "no", str(r["threads"]), f'{r["mode"]} x{r["publishers"]}',
                fmt(r["rate"]) if r["rate"] else "max", "yes" if r["followed"] else "no", fmt(r["acked_per_s"]),
                f'{r["acked_per_s"] / base["acked_per_s"]:.2f}' if base and r["redis"] else "-",
                fmt(r["refused_per_s"]), fmt(r["delivered_per_s"]), fmt(r["slow_consumer_closes"]),
                fmt(r["cpu_pct"]["node"]), fmt(r["node_us_per_publish"], 2), fmt(r["cpu_pct"].get("redis")),
                fmt(r.get("redis_us_per_publish"), 2), fmt(bcpu), fmt(r.get("evalsha_per_s")),
                fmt(r.get("evalsha_usec_per_call"), 2), fmt(r.get("redis_ceiling_per_s")),
                " / ".join(fmt(v) for v in r["cpus_busy_pct"].values())]) + " |")
        lines.append("")
    w1 = [r for r in results if "nodes" in r]
    if w1:
        one = next((r for r in w1 if r["nodes"] == 1), None)
        lines += ["## W1: one node against three through Redis (every node on CPU 0; Redis and the benches on CPU 1)",
                  "", "| run | node | subscribers | deliveries/s | node CPU % | CPU ns per delivery | Redis messages "
                  "received (run) |", "|---|---|---:|---:|---:|---:|---:|"]
        for r in w1:
            for k, v in r["per_node"].items():
                lines.append(f'| {r["run"]} | {k} | {v["subscribers"]:,} | {fmt(v["deliveries_per_s"])} | '
                             f'{fmt(v["cpu_pct"])} | {fmt(v["cpu_ns_per_delivery"])} | {fmt(v["redis_messages_total"])} |')
            lines.append(f'| {r["run"]} | all | {r["conns"]:,} | {fmt(r["deliveries_per_s"])} | '
                         f'CPU 0/1 busy {" / ".join(fmt(v) for v in r["cpus_busy_pct"].values())} | '
                         f'{fmt(r["cpu_ns_per_delivery"])}' +
                         (f' ({r["cpu_ns_per_delivery"] / one["cpu_ns_per_delivery"]:.2f}x one node)' if one else "") +
                         " | |")
        lines.append("")
        for r in w1:
            if "redis" not in r:
                continue
            x = r["redis"]
            lines += [f'Redis in {r["run"]}: {fmt(x["evalsha_per_s"])} EVALSHA/s ({fmt(x["evalsha_usec_per_call"], 2)} '
                      f'µs/call), {fmt(x["publish_per_s"])} PUBLISH/s ({fmt(x["publish_usec_per_call"], 2)} µs/call), '
                      f'{fmt(x["commands_per_s"])} commands/s, CPU {fmt(x["cpu_pct"], 1)}% of one core '
                      f'({fmt(x["cpu_ns_per_message"])} ns per message); PUBSUB NUMSUB of the topic = {r["numsub"]}, '
                      f'NUMPAT = {r.get("numpat")}.',
                      f'Over the run: {fmt(x["publishes_total"])} PUBLISH, the nodes received '
                      f'{fmt(x["node_messages_total"])} channel and pattern messages '
                      f'({x["node_messages_total"] / x["publishes_total"]:.3f} per publish for {r["nodes"]} nodes, '
                      f'{r["conns"]:,} subscribers); Redis wrote {fmt(x["net_output_bytes_run"])} bytes, '
                      f'{fmt(x["net_output_bytes_per_publish"])} per publish.', ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", default=time.strftime("redis-%Y%m%d-%H%M%S"))
    ap.add_argument("--only", default="ceiling,w1,w1wild",
                    help="any of ceiling, w1, w1wild (W1 with the other nodes' subscribers on a wildcard)")
    ap.add_argument("--ceiling-duration", type=float, default=8)
    ap.add_argument("--w1-duration", type=float, default=20)
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--history", type=int, default=1000)
    ap.add_argument("--single-publishers", type=int, default=4)
    ap.add_argument("--ceiling-rates", type=lambda v: [float(x) for x in v.split(",")], default=[25000, 50000, 75000],
                    help="fixed publish rates with a subscriber following the topic")
    args = ap.parse_args()
    for b in (RINGCAST, BENCH):
        if not os.access(b, os.X_OK):
            sys.exit(f"redis_scaleout: {b} is missing: scripts/build.sh build -DCMAKE_BUILD_TYPE=Release")
    out = os.path.join(ROOT, "bench", "results", args.name)
    os.makedirs(out, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    results = []
    only = args.only.split(",")
    try:
        with tempfile.TemporaryDirectory(prefix="rc-redis-") as tmp:
            runs = []
            if "ceiling" in only:
                c = args.ceiling_rates
                for red, t, rate, follow, mode, pubs in (
                        [(True, 1, 0, False, "ws", 1), (True, 2, 0, False, "ws", 1), (False, 1, 0, False, "ws", 1)] +
                        [(red, 1, r, True, "ws", 1) for r in c for red in (True, False)] +
                        [(red, 1, 0, True, "single", args.single_publishers) for red in (True, False)]):
                    what = f"r{int(rate)}" if rate else ("max" if follow else "max-unfollowed")
                    nm = "ceil-{}-t{}-{}{}-{}".format("redis" if red else "local", t, mode,
                                                       "" if pubs == 1 else f"x{pubs}", what)
                    runs.append((nm, lambda nm=nm, red=red, t=t, rate=rate, follow=follow, mode=mode, pubs=pubs:
                                 ceiling_run(args, out, tmp, nm, red, t, mode, pubs, rate, follow)))
            if "w1" in only:
                runs += [("w1-one-node", lambda: w1_run(args, out, tmp, "w1-one-node", 1)),
                         ("w1-three-nodes", lambda: w1_run(args, out, tmp, "w1-three-nodes", 3))]
            if "w1wild" in only:
                runs += [("w1-three-nodes-wildcards",
                          lambda: w1_run(args, out, tmp, "w1-three-nodes-wildcards", 3, wild=True))]
            for name, fn in runs:
                log("==", name)
                r = fn()
                with open(os.path.join(out, f"{name}.json"), "w") as f:
                    json.dump(r, f, indent=1)
                r.pop("samples")
                log(json.dumps({k: v for k, v in r.items() if k not in ("redis_commands_end",)}, default=str)[:1500])
                results.append(r)
                time.sleep(1)
    finally:
        stop_all()
    summarize(out, results, commit)
    log("results in", out)


if __name__ == "__main__":
    main()
