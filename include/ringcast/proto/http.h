/* SPDX-License-Identifier: MIT */
/* A pure HTTP/1.1 request-head parser: no I/O, no allocation. The request's
 * pointers point into the caller's buffer and live as long as it does. */
#ifndef RINGCAST_HTTP_H
#define RINGCAST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RC_HTTP_MAX_HEADERS 32
#define RC_HTTP_MAX_HEAD_BYTES 8192
#define RC_HTTP_MAX_TARGET 2048

struct rc_http_header {
  const char *name;
  size_t name_len;
  const char *value;     /* leading and trailing whitespace removed */
  size_t value_len;
};

struct rc_http_request {
  const char *method;
  size_t method_len;
  const char *path;      /* target up to '?' */
  size_t path_len;
  const char *query;     /* after '?', or NULL */
  size_t query_len;
  int minor_version;     /* HTTP/1.x */
  size_t n_headers;
  struct rc_http_header headers[RC_HTTP_MAX_HEADERS];
};

/* Parses the request head at buf[0..len). Returns the head's length including the
 * blank line, or:
 *   -EAGAIN        incomplete; call again with more bytes
 *   -EBADMSG       malformed (400)
 *   -ENAMETOOLONG  request target over RC_HTTP_MAX_TARGET (414)
 *   -E2BIG         head over RC_HTTP_MAX_HEAD_BYTES or too many headers (431)
 *   -EPROTONOSUPPORT  not HTTP/1.0 or HTTP/1.1 (505) */
ssize_t rc_http_parse_request(const char *buf, size_t len, struct rc_http_request *req);

/* Case-insensitive lookup; NULL if absent. */
const struct rc_http_header *rc_http_find_header(const struct rc_http_request *req,
                                                 const char *name);
/* Whether a comma-separated header value lists token (case-insensitive). */
bool rc_http_has_token(const char *value, size_t len, const char *token);
/* Whether the method equals m exactly. */
bool rc_http_is_method(const struct rc_http_request *req, const char *m);
/* Finds key in an application/x-www-form-urlencoded query and percent-decodes its
 * value into out (NUL-terminated). Returns the decoded length, -ENOENT if absent,
 * -EINVAL on bad escapes, -ENOSPC if it does not fit. */
ssize_t rc_http_query_get(const char *query, size_t len, const char *key, char *out,
                          size_t out_size);
/* Decodes a chunked body (RFC 9112 section 7.1) at buf[0..len) into out (at most
 * out_max bytes). Returns the decoded length and sets *consumed to the bytes of
 * framing read, or -EAGAIN (incomplete), -EBADMSG (malformed) or -EMSGSIZE (over
 * out_max). Chunk extensions and trailers are skipped. */
ssize_t rc_http_chunked_decode(const uint8_t *buf, size_t len, uint8_t *out, size_t out_max,
                               size_t *consumed);
/* The reason phrase for a status code ("Not Found"). */
const char *rc_http_reason(int status);

#endif
