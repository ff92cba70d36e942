# SPDX-License-Identifier: MIT
"""One ringcast process holds 30,000 WebSocket connections, more than its
RLIMIT_NOFILE, because accepted sockets live only in each shard's io_uring
direct-descriptor table. One ringcast-bench process opens them (its own sockets
live in its rings' tables too) from several 127.0.0.x source addresses, and every
subscriber receives every message."""
import os
import subprocess
import sys
import threading
import time
import unittest

from rcserver import Server

BENCH = os.environ.get("RINGCAST_BENCH", os.path.join(os.path.dirname(__file__), "../../build/ringcast-bench"))
CONNS = 30000


def nofile_soft(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise RuntimeError("no limit line")


class ManyConnections(unittest.TestCase):
    def test_30k_connections_beyond_rlimit_nofile(self):
        with Server("--max-conns", "19000", "--max-conns-per-ip", "0", "--max-handshakes-per-ip", "0", "--connect-rate-per-ip", "0", threads=2) as srv:
            peak = {"open": 0, "fds": 0}
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    try:
                        peak["open"] = max(peak["open"], srv.metrics()["ringcast_connections_open"])
                        peak["fds"] = max(peak["fds"], len(os.listdir(f"/proc/{srv.proc.pid}/fd")))
                    except OSError:
                        pass
                    time.sleep(0.2)
            watcher = threading.Thread(target=watch)
            watcher.start()
            r = subprocess.run(
                [BENCH, "--url", srv.url("?topics={topic}"), "--publish", f"http://127.0.0.1:{srv.port}/publish",
                 "--conns", str(CONNS), "--threads", "2", "--topics", "many.a,many.b", "--source-ips",
                 "127.0.0.2-127.0.0.9", "--rate", "4", "--duration", "4"],
                capture_output=True, text=True, timeout=240)
            stop.set()
            watcher.join()
            print(r.stdout)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(f"{CONNS} subscribers (0 failed)", r.stdout)
            self.assertIn("missing 0, gaps 0, duplicates 0, reordered 0", r.stdout)
            limit = nofile_soft(srv.proc.pid)
            print(f"peak connections open {peak['open']:.0f}, RLIMIT_NOFILE {limit}, peak fds {peak['fds']}")
            self.assertGreaterEqual(peak["open"], CONNS)
            self.assertGreater(peak["open"], limit)
            self.assertLess(peak["fds"], 100, "connections do not use the process fd table")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
