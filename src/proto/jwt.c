/* SPDX-License-Identifier: MIT */
/* JWT verification: the keyring (key files sniffed into HS256 secrets or RS256 /
 * ES256 public keys), the compact JWS checks in the order that refuses cheapest
 * first and never trusts the token's own choice of algorithm, and the packed
 * grant built from the "ringcast" claim. JSON is read with json_scan (strict,
 * duplicate names refused); crypto is wolfCrypt's. */
#include "ringcast/proto/jwt.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringcast/proto/json_scan.h"
#include "ringcast/proto/topic_pattern.h"
#include "ringcast/proto/utf8.h"

/* Key files are small; a bigger one is a wrong path, not a key. */
#define KEY_FILE_MAX (64u << 10)
/* RSA signatures up to 8192-bit moduli (wolfCrypt's own ceiling). */
#define SIG_MAX 1024
#define SHA256_LEN 32
#define ES256_SIG_LEN 64
/* What messages show of a string the token holds. */
#define SHOW_MAX 40

struct rc_jwt_key {
  enum rc_jwt_alg alg;
  char kid[RC_JWT_KID_MAX + 1]; /* "" without one */
  char label[96];               /* the kid, or the file: how messages name the key */
  size_t sig_len;               /* RS256: the modulus' bytes, which a signature has */
  size_t len;
  uint8_t bytes[]; /* HS256: the secret; RS256, ES256: SubjectPublicKeyInfo DER */
};

/* ---- small helpers ------------------------------------------------------ */

static const char *const reason_names[RC_JWT_REASONS] = {
    "ok",      "malformed",     "alg_none", "alg_mismatch", "unknown_kid", "bad_signature",
    "expired", "not_yet_valid", "audience", "issuer",       "claims",      "internal",
};

static_assert(RC_JWT_REASONS == 1 - RC_JWT_INTERNAL, "a name for every reason");

const char *rc_jwt_reason_name(int reason) {
  if (reason > 0 || reason <= -RC_JWT_REASONS) return "unknown";
  return reason_names[-reason];
}

const char *rc_jwt_alg_name(enum rc_jwt_alg alg) {
  switch (alg) {
  case RC_JWT_HS256: return "HS256";
  case RC_JWT_RS256: return "RS256";
  case RC_JWT_ES256: return "ES256";
  }
  return "?";
}

static enum rc_jwt_alg alg_from_name(const uint8_t *s, size_t n) {
  static const enum rc_jwt_alg algs[] = {RC_JWT_HS256, RC_JWT_RS256, RC_JWT_ES256};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
    if (n == 5 && memcmp(s, rc_jwt_alg_name(algs[i]), 5) == 0) return algs[i];
  return 0;
}

static void msg(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void msg(char *err, size_t errsz, const char *fmt, ...) {
  if (!err || errsz == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
}

/* A token's string made fit for a log line: printable ASCII kept, anything else
 * '?', cut with "..." past SHOW_MAX bytes. dst has room for SHOW_MAX + 4. */
static const char *show(char dst[SHOW_MAX + 4], const uint8_t *s, size_t n) {
  size_t k = n < SHOW_MAX ? n : SHOW_MAX;
  for (size_t i = 0; i < k; i++)
    dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
  if (n > k) memcpy(dst + k, "...", 3), k += 3;
  dst[k] = 0;
  return dst;
}

/* Compares every byte whatever the first difference: an HMAC check that stops
 * early tells a forger how many leading bytes were right. */
static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t n) {
  volatile uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= (uint8_t)(a[i] ^ b[i]);
  return acc == 0;
}

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/* Strict unpadded base64url (RFC 7515 2): the URL alphabet only, no '=', no
 * length that leaves a lone 6-bit group, and unused low bits zero, so each byte
 * string has exactly one spelling. out has room for n * 3 / 4 bytes. Returns the
 * decoded length, or -1. */
static long b64url_decode(const char *in, size_t n, uint8_t *out) {
  if (n % 4 == 1) return -1;
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64url_value((unsigned char)in[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return -1;
  return (long)o;
}

/* ---- the keyring -------------------------------------------------------- */

static bool is_valid_kid(const char *kid) {
  size_t n = strlen(kid);
  if (n == 0 || n > RC_JWT_KID_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (kid[i] < 0x21 || kid[i] > 0x7e) return false;
  return true;
}

static const uint8_t *find(const uint8_t *buf, size_t len, const char *needle) {
  return memmem(buf, len, needle, strlen(needle));
}

/* The modulus' size in bits: wc_RsaEncryptSize rounds to bytes, and 2047 bits
 * must not pass for 2048. 0 when it cannot be read. */
static size_t rsa_bits(RsaKey *key, size_t *bytes) {
  uint8_t n[2 * SIG_MAX], e[16];
  word32 nl = sizeof n, el = sizeof e;
  if (wc_RsaFlattenPublicKey(key, e, &el, n, &nl) != 0) return 0;
  size_t i = 0;
  while (i < nl && n[i] == 0)
    i++;
  if (i == nl) return 0;
  *bytes = nl - i;
  size_t bits = (nl - i) * 8;
  for (uint8_t top = n[i]; !(top & 0x80); top = (uint8_t)(top << 1))
    bits--;
  return bits;
}

/* Which algorithm the public key in spki serves; 0 with a message if none. */
static enum rc_jwt_alg classify_spki(const uint8_t *spki, size_t len, const char *label,
                                     size_t *sig_len, char *err, size_t errsz) {
  RsaKey rsa;
  word32 idx = 0;
  if (wc_InitRsaKey(&rsa, NULL) != 0) {
    msg(err, errsz, "%s: wolfCrypt cannot set up an RSA key", label);
    return 0;
  }
  int rc = wc_RsaPublicKeyDecode(spki, &idx, &rsa, (word32)len);
  if (rc == 0) {
    size_t bytes = 0, bits = rsa_bits(&rsa, &bytes);
    wc_FreeRsaKey(&rsa);
    if (bits < 2048) {
      msg(err, errsz, "%s: RSA key has %zu bits, at least 2048 needed", label, bits);
      return 0;
    }
    if (bytes > SIG_MAX) {
      msg(err, errsz, "%s: RSA key has %zu bits, at most %d supported", label, bits, SIG_MAX * 8);
      return 0;
    }
    *sig_len = bytes;
    return RC_JWT_RS256;
  }
  wc_FreeRsaKey(&rsa);

  ecc_key ec;
  if (wc_ecc_init(&ec) != 0) {
    msg(err, errsz, "%s: wolfCrypt cannot set up an EC key", label);
    return 0;
  }
  idx = 0;
  enum rc_jwt_alg alg = 0;
  if (wc_EccPublicKeyDecode(spki, &idx, &ec, (word32)len) != 0) {
    msg(err, errsz, "%s: public key is neither RSA nor EC (RS256 and ES256 are supported)", label);
  } else if (wc_ecc_get_curve_id(ec.idx) != ECC_SECP256R1) {
    const char *name = wc_ecc_get_name(wc_ecc_get_curve_id(ec.idx));
    msg(err, errsz, "%s: EC key is on curve %s, not P-256 (ES256)", label, name ? name : "?");
  } else if (wc_ecc_check_key(&ec) != 0) {
    /* An off-curve point would make every later verification meaningless. */
    msg(err, errsz, "%s: EC public key is not a valid P-256 point", label);
  } else {
    *sig_len = ES256_SIG_LEN;
    alg = RC_JWT_ES256;
  }
  wc_ecc_free(&ec);
  return alg;
}

/* The SubjectPublicKeyInfo of the first certificate in pem, into der (room n). */
static int cert_spki(const uint8_t *pem, size_t len, uint8_t *der, size_t n, size_t *out_len,
                     const char *label, char *err, size_t errsz) {
  int cl = wc_CertPemToDer(pem, (int)len, der, (int)n, CERT_TYPE);
  if (cl <= 0) {
    msg(err, errsz, "%s: certificate PEM does not decode", label);
    return -EINVAL;
  }
  DecodedCert cert;
  /* NO_VERIFY: the certificate only carries the key; trust in it comes from the
   * operator naming the file, not from a chain. */
  wc_InitDecodedCert(&cert, der, (word32)cl, NULL);
  int rc = wc_ParseCert(&cert, CERT_TYPE, NO_VERIFY, NULL);
  /* The certificate's own bytes are still in der while cert points at them, so
   * the key goes to a second buffer first. */
  uint8_t spki[SIG_MAX + 256];
  word32 sl = sizeof spki;
  if (rc == 0) rc = wc_GetPubKeyDerFromCert(&cert, spki, &sl);
  wc_FreeDecodedCert(&cert);
  if (rc != 0 || sl > n) {
    msg(err, errsz, "%s: certificate does not parse, or its key does not fit", label);
    return -EINVAL;
  }
  memcpy(der, spki, sl);
  *out_len = sl;
  return 0;
}

static struct rc_jwt_key *key_new(enum rc_jwt_alg alg, const char *kid, const char *label,
                                  const uint8_t *bytes, size_t len, size_t sig_len) {
  struct rc_jwt_key *k = calloc(1, sizeof *k + len);
  if (!k) return NULL;
  k->alg = alg;
  if (kid) snprintf(k->kid, sizeof k->kid, "%s", kid);
  snprintf(k->label, sizeof k->label, "%s", kid ? kid : label);
  k->sig_len = sig_len;
  k->len = len;
  memcpy(k->bytes, bytes, len);
  return k;
}

int rc_jwt_keyring_add_mem(struct rc_jwt_keyring *kr, const void *buf, size_t len, const char *kid,
                           const char *label, char *err, size_t errsz) {
  if (!label) label = kid ? kid : "key";
  if (kr->n == RC_JWT_MAX_KEYS) {
    msg(err, errsz, "%s: the keyring is full (at most %d keys)", label, RC_JWT_MAX_KEYS);
    return -ENOSPC;
  }
  if (kid) {
    if (!is_valid_kid(kid)) {
      msg(err, errsz, "%s: kid must be 1..%d printable ASCII bytes", label, RC_JWT_KID_MAX);
      return -EINVAL;
    }
    for (size_t i = 0; i < kr->n; i++)
      if (strcmp(kr->keys[i]->kid, kid) == 0) {
        msg(err, errsz, "%s: kid '%s' is already used", label, kid);
        return -EEXIST;
      }
  }
  if (len == 0) {
    msg(err, errsz, "%s: empty", label);
    return -EINVAL;
  }
  if (len > KEY_FILE_MAX) {
    msg(err, errsz, "%s: larger than %u KiB, not a key", label, KEY_FILE_MAX >> 10);
    return -EINVAL;
  }
  const uint8_t *p = buf;
  enum rc_jwt_alg alg = 0;
  size_t sig_len = 0;
  struct rc_jwt_key *k = NULL;

  if (!find(p, len, "-----BEGIN ")) {
    size_t n = len;
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
      n--;
    if (n < RC_JWT_MIN_SECRET) {
      msg(err, errsz, "%s: HMAC secret is %zu bytes, at least %d needed", label, n,
          RC_JWT_MIN_SECRET);
      return -EINVAL;
    }
    k = key_new(RC_JWT_HS256, kid, label, p, n, 0);
    if (!k) {
      msg(err, errsz, "%s: out of memory", label);
      return -ENOMEM;
    }
    kr->keys[kr->n++] = k;
    return 0;
  }

  /* PEM. The DER is never longer than its base64 text; the copy adds the NUL
   * that wolfCrypt's PEM scanner may look for. */
  int ret = -EINVAL;
  uint8_t *pem = malloc(len + 1), *der = malloc(len);
  if (!pem || !der) {
    ret = -ENOMEM;
    msg(err, errsz, "%s: out of memory", label);
    goto out;
  }
  memcpy(pem, p, len);
  pem[len] = 0;
  size_t der_len = 0;
  if (find(pem, len, "-----BEGIN PUBLIC KEY-----")) {
    int dl = wc_PubKeyPemToDer(pem, (int)len, der, (int)len);
    if (dl <= 0) {
      msg(err, errsz, "%s: public key PEM does not decode", label);
      goto out;
    }
    der_len = (size_t)dl;
  } else if (find(pem, len, "-----BEGIN CERTIFICATE-----")) {
    if (cert_spki(pem, len, der, len, &der_len, label, err, errsz) != 0) goto out;
  } else {
    /* A private key above all must not turn into an HMAC secret. */
    const uint8_t *b = find(pem, len, "-----BEGIN ") + 11;
    const uint8_t *e = find(b, len - (size_t)(b - pem), "-----");
    char what[SHOW_MAX + 4];
    show(what, b, e ? (size_t)(e - b) : 0);
    msg(err, errsz, "%s: PEM block '%s' is not supported (want PUBLIC KEY or CERTIFICATE)", label,
        what);
    goto out;
  }
  alg = classify_spki(der, der_len, label, &sig_len, err, errsz);
  if (!alg) goto out;
  k = key_new(alg, kid, label, der, der_len, sig_len);
  if (!k) {
    ret = -ENOMEM;
    msg(err, errsz, "%s: out of memory", label);
    goto out;
  }
  kr->keys[kr->n++] = k;
  ret = 0;
out:
  free(der);
  free(pem);
  return ret;
}

/* Reads path whole into a fresh buffer (at most KEY_FILE_MAX + 1 bytes, so a
 * bigger file shows as too long). */
static int read_file(const char *path, uint8_t **out, size_t *out_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint8_t *buf = malloc(KEY_FILE_MAX + 1);
  if (!buf) {
    close(fd);
    return -ENOMEM;
  }
  size_t n = 0;
  while (n < KEY_FILE_MAX + 1) {
    ssize_t r = read(fd, buf + n, KEY_FILE_MAX + 1 - n);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = -errno;
      free(buf);
      close(fd);
      return e;
    }
    n += (size_t)r;
  }
  close(fd);
  *out = buf;
  *out_len = n;
  return 0;
}

int rc_jwt_keyring_add_file(struct rc_jwt_keyring *kr, const char *spec, char *err, size_t errsz) {
  char path[4096];
  const char *comma = strchr(spec, ',');
  size_t plen = comma ? (size_t)(comma - spec) : strlen(spec);
  if (plen == 0 || plen >= sizeof path) {
    msg(err, errsz, "--jwt-key '%s': want FILE or FILE,kid=NAME", spec);
    return -EINVAL;
  }
  memcpy(path, spec, plen);
  path[plen] = 0;
  const char *kid = NULL;
  if (comma) {
    if (strncmp(comma + 1, "kid=", 4) != 0 || strchr(comma + 1, ',')) {
      msg(err, errsz, "--jwt-key '%s': the only option is kid=NAME", spec);
      return -EINVAL;
    }
    kid = comma + 5;
    if (!is_valid_kid(kid)) {
      msg(err, errsz, "--jwt-key '%s': kid must be 1..%d printable ASCII bytes", spec,
          RC_JWT_KID_MAX);
      return -EINVAL;
    }
  }
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = read_file(path, &buf, &len);
  if (rc != 0) {
    msg(err, errsz, "%s: cannot read: %s", path, strerror(-rc));
    return rc;
  }
  rc = rc_jwt_keyring_add_mem(kr, buf, len, kid, path, err, errsz);
  /* A secret's bytes must not linger in freed memory. */
  explicit_bzero(buf, len);
  free(buf);
  return rc;
}

void rc_jwt_keyring_free(struct rc_jwt_keyring *kr) {
  for (size_t i = 0; i < kr->n; i++) {
    struct rc_jwt_key *k = kr->keys[i];
    explicit_bzero(k->bytes, k->len);
    free(k);
    kr->keys[i] = NULL;
  }
  kr->n = 0;
}

enum rc_jwt_alg rc_jwt_keyring_alg(const struct rc_jwt_keyring *kr, size_t i) {
  return i < kr->n ? kr->keys[i]->alg : 0;
}

/* ---- signatures --------------------------------------------------------- */

/* Each returns 1 when sig is key's signature over m, 0 when not, -1 when
 * wolfCrypt could not even be set up (which is no verdict on the token). */

static int verify_hs256(const struct rc_jwt_key *k, const uint8_t *m, size_t ml, const uint8_t *sig,
                        size_t sl) {
  if (sl != SHA256_LEN) return 0;
  Hmac h;
  uint8_t mac[SHA256_LEN];
  if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0) return -1;
  int rc = wc_HmacSetKey(&h, WC_SHA256, k->bytes, (word32)k->len);
  if (rc == 0) rc = wc_HmacUpdate(&h, m, (word32)ml);
  if (rc == 0) rc = wc_HmacFinal(&h, mac);
  wc_HmacFree(&h);
  if (rc != 0) return -1;
  return ct_equal(mac, sig, SHA256_LEN);
}

static int verify_rs256(const struct rc_jwt_key *k, const uint8_t *m, size_t ml, const uint8_t *sig,
                        size_t sl) {
  if (sl != k->sig_len) return 0;
  uint8_t hash[SHA256_LEN], want[64], work[SIG_MAX];
  if (wc_Sha256Hash(m, (word32)ml, hash) != 0) return -1;
  /* DigestInfo for SHA-256 is 19 bytes of header plus the hash: want fits it. */
  word32 wl = wc_EncodeSignature(want, hash, SHA256_LEN, SHA256h);
  RsaKey key;
  word32 idx = 0;
  if (wc_InitRsaKey(&key, NULL) != 0) return -1;
  if (wc_RsaPublicKeyDecode(k->bytes, &idx, &key, (word32)k->len) != 0) {
    wc_FreeRsaKey(&key);
    return -1;
  }
  memcpy(work, sig, sl);
  byte *plain = NULL;
  /* wolfCrypt checks the PKCS#1 v1.5 padding; comparing the whole DigestInfo
   * (not parsing it) leaves no room for the lenient-parser forgeries. */
  int n = wc_RsaSSL_VerifyInline(work, (word32)sl, &plain, &key);
  wc_FreeRsaKey(&key);
  return n > 0 && (word32)n == wl && plain && ct_equal(plain, want, wl);
}

static int verify_es256(const struct rc_jwt_key *k, const uint8_t *m, size_t ml, const uint8_t *sig,
                        size_t sl) {
  /* JWS carries r || s, 32 bytes each (RFC 7518 3.4), not DER. */
  if (sl != ES256_SIG_LEN) return 0;
  uint8_t hash[SHA256_LEN], der[80];
  word32 dl = sizeof der;
  if (wc_Sha256Hash(m, (word32)ml, hash) != 0) return -1;
  if (wc_ecc_rs_raw_to_sig(sig, 32, sig + 32, 32, der, &dl) != 0) return 0;
  ecc_key key;
  word32 idx = 0;
  if (wc_ecc_init(&key) != 0) return -1;
  if (wc_EccPublicKeyDecode(k->bytes, &idx, &key, (word32)k->len) != 0) {
    wc_ecc_free(&key);
    return -1;
  }
  int ok = 0;
  /* An error here (r or s zero or past the order) is a bad signature too. */
  int rc = wc_ecc_verify_hash(der, dl, hash, SHA256_LEN, &ok, &key);
  wc_ecc_free(&key);
  return rc == 0 && ok == 1;
}

static int verify_with(const struct rc_jwt_key *k, const uint8_t *m, size_t ml, const uint8_t *sig,
                       size_t sl) {
  switch (k->alg) {
  case RC_JWT_HS256: return verify_hs256(k, m, ml, sig, sl);
  case RC_JWT_RS256: return verify_rs256(k, m, ml, sig, sl);
  case RC_JWT_ES256: return verify_es256(k, m, ml, sig, sl);
  }
  return -1;
}

/* ---- JSON helpers ------------------------------------------------------- */

/* One verification's working state: the decoded parts and a scratch buffer for
 * decoded strings (a string never outgrows its escaped form, and no part is
 * longer than the token). */
struct ctx {
  const uint8_t *hdr, *pay;
  size_t hdr_len, pay_len;
  char *err;
  size_t errsz;
  uint8_t text[RC_JWT_MAX_TOKEN];    /* header, then payload */
  uint8_t scratch[RC_JWT_MAX_TOKEN]; /* one decoded string at a time */
};

static int fail(struct ctx *c, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, int reason, const char *fmt, ...) {
  if (c->err && c->errsz) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errsz, fmt, ap);
    va_end(ap);
  }
  return reason;
}

/* The member key of the object spanned by obj in p: 0 found, 1 absent, or a
 * reason (duplicate names are malformed: which one a reader takes is a guess). */
static int member(struct ctx *c, const uint8_t *p, const struct rc_json_span *obj, const char *key,
                  const char *where, struct rc_json_span *out) {
  int rc = rc_json_member(p + obj->off, obj->len, key, out);
  if (rc == -ENOENT) return 1;
  if (rc == -EEXIST) return fail(c, RC_JWT_MALFORMED, "%s names '%s' twice", where, key);
  if (rc != 0) return fail(c, RC_JWT_MALFORMED, "%s is not a JSON object", where);
  out->off += obj->off;
  return 0;
}

/* The decoded bytes of a string span, in c->scratch. */
static const uint8_t *string_of(struct ctx *c, const uint8_t *p, const struct rc_json_span *s,
                                size_t *len) {
  *len = rc_json_string_decode(p, s, c->scratch);
  return c->scratch;
}

/* p[0..n) as a whole JSON object: its span, or a malformed reason. */
static int object_of(struct ctx *c, const uint8_t *p, size_t n, const char *what,
                     struct rc_json_span *out) {
  const char *why;
  size_t at;
  if (rc_json_check(p, n, &why, &at) != 0)
    return fail(c, RC_JWT_MALFORMED, "%s is not JSON: %s at byte %zu", what, why, at);
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
    i++;
  if (i == n || p[i] != '{') return fail(c, RC_JWT_MALFORMED, "%s is not a JSON object", what);
  *out = (struct rc_json_span){.off = 0, .len = n, .type = RC_JSON_OBJECT};
  return 0;
}

/* A NumericDate claim: 0 and *v when present, 1 absent, or a reason. */
static int number_claim(struct ctx *c, const struct rc_json_span *obj, const char *key, double *v) {
  struct rc_json_span s;
  int rc = member(c, c->pay, obj, key, "payload", &s);
  if (rc != 0) return rc;
  if (s.type != RC_JSON_NUMBER) return fail(c, RC_JWT_MALFORMED, "claim %s is not a number", key);
  char num[64];
  if (s.len >= sizeof num)
    return fail(c, RC_JWT_MALFORMED, "claim %s is a %zu-character number", key, s.len);
  memcpy(num, c->pay + s.off, s.len);
  num[s.len] = 0;
  /* JSON's number grammar (checked) is strtod's in the C locale; a value past
   * double's range comes back as +-HUGE_VAL, which still compares right. */
  *v = strtod(num, NULL);
  return 0;
}

static int64_t to_seconds(double d) {
  if (d >= 9.2e18) return INT64_MAX;
  if (d <= -9.2e18) return INT64_MIN;
  int64_t t = (int64_t)d;
  return (double)t > d ? t - 1 : t;
}

static bool bytes_equal_str(const uint8_t *s, size_t n, const char *z) {
  return n == strlen(z) && memcmp(s, z, n) == 0;
}

/* ---- the grant ---------------------------------------------------------- */

/* One block: this header, then the subject and its NUL, then the sub patterns,
 * then the pub patterns, each as a length byte and its bytes. Offsets fit 16
 * bits because every list is bounded (asserted below). */
struct rc_jwt_grant {
  int64_t exp;
  uint16_t size;   /* the whole block */
  uint16_t sub_at; /* where in data the sub patterns start */
  uint16_t pub_at; /* ...the pub patterns */
  uint16_t end;    /* ...and where they end */
  char data[];
};
static_assert(sizeof(struct rc_jwt_grant) == 16, "a grant's header stays two words");
static_assert(sizeof(struct rc_jwt_grant) + RC_JWT_SUBJECT_MAX + 1 +
                      2 * RC_JWT_MAX_PATTERNS * (1 + RC_TOPIC_PATTERN_MAX) <=
                  UINT16_MAX,
              "grant offsets fit 16 bits");

void rc_jwt_grant_free(struct rc_jwt_grant *g) { free(g); }

bool rc_jwt_grant_allows(const struct rc_jwt_grant *g, enum rc_jwt_right r, const char *topic,
                         size_t len) {
  if (!g || !rc_topic_name_is_valid(topic, len)) return false;
  size_t at = r == RC_JWT_PUB ? g->pub_at : g->sub_at;
  size_t end = r == RC_JWT_PUB ? g->end : g->pub_at;
  while (at < end) {
    size_t n = (uint8_t)g->data[at];
    if (rc_topic_pattern_match(g->data + at + 1, n, topic, len)) return true;
    at += 1 + n;
  }
  return false;
}

bool rc_jwt_grant_covers(const struct rc_jwt_grant *g, enum rc_jwt_right r, const char *pattern,
                         size_t len) {
  if (!g || !rc_topic_pattern_is_valid(pattern, len)) return false;
  size_t at = r == RC_JWT_PUB ? g->pub_at : g->sub_at;
  size_t end = r == RC_JWT_PUB ? g->end : g->pub_at;
  while (at < end) {
    size_t n = (uint8_t)g->data[at];
    if (rc_topic_pattern_covers(g->data + at + 1, n, pattern, len)) return true;
    at += 1 + n;
  }
  return false;
}

int64_t rc_jwt_grant_expiry(const struct rc_jwt_grant *g) { return g->exp; }

const char *rc_jwt_grant_subject(const struct rc_jwt_grant *g) { return g->data; }

size_t rc_jwt_grant_size(const struct rc_jwt_grant *g) { return g->size; }

/* The subject made safe for logs into dst (room RC_JWT_SUBJECT_MAX + 1). */
static size_t subject_copy(char *dst, const uint8_t *s, size_t n) {
  bool utf8 = rc_utf8_is_valid(s, n);
  size_t k = n;
  if (k > RC_JWT_SUBJECT_MAX) {
    k = RC_JWT_SUBJECT_MAX;
    /* Back off continuation bytes so the cut leaves whole characters. */
    if (utf8)
      while (k > 0 && (s[k] & 0xc0) == 0x80)
        k--;
  }
  for (size_t i = 0; i < k; i++) {
    uint8_t b = s[i];
    dst[i] = (b < 0x20 || b == 0x7f || (!utf8 && b >= 0x80)) ? '?' : (char)b;
  }
  dst[k] = 0;
  return k;
}

/* Walks one pattern list (ringcast.sub or .pub): checks it and, when dst is
 * set, packs it there. *bytes gets the packed size. 0 or a reason. */
static int pattern_list(struct ctx *c, const struct rc_json_span *rc_obj, const char *key,
                        char *dst, size_t *bytes) {
  struct rc_json_span arr, el;
  *bytes = 0;
  int rc = member(c, c->pay, rc_obj, key, "claim ringcast", &arr);
  if (rc == 1) return 0;
  if (rc != 0) return rc;
  if (arr.type != RC_JSON_ARRAY)
    return fail(c, RC_JWT_CLAIMS, "claim ringcast.%s is not an array", key);
  size_t pos = 0, count = 0;
  while (rc_json_array_next(c->pay, &arr, &pos, &el)) {
    if (++count > RC_JWT_MAX_PATTERNS)
      return fail(c, RC_JWT_CLAIMS, "claim ringcast.%s has more than %d patterns", key,
                  RC_JWT_MAX_PATTERNS);
    if (el.type != RC_JSON_STRING)
      return fail(c, RC_JWT_CLAIMS, "claim ringcast.%s[%zu] is not a string", key, count - 1);
    size_t n;
    const uint8_t *s = string_of(c, c->pay, &el, &n);
    if (!rc_topic_pattern_is_valid((const char *)s, n)) {
      char shown[SHOW_MAX + 4];
      return fail(c, RC_JWT_CLAIMS, "claim ringcast.%s pattern '%s' is not a valid topic pattern",
                  key, show(shown, s, n));
    }
    if (dst) {
      dst[*bytes] = (char)n;
      memcpy(dst + *bytes + 1, s, n);
    }
    *bytes += 1 + n;
  }
  return 0;
}

static int build_grant(struct ctx *c, const struct rc_json_span *obj, int64_t exp,
                       struct rc_jwt_grant **out) {
  char subject[RC_JWT_SUBJECT_MAX + 1] = "";
  size_t subject_len = 0;
  struct rc_json_span s, rcs;
  int rc = member(c, c->pay, obj, "sub", "payload", &s);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (s.type != RC_JSON_STRING) return fail(c, RC_JWT_MALFORMED, "claim sub is not a string");
    size_t n;
    const uint8_t *v = string_of(c, c->pay, &s, &n);
    subject_len = subject_copy(subject, v, n);
  }
  rc = member(c, c->pay, obj, "ringcast", "payload", &rcs);
  if (rc < 0) return rc;
  bool has_rc = rc == 0;
  if (has_rc && rcs.type != RC_JSON_OBJECT)
    return fail(c, RC_JWT_CLAIMS, "claim ringcast is not an object");
  size_t sub_bytes = 0, pub_bytes = 0;
  if (has_rc) {
    if ((rc = pattern_list(c, &rcs, "sub", NULL, &sub_bytes)) != 0) return rc;
    if ((rc = pattern_list(c, &rcs, "pub", NULL, &pub_bytes)) != 0) return rc;
  }
  size_t size = sizeof(struct rc_jwt_grant) + subject_len + 1 + sub_bytes + pub_bytes;
  struct rc_jwt_grant *g = malloc(size);
  if (!g) return fail(c, RC_JWT_INTERNAL, "out of memory for the grant");
  g->exp = exp;
  g->size = (uint16_t)size;
  g->sub_at = (uint16_t)(subject_len + 1);
  g->pub_at = (uint16_t)(g->sub_at + sub_bytes);
  g->end = (uint16_t)(g->pub_at + pub_bytes);
  memcpy(g->data, subject, subject_len + 1);
  if (has_rc) {
    /* Second walk, same input: it cannot fail where the first did not. */
    (void)pattern_list(c, &rcs, "sub", g->data + g->sub_at, &sub_bytes);
    (void)pattern_list(c, &rcs, "pub", g->data + g->pub_at, &pub_bytes);
  }
  *out = g;
  return 0;
}

/* ---- verification ------------------------------------------------------- */

/* aud: a string or an array of strings; 0 when it names want, or a reason. */
static int check_audience(struct ctx *c, const struct rc_json_span *obj, const char *want) {
  struct rc_json_span a, el;
  int rc = member(c, c->pay, obj, "aud", "payload", &a);
  if (rc < 0) return rc;
  if (rc == 0 && a.type != RC_JSON_STRING && a.type != RC_JSON_ARRAY)
    return fail(c, RC_JWT_MALFORMED, "claim aud is not a string or an array");
  if (!want) {
    if (rc == 0) return fail(c, RC_JWT_AUDIENCE, "token has an aud claim but the server has no --jwt-audience to match it");
    return 0;
  }
  if (rc == 1) return fail(c, RC_JWT_AUDIENCE, "token has no aud, '%s' required", want);
  bool found = false;
  size_t n;
  if (a.type == RC_JSON_STRING) {
    const uint8_t *s = string_of(c, c->pay, &a, &n);
    found = bytes_equal_str(s, n, want);
  } else {
    size_t pos = 0;
    while (rc_json_array_next(c->pay, &a, &pos, &el)) {
      if (el.type != RC_JSON_STRING)
        return fail(c, RC_JWT_MALFORMED, "claim aud holds a non-string");
      const uint8_t *s = string_of(c, c->pay, &el, &n);
      found = found || bytes_equal_str(s, n, want);
    }
  }
  if (!found) return fail(c, RC_JWT_AUDIENCE, "token aud does not name '%s'", want);
  return 0;
}

static int check_issuer(struct ctx *c, const struct rc_json_span *obj, const char *want) {
  struct rc_json_span s;
  int rc = member(c, c->pay, obj, "iss", "payload", &s);
  if (rc < 0) return rc;
  if (rc == 0 && s.type != RC_JSON_STRING)
    return fail(c, RC_JWT_MALFORMED, "claim iss is not a string");
  if (!want) return 0;
  if (rc == 1) return fail(c, RC_JWT_ISSUER, "token has no iss, '%s' required", want);
  size_t n;
  const uint8_t *v = string_of(c, c->pay, &s, &n);
  if (!bytes_equal_str(v, n, want)) {
    char shown[SHOW_MAX + 4];
    return fail(c, RC_JWT_ISSUER, "token iss '%s' is not '%s'", show(shown, v, n), want);
  }
  return 0;
}

static int check_claims(struct ctx *c, const struct rc_jwt_policy *pol, int64_t now_s,
                        struct rc_jwt_grant **out) {
  struct rc_json_span obj;
  int rc = object_of(c, c->pay, c->pay_len, "payload", &obj);
  if (rc != 0) return rc;
  double exp = 0, nbf = 0, iat = 0;
  double now = (double)now_s, leeway = (double)(pol->leeway_s > 0 ? pol->leeway_s : 0);
  int has_exp = number_claim(c, &obj, "exp", &exp);
  if (has_exp < 0) return has_exp;
  int has_nbf = number_claim(c, &obj, "nbf", &nbf);
  if (has_nbf < 0) return has_nbf;
  if ((rc = number_claim(c, &obj, "iat", &iat)) < 0) return rc;
  /* RFC 7519 4.1.4: valid only before exp; 4.1.5: not before nbf. */
  if (has_exp == 0 && now - leeway >= exp)
    return fail(c, RC_JWT_EXPIRED, "token expired at %lld", (long long)to_seconds(exp));
  if (has_nbf == 0 && now + leeway < nbf)
    return fail(c, RC_JWT_NOT_YET_VALID, "token not valid before %lld", (long long)to_seconds(nbf));
  if ((rc = check_issuer(c, &obj, pol->issuer)) != 0) return rc;
  if ((rc = check_audience(c, &obj, pol->audience)) != 0) return rc;
  return build_grant(c, &obj, has_exp == 0 ? to_seconds(exp) : 0, out);
}

/* Which keys to try, a bit per key in *mask: with a kid in the header only
 * that key, else every key of the header's alg. 0 or a reason. */
static int select_keys(struct ctx *c, const struct rc_jwt_keyring *kr, const struct rc_json_span *h,
                       uint32_t *mask) {
  struct rc_json_span a, k, crit;
  char shown[SHOW_MAX + 4];
  int rc = member(c, c->hdr, h, "alg", "header", &a);
  if (rc < 0) return rc;
  if (rc == 1 || a.type != RC_JSON_STRING)
    return fail(c, RC_JWT_MALFORMED, "header alg is missing or not a string");
  /* RFC 7515 4.1.11: extensions the reader does not know must fail, and this
   * reader knows none. */
  if ((rc = member(c, c->hdr, h, "crit", "header", &crit)) < 0) return rc;
  if (rc == 0) return fail(c, RC_JWT_MALFORMED, "header has crit, no extensions are understood");

  size_t an;
  const uint8_t *as = string_of(c, c->hdr, &a, &an);
  if (an == 4 && memcmp(as, "none", 4) == 0)
    return fail(c, RC_JWT_ALG_NONE, "token alg none (unsigned) is refused");
  enum rc_jwt_alg alg = alg_from_name(as, an);
  char alg_shown[SHOW_MAX + 4];
  show(alg_shown, as, an);

  rc = member(c, c->hdr, h, "kid", "header", &k);
  if (rc < 0) return rc;
  *mask = 0;
  if (rc == 0) {
    if (k.type != RC_JSON_STRING) return fail(c, RC_JWT_MALFORMED, "header kid is not a string");
    size_t kn;
    const uint8_t *ks = string_of(c, c->hdr, &k, &kn);
    for (size_t i = 0; i < kr->n; i++) {
      const struct rc_jwt_key *key = kr->keys[i];
      if (!key->kid[0] || !bytes_equal_str(ks, kn, key->kid)) continue;
      if (key->alg != alg)
        return fail(c, RC_JWT_ALG_MISMATCH, "token alg %s does not match key '%s' (%s)", alg_shown,
                    key->label, rc_jwt_alg_name(key->alg));
      *mask = 1u << i;
      return 0;
    }
    return fail(c, RC_JWT_UNKNOWN_KID, "token kid '%s' names no key", show(shown, ks, kn));
  }
  for (size_t i = 0; i < kr->n; i++)
    if (kr->keys[i]->alg == alg) *mask |= 1u << i;
  if (!*mask) return fail(c, RC_JWT_ALG_MISMATCH, "token alg %s matches no key", alg_shown);
  return 0;
}
static_assert(RC_JWT_MAX_KEYS <= 32, "key masks are 32 bits");

int rc_jwt_verify(const struct rc_jwt_keyring *kr, const struct rc_jwt_policy *pol,
                  const char *token, size_t len, int64_t now_s, struct rc_jwt_grant **out,
                  char *err, size_t errsz) {
  static const struct rc_jwt_policy no_policy = {0};
  if (!pol) pol = &no_policy;
  *out = NULL;
  if (err && errsz) err[0] = 0;
  /* Heap, not stack: two token-sized buffers are too much for a shard's
   * frame, and one allocation per login is nothing. */
  struct ctx *c = malloc(sizeof *c);
  if (!c) {
    msg(err, errsz, "out of memory");
    return RC_JWT_INTERNAL;
  }
  c->err = err;
  c->errsz = errsz;
  int rc = RC_JWT_MALFORMED;
  if (len > RC_JWT_MAX_TOKEN) {
    rc = fail(c, RC_JWT_MALFORMED, "token is %zu bytes, at most %d allowed", len, RC_JWT_MAX_TOKEN);
    goto out;
  }
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
    size_t parts = 1;
    for (size_t i = 0; i < len; i++)
      parts += token[i] == '.';
    rc = fail(c, RC_JWT_MALFORMED, "token has %zu parts, not 3", parts);
    goto out;
  }
  size_t hl = (size_t)(d1 - token), pl = (size_t)(d2 - d1 - 1), sl = len - (size_t)(d2 + 1 - token);
  long hn = b64url_decode(token, hl, c->text);
  long pn = hn < 0 ? -1 : b64url_decode(d1 + 1, pl, c->text + hn);
  if (hn <= 0 || pn <= 0) {
    rc = fail(c, RC_JWT_MALFORMED, "token %s is empty or not base64url",
              hn <= 0 ? "header" : "payload");
    goto out;
  }
  c->hdr = c->text;
  c->hdr_len = (size_t)hn;
  c->pay = c->text + hn;
  c->pay_len = (size_t)pn;

  struct rc_json_span h;
  uint32_t mask;
  if ((rc = object_of(c, c->hdr, c->hdr_len, "header", &h)) != 0) goto out;
  if ((rc = select_keys(c, kr, &h, &mask)) != 0) goto out;

  uint8_t sig[SIG_MAX];
  long sn = sl <= SIG_MAX * 4 / 3 + 1 ? b64url_decode(d2 + 1, sl, sig) : -1;
  if (sn < 0) {
    rc = fail(c, RC_JWT_MALFORMED, "token signature is not base64url, or too long");
    goto out;
  }
  /* The signing input is the first two parts exactly as sent (RFC 7515 5.2). */
  const uint8_t *input = (const uint8_t *)token;
  size_t input_len = (size_t)(d2 - token);
  bool verified = false;
  const struct rc_jwt_key *last = NULL;
  size_t tried = 0;
  for (size_t i = 0; i < kr->n && !verified; i++) {
    if (!(mask & (1u << i))) continue;
    last = kr->keys[i];
    tried++;
    int v = verify_with(last, input, input_len, sig, (size_t)sn);
    if (v < 0) {
      rc = fail(c, RC_JWT_INTERNAL, "wolfCrypt failed with key '%s'", last->label);
      goto out;
    }
    verified = v == 1;
  }
  if (!verified) {
    if (tried == 1)
      rc = fail(c, RC_JWT_BAD_SIGNATURE, "signature does not verify with key '%s' (%s)",
                last->label, rc_jwt_alg_name(last->alg));
    else
      rc = fail(c, RC_JWT_BAD_SIGNATURE, "signature verifies with none of the %zu %s keys", tried,
                rc_jwt_alg_name(last->alg));
    goto out;
  }
  rc = check_claims(c, pol, now_s, out);
out:
  free(c);
  return rc;
}

void rc_jwt_thread_exit(void) { wc_ecc_fp_free(); }
