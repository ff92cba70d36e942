/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 on the WebSocket port: the upgrade to WebSocket, POST /publish (single
 * and batch), GET /metrics and GET /healthz, keep-alive and pipelining. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringcast/proto/http.h"
#include "ringcast/proto/publish_batch.h"
#include "ringcast/proto/ws.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/json_out.h"
#include "ringcast/util/log.h"
#include "request.h"
#include "metrics_page.h"
#include "websocket.h"

/* A batch body may carry many messages; each is still bounded by --max-message. */
#define BATCH_MAX_BODY (16u << 20)

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

static bool path_is(const struct rc_http_request *r, const char *p) {
  size_t n = strlen(p);
  return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static void bad_topic(struct rc_loop *l, struct rc_session *s, int ret, bool close_after,
                      const char *name, size_t len) {
  if (ret == -EINVAL)
    rc_request_error(l, s, 400, close_after, NULL,
                     "invalid topic name '%.*s': 1-128 characters of A-Z a-z 0-9 . _ - : / @",
                     (int)(len > 200 ? 200 : len), name);
  else
    rc_request_error(l, s, 503, close_after, NULL, "topic table is full");
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
  /* Resolve every topic before subscribing to any, so an error leaves no trace. */
  struct rc_topic *list[RC_SESSION_MAX_SUBS];
  unsigned n = 0;
  for (char *t = topics, *e; tl > 0 && t <= topics + tl; t = e + 1) {
    e = strchr(t, ',');
    if (!e) e = topics + tl;
    size_t len = (size_t)(e - t);
    if (n == RC_SESSION_MAX_SUBS) {
      rc_request_error(l, s, 400, true, NULL, "more than %d topics", RC_SESSION_MAX_SUBS);
      return;
    }
    int ret = rc_topic_get(ss->topics, t, len, &list[n]);
    if (ret < 0) {
      bad_topic(l, s, ret, true, t, len);
      return;
    }
    n++;
  }
  if (echo && (n || fl >= 0)) {
    rc_request_error(l, s, 400, true, NULL, "/echo takes no topics or format");
    return;
  }
  if (raw && n != 1) {
    rc_request_error(l, s, 400, true, NULL, "format=raw needs exactly one topic in topics=");
    return;
  }
  for (unsigned i = 0; i < n; i++) {
    int ret = rc_pubsub_subscribe(ss->ps, &s->sub, list[i], RC_SESSION_MAX_SUBS);
    if (ret < 0 && ret != -EEXIST) {
      rc_pubsub_unsubscribe_all(ss->ps, &s->sub);
      rc_request_error(l, s, 503, true, NULL, "could not subscribe: out of memory");
      return;
    }
  }
  char resp[256];
  int rl = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                    accept);
  struct rc_frame *f = rc_frame_create((uint16_t)rc_loop_id(l), (size_t)rl);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  memcpy(f->data, resp, (size_t)rl);
  if (rc_session_send_frame(l, s, f) < 0) return;
  s->kind = RC_SESSION_WS;
  s->format = echo ? RC_FORMAT_ECHO : raw ? RC_FORMAT_RAW : RC_FORMAT_ENVELOPE;
  s->ping_tick = 0;
  rc_counter_add(&ss->stats.ws_upgrades, 1);
  rc_session_rearm_timer(l, s);
}

static void route_publish_one(struct rc_loop *l, struct rc_session *s, const char *name,
                              size_t name_len, const uint8_t *body, size_t len, bool close_after) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_topic *tp;
  int ret = rc_topic_get(ss->topics, name, name_len, &tp);
  if (ret < 0) {
    bad_topic(l, s, ret, close_after, name, name_len);
    return;
  }
  if (rc_pubsub_publish(ss->ps, tp, body, len, NULL) < 0) {
    rc_request_error(l, s, 503, close_after, NULL, "out of memory; message not published");
    return;
  }
  static const char ok[] = "{\"ok\":true,\"published\":1}\n";
  rc_request_respond(l, s, 200, "application/json", NULL, ok, sizeof ok - 1, close_after);
}

static void route_publish_batch(struct rc_loop *l, struct rc_session *s, const uint8_t *body,
                                size_t len, bool close_after) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_batch_record rec;
  char err[256];
  size_t pos = 0, count = 0;
  ssize_t r;
  /* Validate and resolve everything first: a bad record publishes nothing. */
  while ((r = rc_publish_batch_next(body, len, pos, ss->max_message, &rec, err, sizeof err)) > 0) {
    struct rc_topic *tp;
    int ret = rc_topic_get(ss->topics, rec.topic, rec.topic_len, &tp);
    if (ret < 0) {
      rc_request_error(l, s, ret == -ENOSPC ? 503 : 400, close_after, NULL,
                       "record %zu: %s; nothing was published", count + 1,
                       ret == -ENOSPC ? "topic table is full" : "invalid topic name");
      return;
    }
    pos += (size_t)r;
    count++;
  }
  if (r < 0) {
    rc_request_error(l, s, 400, close_after, NULL, "batch %s; nothing was published", err);
    return;
  }
  if (count == 0) {
    rc_request_error(l, s, 400, close_after, NULL,
                     "empty batch: the body holds records \"TOPIC LENGTH\\nPAYLOAD\\n\"");
    return;
  }
  pos = 0;
  size_t done = 0;
  while ((r = rc_publish_batch_next(body, len, pos, ss->max_message, &rec, err, sizeof err)) > 0) {
    struct rc_topic *tp = rc_topic_find(ss->topics, rec.topic, rec.topic_len);
    if (!tp || rc_pubsub_publish(ss->ps, tp, rec.payload, rec.payload_len, NULL) < 0) break;
    pos += (size_t)r;
    done++;
  }
  if (done < count) {
    rc_request_error(l, s, 503, close_after, NULL,
                     "out of memory after %zu of %zu messages; the first %zu were published", done,
                     count, done);
    return;
  }
  char resp[64];
  int rl = snprintf(resp, sizeof resp, "{\"ok\":true,\"published\":%zu}\n", done);
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

static int parse_content_length(const struct rc_http_header *h, size_t *out) {
  if (!h || h->value_len == 0 || h->value_len > 10) return -EINVAL;
  size_t v = 0;
  for (size_t i = 0; i < h->value_len; i++) {
    if (h->value[i] < '0' || h->value[i] > '9') return -EINVAL;
    v = v * 10 + (size_t)(h->value[i] - '0');
  }
  *out = v;
  return 0;
}

/* Handles one request at buf; returns the bytes consumed, 0 if more are needed,
 * or -1 when the connection is closing. */
static ssize_t handle_request(struct rc_loop *l, struct rc_session *s, const uint8_t *buf,
                              size_t len) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_http_request r;
  ssize_t hl = rc_http_parse_request((const char *)buf, len, &r);
  if (hl == -EAGAIN) return 0;
  if (hl < 0) {
    rc_counter_add(&ss->stats.protocol_errors, 1);
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
    return -1;
  }
  const struct rc_http_header *connh = rc_http_find_header(&r, "Connection");
  bool close_after = r.minor_version == 1
                         ? (connh && rc_http_has_token(connh->value, connh->value_len, "close"))
                         : !(connh && rc_http_has_token(connh->value, connh->value_len, "keep-alive"));
  const struct rc_http_header *teh = rc_http_find_header(&r, "Transfer-Encoding");
  const struct rc_http_header *clh = rc_http_find_header(&r, "Content-Length");
  bool chunked = false;
  if (teh) {
    if (!(teh->value_len == 7 && strncasecmp(teh->value, "chunked", 7) == 0)) {
      rc_request_error(l, s, 501, true, NULL, "only Transfer-Encoding: chunked is supported");
      return -1;
    }
    if (clh) {
      /* Both framings at once is how request smuggling starts (RFC 9112 6.3). */
      rc_request_error(l, s, 400, true, NULL, "Content-Length together with Transfer-Encoding");
      return -1;
    }
    chunked = true;
  }
  size_t clen = 0;
  if (clh && parse_content_length(clh, &clen) < 0) {
    rc_request_error(l, s, 400, true, NULL, "invalid Content-Length");
    return -1;
  }
  bool is_publish = r.path_len >= 8 && memcmp(r.path, "/publish", 8) == 0 &&
                    (r.path_len == 8 || r.path[8] == '/');
  size_t max = 65536;
  const char *limit_name = "the limit for this route";
  if (is_publish && rc_http_is_method(&r, "POST")) {
    max = r.path_len == 8 ? BATCH_MAX_BODY : ss->max_message;
    limit_name = r.path_len == 8 ? "the batch limit" : "--max-message";
    if (!clh && !chunked) {
      rc_request_error(l, s, 411, true, NULL, "POST /publish needs a Content-Length or a chunked body");
      return -1;
    }
  }
  if (clen > max) {
    rc_request_error(l, s, 413, true, NULL, "body of %zu bytes exceeds %s (%zu bytes)", clen,
                     limit_name, max);
    return -1;
  }
  const uint8_t *body = buf + hl;
  size_t consumed = (size_t)hl + clen;
  uint8_t *decoded = NULL;
  if (chunked) {
    size_t framed;
    decoded = malloc(max ? max : 1);
    if (!decoded) {
      rc_conn_abort(l, &s->conn);
      return -1;
    }
    ssize_t dl = rc_http_chunked_decode(buf + hl, len - (size_t)hl, decoded, max, &framed);
    if (dl < 0) free(decoded);
    if (dl == -EAGAIN) return 0;
    if (dl == -EMSGSIZE) {
      rc_request_error(l, s, 413, true, NULL, "chunked body exceeds %s (%zu bytes)", limit_name, max);
      return -1;
    }
    if (dl < 0) {
      rc_request_error(l, s, 400, true, NULL, "malformed chunked body");
      return -1;
    }
    body = decoded;
    clen = (size_t)dl;
    consumed = (size_t)hl + framed;
  } else if (len - (size_t)hl < clen) {
    return 0;
  }
  rc_counter_add(&ss->stats.http_requests, 1);
  s->req_tick = rc_session_now(l);
  s->served = true;

  bool get = rc_http_is_method(&r, "GET");
  bool echo = ss->echo && path_is(&r, "/echo");
  if ((path_is(&r, "/ws") || echo) && get) {
    route_upgrade(l, s, &r, echo);
  } else if (path_is(&r, "/healthz") && get) {
    rc_request_respond(l, s, 200, "text/plain", NULL, "ok\n", 3, close_after);
  } else if (path_is(&r, "/metrics") && get) {
    route_metrics(l, s, close_after);
  } else if (is_publish && rc_http_is_method(&r, "POST")) {
    if (r.path_len == 8) route_publish_batch(l, s, body, clen, close_after);
    else route_publish_one(l, s, r.path + 9, r.path_len - 9, body, clen, close_after);
  } else if (path_is(&r, "/ws") || echo || path_is(&r, "/healthz") || path_is(&r, "/metrics")) {
    rc_request_error(l, s, 405, close_after, "Allow: GET\r\n", "%.*s only allows GET",
                     (int)r.path_len, r.path);
  } else if (is_publish) {
    rc_request_error(l, s, 405, close_after, "Allow: POST\r\n", "/publish only allows POST");
  } else {
    rc_request_error(l, s, 404, close_after, NULL,
                     "no route for %.*s %.*s; routes: GET /ws, POST /publish/<topic>, "
                     "POST /publish, GET /metrics, GET /healthz",
                     (int)r.method_len, r.method, (int)(r.path_len > 200 ? 200 : r.path_len), r.path);
  }
  free(decoded);
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
      rc_conn_abort(l, &s->conn);
      rc_session_rx_settle(l, s, rx);
      return;
    }
    buf = rx->in.p;
    len = rx->in.len;
  }
  size_t pos = 0;
  while (pos < len && s->kind == RC_SESSION_HTTP) {
    ssize_t r = handle_request(l, s, buf + pos, len - pos);
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
  if (buffered) {
    rc_bytebuf_consume(&rx->in, pos);
  } else if (pos < len && rc_bytebuf_append(&rx->in, buf + pos, len - pos, limit) < 0) {
    rc_conn_abort(l, &s->conn);
  }
  rc_session_rx_settle(l, s, rx);
  /* A partial request is held: the handshake deadline applies from now on. */
  if (s->rx) rc_session_rearm_timer(l, s);
}
