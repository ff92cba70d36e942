/* SPDX-License-Identifier: MIT */
/* Access control, server-wide and read-only once built: who may subscribe and
 * publish (JWTs from --jwt-key, static keys from --publish-key-file), which
 * browser origins may open WebSockets (--allow-origin), and which peers' proxy
 * headers are believed for the client address (--trust-proxy). Every refusal is
 * counted by reason. Any thread. */
#ifndef RINGCAST_SESSION_ACCESS_H
#define RINGCAST_SESSION_ACCESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ringcast/io/conn.h"
#include "ringcast/proto/http.h"
#include "ringcast/proto/jwt.h"
#include "ringcast/util/config.h"

/* Why access was refused: ringcast_auth_refusals_total{reason=...}. The JWT
 * verifier's reasons follow RC_ACCESS_JWT (rc_jwt_reason_name gives their label). */
enum rc_access_reason {
  RC_ACCESS_MISSING = 0,      /* no credential presented */
  RC_ACCESS_BAD_HEADER,       /* an Authorization, token= or cookie that cannot be read */
  RC_ACCESS_ORIGIN,           /* a browser page from an origin not in --allow-origin */
  RC_ACCESS_TOPIC,            /* a topic outside what the credential allows */
  RC_ACCESS_AUTH_TIMEOUT,     /* no auth command within --handshake-timeout */
  RC_ACCESS_EXPIRED_LIVE,     /* the token expired while connected */
  RC_ACCESS_UNKNOWN_KEY,      /* not a --publish-key-file key (and no --jwt-key to try) */
  RC_ACCESS_JWT,              /* + (-rc_jwt_reason - 1) */
  RC_ACCESS_REASONS = RC_ACCESS_JWT + RC_JWT_REASONS - 1
};

/* A connection's or request's credential. */
enum rc_auth_kind {
  RC_AUTH_OPEN = 0,   /* no credential needed: the server runs without keys */
  RC_AUTH_PENDING,    /* a WebSocket waiting for its {"op":"auth"} */
  RC_AUTH_KEY,        /* a static publish key: every topic */
  RC_AUTH_TOKEN,      /* a JWT: its grant's topics */
};

struct rc_auth {
  uint8_t kind;                 /* enum rc_auth_kind */
  struct rc_jwt_grant *grant;   /* RC_AUTH_TOKEN: owned */
};

struct rc_access;

/* Main thread: reads the key files and parses the patterns. 0, or -EINVAL after
 * logging a message that names the flag. */
int rc_access_create(const struct rc_config *cfg, struct rc_access **out);
void rc_access_destroy(struct rc_access *a);
/* Whether a credential is needed for anything (a key of either kind is set). */
bool rc_access_required(const struct rc_access *a);

/* Whether the connection's peer is one of --trust-proxy. */
bool rc_access_trusted_peer(const struct rc_access *a, const struct rc_conn *c);
/* The client behind a trusted proxy (peer_family/peer: the TCP peer), from the
 * request's proxy headers: 1 with family and addr set when the headers name one;
 * 0 when they name none, or a negative errno when they cannot be used
 * (-EBADMSG malformed, -ENODATA client unknown, -E2BIG too many hops): the proxy
 * is then the client. */
int rc_access_client_addr(const struct rc_access *a, uint8_t peer_family, const uint8_t peer[16],
                          const struct rc_http_request *r, uint8_t *family, uint8_t addr[16]);

/* A browser upgrade's Origin against --allow-origin: true when allowed (no
 * pattern set, no Origin header: not a browser). */
bool rc_access_origin_allowed(const struct rc_access *a, const struct rc_http_request *r);

/* The credential a request carries (Authorization: Bearer, ?token=, the
 * --jwt-cookie cookie): 0 with *out set (OPEN when no key is configured), or -1
 * with *reason (enum rc_access_reason, counted) and a message for the client in
 * msg. A request without any credential is RC_ACCESS_MISSING. */
int rc_access_from_request(struct rc_access *a, const struct rc_http_request *r, struct rc_auth *out,
                           int *reason, char *msg, size_t size);
/* Whether the request carries a credential at all (one may be unreadable). */
bool rc_access_presented(const struct rc_access *a, const struct rc_http_request *r);
/* The same for a token (or static key) sent in an auth command. */
int rc_access_from_token(struct rc_access *a, const char *tok, size_t len, struct rc_auth *out,
                         int *reason, char *msg, size_t size);
/* Whether the credential allows subscribing or publishing to the topic, or,
 * when it holds a wildcard, to everything the pattern matches. */
bool rc_access_allows(const struct rc_auth *auth, enum rc_jwt_right right, const char *topic,
                      size_t len);
/* The token's exp (wall-clock seconds); 0: none. */
int64_t rc_access_expiry(const struct rc_auth *auth);
/* When a connection holding the credential is closed: exp plus --jwt-leeway, the
 * same allowance the token had when it was accepted; 0: never. */
int64_t rc_access_deadline(const struct rc_access *a, const struct rc_auth *auth);
void rc_auth_clear(struct rc_auth *auth);

void rc_access_count(struct rc_access *a, int reason);
/* Label of a reason for /metrics and logs. */
const char *rc_access_reason_name(int reason);
uint64_t rc_access_refusals(const struct rc_access *a, int reason);
uint64_t rc_access_accepted(const struct rc_access *a, enum rc_auth_kind kind);

#endif
