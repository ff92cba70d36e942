# SPDX-License-Identifier: MIT
"""--log-format json: every line the real server writes, from the main thread
and from the shards, is one JSON object with ts, level, shard and msg."""
import json
import sys
import time
import unittest

from rcserver import RawWs, Server


class LogFormat(unittest.TestCase):
    def test_every_line_is_a_json_object(self):
        with Server("--log-format", "json", threads=2) as srv:
            ws = RawWs(srv.port, "/ws")
            ws.send(0x1, b'{"op":"ping"}', mask=False)  # unmasked: closed by a shard, with a log line
            self.assertEqual(ws.recv_close(), 1002)
            ws.close()
            deadline = time.time() + 5
            while "must be masked" not in srv.log_text() and time.time() < deadline:
                time.sleep(0.05)
            text = srv.log_text()
        lines = [l for l in text.splitlines() if l.strip()]
        self.assertGreaterEqual(len(lines), 2)
        shards = set()
        for line in lines:
            rec = json.loads(line)
            self.assertEqual(set(rec), {"ts", "level", "shard", "msg"}, line)
            self.assertIn(rec["level"], {"error", "warn", "info", "debug"})
            self.assertRegex(rec["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            shards.add(rec["shard"])
        self.assertIn("main", shards)
        self.assertTrue(any(isinstance(s, int) for s in shards), "a shard's own line")
        self.assertTrue(any("must be masked" in json.loads(l)["msg"] for l in lines))

    def test_a_bad_format_is_refused(self):
        import subprocess
        from rcserver import BINARY
        p = subprocess.run([BINARY, "--log-format", "yaml"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--log-format", p.stderr)
        self.assertIn("expected text or json", p.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
