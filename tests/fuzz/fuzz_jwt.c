/* SPDX-License-Identifier: MIT */
/* libFuzzer target: JWT verification against a keyring of one HMAC, one RSA
 * (kid "rsa") and one EC key, the test keys of tests/unit/keys. Three modes by
 * the first byte:
 *   'S' then a policy byte (odd: audience, issuer and leeway set; even: none),
 *       then header JSON, '\n', payload JSON: the target signs it with the
 *       HMAC key, so the claims code sees arbitrary JSON past the signature;
 *   'P' the rest is pattern, '\n', name: the topic pattern grammar and matcher;
 *   anything else: the whole input is the token.
 * Checks: no crash or leak, a grant exactly when 0 is returned, every reason
 * named, the message terminated, a grant's answers consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include "ringcast/proto/jwt.h"
#include "ringcast/proto/topic_pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/unit/keys/hs256.secret, rsa2048.pub.pem, ec256.pub.pem: the seed
 * corpus holds tokens signed with their private halves. */
static const char hmac_secret[] =
    "z4BmPYqWXxh8XyPTDyK4yAoeBf7q8+bdgweGyD5vWbaa6Mv38HR5EAZ+dw4PrCSx\n";
static const char rsa_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq77ftwtqDB+unpSYo+/F\n"
                              "KSBXcjzoai4sC8FMiFkRhkhjgvg/puwSZ8Hgsb6BYo68O109LiC7wPABYaEGqZjD\n"
                              "Prry7D/c+AmwIifnkwAT9qWc2IGGHdNLnjlywHiauQpGsj1ut6kR9AK25qwFyJn9\n"
                              "/cn73Hi28fTPrucmmw/RcMGzf9+N8aOuVMt72wBtujcgsrTwkYs8lphfJIIKG/KP\n"
                              "6zEUxJU+difq/f2ZFpIFc/ujyMVzU56Y8AIyrgYW8gfXtPqazXCiSHAvtxBfHfeQ\n"
                              "HX2U6KVPOIce8J3o83SJ7H/XqCprtwo4zX3chluOGpKWHrtddL3C+9AhfhNcjLWG\n"
                              "9QIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";
static const char ec_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAeL1K8vGgIMLGLp18rRMiTFxCxjk\n"
                             "SRRoXJiDW1KQwsyTsvLok2sj04vsyYrQbDykbTS1iqAcLAUygab0fOdY7w==\n"
                             "-----END PUBLIC KEY-----\n";

#define NOW INT64_C(1800000000)

static struct rc_jwt_keyring kr;

static void keyring_once(void) {
  if (kr.n) return;
  char err[256];
  if (rc_jwt_keyring_add_mem(&kr, hmac_secret, strlen(hmac_secret), NULL, "hmac", err,
                             sizeof err) != 0 ||
      rc_jwt_keyring_add_mem(&kr, rsa_pem, strlen(rsa_pem), "rsa", NULL, err, sizeof err) != 0 ||
      rc_jwt_keyring_add_mem(&kr, ec_pem, strlen(ec_pem), NULL, "ec", err, sizeof err) != 0)
    abort();
}

static size_t b64url(char *out, const uint8_t *in, size_t n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[o++] = a[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out[o++] = a[(acc << (6 - bits)) & 63];
  return o;
}

static void check_grant(const struct rc_jwt_grant *g) {
  static const char *const topics[] = {"quotes.AAPL", "news.eu.fr", "alerts.ops", "a", "x.y"};
  size_t sl = strlen(rc_jwt_grant_subject(g));
  if (sl > RC_JWT_SUBJECT_MAX || rc_jwt_grant_size(g) < 16 + sl + 1) abort();
  for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
    (void)rc_jwt_grant_allows(g, RC_JWT_SUB, topics[i], strlen(topics[i]));
    (void)rc_jwt_grant_allows(g, RC_JWT_PUB, topics[i], strlen(topics[i]));
  }
}

static void verify(const char *tok, size_t len, const struct rc_jwt_policy *pol) {
  char err[160];
  struct rc_jwt_grant *g = (struct rc_jwt_grant *)&g;
  int rc = rc_jwt_verify(&kr, pol, tok, len, NOW, &g, err, sizeof err);
  if (!memchr(err, 0, sizeof err)) abort();
  if (rc > 0 || rc <= -RC_JWT_REASONS || strcmp(rc_jwt_reason_name(rc), "unknown") == 0) abort();
  if ((rc == 0) != (g != NULL)) abort();
  if (rc != 0 && !err[0]) abort();
  if (g) check_grant(g);
  rc_jwt_grant_free(g);
}

static const struct rc_jwt_policy full_policy = {
    .leeway_s = 60, .audience = "ringcast", .issuer = "https://issuer.example"};

static void signed_claims(const uint8_t *p, size_t n, const struct rc_jwt_policy *pol) {
  const uint8_t *nl = memchr(p, '\n', n);
  if (!nl || n > RC_JWT_MAX_TOKEN) return;
  size_t hl = (size_t)(nl - p), pl = n - hl - 1;
  char *t = malloc((n + 2) * 4 / 3 + 64);
  if (!t) abort();
  size_t tl = b64url(t, p, hl);
  t[tl++] = '.';
  tl += b64url(t + tl, nl + 1, pl);
  uint8_t mac[32];
  Hmac h;
  if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0 ||
      wc_HmacSetKey(&h, WC_SHA256, (const uint8_t *)hmac_secret, (word32)strlen(hmac_secret) - 1) ||
      wc_HmacUpdate(&h, (const uint8_t *)t, (word32)tl) || wc_HmacFinal(&h, mac))
    abort();
  wc_HmacFree(&h);
  t[tl++] = '.';
  tl += b64url(t + tl, mac, sizeof mac);
  verify(t, tl, pol);
  free(t);
}

static void patterns(const uint8_t *p, size_t n) {
  const uint8_t *nl = memchr(p, '\n', n);
  if (!nl) return;
  const char *pat = (const char *)p, *name = (const char *)nl + 1;
  size_t pl = (size_t)(nl - p), nm = n - pl - 1;
  if (!rc_topic_pattern_is_valid(pat, pl)) return;
  bool m = rc_topic_pattern_match(pat, pl, name, nm);
  /* A pattern without wildcards matches exactly itself. */
  if (!memchr(pat, '*', pl) && !memchr(pat, '>', pl) &&
      m != (pl == nm && memcmp(pat, name, pl) == 0))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  keyring_once();
  if (size > 1 && data[0] == 'S') {
    signed_claims(data + 2, size - 2, (data[1] & 1) ? &full_policy : NULL);
    return 0;
  }
  if (size > 0 && data[0] == 'P') {
    patterns(data + 1, size - 1);
    return 0;
  }
  /* A copy of exactly size bytes, so ASan sees any read past the token. */
  char *tok = malloc(size ? size : 1);
  if (!tok) abort();
  memcpy(tok, data, size);
  verify(tok, size, &full_policy);
  verify(tok, size, NULL);
  free(tok);
  return 0;
}
