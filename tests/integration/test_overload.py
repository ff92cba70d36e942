# SPDX-License-Identifier: MIT
"""Overload from hostile clients, in the default configuration unless a test says
otherwise: a publish flood is refused (503 with Retry-After, an error reply naming
the limit) instead of queued, while bystanders keep being served; what was
accepted is delivered, in order; partial messages are bounded by --max-memory
(close 1013); a ping flood is cut by --max-commands-per-sec and its pongs
coalesce; and after each flood the memory comes back (RSS within 1.5x of its
pre-load value within 30 s). Figures are printed for the record."""
import json
import multiprocessing
import socket
import struct
import threading
import time
import unittest

from floods import (PeakRss, Prober, hold_partial_messages, http_publish_flood, masked, pump, rss_mb,
                    ws_publish_flood)
from rcserver import SANITIZED, RawWs, Server, subscriber

RSS_CEILING_MB = 200      # the flood that motivated this grew RSS to 1.8 GB
RECOVERY_S = 30


def warm_up(srv):
    """One subscriber, a few publishes: the idle server's memory after it has
    served traffic, the baseline the recovery is measured against."""
    ws = subscriber(srv.port, ["warm"])
    for i in range(20):
        srv.publish("warm", b"w%d" % i)
    for _ in range(20):
        ws.recv_frame()
    ws.close()
    time.sleep(1.5)
    return rss_mb(srv.proc.pid)


def wait_recovery(test, srv, base):
    start = time.time()
    if SANITIZED:
        return rss_mb(srv.proc.pid), 0.0
    while True:
        now = rss_mb(srv.proc.pid)
        if now <= 1.5 * base:
            return now, time.time() - start
        if time.time() - start > RECOVERY_S:
            test.fail(f"RSS {now:.1f} MB still above 1.5x the pre-load {base:.1f} MB after {RECOVERY_S} s")
        time.sleep(0.5)


class PublishFlood(unittest.TestCase):
    def test_flood_is_bounded_and_bystanders_are_served(self):
        srv = Server()
        try:
            base = warm_up(srv)
            peak = PeakRss(srv.proc.pid)
            probe = Prober(srv.port)
            probe.start()
            results = {}

            def http(topic):
                results[topic] = http_publish_flood(srv.port, 6, topic)

            threads = [threading.Thread(target=http, args=(f"flood.h{i}",)) for i in range(2)]
            for t in threads:
                t.start()
            late = {}

            def late_subscriber():
                # Joins in the middle of the flood and must get a message promptly.
                time.sleep(2)
                ws = subscriber(srv.port, ["late"])  # acknowledged: live from here
                t0 = time.time()
                srv.publish("late", b"hello")
                ws.sock.settimeout(5)
                late["frame"] = ws.recv_frame()
                late["s"] = time.time() - t0
                ws.close()

            lt = threading.Thread(target=late_subscriber)
            lt.start()
            ws = ws_publish_flood(srv.port, 6, [f"flood.w{i}" for i in range(4)],
                                  payload=b'"' + b"x" * 2000 + b'"')
            for t in threads + [lt]:
                t.join(30)
            p = probe.finish()
            top = peak.finish()
            after, took = wait_recovery(self, srv, base)
            print(f"\npublish flood: ws {ws['acks']} acked / {ws['errors']} refused, "
                  f"http {sum(r['ok'] for r in results.values())} ok / "
                  f"{sum(r['refused'] for r in results.values())} refused; "
                  f"RSS {base:.1f} -> peak {top:.1f} -> {after:.1f} MB after {took:.1f} s; "
                  f"/healthz {p['probes']} probes, max {p['max_s'] * 1000:.0f} ms; "
                  f"late subscriber served in {late.get('s', -1) * 1000:.0f} ms")
            if not SANITIZED:
                self.assertLess(top, RSS_CEILING_MB)
            self.assertEqual(p["failures"], [])
            self.assertLess(p["max_s"], 2.0, "a bystander's /healthz waited behind the flood")
            self.assertEqual(json.loads(late["frame"][1])["data"], "hello")
            self.assertLess(late["s"], 2.0)
            self.assertGreater(ws["acks"], 0)
        finally:
            srv.stop()

    def test_backlog_refusals_lose_nothing_accepted(self):
        # A small backlog so refusals are certain, a deep queue so the watcher keeps
        # up, and no command rate limit, so the flooder is refused but never cut.
        srv = Server("--max-backlog", "64k", "--max-queue", "1g", "--max-commands-per-sec", "0")
        try:
            topics = [f"bk.{i}" for i in range(4)]
            parent, child = multiprocessing.Pipe()
            watcher = multiprocessing.Process(target=watch_topics, args=(srv.port, topics, child))
            watcher.start()
            self.assertEqual(parent.recv(), "ready")
            # Whether the flooders outrun the home shards depends on how the two
            # cores are shared (a busy CI machine can slow the clients more than
            # the server): flood again, up to four rounds, until the bound is
            # reached. Everything accepted in every round must still arrive.
            ok = refused = 0
            ws = {"acks": 0, "errors": 0, "samples": []}
            http_samples = []
            for _ in range(4):
                results = {}

                def http(i):
                    results[i] = http_publish_flood(srv.port, 4, topics[i], body=b"z" * 100)

                threads = [threading.Thread(target=http, args=(i,)) for i in range(2)]
                for t in threads:
                    t.start()
                w = ws_publish_flood(srv.port, 4, topics, payload=b'"' + b"x" * 100 + b'"')
                for t in threads:
                    t.join(30)
                ws["acks"] += w["acks"]
                ws["errors"] += w["errors"]
                ws["samples"] += w["samples"]
                ok += sum(r["ok"] for r in results.values())
                refused += sum(r["refused"] for r in results.values())
                http_samples += sum((r["samples"] for r in results.values()), [])
                if ws["errors"] + refused > 0:
                    break
            while srv.http("POST", "/publish/bk.0", body=b"END")[0] != 200:
                time.sleep(0.1)
            self.assertTrue(parent.poll(60), "the watcher did not see the end")
            got = parent.recv()
            watcher.join(10)
            print(f"\nbacklog 64k: ws {ws['acks']} acked / {ws['errors']} refused, "
                  f"http {ok} ok / {refused} refused, {got['n']} delivered")
            # (A sanitizer's build is too slow to outrun its own home shard.)
            if not SANITIZED:
                self.assertGreater(ws["errors"] + refused, 0, "the backlog bound was never reached")
            samples = ws["samples"] + http_samples
            if samples:
                self.assertIn(b"--max-backlog", samples[0])
            self.assertTrue(got["order_ok"], "a gap or reorder in a topic's seq")
            m = srv.metrics()
            self.assertEqual(got["n"], m["ringcast_messages_published_total"],
                             "every accepted publish, and only those, delivered")
            self.assertEqual(got["n"], ws["acks"] + ok + 1, "every accepted publish was acknowledged")
            self.assertEqual(m["ringcast_publish_refused_backlog_total"], ws["errors"] + refused)
            self.assertEqual(srv.http("GET", "/healthz")[0], 200)
        finally:
            srv.stop()


def watch_topics(port, topics, pipe):
    """In its own process (so the flooders' threads do not slow it): reads every
    message of the topics until one carries "END"; reports the count and whether
    each topic's seq went up by exactly one each time."""
    ws = subscriber(port, topics, timeout=60)
    pipe.send("ready")
    last, n, order_ok = {}, 0, True
    while True:
        op, payload = ws.recv_frame()
        if op != 0x1:
            break
        m = json.loads(payload)
        order_ok &= m["seq"] == last.get(m["topic"], 0) + 1
        last[m["topic"]] = m["seq"]
        n += 1
        if m["data"] == "END":
            break
    pipe.send({"n": n, "order_ok": order_ok, "last": last})


class MemoryBudget(unittest.TestCase):
    def test_partial_messages_are_bounded(self):
        srv = Server("--max-memory", "16m")
        conns, refused = [], []
        try:
            base = warm_up(srv)
            conns = hold_partial_messages(srv.port, 40, 900_000)
            time.sleep(0.5)
            m = srv.metrics()
            for ws in conns:
                ws.sock.setblocking(False)
                try:
                    data = ws.sock.recv(256)
                except BlockingIOError:
                    continue
                if data[:1] == b"\x88":
                    refused.append((struct.unpack("!H", data[2:4])[0], data[4:]))
            held = rss_mb(srv.proc.pid)
            print(f"\n--max-memory 16m: {len(conns) - len(refused)} partial messages held, "
                  f"{len(refused)} refused; charged {m['ringcast_memory_charged_bytes'] / 2**20:.1f} MiB; "
                  f"RSS {base:.1f} -> {held:.1f} MB")
            self.assertGreater(len(refused), 15)
            self.assertTrue(all(code == 1013 and b"--max-memory" in why for code, why in refused), refused[:2])
            self.assertLessEqual(m["ringcast_memory_charged_bytes"], 16 * 2**20)
            self.assertEqual(m["ringcast_memory_refusals_total"], len(refused))
            # The budget is spent: a new request body that would have to be held is refused too.
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"POST /publish/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"b" * 900_000)
            answer = s.recv(4096)
            s.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 503"), answer[:100])
            self.assertIn(b"Retry-After: 1", answer)
            self.assertIn(b"--max-memory", answer)
            self.assertEqual(srv.http("GET", "/healthz")[0], 200, "monitoring still answers")
            for ws in conns:
                ws.close()
            deadline = time.time() + 10
            while srv.metrics()["ringcast_memory_charged_bytes"] > 256 * 1024 and time.time() < deadline:
                time.sleep(0.2)
            self.assertLessEqual(srv.metrics()["ringcast_memory_charged_bytes"], 256 * 1024,
                                 "the budget comes back when the connections go")
            after, took = wait_recovery(self, srv, base)
            print(f"RSS back to {after:.1f} MB in {took:.1f} s")
            ok = subscriber(srv.port, ["after"])
            srv.publish("after", b"fine")
            self.assertEqual(json.loads(ok.recv_frame()[1])["data"], "fine")
            ok.close()
        finally:
            for ws in conns:
                ws.close()
            srv.stop()

    def test_unfinished_messages_memory_returns(self):
        # The reported case: 100 connections each holding an unfinished 1 MB message.
        srv = Server()
        conns = []
        try:
            base = warm_up(srv)
            conns = hold_partial_messages(srv.port, 100, 1_000_000)
            time.sleep(0.5)
            held = rss_mb(srv.proc.pid)
            for ws in conns:
                ws.close()
            after, took = wait_recovery(self, srv, base)
            print(f"\n100 x 1 MB unfinished messages: RSS {base:.1f} -> {held:.1f} -> {after:.1f} MB "
                  f"{took:.1f} s after they closed")
            if not SANITIZED:
                self.assertGreater(held, base + 50, "the messages were held (the test measures something)")
        finally:
            for ws in conns:
                ws.close()
            srv.stop()


class PingFlood(unittest.TestCase):
    def test_ping_flood_is_cut_and_bounded(self):
        srv = Server()
        try:
            base = warm_up(srv)
            ws = RawWs(srv.port, "/ws")
            pings = masked(0x9, b"p") * 50_000
            pong = b"\x8a\x01p"
            sent, counts, _, cut = pump(ws.sock, pings, 5, (pong,))
            ws.close()
            m = srv.metrics()
            rss = rss_mb(srv.proc.pid)
            print(f"\nping flood: {sent // 7} pings sent, {counts[pong]} pongs, closed by server: {cut}; "
                  f"RSS {base:.1f} -> {rss:.1f} MB")
            self.assertTrue(cut, "the flood was not cut")
            self.assertEqual(m["ringcast_rate_limited_total"], 1)
            if not SANITIZED:
                self.assertLess(rss, base + 20)
            self.assertLess(counts[pong], 20_001, "more pongs than the burst allowed pings")
        finally:
            srv.stop()

    def test_big_commands_cost_about_their_size(self):
        # A 1 MB command of tiny values once cost ~34x its size in parse trees.
        srv = Server()
        try:
            base = warm_up(srv)
            ws = RawWs(srv.port, "/ws")
            body = b'{"op":"ping","x":[' + b",".join([b"0"] * 500_000) + b"]}"
            peak = PeakRss(srv.proc.pid)
            for _ in range(5):
                ws.send(0x1, body)
                op, payload = ws.recv_frame()
                self.assertIn(b"--max-command-bytes", payload)
            top = peak.finish()
            ws.close()
            print(f"\n5 x 1 MB ping commands: RSS {base:.1f} -> peak {top:.1f} MB")
            if not SANITIZED:
                self.assertLess(top, base + 12, "parsing a refused command costs about its size")
        finally:
            srv.stop()

    def test_pongs_coalesce(self):
        srv = Server("--max-commands-per-sec", "0")
        try:
            ws = RawWs(srv.port, "/ws")
            ws.sock.sendall(masked(0x9, b"1") * 20_000 + masked(0x9, b"last"))
            ws.sock.settimeout(5)
            pongs = []
            while True:
                op, payload = ws.recv_frame()
                self.assertEqual(op, 0xA)
                pongs.append(payload)
                if payload == b"last":
                    break
            print(f"\n20,001 pings in a burst: {len(pongs)} pongs")
            self.assertLess(len(pongs), 2000, "a burst of pings is answered by the latest ones only")
            ws.send(0x8, struct.pack("!H", 1000))
            self.assertEqual(ws.recv_close(), 1000)
            ws.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
