# SPDX-License-Identifier: MIT
"""The scale-out's three Lua scripts (src/session/redis_publish.lua, redis_sync.lua,
redis_count.lua), as shipped, straight against Debian's redis-server: the
sequence numbers and epoch a publish gives, the channel message every node
receives, the bounded stream, what a node syncing a topic gets back, a new epoch
after Redis lost its data, and the per-node subscriber counts with their expiry.
Keys are laid out as the server lays them out (rccluster.Expect)."""
import hashlib
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from rccluster import Expect, Redis, RedisError, Resp, script  # noqa: E402

EPOCH = re.compile(rb"[0-9a-f]{16}\Z")


def keyslot(key):
    """Redis Cluster's slot of a key: CRC-16/XMODEM of its hash tag (the first
    non-empty {...}) or of the whole key, modulo 16384."""
    k = key.encode()
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    crc = 0
    for byte in k:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


class Scripts:
    """The scripts loaded into one Redis and called as the server calls them:
    EVALSHA, keys and arguments in the documented order."""

    def __init__(self, r):
        self.r = r
        self.sha = {}
        for name in ("publish", "sync", "count"):
            self.sha[name] = r.call("SCRIPT", "LOAD", script(name)).decode()

    def publish(self, topic, payload, keep=1000, command="PUBLISH"):
        seq, epoch = self.r.call("EVALSHA", self.sha["publish"], 2, Expect.meta(topic), Expect.log(topic),
                                 Expect.channel(topic), payload, keep, command)
        return seq, epoch

    def sync(self, topic, since, *more):
        """more: ARGV[2..] as the script documents them (at most this many, the
        asking node's last seq and epoch)."""
        seq, epoch, flat = self.r.call("EVALSHA", self.sha["sync"], 2, Expect.meta(topic), Expect.log(topic), since,
                                       *more)
        return seq, epoch, [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    def count(self, topic, node, n, ttl_ms):
        reply = self.r.call("EVALSHA", self.sha["count"], 1, Expect.nodes(topic), node, n, ttl_ms)
        return reply[0], {reply[i].decode(): reply[i + 1] for i in range(1, len(reply), 2)}


class RedisScripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.close()

    def setUp(self):
        self.r = self.redis.connect()
        self.r.call("FLUSHALL")
        self.s = Scripts(self.r)

    def tearDown(self):
        self.r.close()

    def test_script_load_names_each_file_by_its_sha1(self):
        # A node may EVALSHA with the digest of the text it embeds, loading only
        # on NOSCRIPT: Redis' name for a script is the SHA-1 of its bytes.
        for name in ("publish", "sync", "count"):
            self.assertEqual(self.s.sha[name], hashlib.sha1(script(name)).hexdigest(), name)
        self.r.call("SCRIPT", "FLUSH")
        with self.assertRaises(RedisError) as cm:
            self.s.publish("sc.noscript", "x")
        self.assertIn("NOSCRIPT", str(cm.exception))

    def test_publish_counts_seq_up_with_one_stable_epoch(self):
        results = [self.s.publish("sc.seq", f"m{i}") for i in range(1, 51)]
        self.assertEqual([seq for seq, _ in results], list(range(1, 51)))
        epochs = {epoch for _, epoch in results}
        self.assertEqual(len(epochs), 1, epochs)
        epoch = epochs.pop()
        self.assertRegex(epoch, EPOCH)
        self.assertEqual(self.r.call("HGETALL", Expect.meta("sc.seq")), [b"seq", b"50", b"epoch", epoch])
        # Topics are independent: each has its own run and its own epoch.
        seq, other = self.s.publish("sc.seq2", "x")
        self.assertEqual(seq, 1)
        self.assertNotEqual(other, epoch)
        self.assertEqual(self.s.publish("sc.seq", "m51"), (51, epoch))

    def test_the_shipped_file_runs_under_redis_cli_eval(self):
        path = os.path.join(os.path.dirname(__file__), "../../src/session/redis_publish.lua")
        meta, log, chan = Expect.meta("sc.cli"), Expect.log("sc.cli"), Expect.channel("sc.cli")
        outs = []
        for payload in ("one", "two"):
            rc, out, err = self.redis.cli("--eval", path, meta, log, ",", chan, payload, "10", "PUBLISH")
            self.assertEqual(rc, 0, err)
            outs.append(out.split())
        self.assertEqual([o[0] for o in outs], ["1", "2"], outs)
        self.assertEqual(outs[0][1], outs[1][1])
        self.assertRegex(outs[0][1].encode(), EPOCH)

    def channel_messages(self, subscribe, command, topic, payloads):
        """Subscribes a second connection (SUBSCRIBE or SSUBSCRIBE), publishes the
        payloads with the script's PUBLISH or SPUBLISH, returns the epoch and what
        the subscriber received."""
        chan = Expect.channel(topic)
        with Resp(self.redis.port) as sub:
            sub.send(subscribe, chan)
            kind, name, n = sub.reply()
            self.assertEqual((kind, name, n), (subscribe.lower().encode(), chan.encode(), 1))
            epoch = None
            for i, p in enumerate(payloads):
                seq, epoch = self.s.publish(topic, p, command=command)
                self.assertEqual(seq, i + 1)
            got = []
            for _ in payloads:
                m = sub.reply()
                self.assertEqual(m[:2], [b"message" if subscribe == "SUBSCRIBE" else b"smessage", chan.encode()])
                got.append(m[2])
            return epoch, got

    def test_channel_message_is_epoch_seq_payload(self):
        # Payloads holding the separator, a newline, binary bytes and nothing:
        # the first two colons delimit, the rest is the payload byte for byte.
        payloads = [b"plain", b'{"px":1.5,"t":"09:30:00"}', b"a:b:c", b"line\nbreak\r\n", bytes(range(256)), b""]
        epoch, got = self.channel_messages("SUBSCRIBE", "PUBLISH", "sc.chan", payloads)
        self.assertEqual(got, [epoch + b":%d:" % (i + 1) + p for i, p in enumerate(payloads)])
        for m, p in zip(got, payloads):
            e, seq, rest = m.split(b":", 2)
            self.assertEqual((e, rest), (epoch, p))

    def test_sharded_publish_for_redis_cluster(self):
        epoch, got = self.channel_messages("SSUBSCRIBE", "SPUBLISH", "sc.shard", [b"x", b"y"])
        self.assertEqual(got, [epoch + b":1:x", epoch + b":2:y"])

    def test_the_channel_shares_the_keys_hash_slot(self):
        # Redis Cluster needs a script's keys and its SPUBLISH channel in one slot:
        # each names the topic as its hash tag (the test's Redis runs without
        # cluster support, so the slot is computed here as Redis Cluster does).
        self.assertEqual(keyslot("123456789"), 0x31C3)  # CRC-16/XMODEM's check value
        self.assertEqual(keyslot("foo"), 12182)  # the example in Redis' CLUSTER KEYSLOT page
        for topic in ("q.AAPL", "sc.x", "a/b@c:d"):
            names = (Expect.meta(topic), Expect.log(topic), Expect.nodes(topic), Expect.channel(topic))
            self.assertEqual({keyslot(k) for k in names}, {keyslot(topic)}, names)

    def test_stream_keeps_entries_seq_dash_0_bounded_approximately(self):
        keep = 10
        for i in range(1, 501):
            self.s.publish("sc.trim", f"m{i}", keep=keep)
        n = self.r.call("XLEN", Expect.log("sc.trim"))
        # MAXLEN ~ trims whole macro nodes only: at least keep entries stay, and at
        # most keep plus one node's worth.
        node = int(self.r.call("CONFIG", "GET", "stream-node-max-entries")[1])
        self.assertGreaterEqual(n, keep)
        self.assertLessEqual(n, keep + node)
        self.assertLess(n, 500)
        entries = self.r.call("XRANGE", Expect.log("sc.trim"), "-", "+")
        self.assertEqual([e[0] for e in entries], [b"%d-0" % s for s in range(501 - n, 501)])
        self.assertEqual(entries[-1][1], [b"p", b"m500"])
        # keep 0: no stream at all.
        self.s.publish("sc.nolog", "x", keep=0)
        self.assertEqual(self.r.call("EXISTS", Expect.log("sc.nolog")), 0)
        self.assertEqual(self.r.call("HGET", Expect.meta("sc.nolog"), "seq"), b"1")

    def test_sync_returns_history_from_a_seq_oldest_first(self):
        _, epoch = self.s.publish("sc.sync", b"p1")
        for i in range(2, 21):
            self.s.publish("sc.sync", b"p%d" % i)
        seq, e, entries = self.s.sync("sc.sync", 5)
        self.assertEqual((seq, e), (20, epoch))
        self.assertEqual(entries, [(i, b"p%d" % i) for i in range(5, 21)])
        # 0: the position only; past the end: nothing; the last one: itself.
        self.assertEqual(self.s.sync("sc.sync", 0), (20, epoch, []))
        self.assertEqual(self.s.sync("sc.sync", 21), (20, epoch, []))
        self.assertEqual(self.s.sync("sc.sync", 20), (20, epoch, [(20, b"p20")]))
        # Payloads come back byte for byte.
        self.s.publish("sc.sync", bytes(range(256)))
        self.assertEqual(self.s.sync("sc.sync", 21)[2], [(21, bytes(range(256)))])

    def test_sync_from_before_what_the_stream_kept_starts_later(self):
        # What was trimmed is not there: the first entry returned is later than
        # asked for, which is how a node knows it must send a gap.
        for i in range(1, 301):
            self.s.publish("sc.old", f"m{i}", keep=10)
        seq, _, entries = self.s.sync("sc.old", 1)
        self.assertEqual(seq, 300)
        seqs = [s for s, _ in entries]
        self.assertGreater(seqs[0], 1)
        self.assertEqual(seqs, list(range(seqs[0], 301)))

    def test_sync_returns_at_most_the_newest_asked_for(self):
        _, epoch = self.s.publish("sc.bound", b"p1")
        for i in range(2, 21):
            self.s.publish("sc.bound", b"p%d" % i)
        self.assertEqual(self.s.sync("sc.bound", 1, 5), (20, epoch, [(i, b"p%d" % i) for i in range(16, 21)]))
        self.assertEqual(self.s.sync("sc.bound", 18, 5), (20, epoch, [(i, b"p%d" % i) for i in range(18, 21)]))
        self.assertEqual(self.s.sync("sc.bound", 1, 0), (20, epoch, []))
        self.assertEqual(self.s.sync("sc.bound", 1, 100)[2], [(i, b"p%d" % i) for i in range(1, 21)])

    def test_sync_draws_a_new_epoch_when_a_node_is_ahead_of_redis(self):
        # Redis back from an older copy of its data: a node that delivered seq 30
        # of this epoch finds Redis at 20. Reusing 21..30 would give two messages
        # one seq: the epoch changes instead, once, and publishes follow it.
        _, epoch = self.s.publish("sc.behind", "x")
        for _ in range(19):
            self.s.publish("sc.behind", "x")
        self.assertEqual(self.s.sync("sc.behind", 0, 10, 20, epoch)[:2], (20, epoch))  # level: nothing
        self.assertEqual(self.s.sync("sc.behind", 0, 10, 15, epoch)[:2], (20, epoch))  # behind: nothing
        self.assertEqual(self.s.sync("sc.behind", 0, 10, 30, b"0123456789abcdef")[:2], (20, epoch))  # another run
        seq, renewed, _ = self.s.sync("sc.behind", 0, 10, 30, epoch)
        self.assertEqual(seq, 20)
        self.assertNotEqual(renewed, epoch)
        self.assertRegex(renewed, EPOCH)
        # Every node asking after that sees the new epoch; the next publish is in it.
        self.assertEqual(self.s.sync("sc.behind", 0, 10, 30, epoch)[:2], (20, renewed))
        self.assertEqual(self.s.sync("sc.behind", 0)[:2], (20, renewed))
        self.assertEqual(self.s.publish("sc.behind", "y"), (21, renewed))

    def test_sync_fixes_the_epoch_of_a_new_topic_once(self):
        # Two nodes syncing a topic nobody published to yet agree on its epoch,
        # and the first publish keeps it.
        seq1, e1, entries1 = self.s.sync("sc.new", 1)
        seq2, e2, entries2 = self.s.sync("sc.new", 0)
        self.assertEqual((seq1, entries1, seq2, entries2), (0, [], 0, []))
        self.assertRegex(e1, EPOCH)
        self.assertEqual(e1, e2)
        self.assertEqual(self.s.publish("sc.new", "first"), (1, e1))
        self.assertEqual(self.s.sync("sc.new", 1), (1, e1, [(1, b"first")]))

    def test_data_loss_gives_a_new_epoch(self):
        _, old = self.s.publish("sc.lost", "a")
        self.s.publish("sc.lost", "b")
        self.r.call("FLUSHALL")
        seq, epoch, entries = self.s.sync("sc.lost", 1)
        self.assertEqual((seq, entries), (0, []))
        self.assertNotEqual(epoch, old)
        self.assertEqual(self.s.publish("sc.lost", "c"), (1, epoch))
        # The same after a publish is the first to notice.
        _, old = self.s.publish("sc.lost2", "a")
        self.r.call("FLUSHALL")
        seq, epoch = self.s.publish("sc.lost2", "b")
        self.assertEqual(seq, 1)
        self.assertNotEqual(epoch, old)
        self.assertRegex(epoch, EPOCH)

    def test_counts_sum_over_nodes_and_zero_removes_a_node(self):
        self.assertEqual(self.s.count("sc.cnt", "node1", 3, 60000), (3, {"node1": 3}))
        self.assertEqual(self.s.count("sc.cnt", "node2", 4, 60000), (7, {"node1": 3, "node2": 4}))
        self.assertEqual(self.s.count("sc.cnt", "node1", 5, 60000), (9, {"node1": 5, "node2": 4}))
        # "" only reads.
        self.assertEqual(self.s.count("sc.cnt", "", 0, 60000), (9, {"node1": 5, "node2": 4}))
        self.assertEqual(self.s.count("sc.cnt", "node1", 0, 60000), (4, {"node2": 4}))
        self.assertEqual(self.r.call("HEXISTS", Expect.nodes("sc.cnt"), "node1"), 0)
        # The value is "count:expiry in ms", and the hash itself expires if every
        # node stops renewing.
        value = self.r.call("HGET", Expect.nodes("sc.cnt"), "node2").decode()
        count, expires = value.split(":")
        now_s, now_us = self.r.call("TIME")
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        self.assertEqual(count, "4")
        self.assertGreater(int(expires), now_ms)
        self.assertLessEqual(int(expires), now_ms + 60000)
        self.assertGreater(self.r.call("PTTL", Expect.nodes("sc.cnt")), 0)
        self.assertEqual(self.s.count("sc.cnt", "node2", 0, 60000), (0, {}))
        self.assertEqual(self.r.call("EXISTS", Expect.nodes("sc.cnt")), 0)

    def test_an_entry_not_renewed_expires(self):
        self.s.count("sc.exp", "alive", 2, 60000)
        self.assertEqual(self.s.count("sc.exp", "dying", 5, 200), (7, {"alive": 2, "dying": 5}))
        # Past its 200 ms (Redis' clock decides; bounded wait), a read drops it.
        deadline = time.time() + 10
        while True:
            total, by_node = self.s.count("sc.exp", "", 0, 0)
            if "dying" not in by_node:
                break
            self.assertLess(time.time(), deadline, "an expired count stayed")
            time.sleep(0.1)
        self.assertEqual((total, by_node), (2, {"alive": 2}))
        self.assertEqual(self.r.call("HEXISTS", Expect.nodes("sc.exp"), "dying"), 0)
        # Renewing keeps an entry: a node refreshing before its ttl stays counted.
        self.s.count("sc.exp", "renewed", 1, 60000)
        self.assertEqual(self.s.count("sc.exp", "renewed", 1, 60000), (3, {"alive": 2, "renewed": 1}))


if __name__ == "__main__":
    unittest.main()
