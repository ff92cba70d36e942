/* SPDX-License-Identifier: MIT */
/* A strict HTTP/1.1 request-head parser (RFC 9112): CRLF line endings, token
 * method and header names, no obsolete line folding, bounded sizes. */
#include "ringcast/proto/http.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char ch) {
  return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_vchar_or_ws(unsigned char ch) {
  return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* Finds the CRLF ending the line at p: 1 (eol at the CR), 0 if more bytes are
 * needed, -1 for a bare CR or LF. */
static int find_eol(const char *p, const char *end, const char **eol) {
  for (const char *q = p; q < end; q++) {
    if (*q == '\n') return -1;
    if (*q == '\r') {
      if (q + 1 == end) return 0;
      if (q[1] != '\n') return -1;
      *eol = q;
      return 1;
    }
  }
  return 0;
}

ssize_t rc_http_parse_request(const char *buf, size_t len, struct rc_http_request *req) {
  const char *p = buf;
  memset(req, 0, offsetof(struct rc_http_request, headers));
  bool capped = len >= RC_HTTP_MAX_HEAD_BYTES;
  const char *lim_end = buf + (capped ? RC_HTTP_MAX_HEAD_BYTES : len);
  const char *eol;

  /* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
  int r = find_eol(p, lim_end, &eol);
  if (r < 0) return -EBADMSG;
  if (r == 0) return capped ? -ENAMETOOLONG : -EAGAIN;
  const char *m = p;
  while (p < eol && is_tchar((unsigned char)*p)) p++;
  if (p == m || p >= eol || *p != ' ') return -EBADMSG;
  req->method = m;
  req->method_len = (size_t)(p - m);
  p++;
  const char *t = p;
  while (p < eol && *p != ' ') {
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) return -EBADMSG;
    p++;
  }
  if (p == t || p >= eol) return -EBADMSG;
  if ((size_t)(p - t) > RC_HTTP_MAX_TARGET) return -ENAMETOOLONG;
  const char *q = memchr(t, '?', (size_t)(p - t));
  req->path = t;
  req->path_len = q ? (size_t)(q - t) : (size_t)(p - t);
  if (q) {
    req->query = q + 1;
    req->query_len = (size_t)(p - q - 1);
  }
  p++;
  if (eol - p != 8 || memcmp(p, "HTTP/1.", 7) != 0) {
    if (eol - p >= 5 && memcmp(p, "HTTP/", 5) == 0) return -EPROTONOSUPPORT;
    return -EBADMSG;
  }
  if (p[7] == '1') req->minor_version = 1;
  else if (p[7] == '0') req->minor_version = 0;
  else return -EPROTONOSUPPORT;
  p = eol + 2;

  for (;;) {
    if (p >= lim_end) return capped ? -E2BIG : -EAGAIN;
    if (*p == '\r') {
      if (p + 1 >= lim_end) return capped ? -E2BIG : -EAGAIN;
      if (p[1] != '\n') return -EBADMSG;
      return (ssize_t)(p + 2 - buf);
    }
    r = find_eol(p, lim_end, &eol);
    if (r < 0) return -EBADMSG;
    if (r == 0) return capped ? -E2BIG : -EAGAIN;
    if (req->n_headers == RC_HTTP_MAX_HEADERS) return -E2BIG;
    const char *name = p;
    while (p < eol && is_tchar((unsigned char)*p)) p++;
    if (p == name || p >= eol || *p != ':') return -EBADMSG; /* also obs-fold */
    struct rc_http_header *h = &req->headers[req->n_headers++];
    h->name = name;
    h->name_len = (size_t)(p - name);
    p++;
    while (p < eol && (*p == ' ' || *p == '\t')) p++;
    const char *v = p, *vend = eol;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    for (const char *c = v; c < vend; c++)
      if (!is_vchar_or_ws((unsigned char)*c)) return -EBADMSG;
    h->value = v;
    h->value_len = (size_t)(vend - v);
    p = eol + 2;
  }
}

const struct rc_http_header *rc_http_find_header(const struct rc_http_request *req,
                                                 const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct rc_http_header *h = &req->headers[i];
    if (h->name_len == n && strncasecmp(h->name, name, n) == 0) return h;
  }
  return NULL;
}

bool rc_http_has_token(const char *value, size_t len, const char *token) {
  size_t tn = strlen(token);
  const char *p = value, *end = value + len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
    const char *s = p;
    while (p < end && *p != ',') p++;
    const char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if ((size_t)(e - s) == tn && strncasecmp(s, token, tn) == 0) return true;
  }
  return false;
}

bool rc_http_is_method(const struct rc_http_request *req, const char *m) {
  size_t n = strlen(m);
  return req->method_len == n && memcmp(req->method, m, n) == 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

ssize_t rc_http_query_get(const char *query, size_t len, const char *key, char *out,
                          size_t out_size) {
  if (!query) return -ENOENT;
  size_t kn = strlen(key);
  const char *p = query, *end = query + len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    const char *ke = eq ? eq : pe;
    if ((size_t)(ke - p) == kn && memcmp(p, key, kn) == 0) {
      size_t o = 0;
      for (const char *v = eq ? eq + 1 : pe; v < pe; v++) {
        int ch = (unsigned char)*v;
        if (ch == '%') {
          if (pe - v < 3) return -EINVAL;
          int hi = hexval(v[1]), lo = hexval(v[2]);
          if (hi < 0 || lo < 0) return -EINVAL;
          ch = hi * 16 + lo;
          v += 2;
        } else if (ch == '+') {
          ch = ' ';
        }
        if (o + 1 >= out_size) return -ENOSPC;
        out[o++] = (char)ch;
      }
      out[o] = '\0';
      return (ssize_t)o;
    }
    p = amp ? amp + 1 : end;
  }
  return -ENOENT;
}

/* Reads one CRLF-terminated line of at most max bytes at buf[*pos..len). */
static int chunk_line(const uint8_t *buf, size_t len, size_t *pos, size_t max, size_t *line_len) {
  const char *eol;
  size_t avail = len - *pos < max + 2 ? len - *pos : max + 2;
  int r = find_eol((const char *)buf + *pos, (const char *)buf + *pos + avail, &eol);
  if (r < 0) return -EBADMSG;
  if (r == 0) return avail == max + 2 ? -EBADMSG : -EAGAIN;
  *line_len = (size_t)((const uint8_t *)eol - (buf + *pos));
  return 0;
}

ssize_t rc_http_chunked_decode(const uint8_t *buf, size_t len, uint8_t *out, size_t out_max,
                               size_t *consumed) {
  size_t pos = 0, olen = 0, ll;
  for (;;) {
    int r = chunk_line(buf, len, &pos, 256, &ll);
    if (r < 0) return r;
    size_t size = 0, i = 0;
    for (; i < ll && i < 9; i++) {
      int v = hexval((char)buf[pos + i]);
      if (v < 0) break;
      size = size * 16 + (size_t)v;
    }
    if (i == 0 || i > 8 || (i < ll && buf[pos + i] != ';' && buf[pos + i] != ' ' &&
                            buf[pos + i] != '\t'))
      return -EBADMSG;
    pos += ll + 2;
    if (size == 0) {
      /* Trailer fields, then the empty line. */
      for (int n = 0;; n++) {
        if (n > 32) return -EBADMSG;
        r = chunk_line(buf, len, &pos, 1024, &ll);
        if (r < 0) return r;
        pos += ll + 2;
        if (ll == 0) break;
      }
      *consumed = pos;
      return (ssize_t)olen;
    }
    if (size > out_max - olen) return -EMSGSIZE;
    if (len - pos < size + 2) return -EAGAIN;
    if (buf[pos + size] != '\r' || buf[pos + size + 1] != '\n') return -EBADMSG;
    memcpy(out + olen, buf + pos, size);
    olen += size;
    pos += size + 2;
  }
}

const char *rc_http_reason(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 426: return "Upgrade Required";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}
