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
/* How a request's body is framed (RFC 9112 section 6), decided over every
 * Content-Length and Transfer-Encoding header, not the first of each. */
enum rc_http_body_kind { RC_HTTP_BODY_NONE = 0, RC_HTTP_BODY_LENGTH, RC_HTTP_BODY_CHUNKED };

struct rc_http_framing {
  enum rc_http_body_kind kind;
  uint64_t length;       /* RC_HTTP_BODY_LENGTH */
};

/* Decides the framing. 0, or (with the reason in *why, a static string):
 *   -EBADMSG  400: Content-Length values that differ or are not decimal,
 *             Content-Length together with Transfer-Encoding, "chunked" repeated
 *             or not the final coding: the ways request smuggling starts
 *   -ENOTSUP  501: a transfer coding other than chunked */
int rc_http_body_framing(const struct rc_http_request *req, struct rc_http_framing *out,
                         const char **why);

/* An incremental chunked-body decoder (RFC 9112 section 7.1): bytes go in as they
 * arrive, each read once; the data comes out without the framing, and may be
 * written over the input (the output never passes the input). Chunk extensions
 * and trailer fields are skipped, within bounds. */
struct rc_http_chunked {
  uint64_t left;         /* data bytes of the current chunk still to come */
  uint16_t line;         /* bytes of the current size or trailer line so far */
  uint8_t state;
  uint8_t digits;
  uint8_t trailers;
};

#define RC_HTTP_CHUNK_LINE_MAX 256     /* a size line with its extensions */
#define RC_HTTP_TRAILER_LINE_MAX 1024
#define RC_HTTP_TRAILERS_MAX 32

void rc_http_chunked_init(struct rc_http_chunked *c);
/* Reads in[0..len). The body's data goes to out + *out_len (*out_len is what out
 * holds already, and grows), never past out_room bytes in all. Returns the bytes
 * read: all of len, or fewer when the body ended (then *done is set; the rest
 * belongs to the next request). Errors: -EBADMSG malformed (400), -EMSGSIZE more
 * data than out_room (413). */
ssize_t rc_http_chunked_feed(struct rc_http_chunked *c, const uint8_t *in, size_t len,
                             uint8_t *out, size_t out_room, size_t *out_len, bool *done);
/* The reason phrase for a status code ("Not Found"). */
const char *rc_http_reason(int status);

#endif
