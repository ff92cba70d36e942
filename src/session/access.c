/* SPDX-License-Identifier: MIT */
/* Access control: the keys, origins and trusted proxies from the flags, and the
 * checks the HTTP routes and WebSocket commands make with them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/proto/credential.h"
#include "ringcast/proto/origin.h"
#include "ringcast/proto/proxy.h"
#include "ringcast/proto/topic_pattern.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "access.h"

struct rc_access {
  bool required;
  struct rc_jwt_keyring keys;
  struct rc_jwt_policy policy;
  struct rc_publish_keys pubkeys;
  const char *cookie;
  struct rc_origin_pattern origins[RC_CONFIG_MAX_ORIGINS];
  unsigned n_origins;
  struct rc_cidr trusted[RC_CONFIG_MAX_PROXIES];
  unsigned n_trusted;
  _Atomic uint64_t refused[RC_ACCESS_REASONS];
  _Atomic uint64_t accepted_keys, accepted_tokens;
};

static const char *const local_reasons[RC_ACCESS_JWT] = {
    [RC_ACCESS_MISSING] = "missing_credential",
    [RC_ACCESS_BAD_HEADER] = "unreadable_credential",
    [RC_ACCESS_ORIGIN] = "origin",
    [RC_ACCESS_TOPIC] = "topic_not_allowed",
    [RC_ACCESS_AUTH_TIMEOUT] = "auth_timeout",
    [RC_ACCESS_EXPIRED_LIVE] = "expired_while_connected",
    [RC_ACCESS_UNKNOWN_KEY] = "unknown_key",
};

const char *rc_access_reason_name(int reason) {
  if (reason < 0 || reason >= RC_ACCESS_REASONS) return "unknown";
  if (reason < RC_ACCESS_JWT) return local_reasons[reason];
  return rc_jwt_reason_name(-(reason - RC_ACCESS_JWT) - 1);
}

int rc_access_create(const struct rc_config *cfg, struct rc_access **out) {
  struct rc_access *a = calloc(1, sizeof *a);
  if (!a) return -ENOMEM;
  char err[512];
  for (unsigned i = 0; i < cfg->n_jwt_keys; i++) {
    if (rc_jwt_keyring_add_file(&a->keys, cfg->jwt_keys[i], err, sizeof err) < 0) {
      rc_err("--jwt-key %s: %s", cfg->jwt_keys[i], err);
      goto fail;
    }
  }
  a->policy = (struct rc_jwt_policy){
      .leeway_s = cfg->jwt_leeway, .audience = cfg->jwt_audience, .issuer = cfg->jwt_issuer};
  if (cfg->publish_key_file &&
      rc_publish_keys_load(cfg->publish_key_file, &a->pubkeys, err, sizeof err) < 0) {
    rc_err("--publish-key-file %s: %s", cfg->publish_key_file, err);
    goto fail;
  }
  for (unsigned i = 0; i < cfg->n_allow_origins; i++) {
    if (rc_origin_pattern_parse(cfg->allow_origins[i], &a->origins[i], err, sizeof err) < 0) {
      rc_err("--allow-origin %s: %s", cfg->allow_origins[i], err);
      goto fail;
    }
  }
  a->n_origins = cfg->n_allow_origins;
  for (unsigned i = 0; i < cfg->n_trust_proxies; i++) {
    if (rc_cidr_parse(cfg->trust_proxies[i], &a->trusted[i], err, sizeof err) < 0) {
      rc_err("--trust-proxy %s: %s", cfg->trust_proxies[i], err);
      goto fail;
    }
  }
  a->n_trusted = cfg->n_trust_proxies;
  a->cookie = cfg->jwt_cookie;
  a->required = a->keys.n > 0 || a->pubkeys.n > 0;
  if (!a->required)
    rc_warn("no --jwt-key or --publish-key-file: anyone may subscribe to and publish on any topic "
            "(/healthz says \"auth\":\"open\")");
  if (cfg->jwt_cookie && !a->n_origins)
    rc_warn("--jwt-cookie without --allow-origin: a page from any site can open a WebSocket "
            "with a visitor's cookie; name the origins allowed");
  if ((cfg->jwt_audience || cfg->jwt_issuer || cfg->jwt_cookie) && !a->keys.n)
    rc_warn("--jwt-audience, --jwt-issuer and --jwt-cookie have no effect without --jwt-key");
  for (size_t i = 0; i < a->keys.n; i++)
    rc_info("JWT key %s: %s", cfg->jwt_keys[i], rc_jwt_alg_name(rc_jwt_keyring_alg(&a->keys, i)));
  *out = a;
  return 0;
fail:
  rc_access_destroy(a);
  return -EINVAL;
}

void rc_access_destroy(struct rc_access *a) {
  if (!a) return;
  rc_jwt_keyring_free(&a->keys);
  rc_publish_keys_fini(&a->pubkeys);
  free(a);
}

bool rc_access_required(const struct rc_access *a) { return a->required; }

bool rc_access_trusted_peer(const struct rc_access *a, const struct rc_conn *c) {
  return a->n_trusted && rc_cidr_list_contains(a->trusted, a->n_trusted, c->peer_family, c->peer_addr);
}

int rc_access_client_addr(const struct rc_access *a, uint8_t peer_family, const uint8_t peer[16],
                          const struct rc_http_request *r, uint8_t *family, uint8_t addr[16]) {
  int fam;
  uint8_t got[16] = {0};
  int src = rc_proxy_client_addr(a->trusted, a->n_trusted, RC_PROXY_USE_ALL, peer_family, peer,
                                 r->headers, r->n_headers, &fam, got);
  if (src <= 0) return src;
  *family = (uint8_t)fam;
  memcpy(addr, got, 16);
  return 1;
}

bool rc_access_origin_allowed(const struct rc_access *a, const struct rc_http_request *r) {
  if (!a->n_origins) return true;
  const struct rc_http_header *o = rc_http_find_header(r, "Origin");
  if (!o) return true; /* not a browser: judged by its credential alone */
  return rc_origin_allowed(a->origins, a->n_origins, o->value, o->value_len);
}

static int refuse(struct rc_access *a, int reason, int *out, char *msg, size_t size, const char *text) {
  rc_access_count(a, reason);
  *out = reason;
  snprintf(msg, size, "%s", text);
  return -1;
}

int rc_access_from_token(struct rc_access *a, const char *tok, size_t len, struct rc_auth *out,
                         int *reason, char *msg, size_t size) {
  memset(out, 0, sizeof *out);
  if (!a->required) return 0;
  /* A static key first: the comparison takes the same time whatever it holds. */
  if (a->pubkeys.n && rc_publish_keys_match(&a->pubkeys, tok, len)) {
    out->kind = RC_AUTH_KEY;
    rc_counter_add(&a->accepted_keys, 1);
    return 0;
  }
  if (!a->keys.n)
    return refuse(a, RC_ACCESS_UNKNOWN_KEY, reason, msg, size,
                  "credential is not a known --publish-key-file key");
  char err[256];
  int ret = rc_jwt_verify(&a->keys, &a->policy, tok, len, (int64_t)time(NULL), &out->grant, err,
                          sizeof err);
  if (ret < 0) {
    char text[320];
    snprintf(text, sizeof text, "token refused: %s", err);
    return refuse(a, RC_ACCESS_JWT + (-ret - 1), reason, msg, size, text);
  }
  out->kind = RC_AUTH_TOKEN;
  rc_counter_add(&a->accepted_tokens, 1);
  return 0;
}

bool rc_access_presented(const struct rc_access *a, const struct rc_http_request *r) {
  const char *tok, *why;
  size_t len;
  char probe[RC_CREDENTIAL_TOKEN_MAX + 1];
  if (rc_http_find_header(r, "Authorization")) return true;
  if (r->query && rc_credential_query(r->query, r->query_len, probe, sizeof probe, &len, &why) != -ENOENT)
    return true;
  return a->cookie && rc_credential_cookie(r->headers, r->n_headers, a->cookie, &tok, &len, &why) != -ENOENT;
}

int rc_access_from_request(struct rc_access *a, const struct rc_http_request *r, struct rc_auth *out,
                           int *reason, char *msg, size_t size) {
  memset(out, 0, sizeof *out);
  if (!a->required) return 0;
  const char *tok = NULL, *why = NULL;
  size_t len = 0;
  char qbuf[RC_CREDENTIAL_TOKEN_MAX + 1];
  int ret = rc_credential_bearer(r->headers, r->n_headers, &tok, &len, &why);
  if (ret == -ENOENT && r->query)
    ret = rc_credential_query(r->query, r->query_len, qbuf, sizeof qbuf, &len, &why), tok = qbuf;
  if (ret == -ENOENT && a->cookie)
    ret = rc_credential_cookie(r->headers, r->n_headers, a->cookie, &tok, &len, &why);
  if (ret == -ENOENT)
    return refuse(a, RC_ACCESS_MISSING, reason, msg, size,
                  "a credential is needed: Authorization: Bearer <token or key>, ?token=, or the "
                  "--jwt-cookie cookie");
  if (ret < 0) {
    char text[256];
    snprintf(text, sizeof text, "credential unreadable: %s", why ? why : "malformed");
    return refuse(a, RC_ACCESS_BAD_HEADER, reason, msg, size, text);
  }
  return rc_access_from_token(a, tok, len, out, reason, msg, size);
}

bool rc_access_allows(const struct rc_auth *auth, enum rc_jwt_right right, const char *topic,
                      size_t len) {
  switch (auth->kind) {
  case RC_AUTH_OPEN:
  case RC_AUTH_KEY: return true;
  case RC_AUTH_TOKEN:
    /* A wildcard subscription is allowed only where the grant covers all it
     * can match, including topics that do not exist yet. */
    return rc_topic_pattern_has_wildcard(topic, len)
               ? rc_jwt_grant_covers(auth->grant, right, topic, len)
               : rc_jwt_grant_allows(auth->grant, right, topic, len);
  default: return false;
  }
}

int64_t rc_access_expiry(const struct rc_auth *auth) {
  return auth->kind == RC_AUTH_TOKEN ? rc_jwt_grant_expiry(auth->grant) : 0;
}

int64_t rc_access_deadline(const struct rc_access *a, const struct rc_auth *auth) {
  int64_t exp = rc_access_expiry(auth);
  return exp ? exp + a->policy.leeway_s : 0;
}

void rc_auth_clear(struct rc_auth *auth) {
  if (auth->grant) rc_jwt_grant_free(auth->grant);
  auth->grant = NULL;
  auth->kind = RC_AUTH_OPEN;
}

void rc_access_count(struct rc_access *a, int reason) {
  if (reason >= 0 && reason < RC_ACCESS_REASONS) rc_counter_add(&a->refused[reason], 1);
}

uint64_t rc_access_refusals(const struct rc_access *a, int reason) {
  return rc_counter_get(&a->refused[reason]);
}

uint64_t rc_access_accepted(const struct rc_access *a, enum rc_auth_kind kind) {
  return rc_counter_get(kind == RC_AUTH_KEY ? &a->accepted_keys : &a->accepted_tokens);
}
