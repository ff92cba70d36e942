# SPDX-License-Identifier: MIT
"""Access control against tokens no one here signed by hand: PyJWT makes HS256,
RS256 and ES256 tokens with keys from the cryptography package. Valid tokens are
accepted from every place a token may come from (Authorization: Bearer, ?token=,
the --jwt-cookie cookie, an auth command); expired, not-yet-valid, badly signed,
unsigned (alg none), algorithm-confused, wrong-audience and wrong-issuer tokens
and topics outside the claim are each refused with their status or close code,
and counted by reason. A token expiring while connected closes the connection
with 1008 unless a fresh one arrives. HTTP publishing needs a token with pub
rights or a --publish-key-file key. --allow-origin turns away other browser
origins; --trust-proxy makes a proxy's X-Forwarded-For the client address."""
import asyncio
import base64
import json
import os
import shutil
import socket
import tempfile
import time
import unittest

import jwt
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rcserver import Server, recv_subscribe_acks

AUD, ISS = "ringcast-test", "test-issuer"
PUBLISH_KEY = "pk-0123456789abcdef-publisher"


class Keys:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ringcast-auth-")
        self.secret = base64.b64encode(os.urandom(33)).decode()
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_pub_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        ec_pub_pem = self.ec.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.files = {}
        for name, data in (("hs.secret", self.secret.encode() + b"\n"), ("rsa.pem", self.rsa_pub_pem),
                           ("ec.pem", ec_pub_pem),
                           ("publish.keys", f"# publishers\n{PUBLISH_KEY}\n".encode())):
            path = os.path.join(self.dir, name)
            with open(path, "wb") as f:
                f.write(data)
            self.files[name] = path

    def token(self, alg="HS256", sub=("quotes.*",), pub=(), exp_in=300, kid=None, **claims):
        now = int(time.time())
        body = {"sub": "tester", "aud": AUD, "iss": ISS, "iat": now, "exp": now + exp_in,
                "ringcast": {"sub": list(sub), "pub": list(pub)}}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        key = {"HS256": self.secret, "RS256": self.rsa, "ES256": self.ec}[alg]
        headers = {"kid": kid} if kid else None
        return jwt.encode(body, key, algorithm=alg, headers=headers)

    def token_for(self, subject, **kw):
        """A token like token() for another subject."""
        now = int(time.time())
        body = {"sub": subject, "aud": AUD, "iss": ISS, "iat": now, "exp": now + 300,
                "ringcast": {"sub": ["quotes.*"], "pub": []}}
        body.update(kw)
        return jwt.encode(body, self.secret, algorithm="HS256")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


KEYS = None


def setUpModule():
    global KEYS
    KEYS = Keys()


def tearDownModule():
    KEYS.cleanup()


def auth_server(*extra):
    return Server("--jwt-key", f"{KEYS.files['hs.secret']},kid=hs", "--jwt-key", f"{KEYS.files['rsa.pem']},kid=rsa",
                  "--jwt-key", KEYS.files["ec.pem"], "--jwt-audience", AUD, "--jwt-issuer", ISS,
                  "--jwt-cookie", "rc_token", "--publish-key-file", KEYS.files["publish.keys"],
                  "--allow-origin", "https://*.example.com", *extra)


def raw_upgrade(port, target, headers=(), source="127.0.0.1"):
    """The status line and body of an upgrade attempt, from a chosen source address."""
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.settimeout(10)
    req = (f"GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    req += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    s.sendall(req.encode())
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if status != 101:
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
    s.close()
    return status, head.decode(errors="replace"), rest.decode(errors="replace")


def refusals(srv, reason):
    return srv.metrics().get(f'ringcast_auth_refusals_total{{reason="{reason}"}}', 0)


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


class Tokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = auth_server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop_clean()

    def upgrade(self, token=None, topics="quotes.AAPL", headers=()):
        hdrs = list(headers)
        if token:
            hdrs.append(("Authorization", f"Bearer {token}"))
        return raw_upgrade(self.srv.port, f"/ws?topics={topics}", hdrs)

    def test_healthz_says_a_credential_is_required(self):
        self.assertEqual(self.srv.http("GET", "/healthz")[2], b"ok\nauth: required\n")

    def test_valid_tokens_of_every_algorithm(self):
        for alg in ("HS256", "RS256", "ES256"):
            self.assertEqual(self.upgrade(KEYS.token(alg))[0], 101, alg)
        self.assertEqual(self.upgrade(KEYS.token("HS256", kid="hs"))[0], 101)
        self.assertEqual(self.upgrade(KEYS.token("RS256", kid="rsa"))[0], 101)
        self.assertGreaterEqual(self.srv.metrics()['ringcast_auth_accepted_total{kind="token"}'], 4)

    def test_each_bad_token_is_refused_with_its_reason(self):
        now = int(time.time())
        rsa_pem_as_secret = jwt.api_jws.PyJWS()
        rsa_pem_as_secret._algorithms["HS256"].prepare_key = lambda k: k  # PyJWT refuses PEM as HMAC key
        confused = rsa_pem_as_secret.encode(
            json.dumps({"aud": AUD, "iss": ISS, "exp": now + 300, "ringcast": {"sub": ["quotes.*"]}}).encode(),
            KEYS.rsa_pub_pem, algorithm="HS256", headers={"kid": "rsa"})
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        payload = base64.urlsafe_b64encode(json.dumps(
            {"aud": AUD, "iss": ISS, "exp": now + 300, "ringcast": {"sub": ["quotes.*"]}}).encode()).rstrip(b"=").decode()
        good = KEYS.token("ES256")
        tampered = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
        cases = [
            (None, 401, "missing_credential", "a credential is needed"),
            (KEYS.token(exp_in=-120), 401, "expired", "expired"),
            (KEYS.token(nbf=now + 600), 401, "not_yet_valid", ""),
            (tampered, 401, "bad_signature", ""),
            (f"{header}.{payload}.", 401, "alg_none", ""),
            (confused, 401, "alg_mismatch", ""),
            (KEYS.token(aud="someone-else"), 401, "audience", ""),
            (KEYS.token(iss="mallory"), 401, "issuer", ""),
            (KEYS.token(kid="nope"), 401, "unknown_kid", ""),
            ("not-a-token", 401, "malformed", ""),
            (KEYS.token(sub=("trades.*",)), 403, "topic_not_allowed", "does not allow subscribing to 'quotes.AAPL'"),
        ]
        for token, status, reason, text in cases:
            before = refusals(self.srv, reason)
            got, head, body = self.upgrade(token)
            self.assertEqual(got, status, (reason, body))
            self.assertIn(text, body)
            self.assertEqual(refusals(self.srv, reason), before + 1, reason)
            if status == 401:
                self.assertIn("WWW-Authenticate: Bearer", head)
        # nbf within --jwt-leeway (30 s) is accepted.
        self.assertEqual(self.upgrade(KEYS.token(nbf=now + 10))[0], 101)
        self.assertIn("refused with 401 (expired)", self.srv.log_text())

    def test_token_from_query_cookie_and_auth_command(self):
        token = KEYS.token("RS256")
        self.assertEqual(raw_upgrade(self.srv.port, f"/ws?topics=quotes.A&token={token}")[0], 101)
        self.assertEqual(raw_upgrade(self.srv.port, "/ws?topics=quotes.A",
                                     [("Cookie", f"theme=dark; rc_token={token}")])[0], 101)
        # Another cookie alone is no credential.
        self.assertEqual(raw_upgrade(self.srv.port, "/ws?topics=quotes.A", [("Cookie", "theme=dark")])[0], 401)

        async def in_band():
            url = f"ws://127.0.0.1:{self.srv.port}/ws"
            async with websockets.connect(url) as ws:  # no credential: it must authenticate first
                await ws.send(json.dumps({"op": "subscribe", "topics": ["quotes.A"]}))
                err = await recv_json(ws)
                self.assertEqual(err["type"], "error")
                self.assertIn("authenticate first", err["error"])
                await ws.wait_closed()
                self.assertEqual((ws.close_code, ws.close_reason), (1008, "authentication required"))
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"op": "auth", "token": "garbage.x.y", "id": 1}))
                self.assertEqual((await recv_json(ws))["type"], "error")
                await ws.wait_closed()
                self.assertEqual(ws.close_code, 1008)
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"op": "auth", "token": KEYS.token("ES256", sub=("quotes.*",)), "id": 1}))
                ack = await recv_json(ws)
                self.assertEqual((ack["type"], ack["op"]), ("ack", "auth"))
                self.assertGreater(ack["expires"], time.time())
                await ws.send(json.dumps({"op": "subscribe", "topics": ["quotes.B"], "id": 2}))
                await recv_subscribe_acks(ws, ["quotes.B"], id=2)
                await ws.send(json.dumps({"op": "subscribe", "topics": ["quotes.C", "trades.C"], "id": 3}))
                err = await recv_json(ws)
                self.assertEqual(err["type"], "error")
                self.assertIn("trades.C", err["error"])
                await ws.send(json.dumps({"op": "publish", "topic": "quotes.B", "data": 1, "id": 4}))
                err = await recv_json(ws)
                self.assertIn("does not allow publishing", err["error"])
                # Still connected: a refusal is an error reply, not a close.
                await ws.send(json.dumps({"op": "ping", "id": 5}))
                self.assertEqual((await recv_json(ws))["type"], "pong")

        asyncio.run(in_band())

    def test_expiry_while_connected_and_renewal(self):
        async def run():
            url = f"ws://127.0.0.1:{self.srv.port}/ws?topics=quotes.X"
            # Closed at exp plus --jwt-leeway (30 s): 2 s from now.
            short = KEYS.token(exp_in=-28)
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {short}"}) as ws:
                t0 = time.time()
                await asyncio.wait_for(ws.wait_closed(), 10)
                self.assertEqual((ws.close_code, ws.close_reason), (1008, "token expired"))
                self.assertLess(time.time() - t0, 5)
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {KEYS.token(exp_in=-28)}"}) as ws:
                await recv_subscribe_acks(ws, ["quotes.X"])
                await ws.send(json.dumps({"op": "auth", "token": KEYS.token(exp_in=120)}))
                ack = await recv_json(ws)
                self.assertEqual((ack["type"], ack["op"]), ("ack", "auth"))
                await asyncio.sleep(3.5)
                await ws.send(json.dumps({"op": "ping"}))
                self.assertEqual((await recv_json(ws))["type"], "pong")

        before = refusals(self.srv, "expired_while_connected")
        asyncio.run(run())
        self.assertEqual(refusals(self.srv, "expired_while_connected"), before + 1)

    def test_escaped_claim_names_are_the_claims_they_spell(self):
        now = int(time.time())
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")

        def signed(payload):
            body = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=")
            import hmac, hashlib
            sig = hmac.new(KEYS.secret.encode(), header + b"." + body, hashlib.sha256).digest()
            return (header + b"." + body + b"." + base64.urlsafe_b64encode(sig).rstrip(b"=")).decode()

        claims = f'"aud":"{AUD}","iss":"{ISS}","ringcast":{{"sub":["quotes.*"]}}'
        # "\u0065xp" is exp: an expired one is expired however it is spelt...
        self.assertEqual(self.upgrade(signed('{"\\u0065xp":%d,%s}' % (now - 3600, claims)))[0], 401)
        # ...and beside a plain exp it is a duplicate.
        status, _, body = self.upgrade(signed('{"exp":%d,"\\u0065xp":%d,%s}' % (now + 300, now - 3600, claims)))
        self.assertEqual(status, 401, body)
        self.assertEqual(self.upgrade(signed('{"exp":%d,%s}' % (now + 300, claims)))[0], 101)

    def test_forged_tokens_cost_a_connection_each(self):
        forged = KEYS.token()[:-4] + "AAAA"
        s = socket.create_connection(("127.0.0.1", self.srv.port))
        s.settimeout(10)
        req = (f"POST /publish/alerts.x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {forged}\r\n"
               "Content-Length: 1\r\n\r\n1").encode()
        s.sendall(req * 50)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        self.assertEqual(got.count(b"HTTP/1.1 401"), 1, got[:300])

    def test_a_renewal_is_for_the_same_subject(self):
        async def run():
            url = f"ws://127.0.0.1:{self.srv.port}/ws?topics=quotes.S"
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {KEYS.token()}"}) as ws:
                await recv_subscribe_acks(ws, ["quotes.S"])
                await ws.send(json.dumps({"op": "auth", "token": KEYS.token_for("mallory"), "id": 1}))
                err = await recv_json(ws)
                self.assertEqual(err["type"], "error")
                self.assertIn("same subject", err["error"])
                await ws.send(json.dumps({"op": "ping"}))
                self.assertEqual((await recv_json(ws))["type"], "pong")

        asyncio.run(run())

    def test_a_token_inside_the_leeway_lives_until_exp_plus_leeway(self):
        async def run():
            url = f"ws://127.0.0.1:{self.srv.port}/ws?topics=quotes.L"
            late = KEYS.token(exp_in=-10)  # --jwt-leeway is 30 s: accepted until exp + 30
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {late}"}) as ws:
                await recv_subscribe_acks(ws, ["quotes.L"])
                await asyncio.sleep(1.0)
                await ws.send(json.dumps({"op": "ping"}))
                self.assertEqual((await recv_json(ws))["type"], "pong")

        asyncio.run(run())

    def test_renewal_with_fewer_rights_ends_what_it_no_longer_allows(self):
        async def run():
            wide = KEYS.token(sub=("quotes.*", "trades.*"))
            url = f"ws://127.0.0.1:{self.srv.port}/ws?topics=quotes.R,trades.R"
            async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {wide}"}) as ws:
                await recv_subscribe_acks(ws, ["quotes.R", "trades.R"])
                await ws.send(json.dumps({"op": "auth", "token": KEYS.token(sub=("quotes.*",)), "id": 1}))
                ack = await recv_json(ws)
                self.assertEqual((ack["type"], ack["unsubscribed"]), ("ack", ["trades.R"]))
                for topic in ("trades.R", "quotes.R"):
                    status = self.srv.http("POST", f"/publish/{topic}", body=b"1",
                                           headers={"Authorization": f"Bearer {PUBLISH_KEY}"})[0]
                    self.assertEqual(status, 200)
                m = await recv_json(ws)
                self.assertEqual(m["topic"], "quotes.R")  # trades.R's message never came

        asyncio.run(run())

    def test_http_publish_needs_pub_rights_or_a_key(self):
        srv = self.srv
        pub_token = KEYS.token(sub=(), pub=("alerts.>",))

        def post(path, body, auth=None):
            return srv.http("POST", path, body=body, headers={"Authorization": f"Bearer {auth}"} if auth else {})

        status, headers, body = post("/publish/alerts.ops", b"1")
        self.assertEqual(status, 401)
        self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
        self.assertEqual(post("/publish/alerts.ops", b"1", "pk-wrong-key-0123456789")[0], 401)
        self.assertEqual(post("/publish/alerts.ops", b"1", PUBLISH_KEY)[0], 200)
        self.assertEqual(post("/publish/alerts.ops.eu", b"1", pub_token)[0], 200)
        self.assertEqual(post("/publish/quotes.A", b"1", pub_token)[0], 403)
        self.assertEqual(post("/publish/alerts.ops", b"1", KEYS.token())[0], 403)  # sub rights only
        batch = b"alerts.a 1\n1\nquotes.b 1\n2\n"
        before = srv.metrics().get("ringcast_messages_published_total", 0)
        status, _, body = post("/publish", batch, pub_token)
        self.assertEqual(status, 403, body)
        self.assertEqual(srv.metrics().get("ringcast_messages_published_total", 0), before)
        self.assertEqual(post("/publish", batch, PUBLISH_KEY)[0], 200)

    def test_browser_origins(self):
        token = KEYS.token()
        self.assertEqual(self.upgrade(token, headers=[("Origin", "https://app.example.com")])[0], 101)
        before = refusals(self.srv, "origin")
        status, _, body = self.upgrade(token, headers=[("Origin", "https://evil.example.org")])
        self.assertEqual(status, 403)
        self.assertIn("--allow-origin", body)
        self.assertEqual(refusals(self.srv, "origin"), before + 1)
        # The bare domain is not a subdomain.
        self.assertEqual(self.upgrade(token, headers=[("Origin", "https://example.com")])[0], 403)


class AuthTimeout(unittest.TestCase):
    def test_no_auth_command_within_the_handshake_timeout(self):
        with auth_server("--handshake-timeout", "1") as srv:
            async def run():
                async with websockets.connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
                    await asyncio.wait_for(ws.wait_closed(), 6)
                    self.assertEqual(ws.close_code, 1008)
                    self.assertIn("authentication required", ws.close_reason)

            asyncio.run(run())
            self.assertEqual(refusals(srv, "auth_timeout"), 1)


class Proxies(unittest.TestCase):
    def test_forwarded_client_address_only_from_trusted_peers(self):
        with auth_server("--trust-proxy", "127.0.0.2", "--max-conns-per-ip", "2") as srv:
            fwd = [("X-Forwarded-For", "198.51.100.7, 203.0.113.9")]
            self.assertEqual(raw_upgrade(srv.port, "/ws?topics=quotes.A", fwd, source="127.0.0.2")[0], 401)
            self.assertEqual(raw_upgrade(srv.port, "/ws?topics=quotes.A", fwd, source="127.0.0.3")[0], 401)
            log = srv.log_text()
            self.assertIn("203.0.113.9:0: GET /ws refused with 401", log)
            self.assertIn("127.0.0.3:", log)
            self.assertNotIn("198.51.100.7", log)
            # A proxy reuses one upstream connection for many clients: each request
            # is its own client's.
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", srv.port))
            s.settimeout(10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.31\r\n\r\n"
                      b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.32\r\n\r\n"
                      b"POST /publish/t.a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                      b"X-Forwarded-For: 198.51.100.33\r\n\r\n1")
            got = b""
            while got.count(b"HTTP/1.1 ") < 3:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            s.close()
            self.assertIn("198.51.100.33:0: POST /publish/t.a refused with 401", srv.log_text())
            # The per-address limits count the client behind the proxy.
            held = []
            token = KEYS.token()
            for _ in range(2):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.connect(("127.0.0.1", srv.port))
                s.sendall((f"GET /ws?topics=quotes.A HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n"
                           f"X-Forwarded-For: 203.0.113.50\r\n\r\n").encode())
                self.assertIn(b" 101 ", s.recv(4096))
                held.append(s)
            status, _, body = raw_upgrade(srv.port, "/ws?topics=quotes.A",
                                          [("Authorization", f"Bearer {token}"),
                                           ("X-Forwarded-For", "203.0.113.50")], source="127.0.0.2")
            self.assertEqual(status, 503, body)
            self.assertIn("--max-conns-per-ip", body)
            # Another client through the same proxy is not affected.
            self.assertEqual(raw_upgrade(srv.port, "/ws?topics=quotes.A",
                                         [("Authorization", f"Bearer {token}"),
                                          ("X-Forwarded-For", "203.0.113.51")], source="127.0.0.2")[0], 101)
            for s in held:
                s.close()


class OpenServer(unittest.TestCase):
    def test_without_keys_it_runs_open_and_says_so(self):
        with Server() as srv:
            self.assertIn(b"auth: open", srv.http("GET", "/healthz")[2])
            self.assertIn("anyone may subscribe to and publish on any topic", srv.log_text())
            self.assertEqual(raw_upgrade(srv.port, "/ws?topics=anything")[0], 101)


class BadFlags(unittest.TestCase):
    def test_key_files_and_patterns_are_checked_at_start(self):
        import subprocess
        from rcserver import BINARY
        short = os.path.join(KEYS.dir, "short.secret")
        with open(short, "w") as f:
            f.write("too-short\n")
        for args, text in (
                (["--jwt-key", short], "at least 32"),
                (["--jwt-key", "/nonexistent"], "--jwt-key /nonexistent"),
                (["--allow-origin", "example.com"], "--allow-origin example.com"),
                (["--trust-proxy", "10.1.0.0/8"], "--trust-proxy 10.1.0.0/8"),
                (["--publish-key-file", "/nonexistent"], "--publish-key-file /nonexistent")):
            r = subprocess.run([BINARY, "--listen", "127.0.0.1:0", *args], capture_output=True, timeout=10)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(text, r.stderr.decode(), args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
