#!/usr/bin/python3
"""Heap use-after-free in rc_conflate_flush (src/session/conflate.c): the loop
holds `cf`, calls park_all(l, s), whose slot_of() may realloc s->cf, then reads
and writes cf->flushed_ms / cf->idle through the stale pointer.

The table starts with cap = s->sub.n slots. A wildcard is one subscription but
fills one slot per matched topic, so: 4 exact topics + 1 pattern (cap 5), only
pattern topics published (3 of them get slots while conflating), then park_all
adds the 4 exact topics' slots and the table grows inside park_all.

Runs the ASan build (RINGCAST_BIN to override). Exit 1 on a sanitizer report or a
server crash."""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("RINGCAST_BIN", os.path.join(HERE, "../../../build-asan/ringcast"))
sys.path.insert(0, os.path.join(HERE, ".."))
from rcserver import RawWs, Server  # noqa: E402


def main():
    srv = Server("--connect-rate-per-ip", "0", threads=1)
    try:
        exact = ["e0", "e1", "e2", "e3"]
        ws = RawWs(srv.port, "/ws?topics=" + ",".join(exact) + ",w.*&policy=conflate", rcvbuf=4096)
        for _ in range(len(exact) + 1):
            op, p = ws.recv_frame()
            assert json.loads(p)["type"] == "ack", p
        body = b"".join(b"w.%d 2000\n%s\n" % (i % 3, b"z" * 2000) for i in range(300))
        for _ in range(3):
            st, _, _ = srv.http("POST", "/publish", body=body)
            time.sleep(0.2)
        time.sleep(0.5)
        ws.close()
        time.sleep(0.5)
    finally:
        rc = srv.stop()
    log = srv.log_text()
    if "AddressSanitizer" in log or rc != 0:
        i = log.find("ERROR: AddressSanitizer")
        print("BUG: server exit", rc)
        print(log[i:i + 1500] if i >= 0 else log[-1500:])
        return 1
    print("ok (no report)")
    return 0


sys.exit(main())
