#!/usr/bin/python3
"""History must stay within half of --max-memory ("all topics together, half of
--max-memory"). A publisher sends tiny messages to many topics with a long
--history; what history holds is counted as frame bytes only
(ringcast_history_bytes), while each held message also costs the frame's header
and a ring slot (ring arrays grow to a power of two and never shrink). Checks
that memory charged stays bounded and publishes are not refused for memory.

Exit 1 when charged memory passes --max-memory's bound or publishes get 503."""
import os
import sys
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rcserver import Server  # noqa: E402

MAXMEM = 32 << 20
TOPICS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 60


def main():
    with Server("--history", "100000", "--history-ttl", "0", "--history-bytes", "100m",
                "--max-memory", str(MAXMEM), "--connect-rate-per-ip", "0", threads=2) as srv:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        refused = 0
        worst = 0
        for r in range(ROUNDS):
            body = b"".join(b"t%d 1\n%d\n" % (i, r % 10) for i in range(TOPICS)) * 5
            c.request("POST", "/publish", body=body)
            resp = c.getresponse()
            data = resp.read()
            if resp.status != 200:
                refused += 1
                if refused < 3:
                    print("refused:", resp.status, data[:200])
            if r % 10 == 9:
                m = srv.metrics()
                ch = m.get("ringcast_memory_charged_bytes", 0)
                hb = m.get("ringcast_history_bytes", 0)
                hm = m.get("ringcast_history_messages", 0)
                worst = max(worst, ch)
                with open(f"/proc/{srv.proc.pid}/status") as f:
                    rss = [ln for ln in f if ln.startswith("VmRSS")][0].split()[1]
                print(f"round {r+1}: charged {ch/2**20:.1f} MiB history_bytes {hb/2**20:.1f} MiB "
                      f"msgs {hm:.0f} rss {int(rss)/1024:.1f} MiB refused {refused}", flush=True)
        c.close()
        if refused or worst > MAXMEM * 0.75:
            print(f"BUG: history took charged memory to {worst/2**20:.1f} MiB of --max-memory "
                  f"{MAXMEM/2**20:.0f} MiB (history is to be at most half); {refused} batches refused")
            return 1
        print("ok")
        return 0


sys.exit(main())
