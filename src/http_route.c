/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 on the WebSocket port: the upgrade to WebSocket, POST /publish (single
 * and batch), GET /metrics and GET /healthz, keep-alive and pipelining. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ringcast/conn.h"
#include "ringcast/fanout.h"
#include "ringcast/http.h"
#include "ringcast/json_out.h"
#include "ringcast/log.h"
#include "ringcast/metrics.h"
#include "ringcast/publish_batch.h"
#include "ringcast/session.h"
#include "ringcast/shard.h"
#include "ringcast/topic.h"
#include "ringcast/ws.h"

/* A batch body may carry many messages; each is still bounded by --max-message. */
#define BATCH_MAX_BODY (16u << 20)

void rc_http_respond(struct rc_shard *sh, struct rc_conn *c, int status,
                     const char *content_type, const char *extra_headers, const void *body,
                     size_t body_len, int close_after) {
  char head[512];
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nServer: ringcast\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\n%s%s\r\n",
                    status, rc_http_reason(status), content_type, body_len,
                    extra_headers ? extra_headers : "", close_after ? "Connection: close\r\n" : "");
  struct rc_msg *m = rc_msg_create_bytes((uint16_t)sh->id, (size_t)hl + body_len);
  if (!m) {
    rc_conn_abort(sh, c);
    return;
  }
  memcpy(m->data, head, (size_t)hl);
  if (body_len) memcpy(m->data + hl, body, body_len);
  if (rc_conn_send_msg(sh, c, m) < 0) return;
  if (close_after) rc_conn_close(sh, c, 0, NULL, false);
}

/* Replies {"error":"..."} with the formatted, JSON-escaped reason. */
static void respond_error(struct rc_shard *sh, struct rc_conn *c, int status, int close_after,
                          const char *extra_headers, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void respond_error(struct rc_shard *sh, struct rc_conn *c, int status, int close_after,
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
  rc_conn_peer_text(c, peer, sizeof peer);
  /* Input that ends the connection is logged at info; ordinary client mistakes
   * on a keep-alive connection (404, a bad topic in a publish) only at debug. */
  if (close_after) rc_info("%s: HTTP %d: %s", peer, status, msg);
  else rc_debug("%s: HTTP %d: %s", peer, status, msg);
  rc_http_respond(sh, c, status, "application/json", extra_headers, body, bl, close_after);
}

static bool path_is(const struct rc_http_request *r, const char *p) {
  size_t n = strlen(p);
  return r->path_len == n && memcmp(r->path, p, n) == 0;
}

/* The WebSocket handshake for /ws (subscribing to ?topics=) and /echo. */
static void route_upgrade(struct rc_shard *sh, struct rc_conn *c, const struct rc_http_request *r,
                          bool echo) {
  const struct rc_http_header *up = rc_http_find_header(r, "Upgrade");
  const struct rc_http_header *conn = rc_http_find_header(r, "Connection");
  const struct rc_http_header *ver = rc_http_find_header(r, "Sec-WebSocket-Version");
  const struct rc_http_header *key = rc_http_find_header(r, "Sec-WebSocket-Key");
  if (!up || !rc_http_has_token(up->value, up->value_len, "websocket")) {
    respond_error(sh, c, 400, 1, NULL, "GET %s needs a WebSocket upgrade (Upgrade: websocket)",
                  echo ? "/echo" : "/ws");
    return;
  }
  if (!conn || !rc_http_has_token(conn->value, conn->value_len, "upgrade")) {
    respond_error(sh, c, 400, 1, NULL, "WebSocket upgrade needs Connection: Upgrade");
    return;
  }
  if (r->minor_version != 1) {
    respond_error(sh, c, 400, 1, NULL, "WebSocket upgrade needs HTTP/1.1");
    return;
  }
  if (!ver || ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0) {
    respond_error(sh, c, 426, 1, "Sec-WebSocket-Version: 13\r\n",
                  "unsupported Sec-WebSocket-Version; this server speaks version 13");
    return;
  }
  char accept[RC_WS_ACCEPT_LEN + 1];
  if (!key || rc_ws_accept_key(key->value, key->value_len, accept) < 0) {
    respond_error(sh, c, 400, 1, NULL, "missing or invalid Sec-WebSocket-Key (24 characters of base64)");
    return;
  }
  char topics[8192], format[16];
  ssize_t tl = rc_http_query_get(r->query, r->query_len, "topics", topics, sizeof topics);
  if (tl == -ENOENT) tl = 0, topics[0] = '\0';
  if (tl < 0) {
    respond_error(sh, c, 400, 1, NULL, "bad topics parameter: %s",
                  tl == -ENOSPC ? "too long" : "invalid percent-encoding");
    return;
  }
  ssize_t fl = rc_http_query_get(r->query, r->query_len, "format", format, sizeof format);
  bool raw = false;
  if (fl >= 0) {
    if (strcmp(format, "raw") == 0) raw = true;
    else if (strcmp(format, "json") != 0) {
      respond_error(sh, c, 400, 1, NULL, "unknown format '%s': expected json or raw", format);
      return;
    }
  } else if (fl != -ENOENT) {
    respond_error(sh, c, 400, 1, NULL, "bad format parameter: expected json or raw");
    return;
  }
  /* Resolve every topic before subscribing to any, so an error leaves no trace. */
  struct rc_topic *list[RC_MAX_SUBS_PER_CONN];
  unsigned n = 0;
  for (char *s = topics, *e; tl > 0 && s <= topics + tl; s = e + 1) {
    e = strchr(s, ',');
    if (!e) e = topics + tl;
    size_t len = (size_t)(e - s);
    if (n == RC_MAX_SUBS_PER_CONN) {
      respond_error(sh, c, 400, 1, NULL, "more than %d topics", RC_MAX_SUBS_PER_CONN);
      return;
    }
    int ret = rc_topic_get(sh->srv->topics, s, len, &list[n]);
    if (ret == -EINVAL) {
      respond_error(sh, c, 400, 1, NULL,
                    "invalid topic name '%.*s': 1-128 characters of A-Z a-z 0-9 . _ - : / @",
                    (int)(len > 200 ? 200 : len), s);
      return;
    }
    if (ret < 0) {
      respond_error(sh, c, 503, 1, NULL, "topic table is full");
      return;
    }
    n++;
  }
  if (echo && (n || fl >= 0)) {
    respond_error(sh, c, 400, 1, NULL, "/echo takes no topics or format");
    return;
  }
  if (raw && n != 1) {
    respond_error(sh, c, 400, 1, NULL, "format=raw needs exactly one topic in topics=");
    return;
  }
  for (unsigned i = 0; i < n; i++) {
    int ret = rc_fanout_subscribe(sh, c, list[i]);
    if (ret < 0 && ret != -EEXIST) {
      rc_fanout_unsubscribe_all(sh, c);
      respond_error(sh, c, 503, 1, NULL, "could not subscribe: out of memory");
      return;
    }
  }
  char resp[256];
  int rl = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                    accept);
  struct rc_msg *m = rc_msg_create_bytes((uint16_t)sh->id, (size_t)rl);
  if (!m) {
    rc_conn_abort(sh, c);
    return;
  }
  memcpy(m->data, resp, (size_t)rl);
  if (rc_conn_send_msg(sh, c, m) < 0) return;
  c->state = RC_CONN_WS;
  if (raw) c->flags |= RC_CF_RAW;
  if (echo) c->flags |= RC_CF_ECHO;
  RC_METRIC_ADD(&sh->metrics, ws_upgrades, 1);
}

static void route_publish_one(struct rc_shard *sh, struct rc_conn *c, const char *name,
                              size_t name_len, const uint8_t *body, size_t len, int close_after) {
  struct rc_topic *tp;
  int ret = rc_topic_get(sh->srv->topics, name, name_len, &tp);
  if (ret == -EINVAL) {
    respond_error(sh, c, 400, close_after, NULL,
                  "invalid topic name '%.*s': 1-128 characters of A-Z a-z 0-9 . _ - : / @",
                  (int)(name_len > 200 ? 200 : name_len), name);
    return;
  }
  if (ret < 0) {
    respond_error(sh, c, 503, close_after, NULL, "topic table is full");
    return;
  }
  if (rc_fanout_publish(sh, tp, body, len) < 0) {
    respond_error(sh, c, 503, close_after, NULL, "out of memory; message not published");
    return;
  }
  static const char ok[] = "{\"ok\":true,\"published\":1}\n";
  rc_http_respond(sh, c, 200, "application/json", NULL, ok, sizeof ok - 1, close_after);
}

static void route_publish_batch(struct rc_shard *sh, struct rc_conn *c, const uint8_t *body,
                                size_t len, int close_after) {
  struct rc_batch_record rec;
  char err[256];
  size_t pos = 0, count = 0;
  ssize_t r;
  /* Validate and resolve everything first: a bad record publishes nothing. */
  while ((r = rc_publish_batch_next(body, len, pos, sh->srv->cfg->max_message, &rec, err,
                                    sizeof err)) > 0) {
    struct rc_topic *tp;
    int ret = rc_topic_get(sh->srv->topics, rec.topic, rec.topic_len, &tp);
    if (ret < 0) {
      respond_error(sh, c, ret == -ENOSPC ? 503 : 400, close_after, NULL,
                    "record %zu: %s; nothing was published", count + 1,
                    ret == -ENOSPC ? "topic table is full" : "invalid topic name");
      return;
    }
    pos += (size_t)r;
    count++;
  }
  if (r < 0) {
    respond_error(sh, c, 400, close_after, NULL, "batch %s; nothing was published", err);
    return;
  }
  if (count == 0) {
    respond_error(sh, c, 400, close_after, NULL,
                  "empty batch: the body holds records \"TOPIC LENGTH\\nPAYLOAD\\n\"");
    return;
  }
  pos = 0;
  size_t done = 0;
  while ((r = rc_publish_batch_next(body, len, pos, sh->srv->cfg->max_message, &rec, err,
                                    sizeof err)) > 0) {
    struct rc_topic *tp = rc_topic_find(sh->srv->topics, rec.topic, rec.topic_len);
    if (!tp || rc_fanout_publish(sh, tp, rec.payload, rec.payload_len) < 0) break;
    pos += (size_t)r;
    done++;
  }
  char resp[64];
  if (done < count) {
    respond_error(sh, c, 503, close_after, NULL,
                  "out of memory after %zu of %zu messages; the first %zu were published", done,
                  count, done);
    return;
  }
  int rl = snprintf(resp, sizeof resp, "{\"ok\":true,\"published\":%zu}\n", done);
  rc_http_respond(sh, c, 200, "application/json", NULL, resp, (size_t)rl, close_after);
}

static void route_metrics(struct rc_shard *sh, struct rc_conn *c, int close_after) {
  char *text;
  long n = rc_metrics_render(sh->srv, &text);
  if (n < 0) {
    respond_error(sh, c, 500, close_after, NULL, "out of memory rendering metrics");
    return;
  }
  rc_http_respond(sh, c, 200, "text/plain; version=0.0.4", NULL, text, (size_t)n, close_after);
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
static ssize_t handle_request(struct rc_shard *sh, struct rc_conn *c, const uint8_t *buf,
                              size_t len) {
  struct rc_http_request r;
  ssize_t hl = rc_http_parse_request((const char *)buf, len, &r);
  if (hl == -EAGAIN) return 0;
  if (hl < 0) {
    RC_METRIC_ADD(&sh->metrics, protocol_errors, 1);
    switch (hl) {
    case -ENAMETOOLONG: respond_error(sh, c, 414, 1, NULL, "request target over %d bytes", RC_HTTP_MAX_TARGET); break;
    case -E2BIG: respond_error(sh, c, 431, 1, NULL, "request head over %d bytes or %d headers", RC_HTTP_MAX_HEAD_BYTES, RC_HTTP_MAX_HEADERS); break;
    case -EPROTONOSUPPORT: respond_error(sh, c, 505, 1, NULL, "only HTTP/1.0 and HTTP/1.1 are supported"); break;
    default: respond_error(sh, c, 400, 1, NULL, "malformed HTTP request"); break;
    }
    return -1;
  }
  const struct rc_http_header *connh = rc_http_find_header(&r, "Connection");
  int close_after = r.minor_version == 1
                        ? (connh && rc_http_has_token(connh->value, connh->value_len, "close"))
                        : !(connh && rc_http_has_token(connh->value, connh->value_len, "keep-alive"));
  const struct rc_http_header *teh = rc_http_find_header(&r, "Transfer-Encoding");
  const struct rc_http_header *clh = rc_http_find_header(&r, "Content-Length");
  bool chunked = false;
  if (teh) {
    if (!(teh->value_len == 7 && strncasecmp(teh->value, "chunked", 7) == 0)) {
      respond_error(sh, c, 501, 1, NULL, "only Transfer-Encoding: chunked is supported");
      return -1;
    }
    if (clh) {
      /* Both framings at once is how request smuggling starts (RFC 9112 6.3). */
      respond_error(sh, c, 400, 1, NULL, "Content-Length together with Transfer-Encoding");
      return -1;
    }
    chunked = true;
  }
  size_t clen = 0;
  if (clh && parse_content_length(clh, &clen) < 0) {
    respond_error(sh, c, 400, 1, NULL, "invalid Content-Length");
    return -1;
  }
  bool is_publish = r.path_len >= 8 && memcmp(r.path, "/publish", 8) == 0 &&
                    (r.path_len == 8 || r.path[8] == '/');
  size_t max = 65536;
  const char *limit_name = "the limit for this route";
  if (is_publish && rc_http_is_method(&r, "POST")) {
    max = r.path_len == 8 ? BATCH_MAX_BODY : sh->srv->cfg->max_message;
    limit_name = r.path_len == 8 ? "the batch limit" : "--max-message";
    if (!clh && !chunked) {
      respond_error(sh, c, 411, 1, NULL, "POST /publish needs a Content-Length or a chunked body");
      return -1;
    }
  }
  if (clen > max) {
    respond_error(sh, c, 413, 1, NULL, "body of %zu bytes exceeds %s (%zu bytes)", clen, limit_name, max);
    return -1;
  }
  const uint8_t *body = buf + hl;
  size_t consumed = (size_t)hl + clen;
  uint8_t *decoded = NULL;
  if (chunked) {
    size_t framed;
    decoded = malloc(max ? max : 1);
    if (!decoded) {
      rc_conn_abort(sh, c);
      return -1;
    }
    ssize_t dl = rc_http_chunked_decode(buf + hl, len - (size_t)hl, decoded, max, &framed);
    if (dl < 0) free(decoded);
    if (dl == -EAGAIN) return 0;
    if (dl == -EMSGSIZE) {
      respond_error(sh, c, 413, 1, NULL, "chunked body exceeds %s (%zu bytes)", limit_name, max);
      return -1;
    }
    if (dl < 0) {
      respond_error(sh, c, 400, 1, NULL, "malformed chunked body");
      return -1;
    }
    body = decoded;
    clen = (size_t)dl;
    consumed = (size_t)hl + framed;
  } else if (len - (size_t)hl < clen) {
    return 0;
  }
  RC_METRIC_ADD(&sh->metrics, http_requests, 1);
  c->req_ds = sh->now_ds;
  c->flags |= RC_CF_SERVED;

  bool get = rc_http_is_method(&r, "GET");
  bool echo = sh->srv->cfg->echo && path_is(&r, "/echo");
  if ((path_is(&r, "/ws") || echo) && get) {
    route_upgrade(sh, c, &r, echo);
  } else if (path_is(&r, "/healthz") && get) {
    rc_http_respond(sh, c, 200, "text/plain", NULL, "ok\n", 3, close_after);
  } else if (path_is(&r, "/metrics") && get) {
    route_metrics(sh, c, close_after);
  } else if (is_publish && rc_http_is_method(&r, "POST")) {
    if (r.path_len == 8)
      route_publish_batch(sh, c, body, clen, close_after);
    else
      route_publish_one(sh, c, r.path + 9, r.path_len - 9, body, clen, close_after);
  } else if (path_is(&r, "/ws") || echo || path_is(&r, "/healthz") || path_is(&r, "/metrics")) {
    respond_error(sh, c, 405, close_after, "Allow: GET\r\n", "%.*s only allows GET",
                  (int)r.path_len, r.path);
  } else if (is_publish) {
    respond_error(sh, c, 405, close_after, "Allow: POST\r\n", "/publish only allows POST");
  } else {
    respond_error(sh, c, 404, close_after, NULL,
                  "no route for %.*s %.*s; routes: GET /ws, POST /publish/<topic>, "
                  "POST /publish, GET /metrics, GET /healthz",
                  (int)r.method_len, r.method, (int)(r.path_len > 200 ? 200 : r.path_len), r.path);
  }
  free(decoded);
  if (c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN)) return -1;
  return (ssize_t)consumed;
}

void rc_http_on_data(struct rc_shard *sh, struct rc_conn *c, uint8_t *p, size_t n) {
  size_t limit = RC_HTTP_MAX_HEAD_BYTES + BATCH_MAX_BODY + sh->srv->cfg->max_message;
  uint8_t *buf = p;
  size_t len = n;
  bool buffered = c->in.len > 0;
  if (buffered) {
    if (rc_buf_append(&c->in, p, n, limit) < 0) {
      rc_conn_abort(sh, c);
      return;
    }
    buf = c->in.p;
    len = c->in.len;
  }
  size_t pos = 0;
  while (pos < len && c->state == RC_CONN_HTTP) {
    ssize_t r = handle_request(sh, c, buf + pos, len - pos);
    if (r < 0) {
      if (buffered) rc_buf_free(&c->in);
      return;
    }
    if (r == 0) break;
    pos += (size_t)r;
  }
  if (c->state == RC_CONN_WS && pos < len) {
    /* Frames pipelined behind the upgrade request. */
    struct rc_buf taken = c->in;
    if (buffered) c->in = (struct rc_buf){0};
    rc_ws_on_data(sh, c, buf + pos, len - pos);
    if (buffered) rc_buf_free(&taken);
    return;
  }
  if (buffered) {
    rc_buf_consume(&c->in, pos);
  } else if (pos < len && rc_buf_append(&c->in, buf + pos, len - pos, limit) < 0) {
    rc_conn_abort(sh, c);
  }
}
