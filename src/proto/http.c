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

/* One Content-Length value: 1-19 decimal digits. */
static int parse_length(const char *p, size_t n, uint64_t *out) {
  if (n == 0 || n > 19) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  *out = v;
  return 0;
}

/* Calls fn for each comma-separated element of a header value (trimmed; empty
 * elements skipped, as RFC 9110 section 5.6.1 allows). Stops at fn's first
 * non-zero result and returns it. */
static int each_element(const char *value, size_t len, int (*fn)(const char *, size_t, void *),
                        void *arg) {
  const char *p = value, *end = value + len;
  while (p < end) {
    const char *s = p;
    while (p < end && *p != ',') p++;
    const char *e = p;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e > s) {
      int r = fn(s, (size_t)(e - s), arg);
      if (r) return r;
    }
    if (p < end) p++;
  }
  return 0;
}

struct framing_scan {
  bool have_length;
  uint64_t length;
  unsigned codings;      /* transfer codings seen, in order */
  bool chunked_seen;     /* "chunked" seen (it must be the last one) */
  bool other_coding;
  bool chunked_not_last;
  bool bad_length;
};

static int scan_length(const char *v, size_t n, void *arg) {
  struct framing_scan *f = arg;
  uint64_t x;
  if (parse_length(v, n, &x) < 0 || (f->have_length && x != f->length)) {
    f->bad_length = true;
    return 1;
  }
  f->have_length = true;
  f->length = x;
  return 0;
}

static int scan_coding(const char *v, size_t n, void *arg) {
  struct framing_scan *f = arg;
  /* Parameters after ';' do not change the coding's name. */
  const char *semi = memchr(v, ';', n);
  size_t nl = semi ? (size_t)(semi - v) : n;
  while (nl && (v[nl - 1] == ' ' || v[nl - 1] == '\t')) nl--;
  if (f->chunked_seen) f->chunked_not_last = true; /* anything after chunked, chunked included */
  if (nl == 7 && strncasecmp(v, "chunked", 7) == 0) f->chunked_seen = true;
  else f->other_coding = true;
  f->codings++;
  return 0;
}

int rc_http_body_framing(const struct rc_http_request *req, struct rc_http_framing *out,
                         const char **why) {
  struct framing_scan f = {0};
  bool have_te = false;
  for (size_t i = 0; i < req->n_headers; i++) {
    const struct rc_http_header *h = &req->headers[i];
    if (h->name_len == 14 && strncasecmp(h->name, "Content-Length", 14) == 0) {
      if (h->value_len == 0) f.bad_length = true;
      else each_element(h->value, h->value_len, scan_length, &f);
    } else if (h->name_len == 17 && strncasecmp(h->name, "Transfer-Encoding", 17) == 0) {
      have_te = true;
      each_element(h->value, h->value_len, scan_coding, &f);
    }
  }
  memset(out, 0, sizeof *out);
  if (f.bad_length) {
    *why = "Content-Length values that differ or are not decimal";
    return -EBADMSG;
  }
  if (have_te && f.have_length) {
    *why = "Content-Length together with Transfer-Encoding";
    return -EBADMSG;
  }
  if (have_te) {
    if (f.chunked_not_last) {
      *why = "chunked repeated, or not the final transfer coding";
      return -EBADMSG;
    }
    if (f.other_coding || !f.chunked_seen) {
      *why = "only Transfer-Encoding: chunked is supported";
      return -ENOTSUP;
    }
    out->kind = RC_HTTP_BODY_CHUNKED;
    return 0;
  }
  if (f.have_length) {
    out->kind = RC_HTTP_BODY_LENGTH;
    out->length = f.length;
  }
  return 0;
}

enum {
  CH_SIZE = 0,     /* hex digits of the chunk size */
  CH_EXT,          /* after the size: extensions up to CR */
  CH_SIZE_LF,      /* the LF ending the size line */
  CH_DATA,
  CH_DATA_CR,      /* the CRLF after a chunk's data */
  CH_DATA_LF,
  CH_TRAILER,      /* a trailer line (or the final empty one) */
  CH_TRAILER_LF,
  CH_DONE,
};

void rc_http_chunked_init(struct rc_http_chunked *c) { memset(c, 0, sizeof *c); }

ssize_t rc_http_chunked_feed(struct rc_http_chunked *c, const uint8_t *in, size_t len,
                             uint8_t *out, size_t out_room, size_t *out_len, bool *done) {
  size_t i = 0;
  *done = c->state == CH_DONE;
  while (i < len && c->state != CH_DONE) {
    uint8_t b = in[i];
    switch (c->state) {
    case CH_SIZE: {
      int v = hexval((char)b);
      if (v >= 0) {
        /* 15 hex digits is far past any body ringcast takes; more is an overflow. */
        if (++c->digits > 15) return -EBADMSG;
        c->left = c->left * 16 + (uint64_t)v;
        c->line++;
        i++;
        break;
      }
      if (c->digits == 0) return -EBADMSG;
      if (b == '\r') c->state = CH_SIZE_LF;
      else if (b == ';' || b == ' ' || b == '\t') c->state = CH_EXT;
      else return -EBADMSG;
      c->line++;
      i++;
      break;
    }
    case CH_EXT:
      if (b == '\n') return -EBADMSG;
      if (b == '\r') c->state = CH_SIZE_LF;
      if (++c->line > RC_HTTP_CHUNK_LINE_MAX) return -EBADMSG;
      i++;
      break;
    case CH_SIZE_LF:
      if (b != '\n') return -EBADMSG;
      i++;
      c->line = 0;
      c->digits = 0;
      if (c->left == 0) {
        c->state = CH_TRAILER;
      } else {
        if (c->left > out_room - *out_len) return -EMSGSIZE;
        c->state = CH_DATA;
      }
      break;
    case CH_DATA: {
      size_t n = len - i < c->left ? len - i : (size_t)c->left;
      /* memmove: out may be in, a little behind it. */
      memmove(out + *out_len, in + i, n);
      *out_len += n;
      c->left -= n;
      i += n;
      if (c->left == 0) c->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      if (b != '\r') return -EBADMSG;
      c->state = CH_DATA_LF;
      i++;
      break;
    case CH_DATA_LF:
      if (b != '\n') return -EBADMSG;
      c->state = CH_SIZE;
      i++;
      break;
    case CH_TRAILER:
      if (b == '\n') return -EBADMSG;
      if (b == '\r') {
        c->state = CH_TRAILER_LF;
      } else if (++c->line > RC_HTTP_TRAILER_LINE_MAX) {
        return -EBADMSG;
      }
      i++;
      break;
    case CH_TRAILER_LF:
      if (b != '\n') return -EBADMSG;
      i++;
      if (c->line == 0) {
        c->state = CH_DONE; /* the empty line ends the body */
      } else {
        if (++c->trailers > RC_HTTP_TRAILERS_MAX) return -EBADMSG;
        c->line = 0;
        c->state = CH_TRAILER;
      }
      break;
    default:
      return -EBADMSG;
    }
  }
  *done = c->state == CH_DONE;
  return (ssize_t)i;
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
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}
