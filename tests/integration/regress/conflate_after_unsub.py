#!/usr/bin/python3
"""A conflating subscriber (policy=conflate) holding a wildcard pattern and an
exact topic unsubscribes the exact topic while a message of it waits in its
conflation slot. docs/protocol.md: nothing of a topic is delivered after its
unsubscribe ack. The slot is only dropped when the session holds no pattern
(src/session/conflate.c flush_one: `k < 0 && !s->sub.npatterns`), so the
waiting message goes out after the ack.

Mode "resub": unsubscribe and subscribe again before the flush; the stale slot
(last_sent, pending hold from the old subscription) then sends a message whose
seq is not after the new ack's seq.

Exit 1 when the bug shows, 0 otherwise."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rcserver import RawWs, Server  # noqa: E402

MODE = sys.argv[1] if len(sys.argv) > 1 else "pattern"


def main():
    with Server("--connect-rate-per-ip", "0", threads=1) as srv:
        query = "/ws?topics=a,p.*&policy=conflate" if MODE == "pattern" else "/ws?topics=a&policy=conflate"
        ws = RawWs(srv.port, query, rcvbuf=4096, timeout=10)
        # the acks: the pattern's at once, the topic's after its join
        need = 2 if MODE == "pattern" else 1
        for _ in range(need):
            op, p = ws.recv_frame()
            assert op == 1, (op, p)
        body = b'"' + b"x" * 8000 + b'"'
        for _ in range(400):  # ~3 MB: far past the 16 KiB conflation threshold
            srv.publish("a", body)
        time.sleep(0.3)
        if MODE == "pattern":
            ws.send_text(json.dumps({"op": "unsubscribe", "topics": ["a"], "id": "U"}))
        else:
            ws.send_text(json.dumps({"op": "unsubscribe", "topics": ["a"], "id": "U"}))
            ws.send_text(json.dumps({"op": "subscribe", "topics": ["a"], "id": "S"}))
        time.sleep(0.3)
        ws.sock.settimeout(3)
        after_unsub = False
        resub_seq = None
        bad = []
        last = 0
        deadline = time.time() + 8
        while time.time() < deadline:
            try:
                op, p = ws.recv_frame()
            except OSError:
                break
            if op is None:
                break
            if op != 1:
                continue
            m = json.loads(p)
            t = m.get("type")
            if t == "ack" and m.get("op") == "unsubscribe":
                after_unsub = True
                continue
            if t == "ack" and m.get("op") == "subscribe" and m.get("id") == "S":
                resub_seq = m["seq"]
                continue
            if m.get("topic") != "a":
                continue
            if MODE == "pattern" and after_unsub:
                bad.append(m if t != "msg" else {"type": "msg", "seq": m["seq"]})
            if MODE == "resub" and resub_seq is not None:
                if t == "msg" and m["seq"] <= resub_seq:
                    bad.append({"msg seq": m["seq"], "after ack seq": resub_seq})
                if t == "gap" and m["from"] <= resub_seq:
                    bad.append({"gap": [m["from"], m["to"]], "after ack seq": resub_seq})
            if t == "msg":
                last = m["seq"]
        ws.close()
        if bad:
            print(f"BUG ({MODE}): delivered after the unsubscribe/resubscribe ack:", bad[:5])
            return 1
        print(f"ok ({MODE}): unsub ack seen={after_unsub} resub_seq={resub_seq} last={last}")
        return 0


sys.exit(main())
