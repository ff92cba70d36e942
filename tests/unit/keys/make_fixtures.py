#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the *.jwt fixtures with PyJWT (Debian's python3-jwt), an implementation
independent of ringcast's verifier, from the test keys beside this script.
The keys were made with openssl(1): genpkey RSA 2048 / EC P-256 (and the
refused RSA 1024, EC P-384, Ed25519 public keys), a self-signed certificate
for ec256.key, and 48 random bytes base64-encoded as the HMAC secret.
Run it again only to change the fixtures: test_jwt.c pins their claims."""
import base64
import os
import subprocess

import jwt

here = os.path.dirname(os.path.abspath(__file__))


def read(name):
    with open(os.path.join(here, name), "rb") as f:
        return f.read()


claims = {
    "sub": "fixture-user",
    "iss": "https://issuer.example",
    "aud": ["ringcast", "other"],
    "iat": 1700000000,
    "nbf": 1700000000,
    "exp": 2000000000,
    "ringcast": {"sub": ["quotes.*", "news.>"], "pub": ["alerts.ops"]},
}
secret = read("hs256.secret").rstrip(b"\r\n")
tokens = {
    "pyjwt_hs256.jwt": jwt.encode(claims, secret, algorithm="HS256"),
    "pyjwt_rs256.jwt": jwt.encode(claims, read("rsa2048.key"), algorithm="RS256",
                                  headers={"kid": "rsa"}),
    "pyjwt_es256.jwt": jwt.encode(claims, read("ec256.key"), algorithm="ES256"),
}


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# One more signed by openssl(1) itself, JSON written by hand: an escaped "*"
# and no exp.
signing_input = (b64url(b'{"alg":"RS256","kid":"rsa"}') + "." +
                 b64url(b'{"sub":"openssl-user","ringcast":{"pub":["chat.\\u002a"]}}'))
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(here, "rsa2048.key")],
                     input=signing_input.encode(), capture_output=True, check=True).stdout
tokens["openssl_rs256.jwt"] = signing_input + "." + b64url(sig)
for name, token in tokens.items():
    with open(os.path.join(here, name), "w") as f:
        f.write(token + "\n")
