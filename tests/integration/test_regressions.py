# SPDX-License-Identifier: MIT
"""What hostile reviews of the market-data delivery work found, kept as the
reproducers they were written as (tests/integration/regress/): each starts its
own server (RINGCAST_BIN: the build under test, ASan's in CI's ASan step) and
exits non-zero when its bug shows.

- conflate_uaf: a conflating session holding a wildcard grew its slot table
  while the shard walked it (a use-after-free under ASan);
- conflate_exact: gap notices cover exactly the skipped seqs, exact and wildcard
  topics, a reader that stops and starts again;
- conflate_after_unsub: nothing of a topic after its unsubscribe ack, and a
  resubscription starts after its own ack, while conflating;
- history_memory: history's memory bound counts what history really holds, so
  a publisher of many tiny messages cannot fill --max-memory with it;
- since_command_laxity: "since" naming a topic twice or holding a NUL is
  refused; a topic named twice in one subscribe is acknowledged once;
- join_races: subscribe, unsubscribe and close racing joins on four shards."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REGRESS = os.path.join(HERE, "regress")


def run(script, *args, timeout=240):
    env = dict(os.environ, PYTHONPATH=HERE, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([sys.executable, os.path.join(REGRESS, script), *args], env=env,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout[-3000:] + p.stderr[-3000:]


class Regressions(unittest.TestCase):
    def check(self, script, *args):
        rc, out = run(script, *args)
        self.assertEqual(rc, 0, f"{script} {' '.join(args)}:\n{out}")

    def test_conflate_uaf(self):
        self.check("conflate_uaf.py")

    def test_conflate_exact(self):
        self.check("conflate_exact.py")

    def test_conflate_after_unsubscribe(self):
        self.check("conflate_after_unsub.py", "pattern")

    def test_conflate_resubscribe(self):
        self.check("conflate_after_unsub.py", "resub")

    def test_history_memory(self):
        self.check("history_memory.py")

    def test_since_command_laxity(self):
        self.check("since_command_laxity.py")

    def test_join_races(self):
        self.check("join_races.py")


if __name__ == "__main__":
    unittest.main(verbosity=2)
