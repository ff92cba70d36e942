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

/* Feeds a chunked body in pieces of `piece` bytes into a separate buffer, or in
 * place (output over the input); returns the decoded length or an error, and
 * the bytes read in *used. */
static ssize_t decode(const char *b, size_t len, size_t piece, bool in_place, uint8_t *out,
                      size_t room, size_t *used) {
  struct rc_http_chunked c;
  rc_http_chunked_init(&c);
  struct guarded g;
  uint8_t *p = guard_copy(&g, b, len);
  uint8_t *dst = in_place ? p : out;
  size_t got = 0, pos = 0;
  bool done = false;
  ssize_t ret = 0;
  while (pos < len && !done) {
    size_t n = len - pos < piece ? len - pos : piece;
    ssize_t r = rc_http_chunked_feed(&c, p + pos, n, dst, room, &got, &done);
    if (r < 0) {
      ret = r;
      break;
    }
    cr_assert(done || (size_t)r == n, "everything is read until the body ends");
    pos += (size_t)r;
  }
  if (ret == 0) ret = done ? (ssize_t)got : -EAGAIN;
  if (in_place && ret > 0) memcpy(out, p, got);
  *used = pos;
  guard_free(&g);
  return ret;
}

Test(http, chunked_any_split_in_place_or_not) {
  const char *b = "4\r\nWiki\r\n6;name=v\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nT: x\r\n\r\nNEXT";
  size_t len = strlen(b);
  for (size_t piece = 1; piece <= len; piece++) {
    for (int in_place = 0; in_place < 2; in_place++) {
      uint8_t out[64];
      size_t used;
      ssize_t n = decode(b, len, piece, in_place, out, sizeof out, &used);
      cr_assert_eq(n, 24, "piece %zu in_place %d", piece, in_place);
      cr_assert_eq(memcmp(out, "Wikipedia in \r\n\r\nchunks.", 24), 0);
      cr_assert_eq(used, len - 4, "stops before the next request");
    }
  }
  uint8_t out[64];
  size_t used;
  for (size_t i = 0; i < len - 4; i++)
    cr_assert_eq(decode(b, i, 7, false, out, sizeof out, &used), -EAGAIN, "prefix %zu", i);
}

Test(http, chunked_errors_and_limits) {
  uint8_t out[64];
  size_t used;
  const char *bad[] = {"zz\r\n", "3\r\nabcX\r\n", "3\nabc\r\n", "\r\n", "1234567890123456\r\n",
                       "3\r\nabc\r\n0\r\nT: x\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(decode(bad[i], strlen(bad[i]), 3, false, out, sizeof out, &used), -EBADMSG, "%s", bad[i]);
  cr_assert_eq(decode("ff\r\n", 4, 4, false, out, 16, &used), -EMSGSIZE, "over the room");
  char ext[400] = "1;";
  memset(ext + 2, 'e', 300);
  strcpy(ext + 302, "\r\nx\r\n0\r\n\r\n");
  cr_assert_eq(decode(ext, strlen(ext), 50, false, out, sizeof out, &used), -EBADMSG,
               "a size line past %d bytes", RC_HTTP_CHUNK_LINE_MAX);
  char trailers[2000] = "0\r\n";
  for (int i = 0; i < 40; i++) strcat(trailers, "T: v\r\n");
  strcat(trailers, "\r\n");
  cr_assert_eq(decode(trailers, strlen(trailers), 50, false, out, sizeof out, &used), -EBADMSG,
               "more than %d trailer fields", RC_HTTP_TRAILERS_MAX);
}

static int framing(const char *head, struct rc_http_framing *f, const char **why) {
  struct rc_http_request r;
  cr_assert_gt(rc_http_parse_request(head, strlen(head), &r), 0, "%s", head);
  return rc_http_body_framing(&r, f, why);
}

Test(http, body_framing_refuses_smuggling) {
  struct rc_http_framing f;
  const char *why;
  cr_assert_eq(framing("POST / HTTP/1.1\r\n\r\n", &f, &why), 0);
  cr_assert_eq(f.kind, RC_HTTP_BODY_NONE);
  cr_assert_eq(framing("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", &f, &why), 0);
  cr_assert_eq(f.kind, RC_HTTP_BODY_LENGTH);
  cr_assert_eq(f.length, 12);
  cr_assert_eq(framing("POST / HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n", &f, &why), 0,
               "identical values are one length");
  cr_assert_eq(framing("POST / HTTP/1.1\r\nContent-Length: 12, 12\r\n\r\n", &f, &why), 0);
  cr_assert_eq(framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &f, &why), 0);
  cr_assert_eq(f.kind, RC_HTTP_BODY_CHUNKED);
  const char *smuggles[] = {
      "POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 12, 13\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: +12\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof smuggles / sizeof smuggles[0]; i++)
    cr_assert_eq(framing(smuggles[i], &f, &why), -EBADMSG, "%s", smuggles[i]);
  cr_assert_eq(framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &f, &why), -ENOTSUP);
  cr_assert_eq(framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &f, &why), -ENOTSUP);
  cr_assert_not_null(why);
}

Test(http, obsolete_line_folding_is_malformed) {
  struct rc_http_request r;
  const char *h = "POST / HTTP/1.1\r\nContent-Length: 1\r\n 2\r\n\r\n";
  cr_assert_eq(rc_http_parse_request(h, strlen(h), &r), -EBADMSG);
}
