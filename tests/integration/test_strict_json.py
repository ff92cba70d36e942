# SPDX-License-Identifier: MIT
"""Strict, byte-exact JSON: what a publisher's command holds reaches subscribers
exactly as written (12345678901234567890 is not rounded into a double), payloads a
lenient parser would take but a strict one refuses ("01", "1.", raw control
characters) travel as JSON strings so every envelope parses in Python's json, and
commands that are not RFC 8259 JSON, name a member twice or hide a NUL in a topic
name are refused with an error that says why, publishing nothing."""
import asyncio
import json
import unittest

import websockets

from rcserver import Server, recv_subscribe_acks


class StrictJson(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_websocket_publish_is_byte_exact(self):
        async def run():
            async with websockets.connect(self.srv.url("?topics=sj.exact"), ping_interval=None) as sub, \
                    websockets.connect(self.srv.url(), ping_interval=None) as pub:
                await recv_subscribe_acks(sub, ["sj.exact"])
                for data in ['12345678901234567890', '1.0e+300', '{ "a" : [ 1 , -0 ] }', '"a\\u0000b"']:
                    await pub.send('{"op":"publish","topic":"sj.exact","id":12345678901234567890,"data":%s}' % data)
                    ack = await pub.recv()
                    self.assertIn('"id":12345678901234567890', ack, "the id is echoed as written")
                    raw = await sub.recv()
                    env = json.loads(raw)
                    if data.startswith('"'):
                        self.assertEqual(env["data"], "a\x00b", "a NUL inside the string is kept")
                    else:
                        self.assertIn('"data":' + data, raw, "data is carried as written")
                        self.assertEqual(env["data"], json.loads(data))
        asyncio.run(run())

    def test_not_strict_payloads_travel_as_strings(self):
        bodies = [b"01", b"1.", b"-", b'{"a":"\x01"}', b"[1,]", b"NaN", b"{'a':1}", b'"\tx"', b"\x7f"]

        async def run():
            async with websockets.connect(self.srv.url("?topics=sj.lenient"), ping_interval=None) as sub:
                await recv_subscribe_acks(sub, ["sj.lenient"])
                for body in bodies:
                    self.srv.publish("sj.lenient", body)
                    raw = await sub.recv()
                    env = json.loads(raw)  # strict: raises on what JSON.parse refuses
                    self.assertEqual(env["data"], body.decode(), raw)
                self.srv.publish("sj.lenient", b"[1, 2.5e3]")
                self.assertEqual(json.loads(await sub.recv())["data"], [1, 2500.0], "strict JSON is embedded")
        asyncio.run(run())

    def test_bad_commands_are_refused_and_publish_nothing(self):
        cases = [
            ('{"op":"publish","topic":"sj.bad","data":01}', "not valid JSON (RFC 8259): a number with a leading zero at byte 41"),
            ('{"op":"publish","topic":"sj.bad","data":1.}', "a digit must follow the decimal point"),
            ('{"op":"publish","topic":"sj.bad","data":"a\tb"}', "control character inside a string must be escaped"),
            ('{"op":"publish","topic":"sj.bad","data":[1,]}', "not a JSON value"),
            ('{"op":"publish","topic":"sj.bad\\u0000x","data":1}', '"topic" holds a NUL character'),
            ('{"op":"publish","topic":"sj.bad","topic":"sj.other","data":1}', '"topic" appears twice'),
            ('{"op":"subscribe","topics":["sj.ok","sj.bad\\u0000"]}', "holds a NUL character"),
            ('{"op":"publish","topic":"sj.bad","data":1,"data":2}', '"data" appears twice'),
        ]

        async def run():
            async with websockets.connect(self.srv.url("?topics=sj.bad"), ping_interval=None) as sub, \
                    websockets.connect(self.srv.url(), ping_interval=None) as pub:
                await recv_subscribe_acks(sub, ["sj.bad"])
                for text, want in cases:
                    await pub.send(text)
                    reply = json.loads(await pub.recv())
                    self.assertEqual(reply["type"], "error", text)
                    self.assertIn(want, reply["error"], text)
                await pub.send('{"op":"publish","topic":"sj.bad","data":"only this"}')
                self.assertEqual(json.loads(await pub.recv())["type"], "ack")
                self.assertEqual(json.loads(await sub.recv())["data"], "only this",
                                 "nothing refused was published before it")
        asyncio.run(run())


if __name__ == "__main__":
    unittest.main(verbosity=2)
