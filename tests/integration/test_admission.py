# SPDX-License-Identifier: MIT
"""Admission under attack. With every slot taken, connections over --max-conns
are answered 503 (none reset, none left hanging) and monitoring still answers on
--admin-listen. In the default configuration, 5,000 slow-loris connections held
from one address and a reconnecting flood from eight others (127.0.0.2-9) do not
keep a client from yet another address out: its every handshake succeeds, and
the per-address limits say what they refused."""
import asyncio
import socket
import threading
import time
import unittest

from floods import http_get
from rcserver import RawWs, Server, free_port

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


async def attempt(port, outcomes, held):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 15)
        w.write(UPGRADE)
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 15)
        code = head.split(b" ")[1].decode()
        outcomes[code] = outcomes.get(code, 0) + 1
        if code == "101":
            held.append(w)
        else:
            w.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
        name = type(e).__name__
        outcomes[name] = outcomes.get(name, 0) + 1


class FullTable(unittest.TestCase):
    def test_refusals_are_answered_and_monitoring_stays_up(self):
        admin = free_port()
        srv = Server("--max-conns", "100", "--admin-listen", f"127.0.0.1:{admin}",
                     "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0", "--connect-rate-per-ip", "0")
        try:
            monitoring = {}

            async def run():
                outcomes, held = {}, []
                sem = asyncio.Semaphore(200)

                async def one():
                    async with sem:
                        await attempt(srv.port, outcomes, held)

                await asyncio.gather(*[one() for _ in range(3000)])
                # Every slot of both shards is held now: monitoring must still answer.
                loop = asyncio.get_running_loop()
                monitoring["healthz"] = await loop.run_in_executor(None, http_get, admin, "/healthz")
                monitoring["metrics"] = await loop.run_in_executor(None, http_get, admin, "/metrics")
                monitoring["publish"] = await loop.run_in_executor(None, http_get, admin, "/publish/x")
                for w in held:
                    w.close()
                return outcomes

            outcomes = asyncio.run(run())
            print(f"\n3,000 attempts at --max-conns 100 on 2 shards: {outcomes}")
            self.assertEqual(set(outcomes), {"101", "503"}, "every attempt answered: none reset, none hung")
            self.assertEqual(outcomes["101"], 200)
            self.assertEqual(monitoring["healthz"][0], 200)
            self.assertEqual(monitoring["metrics"][0], 200)
            self.assertIn(b"ringcast_connections_refused_total 2800", monitoring["metrics"][1])
            self.assertEqual(monitoring["publish"][0], 404, "the admin address serves monitoring only")
            status, body = http_get(srv.port, "/metrics")
            self.assertEqual(status, 404, "with --admin-listen, /metrics is not public")
            self.assertIn(b"--admin-listen", body)
        finally:
            srv.stop()


class Slowloris(unittest.TestCase):
    def test_legitimate_client_gets_in_under_attack(self):
        # Defaults, plus an admin address for reading the counters (127.0.0.1,
        # where the test's own requests come from, is the attacker here).
        admin = free_port()
        srv = Server("--admin-listen", f"127.0.0.1:{admin}")
        stop = threading.Event()
        loris = []
        flood = {"answered": 0, "429": 0, "503": 0, "errors": 0}

        def hold_loris():
            # 5,000 connections from 127.0.0.1, each with half a request head.
            for _ in range(5000):
                if stop.is_set():
                    return
                try:
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", srv.port))
                    loris.append(s)
                except OSError:
                    pass
            time.sleep(0.5)
            for s in loris:
                try:
                    s.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    pass

        def reconnect_flood(addr):
            while not stop.is_set():
                try:
                    s = socket.socket()
                    s.bind((addr, 0))
                    s.settimeout(5)
                    s.connect(("127.0.0.1", srv.port))
                    s.sendall(UPGRADE)
                    head = s.recv(64)
                    flood["answered"] += 1
                    for code in ("429", "503"):
                        if head[9:12] == code.encode():
                            flood[code] += 1
                    s.close()
                except OSError:
                    flood["errors"] += 1

        threads = [threading.Thread(target=hold_loris, daemon=True)]
        threads += [threading.Thread(target=reconnect_flood, args=(f"127.0.0.{i}",), daemon=True) for i in range(2, 10)]
        for t in threads:
            t.start()
        tries, ok, worst = 0, 0, 0.0
        failures = []
        try:
            time.sleep(1)
            end = time.time() + 8
            while time.time() < end:
                t0 = time.time()
                tries += 1
                try:
                    s = socket.socket()
                    s.bind(("127.0.0.10", 0))
                    s.settimeout(5)
                    s.connect(("127.0.0.1", srv.port))
                    ws = RawWs.__new__(RawWs)
                    ws.sock, ws.buf = s, b""
                    s.sendall(UPGRADE.replace(b"GET /ws ", b"GET /ws?topics=legit "))
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if not data.startswith(b"HTTP/1.1 101"):
                        failures.append(data[:80])
                    else:
                        ok += 1
                    s.close()
                except OSError as e:
                    failures.append(repr(e))
                worst = max(worst, time.time() - t0)
                time.sleep(0.1)
            m = {}
            for line in http_get(admin, "/metrics")[1].decode().splitlines():
                if line.startswith("ringcast_") and " " in line:
                    k, v = line.rsplit(" ", 1)
                    m[k] = float(v)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
            for s in loris:
                s.close()
            srv.stop()
        print(f"\nslow-loris 5,000 from 127.0.0.1 + reconnect flood from 127.0.0.2-9: legitimate client "
              f"{ok}/{tries} handshakes, slowest {worst * 1000:.0f} ms; flood answered {flood}; refused: "
              f"{m['ringcast_refused_handshakes_per_ip_total']:.0f} handshake, "
              f"{m['ringcast_refused_connect_rate_total']:.0f} rate, "
              f"{m['ringcast_refused_conns_per_ip_total']:.0f} conns")
        self.assertEqual(failures, [])
        self.assertGreater(tries, 20)
        self.assertGreater(m["ringcast_refused_handshakes_per_ip_total"] + m["ringcast_refused_connect_rate_total"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
