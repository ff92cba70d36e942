#!/usr/bin/python3
"""Low severity: the subscribe command's "since" object.
1. docs/protocol.md: commands "may not name a member twice" - but a "since"
   naming one topic twice is accepted (cJSON keeps the first; the second is
   silently ignored).
2. A "since" key holding a NUL ("a\\u0000zz") is taken as the position of topic
   "a" (parse_since/rc_command_since compare with strcmp on cJSON's C strings),
   where a topic name holding NUL is documented as an error.
3. "topics":["e","e"]: the already_subscribed ack for the second "e" arrives
   before the first one's real ack (seq/epoch): a client reads "already held"
   for a topic it has not yet seen acked.
Exit 1 when any shows."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rcserver import RawWs, Server  # noqa: E402


def main():
    bad = []
    with Server("--history", "10", threads=2) as srv:
        ws = RawWs(srv.port, "/ws")
        ws.sock.settimeout(2)

        def cmd(text, n):
            ws.send_text(text)
            out = []
            try:
                for _ in range(n):
                    out.append(json.loads(ws.recv_frame()[1]))
            except socket.timeout:
                pass
            return out

        r = cmd('{"op":"subscribe","topics":["b"],"since":{"b":{"epoch":"0000000000000000","seq":3},'
                '"b":{"epoch":"1111111111111111","seq":1}}}', 1)
        if r and r[0].get("type") != "error":
            bad.append(("duplicate member in since accepted", r[0]))
        ws.sock.settimeout(0.5)
        try:
            while True:
                ws.recv_frame()
        except socket.timeout:
            pass
        ws.sock.settimeout(2)
        r = cmd('{"op":"subscribe","topics":["a"],"since":{"a\\u0000zz":{"epoch":"0000000000000000","seq":3}}}', 1)
        if r and r[0].get("type") == "ack" and "recovered" in r[0]:
            bad.append(("since key with NUL applied to topic 'a'", r[0]))
        ws.sock.settimeout(0.5)
        try:
            while True:
                ws.recv_frame()
        except socket.timeout:
            pass
        ws.sock.settimeout(2)
        r = cmd('{"op":"subscribe","topics":["e","e"]}', 2)
        if r and r[0].get("already_subscribed"):
            bad.append(("already_subscribed before the topic's own ack", r))
        ws.close()
    if bad:
        for b in bad:
            print("BUG:", b)
        return 1
    print("ok")
    return 0


sys.exit(main())
