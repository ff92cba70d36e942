/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/http.h"

/* The request points into the guarded copy, so it lives until the next parse. */
static struct guarded last;

static ssize_t parse(const char *s, struct rc_http_request *r) {
  if (last.map) guard_free(&last);
  const char *p = (const char *)guard_copy(&last, s, strlen(s));
  return rc_http_parse_request(p, strlen(s), r);
}

Test(http, parses_upgrade_request) {
  const char *req = "GET /ws?topics=a,b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: abc \r\n\r\n";
  struct rc_http_request r;
  cr_assert_eq(parse(req, &r), (ssize_t)strlen(req));
  cr_assert(rc_http_is_method(&r, "GET"));
  cr_assert_eq(r.path_len, 3);
  cr_assert_eq(memcmp(r.path, "/ws", 3), 0);
  cr_assert_eq(r.query_len, strlen("topics=a,b"));
  cr_assert_eq(r.minor_version, 1);
  cr_assert_eq(r.n_headers, 4);
  const struct rc_http_header *h = rc_http_find_header(&r, "sec-websocket-key");
  cr_assert_not_null(h);
  cr_assert_eq(h->value_len, 3, "trailing whitespace is trimmed");
  h = rc_http_find_header(&r, "Connection");
  cr_assert(rc_http_has_token(h->value, h->value_len, "upgrade"));
  cr_assert_not(rc_http_has_token(h->value, h->value_len, "close"));
}

Test(http, every_prefix_is_incomplete) {
  const char *req = "POST /publish/x HTTP/1.1\r\nContent-Length: 3\r\n\r\n";
  size_t len = strlen(req);
  struct rc_http_request r;
  for (size_t i = 0; i < len; i++) {
    struct guarded g;
    const char *p = (const char *)guard_copy(&g, req, i);
    cr_assert_eq(rc_http_parse_request(p, i, &r), -EAGAIN, "prefix of %zu bytes", i);
    guard_free(&g);
  }
  cr_assert_eq(parse(req, &r), (ssize_t)len);
}

Test(http, rejects_malformed) {
  struct rc_http_request r;
  cr_assert_eq(parse("GET /\r\n\r\n", &r), -EBADMSG);
  cr_assert_eq(parse("GET / HTTP/1.1\nHost: x\n\n", &r), -EBADMSG, "bare LF");
  cr_assert_eq(parse("GET / HTTP/1.1\r\nHost x\r\n\r\n", &r), -EBADMSG, "no colon");
  cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &r), -EBADMSG, "obs-fold");
  cr_assert_eq(parse("G(T / HTTP/1.1\r\n\r\n", &r), -EBADMSG, "method not a token");
  cr_assert_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), -EPROTONOSUPPORT);
  cr_assert_eq(parse("GET / HTTP/1.2\r\n\r\n", &r), -EPROTONOSUPPORT);
  cr_assert_eq(parse("GET / FTP/1.1\r\n\r\n", &r), -EBADMSG);
  cr_assert_eq(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &r), -EBADMSG, "control char in target");
  cr_assert_eq(parse("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", &r), -EBADMSG, "control char in value");
}

Test(http, enforces_limits) {
  struct rc_http_request r;
  char big[RC_HTTP_MAX_HEAD_BYTES + 64];
  snprintf(big, sizeof big, "GET /");
  memset(big + 5, 'a', RC_HTTP_MAX_TARGET + 1);
  strcpy(big + 5 + RC_HTTP_MAX_TARGET + 1, " HTTP/1.1\r\n\r\n");
  cr_assert_eq(parse(big, &r), -ENAMETOOLONG);

  char many[4096] = "GET / HTTP/1.1\r\n";
  for (int i = 0; i <= RC_HTTP_MAX_HEADERS; i++) sprintf(many + strlen(many), "H%d: v\r\n", i);
  strcat(many, "\r\n");
  cr_assert_eq(parse(many, &r), -E2BIG);

  char huge[RC_HTTP_MAX_HEAD_BYTES + 64] = "GET / HTTP/1.1\r\nX: ";
  size_t l = strlen(huge);
  memset(huge + l, 'v', sizeof huge - l - 1);
  huge[sizeof huge - 1] = '\0';
  cr_assert_eq(parse(huge, &r), -E2BIG, "endless header");
}

Test(http, query_get_decodes) {
  char out[64];
  const char *q = "a=1&topics=x%2Cy,z&format=raw&empty=";
  cr_assert_eq(rc_http_query_get(q, strlen(q), "topics", out, sizeof out), 5);
  cr_assert_str_eq(out, "x,y,z");
  cr_assert_eq(rc_http_query_get(q, strlen(q), "format", out, sizeof out), 3);
  cr_assert_eq(rc_http_query_get(q, strlen(q), "empty", out, sizeof out), 0);
  cr_assert_eq(rc_http_query_get(q, strlen(q), "nope", out, sizeof out), -ENOENT);
  cr_assert_eq(rc_http_query_get("t=%zz", 5, "t", out, sizeof out), -EINVAL);
  cr_assert_eq(rc_http_query_get("t=%2", 4, "t", out, sizeof out), -EINVAL);
  cr_assert_eq(rc_http_query_get("t=abcdef", 8, "t", out, 4), -ENOSPC);
  cr_assert_eq(rc_http_query_get(NULL, 0, "t", out, sizeof out), -ENOENT);
}

Test(http, reason_phrases) {
  cr_assert_str_eq(rc_http_reason(404), "Not Found");
  cr_assert_str_eq(rc_http_reason(426), "Upgrade Required");
}

Test(http, chunked_decode) {
  uint8_t out[64];
  size_t used;
  const char *b = "4\r\nWiki\r\n6;name=v\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nT: x\r\n\r\nNEXT";
  struct guarded g;
  const uint8_t *p = guard_copy(&g, b, strlen(b));
  ssize_t n = rc_http_chunked_decode(p, strlen(b), out, sizeof out, &used);
  cr_assert_eq(n, 24);
  cr_assert_eq(memcmp(out, "Wikipedia in \r\n\r\nchunks.", 24), 0);
  cr_assert_eq(used, strlen(b) - 4, "stops before the next request");
  for (size_t i = 0; i < strlen(b) - 4; i++)
    cr_assert_eq(rc_http_chunked_decode(p, i, out, sizeof out, &used), -EAGAIN, "prefix %zu", i);
  guard_free(&g);
  cr_assert_eq(rc_http_chunked_decode((const uint8_t *)"zz\r\n", 4, out, sizeof out, &used), -EBADMSG);
  cr_assert_eq(rc_http_chunked_decode((const uint8_t *)"3\r\nabcX\r\n", 9, out, sizeof out, &used), -EBADMSG);
  cr_assert_eq(rc_http_chunked_decode((const uint8_t *)"ff\r\n", 4, out, 16, &used), -EMSGSIZE);
  cr_assert_eq(rc_http_chunked_decode((const uint8_t *)"123456789\r\n", 11, out, 16, &used), -EBADMSG);
}
