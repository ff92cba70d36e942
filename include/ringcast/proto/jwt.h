/* SPDX-License-Identifier: MIT */
/* JSON Web Tokens (RFC 7519, compact JWS of RFC 7515) for client authentication:
 * a keyring of verification keys, token verification against it, and the grant a
 * valid token yields (which topics it may subscribe and publish to). Pure apart
 * from reading key files; signatures are checked with wolfCrypt. */
#ifndef RINGCAST_PROTO_JWT_H
#define RINGCAST_PROTO_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_JWT_MAX_KEYS 16
/* Longer tokens are refused before any decoding. */
#define RC_JWT_MAX_TOKEN 8192
/* Patterns per list ("sub", "pub") in the ringcast claim. */
#define RC_JWT_MAX_PATTERNS 64
/* The subject kept for logs is cut to this many bytes. */
#define RC_JWT_SUBJECT_MAX 64
#define RC_JWT_KID_MAX 64
/* HMAC secrets shorter than this are refused: RFC 7518 3.2 asks for a key at
 * least as long as the hash output. */
#define RC_JWT_MIN_SECRET 32

/* The algorithm belongs to the key, never to the token. */
enum rc_jwt_alg { RC_JWT_HS256 = 1, RC_JWT_RS256, RC_JWT_ES256 };

/* What rc_jwt_verify returns: 0, or one of these (negative). */
enum rc_jwt_reason {
  RC_JWT_OK = 0,
  RC_JWT_MALFORMED = -1,    /* not three base64url parts of JSON objects, or too long */
  RC_JWT_ALG_NONE = -2,     /* alg "none": unsigned tokens are never accepted */
  RC_JWT_ALG_MISMATCH = -3, /* token alg differs from the key's, or no key has it */
  RC_JWT_UNKNOWN_KID = -4,  /* the header names a kid the keyring does not hold */
  RC_JWT_BAD_SIGNATURE = -5,
  RC_JWT_EXPIRED = -6,
  RC_JWT_NOT_YET_VALID = -7,
  RC_JWT_AUDIENCE = -8,
  RC_JWT_ISSUER = -9,
  RC_JWT_CLAIMS = -10,   /* a bad "ringcast" claim */
  RC_JWT_INTERNAL = -11, /* out of memory, or wolfCrypt failed to set up */
};
/* -reason indexes a per-reason counter array of this many entries (0 is ok). */
#define RC_JWT_REASONS 12

/* A short snake_case label for a reason, for metrics ("bad_signature");
 * "unknown" for anything else. Static storage. */
const char *rc_jwt_reason_name(int reason);

struct rc_jwt_key;

/* The verification keys. A zeroed struct is an empty keyring. Built at start-up
 * by one thread; afterwards only read, so any number of threads may verify
 * against it at once (wolfCrypt key objects keep per-operation state, so each
 * verification decodes its own from the bytes kept here). */
struct rc_jwt_keyring {
  struct rc_jwt_key *keys[RC_JWT_MAX_KEYS]; /* owned */
  size_t n;
};

/* Adds the key named by spec, the --jwt-key flag's value: "FILE" or
 * "FILE,kid=NAME" (FILE may not hold a comma; NAME is 1..64 printable ASCII
 * bytes, unique in the keyring). The file is read whole (at most 64 KiB) and is
 *   - a PEM public key ("BEGIN PUBLIC KEY"): RSA of 2048 bits or more is RS256,
 *     EC on P-256 is ES256;
 *   - a PEM certificate ("BEGIN CERTIFICATE"): its public key, as above (the
 *     certificate is only a container here: its dates and issuer are not checked);
 *   - anything else without a PEM header: an HMAC secret for HS256, the raw
 *     bytes less trailing CR/LF, at least RC_JWT_MIN_SECRET of them.
 * Other PEM blocks (private keys above all) are refused rather than taken as a
 * secret. Returns 0, or a negative errno with a message naming the file in err:
 * -ENOENT/-EACCES/... unreadable, -EINVAL bad content or spec, -EEXIST kid
 * taken, -ENOSPC keyring full, -ENOMEM. */
int rc_jwt_keyring_add_file(struct rc_jwt_keyring *kr, const char *spec, char *err, size_t errsz);
/* The same for key bytes already in memory: buf[0..len) is read as a file's
 * contents would be; kid may be NULL; label names the key in messages when it
 * has no kid (the file name, for rc_jwt_keyring_add_file). */
int rc_jwt_keyring_add_mem(struct rc_jwt_keyring *kr, const void *buf, size_t len, const char *kid,
                           const char *label, char *err, size_t errsz);
/* Frees every key; the keyring is empty afterwards. */
void rc_jwt_keyring_free(struct rc_jwt_keyring *kr);
/* The algorithm of key i (< kr->n), for start-up logs. */
enum rc_jwt_alg rc_jwt_keyring_alg(const struct rc_jwt_keyring *kr, size_t i);
const char *rc_jwt_alg_name(enum rc_jwt_alg alg);

/* What a token must satisfy besides its signature. */
struct rc_jwt_policy {
  int64_t leeway_s;     /* clock skew allowed on exp and nbf, >= 0 */
  const char *audience; /* NULL: tokens must carry no aud (RFC 7519 4.1.3: a
                           server with no name cannot find itself in one) */
  const char *issuer;   /* NULL: any iss, or none */
};

/* Rights a grant gives. */
enum rc_jwt_right { RC_JWT_SUB = 0, RC_JWT_PUB = 1 };

/* Opaque: one heap block, kept per connection. */
struct rc_jwt_grant;

/* Verifies token[0..len) at time now_s (seconds since the epoch):
 *   - the header's alg must be the key's; with a kid only the key of that kid
 *     is tried, without one every key of the header's alg;
 *   - exp, nbf (numbers when present) hold within pol->leeway_s; iat must be a
 *     number when present but is not compared;
 *   - aud (a string or array of strings) and iss (a string) against pol;
 *   - the "ringcast" claim, {"sub": [patterns], "pub": [patterns]}, each list
 *     optional and at most RC_JWT_MAX_PATTERNS valid topic patterns. A token
 *     without it is a valid identity that grants nothing.
 * Duplicate member names anywhere in header or claims are malformed. Returns 0
 * with *out set (owned by the caller: rc_jwt_grant_free), or a negative
 * enum rc_jwt_reason with *out NULL and a one-line message for logs in err
 * (what the token holds is cut and escaped there, never copied raw). pol NULL
 * is leeway 0, no audience, any issuer. Reads kr and pol only: safe to call
 * from many threads at once. ES256 fills wolfCrypt's per-thread point cache
 * (FP_ECC in Debian's build): a thread that verified ES256 tokens calls
 * rc_jwt_thread_exit() before it exits. */
int rc_jwt_verify(const struct rc_jwt_keyring *kr, const struct rc_jwt_policy *pol,
                  const char *token, size_t len, int64_t now_s, struct rc_jwt_grant **out,
                  char *err, size_t errsz);

/* NULL is fine. */
void rc_jwt_grant_free(struct rc_jwt_grant *g);
/* Whether the grant allows right r on topic[0..len) (false for an invalid
 * topic name). Linear in the size of the grant's pattern list. */
bool rc_jwt_grant_allows(const struct rc_jwt_grant *g, enum rc_jwt_right r, const char *topic,
                         size_t len);
/* Whether one of the grant's patterns for right r covers the whole of pattern
 * (every name it matches): a wildcard subscription needs that, so a grant of
 * quotes.* allows quotes.* but not quotes.> or >. False for an invalid pattern.
 * One grant pattern must cover it alone (quotes.* and quotes.*.* together do
 * not cover quotes.>, which also matches longer names). */
bool rc_jwt_grant_covers(const struct rc_jwt_grant *g, enum rc_jwt_right r, const char *pattern,
                         size_t len);
/* The token's exp, floored to whole seconds (INT64_MAX past that), or 0 when it
 * had none. */
int64_t rc_jwt_grant_expiry(const struct rc_jwt_grant *g);
/* The sub claim, NUL-terminated, at most RC_JWT_SUBJECT_MAX bytes (cut at a
 * UTF-8 boundary; control characters and invalid UTF-8 shown as '?'); "" when
 * the token had none. Lives as long as the grant. */
const char *rc_jwt_grant_subject(const struct rc_jwt_grant *g);
/* Bytes the grant's heap block takes, for memory accounting. */
size_t rc_jwt_grant_size(const struct rc_jwt_grant *g);

/* Frees what wolfCrypt keeps per thread (its ECC point cache); any thread, as it
 * exits; harmless when it holds nothing. */
void rc_jwt_thread_exit(void);

#endif
