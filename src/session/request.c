/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 on the WebSocket port: the upgrade to WebSocket, POST /publish (single
 * and batch), GET /metrics, GET /healthz, GET /readyz and the status page, keep-alive and
 * pipelining. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "ringcast/proto/http.h"
#include "ringcast/proto/position.h"
#include "ringcast/proto/topic_pattern.h"
#include "ringcast/proto/publish_batch.h"
#include "ringcast/proto/ws.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/json_out.h"
#include "ringcast/util/log.h"
#include "delivery.h"
#include "drain.h"
#include "request.h"
#include "redis_link.h"
#include "metrics_page.h"
#include "status_page.h"
#include "websocket.h"

/* A batch body may carry many messages; each is still bounded by --max-message. */
#define BATCH_MAX_BODY (16u << 20)
/* Records in one batch: a request is handled in one go on its shard, so its
 * work is bounded (about 100 ms) however small its records are. */
#define BATCH_MAX_RECORDS 100000u

void rc_request_respond(struct rc_loop *l, struct rc_session *s, int status,
                        const char *content_type, const char *extra_headers, const void *body,
                        size_t body_len, bool close_after) {
  char head[512];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nServer: ringcast\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\n%s%s\r\n",
                    status, rc_http_reason(status), content_type, body_len,
                    extra_headers ? extra_headers : "", close_after ? "Connection: close\r\n" : "");
  struct rc_frame *f = rc_frame_create((uint16_t)rc_loop_id(l), (size_t)hl + body_len);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  /* An HTTP connection's attempt succeeds with its first answer that is not an
   * error, or that keeps the connection (a 404 on a keep-alive connection is an
   * exchange that worked); an error that closes it leaves the decision to the
   * close (handshake_failed), and refusals decided theirs before answering. */
  if (status < 400 || !close_after) rc_session_attempt(l, s, RC_ATTEMPT_ACCEPTED);
  memcpy(f->data, head, (size_t)hl);
  if (body_len) memcpy(f->data + hl, body, body_len);
  if (rc_session_send_frame(l, s, f) < 0) return;
  if (close_after) rc_session_close(l, s, 0, NULL, false);
}

void rc_request_error(struct rc_loop *l, struct rc_session *s, int status, bool close_after,
                      const char *extra_headers, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t ml = n < 0 ? 0 : ((size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  char body[sizeof msg * 6 + 32];
  size_t bl = (size_t)snprintf(body, sizeof body, "{\"error\":\"");
  bl += rc_json_escape(body + bl, (const uint8_t *)msg, ml);
  bl += (size_t)snprintf(body + bl, sizeof body - bl, "\"}\n");
  char peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  /* Input that ends the connection is logged at info; ordinary client mistakes
   * on a keep-alive connection (404, a bad topic in a publish) only at debug. */
  if (close_after) rc_info("%s: HTTP %d: %s", peer, status, msg);
  else rc_debug("%s: HTTP %d: %s", peer, status, msg);
  rc_request_respond(l, s, status, "application/json", extra_headers, body, bl, close_after);
}

/* The request's credential, or its refusal answered (401, with the reason and
 * how to present one). A refused credential ends the connection: each forged
 * token then costs its sender a connection (bounded by --connect-rate-per-ip),
 * not one pipelined request of many, since checking a signature costs the
 * server tens to hundreds of microseconds. */
static bool authenticate(struct rc_loop *l, struct rc_session *s, const struct rc_http_request *r,
                         struct rc_auth *auth) {
  int reason;
  char msg[384], peer[64];
  if (rc_access_from_request(rc_session_shard_of(l)->access, r, auth, &reason, msg, sizeof msg) == 0)
    return true;
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  rc_info("%s: %.*s %.*s refused with 401 (%s): %s", peer, (int)r->method_len, r->method,
          (int)(r->path_len > 100 ? 100 : r->path_len), r->path, rc_access_reason_name(reason), msg);
  rc_session_mark_end(s, RC_END_AUTH);
  rc_session_attempt(l, s, RC_ATTEMPT_AUTH_FAILED);
  rc_request_error(l, s, 401, true, "WWW-Authenticate: Bearer realm=\"ringcast\"\r\n", "%s", msg);
  return false;
}

/* 403 for a topic the credential does not cover. */
static bool allowed(struct rc_loop *l, struct rc_session *s, const struct rc_auth *auth,
                    enum rc_jwt_right right, const char *topic, size_t len, bool close_after) {
  if (rc_access_allows(auth, right, topic, len)) return true;
  char peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  const char *what = right == RC_JWT_SUB ? "subscribing to" : "publishing to";
  rc_info("%s: refused with 403: token of '%s' does not allow %s '%.*s'", peer,
          auth->grant ? rc_jwt_grant_subject(auth->grant) : "?", what, (int)(len > 140 ? 140 : len), topic);
  rc_access_count(rc_session_shard_of(l)->access, RC_ACCESS_TOPIC);
  if (close_after) rc_session_mark_end(s, RC_END_AUTH);
  rc_session_attempt(l, s, RC_ATTEMPT_AUTH_FAILED);
  rc_request_error(l, s, 403, close_after, NULL, "your token does not allow %s '%.*s'", what,
                   (int)(len > 140 ? 140 : len), topic);
  return false;
}

static bool path_is(const struct rc_http_request *r, const char *p) {
  size_t n = strlen(p);
  return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static void bad_topic(struct rc_loop *l, struct rc_session *s, int ret, bool close_after,
                      const char *name, size_t len) {
  if (ret == -EINVAL)
    rc_request_error(l, s, 400, close_after, NULL,
                     "invalid topic name '%.*s': 1-128 characters of A-Z a-z 0-9 . _ - : / @ "
                     "(and a leading $ for the server's own topics)",
                     (int)(len > 200 ? 200 : len), name);
  else
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s ('%.*s')",
                     rc_session_topic_refusal(ret), (int)(len > 200 ? 200 : len), name);
}

/* What a /ws URL asks of its subscriptions beyond topics=: resume positions
 * (since=TOPIC:EPOCH:SEQ,...), a snapshot (snapshot=1) and the slow-consumer
 * policy (policy=disconnect|conflate). */
struct stream_options {
  bool snapshot;
  uint8_t policy;
  unsigned n_since;
  struct {
    const char *topic;
    size_t len;
    uint64_t epoch, seq;
  } since[RC_SESSION_MAX_SUBS];
  char since_text[8192];
};

static bool query_flag(const struct rc_http_request *r, const char *name, bool *out, bool *bad) {
  char v[8];
  ssize_t n = rc_http_query_get(r->query, r->query_len, name, v, sizeof v);
  if (n == -ENOENT) return false;
  if (n >= 0 && (!strcmp(v, "1") || !strcmp(v, "true"))) *out = true;
  else if (n >= 0 && (!strcmp(v, "0") || !strcmp(v, "false"))) *out = false;
  else *bad = true;
  return true;
}

static bool stream_options(struct rc_loop *l, struct rc_session *s, const struct rc_http_request *r,
                           bool raw, struct stream_options *o) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  bool bad = false;
  o->snapshot = false;
  o->policy = ss->slow_policy;
  o->n_since = 0;
  if (query_flag(r, "snapshot", &o->snapshot, &bad) && bad) {
    rc_request_error(l, s, 400, true, NULL, "bad snapshot parameter: expected 1 or 0");
    return false;
  }
  char pol[16];
  ssize_t pl = rc_http_query_get(r->query, r->query_len, "policy", pol, sizeof pol);
  if (raw) o->policy = RC_SLOW_DISCONNECT; /* no envelope to announce a gap in */
  if (pl >= 0 && !strcmp(pol, "conflate") && raw) {
    rc_request_error(l, s, 400, true, NULL,
                     "policy=conflate needs the JSON envelope (gaps are announced in it); not format=raw");
    return false;
  }
  if (pl >= 0 && !strcmp(pol, "conflate")) o->policy = RC_SLOW_CONFLATE;
  else if (pl >= 0 && !strcmp(pol, "disconnect")) o->policy = RC_SLOW_DISCONNECT;
  else if (pl != -ENOENT) {
    rc_request_error(l, s, 400, true, NULL, "bad policy parameter: expected disconnect or conflate");
    return false;
  }
  ssize_t sl = rc_http_query_get(r->query, r->query_len, "since", o->since_text, sizeof o->since_text);
  if (sl == -ENOENT) return true;
  if (sl < 0) {
    rc_request_error(l, s, 400, true, NULL, "bad since parameter: %s",
                     sl == -ENOSPC ? "too long" : "invalid percent-encoding");
    return false;
  }
  if (raw) {
    rc_request_error(l, s, 400, true, NULL,
                     "since= needs the JSON envelope (gaps are announced in it); not format=raw");
    return false;
  }
  for (char *t = o->since_text, *e; t <= o->since_text + sl; t = e + 1) {
    e = strchr(t, ',');
    if (!e) e = o->since_text + sl;
    if (o->n_since == RC_SESSION_MAX_SUBS) {
      rc_request_error(l, s, 400, true, NULL, "more than %d positions in since=", RC_SESSION_MAX_SUBS);
      return false;
    }
    typeof(o->since[0]) *p = &o->since[o->n_since];
    if (rc_position_parse(t, (size_t)(e - t), &p->topic, &p->len, &p->epoch, &p->seq) < 0) {
      rc_request_error(l, s, 400, true, NULL,
                       "bad since item '%.*s': expected TOPIC:EPOCH:SEQ with the epoch's 16 hex "
                       "digits from the subscribe ack and the last seq received",
                       (int)(e - t > 200 ? 200 : e - t), t);
      return false;
    }
    o->n_since++;
  }
  return true;
}

/* The since= position named for topic tp, if any. */
static bool position_of(const struct stream_options *o, const struct rc_topic *tp, uint64_t *epoch,
                        uint64_t *seq) {
  for (unsigned i = 0; i < o->n_since; i++)
    if (o->since[i].len == tp->name_len && !memcmp(o->since[i].topic, tp->name, tp->name_len)) {
      *epoch = o->since[i].epoch;
      *seq = o->since[i].seq;
      return true;
    }
  return false;
}

/* Every since= position names one of topics=. */
static bool positions_named(struct rc_loop *l, struct rc_session *s, const struct stream_options *o,
                            struct rc_topic *const *list, unsigned n) {
  for (unsigned i = 0; i < o->n_since; i++) {
    unsigned k = 0;
    while (k < n && !(o->since[i].len == list[k]->name_len &&
                      !memcmp(o->since[i].topic, list[k]->name, list[k]->name_len)))
      k++;
    if (k == n) {
      rc_request_error(l, s, 400, true, NULL, "since= names '%.*s', which topics= does not",
                       (int)(o->since[i].len > 128 ? 128 : o->since[i].len), o->since[i].topic);
      return false;
    }
  }
  return true;
}

/* A wildcard pattern named in topics=. */
struct url_pattern {
  const char *p;
  size_t len;
};

/* A pattern in topics=: valid, within the per-connection limit, and without
 * what only exact topics take. */
static bool url_pattern_ok(struct rc_loop *l, struct rc_session *s, const char *p, size_t len,
                           bool raw, bool snapshot, unsigned held) {
  int pl = (int)(len > 140 ? 140 : len);
  if (!rc_topic_pattern_is_valid(p, len))
    rc_request_error(l, s, 400, true, NULL,
                     "'%.*s' is not a valid pattern: '*' and '>' stand for whole '.'-separated "
                     "segments, '>' only as the last", pl, p);
  else if (raw)
    rc_request_error(l, s, 400, true, NULL,
                     "format=raw carries one topic's payloads; not pattern '%.*s'", pl, p);
  else if (snapshot)
    rc_request_error(l, s, 400, true, NULL,
                     "snapshot=1 does not apply to pattern '%.*s' (no one topic to take it from)", pl, p);
  else if (held == RC_SESSION_MAX_PATTERNS)
    rc_request_error(l, s, 400, true, NULL, "more than %d patterns in topics=", RC_SESSION_MAX_PATTERNS);
  else if (atomic_load_explicit(&rc_session_shard_of(l)->srv->redis_cluster_masters, memory_order_relaxed))
    /* Relaxed: a flag the links set once they know, ordering nothing else. */
    rc_request_error(l, s, 400, true, NULL, "pattern '%.*s' refused: " RC_REDIS_LINK_NO_WILDCARDS, pl, p);
  else
    return true;
  return false;
}

/* Two of topics= that would deliver a message twice: 400 naming both. */
static bool url_overlap(struct rc_loop *l, struct rc_session *s, struct rc_topic *const *list,
                        unsigned n, const struct url_pattern *pats, unsigned np) {
  for (unsigned i = 0; i < np; i++) {
    const char *other = NULL;
    int ol = 0;
    for (unsigned k = 0; k < n && !other; k++)
      if (rc_topic_pattern_match(pats[i].p, pats[i].len, list[k]->name, list[k]->name_len))
        other = list[k]->name, ol = (int)list[k]->name_len;
    for (unsigned j = 0; j < i && !other; j++)
      if ((pats[j].len != pats[i].len || memcmp(pats[j].p, pats[i].p, pats[i].len) != 0) &&
          rc_topic_pattern_overlap(pats[i].p, pats[i].len, pats[j].p, pats[j].len))
        other = pats[j].p, ol = (int)pats[j].len;
    if (other) {
      rc_request_error(l, s, 400, true, NULL,
                       "'%.*s' overlaps '%.*s' in topics=: a message on a topic both match would "
                       "arrive twice", (int)pats[i].len, pats[i].p, ol > 140 ? 140 : ol, other);
      return true;
    }
  }
  return false;
}

/* The WebSocket handshake for /ws (subscribing to ?topics=) and /echo. */
static void route_upgrade(struct rc_loop *l, struct rc_session *s, const struct rc_http_request *r,
                          bool echo) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  const struct rc_http_header *up = rc_http_find_header(r, "Upgrade");
  const struct rc_http_header *conn = rc_http_find_header(r, "Connection");
  const struct rc_http_header *ver = rc_http_find_header(r, "Sec-WebSocket-Version");
  const struct rc_http_header *key = rc_http_find_header(r, "Sec-WebSocket-Key");
  if (!up || !rc_http_has_token(up->value, up->value_len, "websocket")) {
    rc_request_error(l, s, 400, true, NULL, "GET %s needs a WebSocket upgrade (Upgrade: websocket)",
                     echo ? "/echo" : "/ws");
    return;
  }
  if (!conn || !rc_http_has_token(conn->value, conn->value_len, "upgrade")) {
    rc_request_error(l, s, 400, true, NULL, "WebSocket upgrade needs Connection: Upgrade");
    return;
  }
  if (r->minor_version != 1) {
    rc_request_error(l, s, 400, true, NULL, "WebSocket upgrade needs HTTP/1.1");
    return;
  }
  if (rc_budget_over(ss->budget)) {
    rc_counter_add(&ss->stats.refused_memory, 1);
    rc_session_mark_end(s, RC_END_OVERLOAD);
    rc_request_error(l, s, 503, true, "Retry-After: 1\r\n",
                     "the server is over its memory budget (--max-memory); retry later");
    return;
  }
  if (!ver || ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0) {
    rc_request_error(l, s, 426, true, "Sec-WebSocket-Version: 13\r\n",
                     "unsupported Sec-WebSocket-Version; this server speaks version 13");
    return;
  }
  char accept[RC_WS_ACCEPT_LEN + 1];
  if (!key || rc_ws_accept_key(key->value, key->value_len, accept) < 0) {
    rc_request_error(l, s, 400, true, NULL,
                     "missing or invalid Sec-WebSocket-Key (24 characters of base64)");
    return;
  }
  if (!rc_access_origin_allowed(ss->access, r)) {
    const struct rc_http_header *o = rc_http_find_header(r, "Origin");
    int ol = (int)(o->value_len > 200 ? 200 : o->value_len);
    char peer[64];
    rc_conn_peer_text(&s->conn, peer, sizeof peer);
    rc_info("%s: upgrade from origin %.*s refused with 403 (--allow-origin)", peer, ol, o->value);
    rc_access_count(ss->access, RC_ACCESS_ORIGIN);
    rc_session_mark_end(s, RC_END_AUTH);
    rc_session_attempt(l, s, RC_ATTEMPT_AUTH_FAILED);
    rc_request_error(l, s, 403, true, NULL, "origin %.*s is not allowed to open WebSockets here "
                     "(--allow-origin)", ol, o->value);
    return;
  }
  char topics[8192], format[16];
  ssize_t tl = rc_http_query_get(r->query, r->query_len, "topics", topics, sizeof topics);
  if (tl == -ENOENT) tl = 0, topics[0] = '\0';
  if (tl < 0) {
    rc_request_error(l, s, 400, true, NULL, "bad topics parameter: %s",
                     tl == -ENOSPC ? "too long" : "invalid percent-encoding");
    return;
  }
  ssize_t fl = rc_http_query_get(r->query, r->query_len, "format", format, sizeof format);
  bool raw = false;
  if (fl >= 0) {
    if (strcmp(format, "raw") == 0) raw = true;
    else if (strcmp(format, "json") != 0) {
      rc_request_error(l, s, 400, true, NULL, "unknown format '%s': expected json or raw", format);
      return;
    }
  } else if (fl != -ENOENT) {
    rc_request_error(l, s, 400, true, NULL, "bad format parameter: expected json or raw");
    return;
  }
  /* Large (32 KiB): kept off the shard thread's stack frame of every request. */
  static __thread struct stream_options opts;
  if (!stream_options(l, s, r, raw, &opts)) return;
  /* Without a credential on the request a WebSocket may still open, with no
   * topics, and authenticate with its first command. */
  struct rc_auth auth = {0};
  bool pending = false;
  /* The admin address is trusted like its /metrics, and takes nothing but the
   * server's own topics (checked below). */
  if (!echo && !s->admin && rc_access_required(ss->access)) {
    if (rc_access_presented(ss->access, r) || tl > 0) {
      if (!authenticate(l, s, r, &auth)) return;
    } else {
      pending = true;
    }
  }
  /* Resolve every topic before subscribing to any, so an error leaves no trace. */
  struct rc_topic *list[RC_SESSION_MAX_SUBS];
  unsigned n = 0;
  /* Wildcard patterns among them (split in place: topics[] is ours). */
  static __thread struct url_pattern pats[RC_SESSION_MAX_PATTERNS];
  unsigned np = 0;
  for (char *t = topics, *e; tl > 0 && t <= topics + tl; t = e + 1) {
    e = strchr(t, ',');
    if (!e) e = topics + tl;
    size_t len = (size_t)(e - t);
    const char *why = rc_session_reserved_refusal(l, s, t, len);
    if (why) {
      rc_session_topics_release(l, list, n);
      rc_auth_clear(&auth);
      rc_request_error(l, s, 403, true, NULL, "%s ('%.*s')", why, (int)(len > 140 ? 140 : len), t);
      return;
    }
    if (!allowed(l, s, &auth, RC_JWT_SUB, t, len, true)) {
      rc_session_topics_release(l, list, n);
      rc_auth_clear(&auth);
      return;
    }
    if (rc_topic_pattern_has_wildcard(t, len)) {
      if (!url_pattern_ok(l, s, t, len, raw, opts.snapshot, np)) {
        rc_session_topics_release(l, list, n);
        rc_auth_clear(&auth);
        return;
      }
      pats[np++] = (struct url_pattern){.p = t, .len = len};
      continue;
    }
    if (n == RC_SESSION_MAX_SUBS) {
      rc_session_topics_release(l, list, n);
      rc_auth_clear(&auth);
      rc_request_error(l, s, 400, true, NULL, "more than %d topics", RC_SESSION_MAX_SUBS);
      return;
    }
    int ret = rc_topic_acquire(ss->topics, t, len, true, &list[n]);
    if (ret < 0) {
      rc_session_topics_release(l, list, n);
      rc_auth_clear(&auth);
      bad_topic(l, s, ret, true, t, len);
      return;
    }
    n++;
  }
  if ((echo && (n || np || fl >= 0)) || (raw && n != 1)) {
    rc_session_topics_release(l, list, n);
    rc_auth_clear(&auth);
    rc_request_error(l, s, 400, true, NULL,
                     echo ? "/echo takes no topics or format"
                          : "format=raw needs exactly one topic in topics=");
    return;
  }
  if (!positions_named(l, s, &opts, list, n) || url_overlap(l, s, list, n, pats, np)) {
    rc_session_topics_release(l, list, n);
    rc_auth_clear(&auth);
    return;
  }
  unsigned joining = 0;
  for (unsigned i = 0; i < n; i++) {
    struct rc_join_request jr = {.token = rc_conn_token(l, &s->conn),
                                 .snapshot = opts.snapshot,
                                 .max_replay_bytes = ss->max_queue / 2,
                                 .note = RC_DELIVERY_URL_JOIN,
                                 .note_len = 1};
    jr.has_since = position_of(&opts, list[i], &jr.since_epoch, &jr.since_seq);
    int ret = rc_pubsub_subscribe(ss->ps, &s->sub, list[i], RC_SESSION_MAX_SUBS, &jr);
    joining += ret == 0;
    if (ret < 0 && ret != -EEXIST) {
      rc_pubsub_unsubscribe_all(ss->ps, &s->sub);
      rc_session_topics_release(l, list, n);
      rc_auth_clear(&auth);
      rc_request_error(l, s, 503, true, "Retry-After: 1\r\n", "could not subscribe: %s",
                       ret == -ENOBUFS ? "the server is over its memory budget (--max-memory)"
                                       : "out of memory");
      return;
    }
  }
  for (unsigned i = 0; i < np; i++) {
    int ret = rc_pubsub_subscribe_pattern(ss->ps, &s->sub, pats[i].p, pats[i].len,
                                          RC_SESSION_MAX_SUBS, RC_SESSION_MAX_PATTERNS);
    if (ret < 0 && ret != -EEXIST) {
      rc_pubsub_unsubscribe_all(ss->ps, &s->sub);
      rc_session_topics_release(l, list, n);
      rc_auth_clear(&auth);
      if (ret == -EMLINK)
        rc_request_error(l, s, 400, true, NULL, "more than %d topics", RC_SESSION_MAX_SUBS);
      else if (ret == -ENOSPC)
        rc_request_error(l, s, 503, true, "Retry-After: 1\r\n",
                         ss->srv->cfg->max_patterns
                             ? "the server's limit of distinct wildcard patterns (--max-patterns) "
                               "is reached at '%.*s'"
                         : "wildcards are off on this server (--max-patterns 0): '%.*s'",
                         (int)pats[i].len, pats[i].p);
      else
        rc_request_error(l, s, 503, true, "Retry-After: 1\r\n", "could not subscribe to '%.*s': %s",
                         (int)pats[i].len, pats[i].p,
                         ret == -ENOBUFS ? "the server is over its memory budget (--max-memory)"
                                         : "out of memory");
      return;
    }
  }
  rc_session_topics_release(l, list, n); /* the subscriptions hold their own */
  char resp[256];
  int rl = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                    accept);
  struct rc_frame *f = rc_frame_create((uint16_t)rc_loop_id(l), (size_t)rl);
  if (!f) {
    rc_auth_clear(&auth);
    rc_conn_abort(l, &s->conn);
    return;
  }
  memcpy(f->data, resp, (size_t)rl);
  /* The 101 leaves once every subscription is live, each acknowledged behind
   * it: from the 101 on, nothing published is missed. */
  s->joining = (uint16_t)joining;
  if (joining) rc_conn_cork(&s->conn);
  if (rc_session_send_frame(l, s, f) < 0) {
    rc_auth_clear(&auth);
    return;
  }
  /* Patterns are live already: their acks follow the 101 at once. */
  for (unsigned i = 0; i < np; i++) rc_delivery_ack_pattern(l, s, pats[i].p, pats[i].len, "", 0, false);
  if (pending) {
    auth.kind = RC_AUTH_PENDING;
    s->auth_tick = rc_session_now(l);
  }
  rc_session_set_auth(l, s, &auth);
  rc_session_set_kind(l, s, RC_SESSION_WS);
  /* One that must still send its auth command is decided by that command. */
  if (!pending) rc_session_attempt(l, s, RC_ATTEMPT_ACCEPTED);
  s->format = echo ? RC_FORMAT_ECHO : raw ? RC_FORMAT_RAW : RC_FORMAT_ENVELOPE;
  s->policy = opts.policy;
  s->ping_tick = 0;
  rc_counter_add(&ss->stats.ws_upgrades, 1);
  rc_session_rearm_timer(l, s);
}

static void route_publish_one(struct rc_loop *l, struct rc_session *s, const struct rc_http_request *r,
                              const char *name, size_t name_len, const uint8_t *body, size_t len,
                              bool close_after) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (rc_topic_name_is_reserved(name, name_len)) {
    rc_request_error(l, s, 403, close_after, NULL, "%s ('%.*s')", RC_SESSION_RESERVED_PUBLISH,
                     (int)(name_len > 140 ? 140 : name_len), name);
    return;
  }
  struct rc_auth auth;
  if (!authenticate(l, s, r, &auth)) return;
  bool may = allowed(l, s, &auth, RC_JWT_PUB, name, name_len, close_after);
  rc_auth_clear(&auth);
  if (!may) return;
  if (ss->redis && !rc_redis_link_admit(ss->redis)) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s",
                     rc_session_publish_refusal(-ENOTCONN));
    return;
  }
  struct rc_topic *tp;
  int ret = rc_topic_acquire(ss->topics, name, name_len, true, &tp);
  if (ret < 0) {
    bad_topic(l, s, ret, close_after, name, name_len);
    return;
  }
  /* Through Redis, 200 waits for Redis' seq: a message answered 200 is in
   * Redis' history, whatever happens to a connection afterwards. */
  struct rc_publish_origin origin = {.token = rc_conn_token(l, &s->conn)};
  int64_t seq = rc_pubsub_publish(ss->ps, tp, body, len, ss->redis ? &origin : NULL);
  rc_topic_release(ss->topics, tp);
  if (seq == 0 && ss->redis) {
    s->awaiting = close_after ? RC_AWAIT_CLOSE : RC_AWAIT_KEEP;
    return;
  }
  if (seq < 0) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s",
                     rc_session_publish_refusal((int)seq));
    return;
  }
  static const char ok[] = "{\"ok\":true,\"published\":1}\n";
  rc_request_respond(l, s, 200, "application/json", NULL, ok, sizeof ok - 1, close_after);
}

/* Requests that came behind an answer given late (through Redis) are served now. */
static void serve_waiting(struct rc_loop *l, struct rc_session *s) {
  static uint8_t no_bytes;
  if (rc_conn_is_open(&s->conn) && s->kind == RC_SESSION_HTTP && s->rx) rc_request_on_data(l, s, &no_bytes, 0);
}

void rc_request_publish_answered(struct rc_loop *l, struct rc_session *s,
                                 const struct rc_publish_result *r) {
  bool close_after = s->awaiting == RC_AWAIT_CLOSE;
  if (s->await_left) {
    /* A batch: answered once every message is. */
    if (r->err && !s->await_failed++) s->await_err = (int16_t)r->err;
    if (--s->await_left) return;
    s->awaiting = RC_AWAIT_NONE;
    if (s->await_failed)
      rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n",
                       "%" PRIu32 " of the batch's %" PRIu32 " messages were not published (the first: "
                       "%s); the others were", s->await_failed, s->await_total,
                       rc_session_publish_refusal(s->await_err));
    else {
      char ok[64];
      int n = snprintf(ok, sizeof ok, "{\"ok\":true,\"published\":%" PRIu32 "}\n", s->await_total);
      rc_request_respond(l, s, 200, "application/json", NULL, ok, (size_t)n, close_after);
    }
    goto next;
  }
  s->awaiting = RC_AWAIT_NONE;
  if (r->err) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s",
                     rc_session_publish_refusal(r->err));
  } else {
    char ok[96];
    int n = snprintf(ok, sizeof ok, "{\"ok\":true,\"published\":1,\"seq\":%" PRIu64 "}\n", r->seq);
    rc_request_respond(l, s, 200, "application/json", NULL, ok, (size_t)n, close_after);
  }
next:
  serve_waiting(l, s);
}

static void respond_count(struct rc_loop *l, struct rc_session *s, const char *topic,
                          const struct rc_redis_count *c, uint64_t local, bool close_after) {
  char body[RC_TOPIC_NAME_MAX + 96 + RC_REDIS_COUNT_NODES * 96];
  size_t n = (size_t)snprintf(body, sizeof body, "{\"topic\":\"%s\",\"subscribers\":%" PRIu64, topic,
                              c ? c->total : local);
  if (c) {
    n += (size_t)snprintf(body + n, sizeof body - n, ",\"nodes\":{");
    for (unsigned i = 0, shown = 0; i < c->n; i++) {
      /* Node names are --node-id's characters; anything else in Redis is not ours. */
      size_t len = c->node_len[i];
      if (!len || len > 64 || strspn(c->node[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") < len)
        continue;
      n += (size_t)snprintf(body + n, sizeof body - n, "%s\"%.*s\":%" PRIu64, shown++ ? "," : "",
                            (int)len, c->node[i], c->count[i]);
    }
    n += (size_t)snprintf(body + n, sizeof body - n, "}");
  }
  n += (size_t)snprintf(body + n, sizeof body - n, "}\n");
  rc_request_respond(l, s, 200, "application/json", NULL, body, n, close_after);
}

/* GET /topics/<name>: its subscribers, on every node with --redis (Redis keeps
 * each node's count with an expiry, so a dead node's drop out), here without. */
static void route_topic_count(struct rc_loop *l, struct rc_session *s, const char *name,
                              size_t len, bool close_after) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (!rc_topic_name_is_valid(name, len)) {
    rc_request_error(l, s, 400, close_after, NULL,
                     "invalid topic name: 1 to %d of [A-Za-z0-9._:/@-], '$' allowed first",
                     RC_TOPIC_NAME_MAX);
    return;
  }
  char topic[RC_TOPIC_NAME_MAX + 1];
  memcpy(topic, name, len);
  topic[len] = 0;
  if (!ss->redis || rc_topic_name_is_reserved(name, len)) {
    struct rc_topic *tp;
    uint64_t local = 0;
    if (rc_topic_acquire(ss->topics, name, len, false, &tp) == 0) {
      local = atomic_load_explicit(&tp->nsubs, memory_order_relaxed);
      rc_topic_release(ss->topics, tp);
    }
    respond_count(l, s, topic, NULL, local, close_after);
    return;
  }
  int ret = rc_redis_link_read_count(ss->redis, name, len, rc_conn_token(l, &s->conn));
  if (ret < 0) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s",
                     ret == -ENOTCONN ? "Redis (--redis) is unreachable; counts across nodes are "
                                        "not available, retry later"
                                      : "out of memory");
    return;
  }
  s->awaiting = close_after ? RC_AWAIT_CLOSE : RC_AWAIT_KEEP;
}

void rc_request_count_answered(struct rc_loop *l, struct rc_session *s, const struct rc_redis_count *c) {
  bool close_after = s->awaiting == RC_AWAIT_CLOSE;
  s->awaiting = RC_AWAIT_NONE;
  if (c->err)
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s",
                     c->err == -EIO ? "Redis refused to read the counts (the server log says why)"
                                    : "the connection to Redis was lost; retry");
  else
    respond_count(l, s, c->topic, c, 0, close_after);
  serve_waiting(l, s);
}

static void route_publish_batch(struct rc_loop *l, struct rc_session *s,
                                const struct rc_http_request *req, const uint8_t *body, size_t len,
                                bool close_after) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_batch_record rec;
  char err[256];
  size_t pos = 0, count = 0;
  ssize_t r;
  struct rc_auth auth;
  if (!authenticate(l, s, req, &auth)) return;
  if (ss->redis && !rc_redis_link_admit(ss->redis)) {
    rc_auth_clear(&auth);
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s; nothing was published",
                     rc_session_publish_refusal(-ENOTCONN));
    return;
  }
  /* Validate everything first: a bad record publishes nothing, and creates no topic. */
  while ((r = rc_publish_batch_next(body, len, pos, ss->max_message, &rec, err, sizeof err)) > 0) {
    if (!rc_topic_name_is_valid(rec.topic, rec.topic_len)) {
      rc_auth_clear(&auth);
      rc_request_error(l, s, 400, close_after, NULL, "record %zu: invalid topic name; nothing was published",
                       count + 1);
      return;
    }
    if (rc_topic_name_is_reserved(rec.topic, rec.topic_len)) {
      rc_auth_clear(&auth);
      rc_request_error(l, s, 403, close_after, NULL, "record %zu: %s; nothing was published",
                       count + 1, RC_SESSION_RESERVED_PUBLISH);
      return;
    }
    if (!allowed(l, s, &auth, RC_JWT_PUB, rec.topic, rec.topic_len, close_after)) {
      rc_auth_clear(&auth);
      return;
    }
    pos += (size_t)r;
    if (++count > BATCH_MAX_RECORDS) {
      rc_auth_clear(&auth);
      rc_request_error(l, s, 413, close_after, NULL,
                       "batch of more than %u records; split it; nothing was published",
                       BATCH_MAX_RECORDS);
      return;
    }
  }
  rc_auth_clear(&auth); /* every record was checked against it */
  if (r < 0) {
    rc_request_error(l, s, 400, close_after, NULL, "batch %s; nothing was published", err);
    return;
  }
  if (count == 0) {
    rc_request_error(l, s, 400, close_after, NULL,
                     "empty batch: the body holds records \"TOPIC LENGTH\\nPAYLOAD\\n\"");
    return;
  }
  struct rc_publish_item *items = malloc(count * sizeof *items);
  if (!items) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "out of memory; nothing was published");
    return;
  }
  /* Then every topic (created when new, within --max-topics): any refusal here
   * lets go of what was taken, so nothing is left behind. */
  pos = 0;
  size_t n = 0;
  int ret = 0;
  while (n < count &&
         (r = rc_publish_batch_next(body, len, pos, ss->max_message, &rec, err, sizeof err)) > 0) {
    struct rc_topic *tp;
    ret = rc_topic_acquire(ss->topics, rec.topic, rec.topic_len, true, &tp);
    if (ret < 0) break;
    items[n++] = (struct rc_publish_item){.topic = tp, .payload = rec.payload, .len = rec.payload_len};
    pos += (size_t)r;
  }
  /* Through Redis the batch is answered once Redis answered every message. */
  struct rc_publish_origin origin = {.token = rc_conn_token(l, &s->conn)};
  ssize_t done = n == count ? rc_pubsub_publish_many(ss->ps, items, n, ss->redis ? &origin : NULL) : 0;
  for (size_t i = 0; i < n; i++) rc_topic_release(ss->topics, items[i].topic);
  free(items);
  if (n < count) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "record %zu: %s; nothing was published",
                     n + 1, rc_session_topic_refusal(ret));
    return;
  }
  if (done < 0) {
    rc_request_error(l, s, 503, close_after, "Retry-After: 1\r\n", "%s; nothing was published",
                     rc_session_publish_refusal((int)done));
    return;
  }
  if ((size_t)done < count) {
    rc_request_error(l, s, 503, close_after, NULL,
                     "out of memory after %zd of %zu messages; the first %zd were published", done,
                     count, done);
    return;
  }
  if (ss->redis) {
    s->awaiting = close_after ? RC_AWAIT_CLOSE : RC_AWAIT_KEEP;
    s->await_left = s->await_total = (uint32_t)done;
    s->await_failed = 0;
    s->await_err = 0;
    return;
  }
  char resp[64];
  int rl = snprintf(resp, sizeof resp, "{\"ok\":true,\"published\":%zd}\n", done);
  rc_request_respond(l, s, 200, "application/json", NULL, resp, (size_t)rl, close_after);
}

static void route_metrics(struct rc_loop *l, struct rc_session *s, bool close_after) {
  char *text;
  long n = rc_metrics_page_render(rc_session_shard_of(l)->srv, &text);
  if (n < 0) {
    rc_request_error(l, s, 500, close_after, NULL, "out of memory rendering metrics");
    return;
  }
  rc_request_respond(l, s, 200, "text/plain; version=0.0.4", NULL, text, (size_t)n, close_after);
  free(text);
}

/* GET / (head false) or HEAD / (head true): the status page. */
static void route_status_page(struct rc_loop *l, struct rc_session *s, bool head, bool close_after) {
  char hdr[1024];
  long hl = rc_status_page_head(rc_session_shard_of(l)->srv->cfg->stats_interval_ms, close_after,
                                hdr, sizeof hdr);
  if (hl < 0) {
    /* The page is fixed at build time and its unit test checks it: a bug. */
    rc_request_error(l, s, 500, close_after, NULL, "the embedded status page is malformed (%ld)", hl);
    return;
  }
  size_t body = head ? 0 : rc_status_page_html_len;
  struct rc_frame *f = rc_frame_create((uint16_t)rc_loop_id(l), (size_t)hl + body);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  memcpy(f->data, hdr, (size_t)hl);
  if (body) memcpy(f->data + hl, rc_status_page_html, body);
  if (rc_session_send_frame(l, s, f) < 0) return;
  if (close_after) rc_session_close(l, s, 0, NULL, false);
}

static void head_error(struct rc_loop *l, struct rc_session *s, ssize_t hl) {
  rc_counter_add(&rc_session_shard_of(l)->stats.protocol_errors, 1);
  rc_session_mark_end(s, RC_END_PROTOCOL);
  switch (hl) {
  case -ENAMETOOLONG:
    rc_request_error(l, s, 414, true, NULL, "request target over %d bytes", RC_HTTP_MAX_TARGET);
    break;
  case -E2BIG:
    rc_request_error(l, s, 431, true, NULL, "request head over %d bytes or %d headers",
                     RC_HTTP_MAX_HEAD_BYTES, RC_HTTP_MAX_HEADERS);
    break;
  case -EPROTONOSUPPORT:
    rc_request_error(l, s, 505, true, NULL, "only HTTP/1.0 and HTTP/1.1 are supported");
    break;
  default: rc_request_error(l, s, 400, true, NULL, "malformed HTTP request"); break;
  }
}

/* Re-keys the per-address admission from the connection's address to
 * (family, addr): false when the new address is refused (answered). A trusted
 * proxy itself is never admitted: each of its clients is. */
static bool readmit(struct rc_loop *l, struct rc_session *s, uint8_t family, const uint8_t addr[16]) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (s->admitted) {
    rc_admission_close(ss->adm, &s->conn, false, rc_loop_now_ms(l));
    s->admitted = false;
  }
  s->conn.peer_family = family;
  memcpy(s->conn.peer_addr, addr, 16);
  s->conn.peer_port = 0;
  bool is_proxy = family == s->proxy_family && memcmp(addr, s->proxy_addr, 16) == 0;
  if (!ss->adm || is_proxy) return true;
  unsigned retry = 1;
  int ret = rc_admission_open(ss->adm, &s->conn, rc_loop_now_ms(l), &retry);
  if (ret < 0) {
    char peer[64];
    rc_conn_peer_text(&s->conn, peer, sizeof peer);
    rc_info("%s (through a trusted proxy): refused by the per-address limits (%d)", peer, ret);
    rc_session_mark_end(s, RC_END_REFUSED);
    rc_session_attempt(l, s, RC_ATTEMPT_REFUSED_LIMIT);
    rc_request_error(l, s, rc_admission_status(ret), true, "Retry-After: 1\r\n", "%s",
                     rc_admission_refusal(ret));
    return false;
  }
  rc_admission_handshake_done(ss->adm, &s->conn);
  s->admitted = true;
  return true;
}

/* Each request through a --trust-proxy peer names its client (a proxy reuses
 * one upstream connection for many): the connection is that client's, in logs
 * and the per-address limits, until the next request says otherwise. false when
 * it was refused. */
static bool client_behind_proxy(struct rc_loop *l, struct rc_session *s, const struct rc_http_request *r) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (!s->proxied) {
    if (!rc_access_trusted_peer(ss->access, &s->conn)) return true;
    s->proxied = true;
    s->proxy_family = s->conn.peer_family;
    memcpy(s->proxy_addr, s->conn.peer_addr, 16);
  }
  uint8_t family = s->proxy_family, addr[16];
  memcpy(addr, s->proxy_addr, 16);
  int got = rc_access_client_addr(ss->access, s->proxy_family, s->proxy_addr, r, &family, addr);
  if (got < 0) {
    char proxy[64] = "?";
    inet_ntop(s->proxy_family, s->proxy_addr, proxy, sizeof proxy);
    rc_info("a request through trusted proxy %s has unusable proxy headers (%s); taking the proxy "
            "as the client", proxy,
            got == -EBADMSG ? "malformed" : got == -ENODATA ? "client unknown" : "too many hops");
    family = s->proxy_family;
    memcpy(addr, s->proxy_addr, 16);
  }
  size_t alen = family == AF_INET ? 4 : 16;
  if (family == s->conn.peer_family && memcmp(addr, s->conn.peer_addr, alen) == 0) return true;
  return readmit(l, s, family, addr);
}

static bool is_publish_path(const struct rc_http_request *r) {
  return r->path_len >= 8 && memcmp(r->path, "/publish", 8) == 0 &&
         (r->path_len == 8 || r->path[8] == '/');
}

/* A new request's head: parsed once its blank line is in (searching only the
 * bytes not yet searched), then its body framing decided. Returns 1 when the
 * body may follow (pr is set), 0 when more bytes are needed, -1 when closing. */
static int begin_request(struct rc_loop *l, struct rc_session *s, struct rc_request_progress *pr,
                         const uint8_t *buf, size_t len) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  size_t from = pr->scanned > 3 ? pr->scanned - 3 : 0;
  size_t upto = len < RC_HTTP_MAX_HEAD_BYTES + 4 ? len : RC_HTTP_MAX_HEAD_BYTES + 4;
  if (len < RC_HTTP_MAX_HEAD_BYTES &&
      !(upto > from && memmem(buf + from, upto - from, "\r\n\r\n", 4))) {
    /* A malformed line fails as soon as it is complete, not once the head is;
     * only a new line is worth parsing again, so a head sent byte by byte costs
     * a parse per line, not per byte. */
    bool new_line = memchr(buf + pr->scanned, '\n', len - pr->scanned) != NULL;
    pr->scanned = (uint32_t)len;
    if (!new_line) return 0;
    struct rc_http_request r;
    ssize_t hl = rc_http_parse_request((const char *)buf, len, &r);
    if (hl == -EAGAIN) return 0;
    if (hl < 0) {
      head_error(l, s, hl);
      return -1;
    }
  }
  struct rc_http_request r;
  ssize_t hl = rc_http_parse_request((const char *)buf, len, &r);
  if (hl == -EAGAIN) {
    pr->scanned = (uint32_t)len;
    return 0;
  }
  if (hl < 0) {
    head_error(l, s, hl);
    return -1;
  }
  struct rc_http_framing fr;
  const char *why;
  int ret = rc_http_body_framing(&r, &fr, &why);
  if (ret < 0) {
    rc_counter_add(&ss->stats.protocol_errors, 1);
    rc_session_mark_end(s, RC_END_PROTOCOL);
    rc_request_error(l, s, ret == -ENOTSUP ? 501 : 400, true, NULL, "%s", why);
    return -1;
  }
  bool publish = is_publish_path(&r) && rc_http_is_method(&r, "POST");
  size_t max = 65536;
  const char *limit_name = "the limit for this route";
  if (publish) {
    max = r.path_len == 8 ? BATCH_MAX_BODY : ss->max_message;
    limit_name = r.path_len == 8 ? "the batch limit" : "--max-message";
    if (fr.kind == RC_HTTP_BODY_NONE) {
      rc_request_error(l, s, 411, true, NULL, "POST /publish needs a Content-Length or a chunked body");
      return -1;
    }
  }
  if (fr.kind == RC_HTTP_BODY_LENGTH && fr.length > max) {
    rc_request_error(l, s, 413, true, NULL, "body of %llu bytes exceeds %s (%zu bytes)",
                     (unsigned long long)fr.length, limit_name, max);
    return -1;
  }
  *pr = (struct rc_request_progress){
      .active = true,
      .kind = (uint8_t)fr.kind,
      .head_len = (uint32_t)hl,
      .max = (uint32_t)max,
      .raw = (uint32_t)hl,
      .out = (uint32_t)hl,
      .length = fr.length,
  };
  rc_http_chunked_init(&pr->chunked);
  return 1;
}

/* Handles the request at buf (whose head may already be read, see rx->req).
 * Returns the bytes it took, 0 if more are needed, or -1 when the connection is
 * closing. A chunked body is decoded in place, each byte once, as it arrives. */
static ssize_t handle_request(struct rc_loop *l, struct rc_session *s, struct rc_session_rx *rx,
                              uint8_t *buf, size_t len) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_request_progress *pr = &rx->req;
  if (!pr->active) {
    int ret = begin_request(l, s, pr, buf, len);
    if (ret <= 0) return ret;
  }
  size_t body_len, consumed;
  switch (pr->kind) {
  case RC_HTTP_BODY_LENGTH:
    if (len - pr->head_len < pr->length) return 0;
    body_len = (size_t)pr->length;
    consumed = pr->head_len + body_len;
    break;
  case RC_HTTP_BODY_CHUNKED: {
    size_t out = pr->out - pr->head_len;
    bool done;
    ssize_t used = rc_http_chunked_feed(&pr->chunked, buf + pr->raw, len - pr->raw,
                                        buf + pr->head_len, pr->max, &out, &done);
    if (used < 0) {
      pr->active = false;
      if (used == -EMSGSIZE)
        rc_request_error(l, s, 413, true, NULL, "chunked body exceeds the limit for this route (%u bytes)",
                         pr->max);
      else
        rc_request_error(l, s, 400, true, NULL, "malformed chunked body");
      return -1;
    }
    pr->raw += (uint32_t)used;
    pr->out = (uint32_t)(pr->head_len + out);
    if (!done) return 0;
    body_len = out;
    consumed = pr->raw;
    break;
  }
  default:
    body_len = 0;
    consumed = pr->head_len;
    break;
  }
  pr->active = false;
  pr->scanned = 0;
  /* The head is intact (a body is only ever written after it): read it again for
   * its pointers, now that the buffer will not move. */
  struct rc_http_request r;
  ssize_t hl = rc_http_parse_request((const char *)buf, pr->head_len, &r);
  if (hl != (ssize_t)pr->head_len) {
    rc_err("request head changed under its body; this is a bug");
    abort();
  }
  const uint8_t *body = buf + hl;
  const struct rc_http_header *connh = rc_http_find_header(&r, "Connection");
  bool close_after = r.minor_version == 1
                         ? (connh && rc_http_has_token(connh->value, connh->value_len, "close"))
                         : !(connh && rc_http_has_token(connh->value, connh->value_len, "keep-alive"));
  rc_counter_add(&ss->stats.http_requests, 1);
  /* Draining: every response is the connection's last, so keep-alive clients
   * move to the server that replaces this one. */
  enum rc_server_phase phase = rc_session_phase(ss);
  if (phase != RC_SERVER_SERVING) close_after = true;
  s->req_tick = rc_session_now(l);
  s->served = true;
  if (s->handshaking) {
    rc_admission_handshake_done(ss->adm, &s->conn);
    s->handshaking = false;
  }
  if (!client_behind_proxy(l, s, &r)) return -1;

  bool is_publish = is_publish_path(&r);
  bool get = rc_http_is_method(&r, "GET");
  bool head = rc_http_is_method(&r, "HEAD");
  bool echo = ss->echo && path_is(&r, "/echo");
  bool page = path_is(&r, "/");
  /* The status page's socket is monitoring too: on the admin address /ws takes
   * the server's own '$' topics only (route_upgrade). */
  bool is_topics = r.path_len > 8 && memcmp(r.path, "/topics/", 8) == 0;
  bool monitoring = path_is(&r, "/healthz") || path_is(&r, "/readyz") || path_is(&r, "/metrics") ||
                    page || path_is(&r, "/ws") || is_topics;
  if (!s->admin && !rc_session_take_tokens(l, s, 1)) {
    rc_request_error(l, s, 429, true, "Retry-After: 1\r\n",
                     "more than --max-commands-per-sec %u requests a second on one connection",
                     ss->max_commands);
  } else if (s->admin && !monitoring) {
    /* The administrative listener serves monitoring only. */
    rc_request_error(l, s, 404, close_after, NULL,
                     "the --admin-listen address serves GET /metrics, /healthz, /readyz, /topics/<name>, "
                     "the status page (GET /) and its /ws?topics=$sys.stats only");
  } else if (!s->admin && ss->admin_only_metrics && (path_is(&r, "/metrics") || page || is_topics)) {
    rc_request_error(l, s, 404, close_after, NULL, "%s is served on the --admin-listen address",
                     page ? "the status page (GET /)" : is_topics ? "/topics/<name>" : "/metrics");
  } else if (page && (get || head)) {
    route_status_page(l, s, head, close_after);
  } else if ((path_is(&r, "/ws") || echo) && get && phase == RC_SERVER_DRAINING) {
    /* The listeners stay open while draining (closing them would reset the
     * connections in their queues): new clients are told to go elsewhere. */
    rc_request_error(l, s, 503, true, "Retry-After: 1\r\n",
                     "the server is draining (restarting or stopping); connect again");
  } else if ((path_is(&r, "/ws") || echo) && get) {
    route_upgrade(l, s, &r, echo);
    /* Handed over: only connections this process accepted before the hand-over
     * get here; they are served, and closed with the rest. */
    if (phase != RC_SERVER_SERVING && s->kind == RC_SESSION_WS) rc_drain_late_upgrade(l, s);
  } else if (path_is(&r, "/readyz") && get) {
    static const char ready[] = "ready\n", draining[] = "draining\n";
    if (phase == RC_SERVER_SERVING)
      rc_request_respond(l, s, 200, "text/plain", NULL, ready, sizeof ready - 1, close_after);
    else
      rc_request_respond(l, s, 503, "text/plain", "Retry-After: 1\r\n", draining,
                         sizeof draining - 1, true);
  } else if (path_is(&r, "/healthz") && get) {
    static const char open_text[] =
        "ok\nauth: open (no --jwt-key or --publish-key-file: anyone may subscribe and publish)\n";
    static const char closed_text[] = "ok\nauth: required\n";
    bool open = !rc_access_required(ss->access);
    rc_request_respond(l, s, 200, "text/plain", NULL, open ? open_text : closed_text,
                       open ? sizeof open_text - 1 : sizeof closed_text - 1, close_after);
  } else if (path_is(&r, "/metrics") && get) {
    route_metrics(l, s, close_after);
  } else if (is_topics && get) {
    route_topic_count(l, s, r.path + 8, r.path_len - 8, close_after);
  } else if (is_publish && rc_http_is_method(&r, "POST")) {
    if (r.path_len == 8) route_publish_batch(l, s, &r, body, body_len, close_after);
    else route_publish_one(l, s, &r, r.path + 9, r.path_len - 9, body, body_len, close_after);
  } else if (page) {
    rc_request_error(l, s, 405, close_after, "Allow: GET, HEAD\r\n", "/ only allows GET and HEAD");
  } else if (path_is(&r, "/ws") || echo || path_is(&r, "/healthz") || path_is(&r, "/readyz") ||
             path_is(&r, "/metrics")) {
    rc_request_error(l, s, 405, close_after, "Allow: GET\r\n", "%.*s only allows GET",
                     (int)r.path_len, r.path);
  } else if (is_publish) {
    rc_request_error(l, s, 405, close_after, "Allow: POST\r\n", "/publish only allows POST");
  } else if (is_topics) {
    rc_request_error(l, s, 405, close_after, "Allow: GET\r\n", "/topics/<name> only allows GET");
  } else {
    rc_request_error(l, s, 404, close_after, NULL,
                     "no route for %.*s %.*s; routes: GET /ws, POST /publish/<topic>, "
                     "POST /publish, GET /topics/<name>, GET /metrics, GET /healthz, GET /readyz, GET / (status page)",
                     (int)r.method_len, r.method, (int)(r.path_len > 200 ? 200 : r.path_len), r.path);
  }
  if (!rc_conn_is_open(&s->conn)) return -1;
  return (ssize_t)consumed;
}

void rc_request_on_data(struct rc_loop *l, struct rc_session *s, uint8_t *p, size_t n) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  size_t limit = RC_HTTP_MAX_HEAD_BYTES + BATCH_MAX_BODY + ss->max_message;
  /* A request that arrives whole needs no receive state of its own. */
  struct rc_session_rx tmp = {0};
  struct rc_session_rx *rx = s->rx ? s->rx : &tmp;
  uint8_t *buf = p;
  size_t len = n;
  bool buffered = rx->in.len > 0;
  if (buffered) {
    if (rc_bytebuf_append(&rx->in, p, n, limit) < 0) {
      rc_request_error(l, s, 413, true, NULL, "request over %zu bytes", limit);
      rc_session_rx_settle(l, s, rx);
      return;
    }
    buf = rx->in.p;
    len = rx->in.len;
  }
  size_t pos = 0;
  while (pos < len && s->kind == RC_SESSION_HTTP && !s->awaiting) {
    ssize_t r = handle_request(l, s, rx, buf + pos, len - pos);
    if (r < 0) {
      rc_session_rx_settle(l, s, rx); /* closing: keeps nothing */
      return;
    }
    if (r == 0) break;
    pos += (size_t)r;
  }
  if (s->kind == RC_SESSION_WS) {
    /* Frames pipelined behind the upgrade request: the WebSocket side keeps its
     * own receive state, so hand it the bytes from a buffer taken out of ours. */
    struct rc_bytebuf taken = {0};
    if (buffered) {
      taken = rx->in;
      rx->in = (struct rc_bytebuf){0};
    }
    rc_session_rx_settle(l, s, rx);
    if (pos < len) rc_websocket_on_data(l, s, buf + pos, len - pos);
    rc_bytebuf_free(&taken);
    return;
  }
  /* What of the incomplete request is worth keeping: a chunked body is decoded
   * in place, so the framing it was read from is dropped. */
  size_t keep = len - pos;
  if (rx->req.active && rx->req.kind == RC_HTTP_BODY_CHUNKED) {
    keep = rx->req.out;
    rx->req.raw = rx->req.out;
  }
  if (buffered) {
    rx->in.len = (uint32_t)(pos + keep);
    rc_bytebuf_consume(&rx->in, pos);
  } else if (keep && rc_bytebuf_append(&rx->in, buf + pos, keep, limit) < 0) {
    rc_request_error(l, s, 413, true, NULL, "request over %zu bytes", limit);
  }
  if (!rc_session_rx_settle(l, s, rx)) {
    rc_session_mark_end(s, RC_END_OVERLOAD);
    rc_request_error(l, s, 503, true, "Retry-After: 1\r\n",
                     "the server is over its memory budget (--max-memory) and cannot hold this "
                     "request; retry later");
    return;
  }
  /* A partial request is held: the handshake deadline applies from now on. */
  if (s->rx) rc_session_rearm_timer(l, s);
}
