# SPDX-License-Identifier: MIT
"""One ringcast process holds 30,000 WebSocket connections, more than its
RLIMIT_NOFILE, because accepted sockets live only in each shard's io_uring
direct-descriptor table. Two ringcast-probe processes (the client side is bound
by the same fd limit) connect 15,000 subscribers each from different 127.0.0.x
source addresses, and every subscriber receives every message."""
import os
import subprocess
import sys
import threading
import time
import unittest

from rcserver import Server

PROBE = os.environ.get("RINGCAST_PROBE", os.path.join(os.path.dirname(__file__), "../../build/ringcast-probe"))
PER_PROBE = 15000


def nofile_soft(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise RuntimeError("no limit line")


class ManyConnections(unittest.TestCase):
    def test_30k_connections_beyond_rlimit_nofile(self):
        with Server("--max-conns", "19000", threads=2) as srv:
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
            probes = []
            for i, (src, topic) in enumerate((("127.0.0.2-127.0.0.5", "many.a"), ("127.0.0.6-127.0.0.9", "many.b"))):
                probes.append(subprocess.Popen(
                    [PROBE, "--url", srv.url(f"?topics={topic}"), "--publish", f"http://127.0.0.1:{srv.port}",
                     "--conns", str(PER_PROBE), "--source-ips", src, "--rate", "2", "--duration", "4",
                     "--settle", "3"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            outs = [p.communicate(timeout=180)[0] for p in probes]
            stop.set()
            watcher.join()
            for p, out in zip(probes, outs):
                print(out)
                self.assertEqual(p.returncode, 0, out)
                self.assertIn(f"subscribers={PER_PROBE} failed=0", out)
                self.assertIn("missing=0 gaps=0 dups_or_reorders=0", out)
            limit = nofile_soft(srv.proc.pid)
            print(f"peak connections open {peak['open']:.0f}, RLIMIT_NOFILE {limit}, peak fds {peak['fds']}")
            self.assertGreaterEqual(peak["open"], 2 * PER_PROBE)
            self.assertGreater(peak["open"], limit)
            self.assertLess(peak["fds"], 100, "connections do not use the process fd table")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
