/* SPDX-License-Identifier: MIT */
/* JWT verification: the keyring's file handling, tokens this test signs with
 * wolfCrypt (each refusal reason, the boundaries of exp/nbf/leeway), tokens made
 * by PyJWT and openssl(1) (tests/unit/keys/make_fixtures.py), and the grant. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "guard.h"
#include "ringcast/proto/jwt.h"

#define NOW INT64_C(1800000000)
#define KEY(name) RC_TEST_KEYS "/" name

/* ---- helpers: files, base64url, signing --------------------------------- */

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "open %s", path);
  uint8_t *buf = malloc(1 << 16);
  *len = fread(buf, 1, 1 << 16, f);
  fclose(f);
  return buf;
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
  out[o] = 0;
  return o;
}

/* Who signs a test token: an HMAC key, or the committed private keys. */
enum signer { SIGN_HMAC, SIGN_RSA, SIGN_EC, SIGN_NOTHING };

static const char secret[] = "0123456789abcdef0123456789abcdef-test";

static size_t sign_rsa(const uint8_t *m, size_t ml, uint8_t *sig) {
  size_t pl;
  uint8_t *pem = slurp(KEY("rsa2048.key"), &pl), der[4096], hash[32], enc[64];
  int dl = wc_KeyPemToDer(pem, (int)pl, der, sizeof der, NULL);
  cr_assert_gt(dl, 0);
  RsaKey key;
  WC_RNG rng;
  word32 idx = 0;
  cr_assert_eq(wc_InitRng(&rng), 0);
  cr_assert_eq(wc_InitRsaKey(&key, NULL), 0);
  cr_assert_eq(wc_RsaPrivateKeyDecode(der, &idx, &key, (word32)dl), 0);
  cr_assert_eq(wc_RsaSetRNG(&key, &rng), 0);
  cr_assert_eq(wc_Sha256Hash(m, (word32)ml, hash), 0);
  word32 el = wc_EncodeSignature(enc, hash, 32, SHA256h);
  int sl = wc_RsaSSL_Sign(enc, el, sig, 512, &key, &rng);
  cr_assert_eq(sl, 256);
  wc_FreeRsaKey(&key);
  wc_FreeRng(&rng);
  free(pem);
  return (size_t)sl;
}

static size_t sign_ec(const uint8_t *m, size_t ml, uint8_t *sig) {
  size_t pl;
  uint8_t *pem = slurp(KEY("ec256.key"), &pl), der[1024], hash[32], dsig[80];
  int dl = wc_KeyPemToDer(pem, (int)pl, der, sizeof der, NULL);
  cr_assert_gt(dl, 0);
  ecc_key key;
  WC_RNG rng;
  word32 idx = 0, sl = sizeof dsig;
  cr_assert_eq(wc_InitRng(&rng), 0);
  cr_assert_eq(wc_ecc_init(&key), 0);
  cr_assert_eq(wc_EccPrivateKeyDecode(der, &idx, &key, (word32)dl), 0);
  cr_assert_eq(wc_Sha256Hash(m, (word32)ml, hash), 0);
  cr_assert_eq(wc_ecc_sign_hash(hash, 32, dsig, &sl, &rng, &key), 0);
  /* JWS wants r || s, each left-padded to 32 bytes. */
  uint8_t r[32], s[32];
  word32 rl = 32, sl2 = 32;
  cr_assert_eq(wc_ecc_sig_to_rs(dsig, sl, r, &rl, s, &sl2), 0);
  memset(sig, 0, 64);
  memcpy(sig + 32 - rl, r, rl);
  memcpy(sig + 64 - sl2, s, sl2);
  wc_ecc_free(&key);
  wc_FreeRng(&rng);
  free(pem);
  return 64;
}

static size_t sign_hmac(const uint8_t *key, size_t kl, const uint8_t *m, size_t ml, uint8_t *sig) {
  Hmac h;
  cr_assert_eq(wc_HmacInit(&h, NULL, INVALID_DEVID), 0);
  cr_assert_eq(wc_HmacSetKey(&h, WC_SHA256, key, (word32)kl), 0);
  cr_assert_eq(wc_HmacUpdate(&h, m, (word32)ml), 0);
  cr_assert_eq(wc_HmacFinal(&h, sig), 0);
  wc_HmacFree(&h);
  return 32;
}

/* header.payload.signature from JSON texts; hmac_key NULL means the test secret.
 * Caller frees. */
static char *token_with_key(const char *header, const char *payload, enum signer who,
                            const uint8_t *hmac_key, size_t hmac_len) {
  char *t = malloc(16384);
  size_t n = b64url(t, (const uint8_t *)header, strlen(header));
  t[n++] = '.';
  n += b64url(t + n, (const uint8_t *)payload, strlen(payload));
  uint8_t sig[512];
  size_t sl = 0;
  switch (who) {
  case SIGN_HMAC:
    if (!hmac_key) hmac_key = (const uint8_t *)secret, hmac_len = strlen(secret);
    sl = sign_hmac(hmac_key, hmac_len, (const uint8_t *)t, n, sig);
    break;
  case SIGN_RSA: sl = sign_rsa((const uint8_t *)t, n, sig); break;
  case SIGN_EC: sl = sign_ec((const uint8_t *)t, n, sig); break;
  case SIGN_NOTHING: break;
  }
  t[n++] = '.';
  b64url(t + n, sig, sl);
  return t;
}

static char *token(const char *header, const char *payload, enum signer who) {
  return token_with_key(header, payload, who, NULL, 0);
}

/* ---- helpers: keyrings and verification --------------------------------- */

static struct rc_jwt_keyring kr;
static char err[256];

static void add(const char *spec) {
  int rc = rc_jwt_keyring_add_file(&kr, spec, err, sizeof err);
  cr_assert_eq(rc, 0, "%s: %s", spec, err);
}

static void add_secret(const char *kid) {
  cr_assert_eq(rc_jwt_keyring_add_mem(&kr, secret, strlen(secret), kid, "secret", err, sizeof err),
               0, "%s", err);
}

static void ring_fini(void) { rc_jwt_keyring_free(&kr); }

/* Verifies with the token right before a guard page; *g may be NULL to free. */
static int verify_pol(const char *tok, const struct rc_jwt_policy *pol, int64_t now,
                      struct rc_jwt_grant **g) {
  struct guarded gd;
  size_t n = strlen(tok);
  const char *p = (const char *)guard_copy(&gd, tok, n);
  struct rc_jwt_grant *mine = NULL;
  err[0] = 0;
  int rc = rc_jwt_verify(&kr, pol, p, n, now, &mine, err, sizeof err);
  guard_free(&gd);
  if (rc == 0)
    cr_assert(mine);
  else
    cr_assert_null(mine);
  if (g)
    *g = mine;
  else
    rc_jwt_grant_free(mine);
  return rc;
}

static int verify(const char *tok, struct rc_jwt_grant **g) {
  return verify_pol(tok, NULL, NOW, g);
}

/* Signs and verifies in one go, freeing the token. */
static int check(const char *header, const char *payload, enum signer who) {
  char *t = token(header, payload, who);
  int rc = verify(t, NULL);
  free(t);
  return rc;
}

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS "{\"alg\":\"RS256\"}"
#define ES "{\"alg\":\"ES256\"}"
#define PAY                                                                                        \
  "{\"sub\":\"u1\",\"exp\":1800003600,\"ringcast\":{\"sub\":[\"quotes.*\"],\"pub\":[\"alerts."     \
  "ops\"]}}"

#define ASSERT_ERR_HAS(s) cr_assert(strstr(err, s), "message '%s' lacks '%s'", err, s)

/* ---- the keyring --------------------------------------------------------- */

Test(jwt_keyring, loads_each_kind, .fini = ring_fini) {
  add(KEY("hs256.secret"));
  add(KEY("rsa2048.pub.pem") ",kid=rsa");
  add(KEY("ec256.pub.pem"));
  add(KEY("ec256.cert.pem") ",kid=cert");
  cr_assert_eq(kr.n, 4);
  cr_assert_eq(rc_jwt_keyring_alg(&kr, 0), RC_JWT_HS256);
  cr_assert_eq(rc_jwt_keyring_alg(&kr, 1), RC_JWT_RS256);
  cr_assert_eq(rc_jwt_keyring_alg(&kr, 2), RC_JWT_ES256);
  cr_assert_eq(rc_jwt_keyring_alg(&kr, 3), RC_JWT_ES256);
}

static void refused(const char *spec, int want, const char *needle) {
  err[0] = 0;
  int rc = rc_jwt_keyring_add_file(&kr, spec, err, sizeof err);
  cr_assert_eq(rc, want, "%s: got %d (%s)", spec, rc, err);
  ASSERT_ERR_HAS(needle);
}

Test(jwt_keyring, refuses_bad_keys_with_a_reason, .fini = ring_fini) {
  refused(KEY("short.secret"), -EINVAL, "short.secret: HMAC secret is 16 bytes, at least 32");
  refused(KEY("rsa1024.pub.pem"), -EINVAL, "rsa1024.pub.pem: RSA key has 1024 bits, at least 2048");
  refused(KEY("ec384.pub.pem"), -EINVAL, "ec384.pub.pem: EC key is on curve SECP384R1, not P-256");
  refused(KEY("ed25519.pub.pem"), -EINVAL, "neither RSA nor EC");
  refused(KEY("rsa2048.key"), -EINVAL, "rsa2048.key: PEM block 'PRIVATE KEY' is not supported");
  static const char pkcs1[] =
      "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n";
  cr_assert_eq(rc_jwt_keyring_add_mem(&kr, pkcs1, strlen(pkcs1), NULL, "mem", err, sizeof err),
               -EINVAL);
  ASSERT_ERR_HAS(
      "mem: PEM block 'RSA PUBLIC KEY' is not supported (want PUBLIC KEY or CERTIFICATE)");
  refused(KEY("no-such-file"), -ENOENT, "no-such-file: cannot read");
  refused("/dev/null", -EINVAL, "/dev/null: empty");
  refused(KEY("hs256.secret") ",kid=", -EINVAL, "kid must be");
  refused(KEY("hs256.secret") ",foo=bar", -EINVAL, "the only option is kid=NAME");
  refused(KEY("hs256.secret") ",kid=a,kid=b", -EINVAL, "the only option");
  refused("", -EINVAL, "want FILE");
  cr_assert_eq(kr.n, 0, "nothing refused was added");
}

Test(jwt_keyring, kids_unique_and_ring_bounded, .fini = ring_fini) {
  add(KEY("hs256.secret") ",kid=a");
  refused(KEY("rsa2048.pub.pem") ",kid=a", -EEXIST, "kid 'a' is already used");
  for (int i = 1; i < RC_JWT_MAX_KEYS; i++)
    add(KEY("hs256.secret"));
  refused(KEY("hs256.secret"), -ENOSPC, "full");
}

Test(jwt_keyring, secret_loses_trailing_newlines, .fini = ring_fini) {
  static const char with_crlf[] = "0123456789abcdef0123456789abcdef-test\r\n\n";
  cr_assert_eq(
      rc_jwt_keyring_add_mem(&kr, with_crlf, strlen(with_crlf), NULL, "crlf", err, sizeof err), 0,
      "%s", err);
  cr_assert_eq(check(HS, PAY, SIGN_HMAC), 0, "%s", err);
  /* 31 bytes and a newline is still too short. */
  static const char short_nl[] = "0123456789abcdef0123456789abcde\n";
  cr_assert_eq(rc_jwt_keyring_add_mem(&kr, short_nl, strlen(short_nl), NULL, "s", err, sizeof err),
               -EINVAL);
}

/* ---- accepted tokens ----------------------------------------------------- */

Test(jwt, hs256_rs256_es256_accepted, .fini = ring_fini) {
  add_secret(NULL);
  add(KEY("rsa2048.pub.pem"));
  add(KEY("ec256.pub.pem"));
  struct rc_jwt_grant *g;
  char *t = token(HS, PAY, SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_str_eq(rc_jwt_grant_subject(g), "u1");
  cr_assert_eq(rc_jwt_grant_expiry(g), 1800003600);
  rc_jwt_grant_free(g);
  free(t);
  cr_assert_eq(check(RS, PAY, SIGN_RSA), 0, "%s", err);
  cr_assert_eq(check(ES, PAY, SIGN_EC), 0, "%s", err);
  /* ES256 signatures are random: a few more, so a short r or s (left-padded)
   * turns up now and then. */
  for (int i = 0; i < 8; i++)
    cr_assert_eq(check(ES, PAY, SIGN_EC), 0, "%s", err);
}

Test(jwt, certificate_key_verifies, .fini = ring_fini) {
  add(KEY("ec256.cert.pem") ",kid=cert");
  cr_assert_eq(check("{\"alg\":\"ES256\",\"kid\":\"cert\"}", PAY, SIGN_EC), 0, "%s", err);
}

static void fixture_ok(const char *file, const char *subject, int64_t exp) {
  size_t n;
  char *t = (char *)slurp(file, &n);
  while (n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
    n--;
  t[n] = 0;
  struct rc_jwt_policy pol = {.audience = "ringcast", .issuer = "https://issuer.example"};
  if (exp == 0) pol.audience = pol.issuer = NULL;
  struct rc_jwt_grant *g;
  cr_assert_eq(verify_pol(t, &pol, NOW, &g), 0, "%s: %s", file, err);
  cr_assert_str_eq(rc_jwt_grant_subject(g), subject);
  cr_assert_eq(rc_jwt_grant_expiry(g), exp);
  if (exp) {
    cr_assert(rc_jwt_grant_allows(g, RC_JWT_SUB, "quotes.AAPL", 11));
    cr_assert(rc_jwt_grant_allows(g, RC_JWT_SUB, "news.eu.fr", 10));
    cr_assert(rc_jwt_grant_allows(g, RC_JWT_PUB, "alerts.ops", 10));
    cr_assert_not(rc_jwt_grant_allows(g, RC_JWT_PUB, "quotes.AAPL", 11));
    /* A wildcard subscription needs a grant pattern covering all of it. */
    cr_assert(rc_jwt_grant_covers(g, RC_JWT_SUB, "quotes.*", 8));
    cr_assert(rc_jwt_grant_covers(g, RC_JWT_SUB, "news.eu.*", 9));
    cr_assert_not(rc_jwt_grant_covers(g, RC_JWT_SUB, "quotes.>", 8));
    cr_assert_not(rc_jwt_grant_covers(g, RC_JWT_SUB, ">", 1));
    cr_assert_not(rc_jwt_grant_covers(g, RC_JWT_SUB, "quo*", 4), "not a valid pattern");
  } else {
    cr_assert(rc_jwt_grant_allows(g, RC_JWT_PUB, "chat.room1", 10), "\\u002a decoded to *");
    cr_assert_not(rc_jwt_grant_allows(g, RC_JWT_SUB, "chat.room1", 10));
  }
  rc_jwt_grant_free(g);
  /* Any change to the signed bytes breaks it: flip one payload character. */
  char *dot = strchr(t, '.');
  dot[5] = dot[5] == 'A' ? 'B' : 'A';
  cr_assert_eq(verify_pol(t, &pol, NOW, NULL), RC_JWT_BAD_SIGNATURE, "%s: %s", file, err);
  free(t);
}

Test(jwt, independent_implementations_accepted, .fini = ring_fini) {
  add(KEY("hs256.secret"));
  add(KEY("rsa2048.pub.pem") ",kid=rsa");
  add(KEY("ec256.pub.pem"));
  fixture_ok(KEY("pyjwt_hs256.jwt"), "fixture-user", 2000000000);
  fixture_ok(KEY("pyjwt_rs256.jwt"), "fixture-user", 2000000000);
  fixture_ok(KEY("pyjwt_es256.jwt"), "fixture-user", 2000000000);
  fixture_ok(KEY("openssl_rs256.jwt"), "openssl-user", 0);
}

/* ---- time ---------------------------------------------------------------- */

Test(jwt, exp_and_nbf_with_leeway, .fini = ring_fini) {
  add_secret(NULL);
  char *t = token(HS, "{\"exp\":1800000000}", SIGN_HMAC);
  cr_assert_eq(verify(t, NULL), RC_JWT_EXPIRED, "exp == now is expired (RFC 7519 4.1.4)");
  cr_assert_str_eq(err, "token expired at 1800000000");
  cr_assert_eq(verify_pol(t, NULL, NOW - 1, NULL), 0, "%s", err);
  struct rc_jwt_policy lee = {.leeway_s = 30};
  cr_assert_eq(verify_pol(t, &lee, NOW + 29, NULL), 0, "%s", err);
  cr_assert_eq(verify_pol(t, &lee, NOW + 30, NULL), RC_JWT_EXPIRED);
  free(t);

  t = token(HS, "{\"nbf\":1800000010,\"exp\":1800003600}", SIGN_HMAC);
  cr_assert_eq(verify(t, NULL), RC_JWT_NOT_YET_VALID);
  cr_assert_str_eq(err, "token not valid before 1800000010");
  cr_assert_eq(verify_pol(t, &lee, NOW, NULL), 0, "within leeway: %s", err);
  cr_assert_eq(verify_pol(t, NULL, NOW + 10, NULL), 0, "nbf == now is valid");
  free(t);

  /* Fractional NumericDates are allowed; the grant keeps whole seconds. */
  struct rc_jwt_grant *g;
  t = token(HS, "{\"exp\":1800000000.5,\"iat\":1.7e9}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_eq(rc_jwt_grant_expiry(g), 1800000000);
  rc_jwt_grant_free(g);
  free(t);
  t = token(HS, "{\"exp\":1e400}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_eq(rc_jwt_grant_expiry(g), INT64_MAX);
  rc_jwt_grant_free(g);
  free(t);
  t = token(HS, "{}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_eq(rc_jwt_grant_expiry(g), 0, "no exp: 0");
  rc_jwt_grant_free(g);
  free(t);

  cr_assert_eq(check(HS, "{\"exp\":\"1800003600\"}", SIGN_HMAC), RC_JWT_MALFORMED);
  ASSERT_ERR_HAS("exp is not a number");
  cr_assert_eq(check(HS, "{\"nbf\":null}", SIGN_HMAC), RC_JWT_MALFORMED);
  cr_assert_eq(check(HS, "{\"iat\":true}", SIGN_HMAC), RC_JWT_MALFORMED);
}

/* ---- signatures and algorithms ------------------------------------------- */

Test(jwt, wrong_signature_refused, .fini = ring_fini) {
  add_secret(NULL);
  add(KEY("rsa2048.pub.pem"));
  add(KEY("ec256.pub.pem"));
  static const uint8_t other[] = "another secret that is 32+ bytes long!";
  char *t = token_with_key(HS, PAY, SIGN_HMAC, other, sizeof other - 1);
  cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE);
  ASSERT_ERR_HAS("signature does not verify with key 'secret' (HS256)");
  free(t);
  /* A flipped bit in each kind of signature. */
  const char *hdrs[] = {HS, RS, ES};
  enum signer who[] = {SIGN_HMAC, SIGN_RSA, SIGN_EC};
  for (int i = 0; i < 3; i++) {
    t = token(hdrs[i], PAY, who[i]);
    char *s = strrchr(t, '.') + 3;
    *s = *s == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE, "%s: %s", hdrs[i], err);
    /* No signature at all. */
    strrchr(t, '.')[1] = 0;
    cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE, "%s: %s", hdrs[i], err);
    free(t);
  }
  /* A correct signature from the wrong algorithm's key. */
  t = token(RS, PAY, SIGN_EC);
  cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE);
  free(t);
  /* The ES256 signature in DER instead of r || s is not JWS. */
  t = token(ES, PAY, SIGN_NOTHING);
  size_t n = strlen(t);
  uint8_t der[72] = {0x30, 0x44, 0x02, 0x20, 1};
  der[36] = 0x02, der[37] = 0x20, der[38] = 1;
  b64url(t + n, der, 70);
  cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE);
  free(t);
}

Test(jwt, alg_none_refused, .fini = ring_fini) {
  add_secret(NULL);
  cr_assert_eq(check("{\"alg\":\"none\"}", PAY, SIGN_NOTHING), RC_JWT_ALG_NONE);
  ASSERT_ERR_HAS("alg none");
  cr_assert_eq(check("{\"alg\":\"none\",\"typ\":\"JWT\"}", PAY, SIGN_HMAC), RC_JWT_ALG_NONE);
  /* Other spellings are just algorithms no key has. */
  cr_assert_eq(check("{\"alg\":\"None\"}", PAY, SIGN_NOTHING), RC_JWT_ALG_MISMATCH);
  cr_assert_eq(check("{\"alg\":\"HS512\"}", PAY, SIGN_HMAC), RC_JWT_ALG_MISMATCH);
  ASSERT_ERR_HAS("token alg HS512 matches no key");
  cr_assert_eq(check("{\"typ\":\"JWT\"}", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
  cr_assert_eq(check("{\"alg\":256}", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
}

/* The classic confusion: the RSA public key's PEM, which is public, used as an
 * HMAC secret. A verifier that let the token pick the algorithm would accept. */
Test(jwt, hs256_with_rsa_public_key_as_secret_refused, .fini = ring_fini) {
  size_t pl;
  uint8_t *pem = slurp(KEY("rsa2048.pub.pem"), &pl);
  char *t = token_with_key(HS, PAY, SIGN_HMAC, pem, pl);
  char *tk = token_with_key("{\"alg\":\"HS256\",\"kid\":\"rsa\"}", PAY, SIGN_HMAC, pem, pl);

  add(KEY("rsa2048.pub.pem") ",kid=rsa");
  cr_assert_eq(verify(t, NULL), RC_JWT_ALG_MISMATCH);
  ASSERT_ERR_HAS("token alg HS256 matches no key");
  cr_assert_eq(verify(tk, NULL), RC_JWT_ALG_MISMATCH);
  cr_assert_str_eq(err, "token alg HS256 does not match key 'rsa' (RS256)");
  /* With an HMAC key in the ring too, the PEM is still not that key. */
  add_secret(NULL);
  cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE);
  free(t);
  free(tk);
  free(pem);
}

Test(jwt, kid_selects_one_key, .fini = ring_fini) {
  add_secret("main");
  add(KEY("rsa2048.pub.pem"));
  cr_assert_eq(check("{\"alg\":\"HS256\",\"kid\":\"main\"}", PAY, SIGN_HMAC), 0, "%s", err);
  cr_assert_eq(check("{\"alg\":\"HS256\",\"kid\":\"other\"}", PAY, SIGN_HMAC), RC_JWT_UNKNOWN_KID);
  cr_assert_str_eq(err, "token kid 'other' names no key");
  /* A key without a kid is no match for a token with one. */
  cr_assert_eq(check("{\"alg\":\"RS256\",\"kid\":\"x\"}", PAY, SIGN_RSA), RC_JWT_UNKNOWN_KID);
  cr_assert_eq(check("{\"alg\":\"RS256\",\"kid\":\"main\"}", PAY, SIGN_RSA), RC_JWT_ALG_MISMATCH);
  cr_assert_eq(check("{\"alg\":\"HS256\",\"kid\":7}", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
  /* Without a kid every key of the alg is tried: the kid-less RSA key here. */
  cr_assert_eq(check(RS, PAY, SIGN_RSA), 0, "%s", err);
}

Test(jwt, several_keys_of_one_alg_all_tried, .fini = ring_fini) {
  static const char other[] = "a second secret, 32 bytes or more..";
  cr_assert_eq(rc_jwt_keyring_add_mem(&kr, other, strlen(other), NULL, "other", err, sizeof err),
               0);
  add_secret(NULL);
  cr_assert_eq(check(HS, PAY, SIGN_HMAC), 0, "%s", err);
  static const uint8_t third[] = "neither of them, but long enough too";
  char *t = token_with_key(HS, PAY, SIGN_HMAC, third, sizeof third - 1);
  cr_assert_eq(verify(t, NULL), RC_JWT_BAD_SIGNATURE);
  ASSERT_ERR_HAS("none of the 2 HS256 keys");
  free(t);
}

/* ---- audience and issuer ------------------------------------------------- */

Test(jwt, audience, .fini = ring_fini) {
  add_secret(NULL);
  struct rc_jwt_policy pol = {.audience = "ringcast"};
  struct {
    const char *payload;
    int want;
  } cases[] = {
      {"{\"aud\":\"ringcast\"}", 0},
      {"{\"aud\":[\"x\",\"ringcast\"]}", 0},
      {"{\"aud\":\"other\"}", RC_JWT_AUDIENCE},
      {"{\"aud\":[]}", RC_JWT_AUDIENCE},
      {"{\"aud\":\"ringcastX\"}", RC_JWT_AUDIENCE},
      {"{}", RC_JWT_AUDIENCE},
      {"{\"aud\":7}", RC_JWT_MALFORMED},
      {"{\"aud\":[\"ringcast\",7]}", RC_JWT_MALFORMED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *t = token(HS, cases[i].payload, SIGN_HMAC);
    cr_assert_eq(verify_pol(t, &pol, NOW, NULL), cases[i].want, "%s: %s", cases[i].payload, err);
    free(t);
  }
  /* With no audience configured a token naming one is refused (RFC 7519 4.1.3). */
  cr_assert_eq(check(HS, "{\"aud\":\"ringcast\"}", SIGN_HMAC), RC_JWT_AUDIENCE);
  ASSERT_ERR_HAS("no --jwt-audience");
}

Test(jwt, issuer, .fini = ring_fini) {
  add_secret(NULL);
  struct rc_jwt_policy pol = {.issuer = "https://issuer.example"};
  char *t = token(HS, "{\"iss\":\"https://issuer.example\"}", SIGN_HMAC);
  cr_assert_eq(verify_pol(t, &pol, NOW, NULL), 0, "%s", err);
  free(t);
  t = token(HS, "{\"iss\":\"https://evil.example\"}", SIGN_HMAC);
  cr_assert_eq(verify_pol(t, &pol, NOW, NULL), RC_JWT_ISSUER);
  cr_assert_str_eq(err, "token iss 'https://evil.example' is not 'https://issuer.example'");
  cr_assert_eq(verify(t, NULL), 0, "no issuer configured: any");
  free(t);
  t = token(HS, "{}", SIGN_HMAC);
  cr_assert_eq(verify_pol(t, &pol, NOW, NULL), RC_JWT_ISSUER);
  free(t);
  cr_assert_eq(check(HS, "{\"iss\":[\"a\"]}", SIGN_HMAC), RC_JWT_MALFORMED);
}

/* ---- malformed tokens ---------------------------------------------------- */

static int raw(const char *tok) { return verify(tok, NULL); }

Test(jwt, malformed, .fini = ring_fini) {
  add_secret(NULL);
  char *good = token(HS, PAY, SIGN_HMAC);
  cr_assert_eq(raw(good), 0, "%s", err);
  char *t = malloc(RC_JWT_MAX_TOKEN + 16);

  cr_assert_eq(raw(""), RC_JWT_MALFORMED);
  cr_assert_eq(raw("abc"), RC_JWT_MALFORMED);
  cr_assert_str_eq(err, "token has 1 parts, not 3");
  cr_assert_eq(raw("eyJhbGciOiJIUzI1NiJ9.e30"), RC_JWT_MALFORMED);
  cr_assert_str_eq(err, "token has 2 parts, not 3");
  snprintf(t, RC_JWT_MAX_TOKEN, "%s.xyz", good);
  cr_assert_eq(raw(t), RC_JWT_MALFORMED);
  cr_assert_str_eq(err, "token has 4 parts, not 3");
  cr_assert_eq(raw(".."), RC_JWT_MALFORMED);
  cr_assert_eq(raw("eyJhbGciOiJIUzI1NiJ9..sig"), RC_JWT_MALFORMED, "empty payload");

  /* base64url only: '+', '/', '=' and spaces are not in it. */
  const char *bad_b64[] = {"+", "/", "=", " ", "%"};
  for (size_t i = 0; i < 5; i++) {
    strcpy(t, good);
    t[3] = bad_b64[i][0];
    cr_assert_eq(raw(t), RC_JWT_MALFORMED, "'%c' in header", t[3]);
    strcpy(t, good);
    strrchr(t, '.')[2] = bad_b64[i][0];
    cr_assert_eq(raw(t), RC_JWT_MALFORMED, "'%c' in signature", bad_b64[i][0]);
  }
  strcpy(t, good);
  strcat(t, "=");
  cr_assert_eq(raw(t), RC_JWT_MALFORMED, "padding");
  /* 32 bytes are 43 characters with two unused bits; setting one is another
   * spelling of the same bytes, which strict base64url refuses. */
  strcpy(t, good);
  char *last = t + strlen(t) - 1;
  *last = (char)(*last + 1);
  cr_assert_eq(raw(t), RC_JWT_MALFORMED, "non-zero trailing bits");
  /* A length that leaves one character over. */
  strcpy(t, good);
  strcat(t, "AA");
  cr_assert_eq(raw(t), RC_JWT_MALFORMED);

  /* JSON, but not objects; or not JSON. */
  cr_assert_eq(check("[\"HS256\"]", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
  ASSERT_ERR_HAS("header is not a JSON object");
  cr_assert_eq(check("\"HS256\"", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
  cr_assert_eq(check(HS, "[1]", SIGN_HMAC), RC_JWT_MALFORMED);
  ASSERT_ERR_HAS("payload is not a JSON object");
  cr_assert_eq(check(HS, "42", SIGN_HMAC), RC_JWT_MALFORMED);
  cr_assert_eq(check("{\"alg\":\"HS256\",}", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
  ASSERT_ERR_HAS("header is not JSON");
  cr_assert_eq(check(HS, "{\"exp\":1800003600", SIGN_HMAC), RC_JWT_MALFORMED);
  cr_assert_eq(check(HS, "{\"exp\":01800003600}", SIGN_HMAC), RC_JWT_MALFORMED);
  /* Duplicate names: which one a reader takes is a guess. */
  cr_assert_eq(check("{\"alg\":\"HS256\",\"alg\":\"none\"}", PAY, SIGN_HMAC), RC_JWT_MALFORMED);
  ASSERT_ERR_HAS("names 'alg' twice");
  cr_assert_eq(check(HS, "{\"exp\":1,\"exp\":1900000000}", SIGN_HMAC), RC_JWT_MALFORMED);
  cr_assert_eq(check(HS, "{\"ringcast\":{\"pub\":[],\"pub\":[\">\"]}}", SIGN_HMAC),
               RC_JWT_MALFORMED);
  /* crit names extensions this reader does not know. */
  cr_assert_eq(check("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", PAY, SIGN_HMAC), RC_JWT_MALFORMED);

  /* Too long: refused before decoding, with the size in the message. */
  memset(t, 'A', RC_JWT_MAX_TOKEN + 1);
  t[10] = '.', t[20] = '.';
  t[RC_JWT_MAX_TOKEN + 1] = 0;
  cr_assert_eq(raw(t), RC_JWT_MALFORMED);
  cr_assert_str_eq(err, "token is 8193 bytes, at most 8192 allowed");
  free(t);
  free(good);
}

Test(jwt, longest_token_accepted, .fini = ring_fini) {
  add_secret(NULL);
  /* Pad the subject until the token is exactly RC_JWT_MAX_TOKEN long. */
  char *payload = malloc(RC_JWT_MAX_TOKEN);
  for (size_t pad = 5900; pad < 6200; pad++) {
    int n = snprintf(payload, RC_JWT_MAX_TOKEN, "{\"sub\":\"%0*d\"}", (int)pad, 0);
    cr_assert_gt(n, 0);
    char *t = token(HS, payload, SIGN_HMAC);
    size_t tl = strlen(t);
    if (tl == RC_JWT_MAX_TOKEN) {
      struct rc_jwt_grant *g;
      cr_assert_eq(verify(t, &g), 0, "%s", err);
      cr_assert_eq(strlen(rc_jwt_grant_subject(g)), RC_JWT_SUBJECT_MAX);
      rc_jwt_grant_free(g);
      free(t);
      free(payload);
      return;
    }
    free(t);
  }
  cr_assert_fail("no padding gave a token of exactly the limit");
}

/* ---- the ringcast claim and the grant ----------------------------------- */

Test(jwt, ringcast_claim_checked, .fini = ring_fini) {
  add_secret(NULL);
  cr_assert_eq(check(HS, "{\"ringcast\":[\"quotes.*\"]}", SIGN_HMAC), RC_JWT_CLAIMS);
  ASSERT_ERR_HAS("claim ringcast is not an object");
  cr_assert_eq(check(HS, "{\"ringcast\":{\"sub\":\"quotes.*\"}}", SIGN_HMAC), RC_JWT_CLAIMS);
  ASSERT_ERR_HAS("claim ringcast.sub is not an array");
  cr_assert_eq(check(HS, "{\"ringcast\":{\"pub\":[\"a\",1]}}", SIGN_HMAC), RC_JWT_CLAIMS);
  ASSERT_ERR_HAS("claim ringcast.pub[1] is not a string");
  cr_assert_eq(check(HS, "{\"ringcast\":{\"sub\":[\"quo*\"]}}", SIGN_HMAC), RC_JWT_CLAIMS);
  cr_assert_str_eq(err, "claim ringcast.sub pattern 'quo*' is not a valid topic pattern");
  cr_assert_eq(check(HS, "{\"ringcast\":{\"pub\":[\"a\\u0000b\"]}}", SIGN_HMAC), RC_JWT_CLAIMS);
  cr_assert_str_eq(err, "claim ringcast.pub pattern 'a?b' is not a valid topic pattern");
  cr_assert_eq(check(HS, "{\"ringcast\":{\"pub\":[\"\"]}}", SIGN_HMAC), RC_JWT_CLAIMS);
  cr_assert_eq(check(HS, "{\"sub\":7}", SIGN_HMAC), RC_JWT_MALFORMED);

  /* 64 patterns per list pass, 65 do not. */
  char payload[2048];
  size_t n = (size_t)snprintf(payload, sizeof payload, "{\"ringcast\":{\"sub\":[");
  for (int i = 0; i < RC_JWT_MAX_PATTERNS; i++)
    n += (size_t)snprintf(payload + n, sizeof payload - n, "%s\"t%d\"", i ? "," : "", i);
  snprintf(payload + n, sizeof payload - n, "]}}");
  cr_assert_eq(check(HS, payload, SIGN_HMAC), 0, "%s", err);
  snprintf(payload + n, sizeof payload - n, ",\"t64\"]}}");
  cr_assert_eq(check(HS, payload, SIGN_HMAC), RC_JWT_CLAIMS);
  ASSERT_ERR_HAS("more than 64 patterns");
}

Test(jwt, grant_allows_by_right, .fini = ring_fini) {
  add_secret(NULL);
  struct rc_jwt_grant *g;
  char *t = token(HS,
                  "{\"sub\":\"u1\",\"ringcast\":{\"sub\":[\"quotes.*\",\"news.>\",\"exact\"],"
                  "\"pub\":[\"alerts.ops\",\"chat.*.in\"],\"other\":1}}",
                  SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  free(t);
  struct {
    enum rc_jwt_right r;
    const char *topic;
    bool want;
  } cases[] = {
      {RC_JWT_SUB, "quotes.AAPL", true},  {RC_JWT_SUB, "quotes.AAPL.bid", false},
      {RC_JWT_SUB, "news.eu", true},      {RC_JWT_SUB, "news.eu.fr", true},
      {RC_JWT_SUB, "news", false},        {RC_JWT_SUB, "exact", true},
      {RC_JWT_SUB, "exactly", false},     {RC_JWT_SUB, "alerts.ops", false},
      {RC_JWT_PUB, "alerts.ops", true},   {RC_JWT_PUB, "chat.r1.in", true},
      {RC_JWT_PUB, "chat.r1.out", false}, {RC_JWT_PUB, "quotes.AAPL", false},
      {RC_JWT_SUB, "quotes.A A", false},  {RC_JWT_SUB, "", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert_eq(rc_jwt_grant_allows(g, cases[i].r, cases[i].topic, strlen(cases[i].topic)),
                 cases[i].want, "%d %s", cases[i].r, cases[i].topic);
  /* One block: header, "u1\0", the patterns with a length byte each. */
  size_t want = 16 + 3 + (1 + 8) + (1 + 6) + (1 + 5) + (1 + 10) + (1 + 9);
  cr_assert_eq(rc_jwt_grant_size(g), want);
  rc_jwt_grant_free(g);
  cr_assert_not(rc_jwt_grant_allows(NULL, RC_JWT_SUB, "a", 1));
  rc_jwt_grant_free(NULL);
}

Test(jwt, no_ringcast_claim_grants_nothing, .fini = ring_fini) {
  add_secret(NULL);
  struct rc_jwt_grant *g;
  char *t = token(HS, "{\"sub\":\"just-me\"}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_str_eq(rc_jwt_grant_subject(g), "just-me");
  cr_assert_not(rc_jwt_grant_allows(g, RC_JWT_SUB, "a", 1));
  cr_assert_not(rc_jwt_grant_allows(g, RC_JWT_PUB, "a", 1));
  cr_assert_eq(rc_jwt_grant_size(g), 16 + 8);
  rc_jwt_grant_free(g);
  free(t);
  t = token(HS, "{\"ringcast\":{}}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_str_eq(rc_jwt_grant_subject(g), "");
  cr_assert_not(rc_jwt_grant_allows(g, RC_JWT_SUB, "a", 1));
  rc_jwt_grant_free(g);
  free(t);
}

Test(jwt, subject_made_safe_for_logs, .fini = ring_fini) {
  add_secret(NULL);
  struct rc_jwt_grant *g;
  char *t = token(HS, "{\"sub\":\"line\\nbreak\\u0000\\\"q\\\"\"}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_str_eq(rc_jwt_grant_subject(g), "line?break?\"q\"");
  rc_jwt_grant_free(g);
  free(t);
  /* 63 ASCII bytes then a 2-byte character: the cut keeps 63, not half of it. */
  char payload[256];
  snprintf(payload, sizeof payload, "{\"sub\":\"%063d\xc3\xa9tail\"}", 0);
  t = token(HS, payload, SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_eq(strlen(rc_jwt_grant_subject(g)), 63);
  rc_jwt_grant_free(g);
  free(t);
  /* Invalid UTF-8 (a lone surrogate escape) shows as '?'. */
  t = token(HS, "{\"sub\":\"a\\ud800b\"}", SIGN_HMAC);
  cr_assert_eq(verify(t, &g), 0, "%s", err);
  cr_assert_str_eq(rc_jwt_grant_subject(g), "a???b");
  rc_jwt_grant_free(g);
  free(t);
}

Test(jwt, reason_names) {
  cr_assert_str_eq(rc_jwt_reason_name(0), "ok");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_MALFORMED), "malformed");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_ALG_NONE), "alg_none");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_ALG_MISMATCH), "alg_mismatch");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_UNKNOWN_KID), "unknown_kid");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_BAD_SIGNATURE), "bad_signature");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_EXPIRED), "expired");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_NOT_YET_VALID), "not_yet_valid");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_AUDIENCE), "audience");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_ISSUER), "issuer");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_CLAIMS), "claims");
  cr_assert_str_eq(rc_jwt_reason_name(RC_JWT_INTERNAL), "internal");
  cr_assert_str_eq(rc_jwt_reason_name(-RC_JWT_REASONS), "unknown");
  cr_assert_str_eq(rc_jwt_reason_name(1), "unknown");
}

Test(jwt, empty_keyring_refuses_all) {
  struct rc_jwt_keyring empty = {0};
  struct rc_jwt_grant *g = (struct rc_jwt_grant *)1;
  char *t = token(HS, PAY, SIGN_HMAC);
  cr_assert_eq(rc_jwt_verify(&empty, NULL, t, strlen(t), NOW, &g, err, sizeof err),
               RC_JWT_ALG_MISMATCH);
  cr_assert_null(g);
  free(t);
  rc_jwt_keyring_free(&empty);
}

/* The keyring is only read while verifying, so shards may share it: four
 * threads verifying all three kinds at once must all succeed. */
static char *shared_tokens[3];

static void *verify_many(void *arg) {
  (void)arg;
  for (int i = 0; i < 40; i++) {
    char e[256];
    struct rc_jwt_grant *g;
    const char *t = shared_tokens[i % 3];
    if (rc_jwt_verify(&kr, NULL, t, strlen(t), NOW, &g, e, sizeof e) != 0) return (void *)1;
    rc_jwt_grant_free(g);
  }
  /* FP_ECC's cache is per thread (see jwt.h). */
  wc_ecc_fp_free();
  return NULL;
}

Test(jwt, concurrent_verification, .fini = ring_fini) {
  add_secret(NULL);
  add(KEY("rsa2048.pub.pem"));
  add(KEY("ec256.pub.pem"));
  shared_tokens[0] = token(HS, PAY, SIGN_HMAC);
  shared_tokens[1] = token(RS, PAY, SIGN_RSA);
  shared_tokens[2] = token(ES, PAY, SIGN_EC);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, verify_many, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(th[i], &r);
    cr_assert_null(r, "thread %d saw a refusal", i);
  }
  for (int i = 0; i < 3; i++) free(shared_tokens[i]);
}
