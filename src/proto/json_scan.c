/* SPDX-License-Identifier: MIT */
/* A strict JSON scanner: one recursive-descent pass that validates and measures
 * each value, used both to check whole texts and to find members and elements. */
#include "ringcast/proto/json_scan.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct scan {
  const uint8_t *p;
  size_t len, pos;
  const char *why;
};

static void skip_ws(struct scan *s) {
  while (s->pos < s->len) {
    uint8_t c = s->p[s->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
    s->pos++;
  }
}

static int fail(struct scan *s, const char *why) {
  s->why = why;
  return -EINVAL;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int scan_string(struct scan *s) {
  s->pos++; /* the opening quote */
  while (s->pos < s->len) {
    uint8_t c = s->p[s->pos];
    if (c == '"') {
      s->pos++;
      return 0;
    }
    if (c < 0x20) return fail(s, "a control character inside a string must be escaped");
    if (c != '\\') {
      s->pos++;
      continue;
    }
    if (s->pos + 1 >= s->len) break;
    uint8_t e = s->p[s->pos + 1];
    if (e == 'u') {
      for (size_t i = 2; i < 6; i++)
        if (s->pos + i >= s->len || hexval(s->p[s->pos + i]) < 0)
          return fail(s, "\\u needs four hex digits");
      s->pos += 6;
    } else if (strchr("\"\\/bfnrt", e) && e) {
      s->pos += 2;
    } else {
      return fail(s, "unknown escape in a string");
    }
  }
  return fail(s, "unterminated string");
}

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int scan_number(struct scan *s) {
  if (s->p[s->pos] == '-') s->pos++;
  if (s->pos >= s->len || !is_digit(s->p[s->pos])) return fail(s, "a number needs a digit");
  if (s->p[s->pos] == '0') {
    s->pos++;
    if (s->pos < s->len && is_digit(s->p[s->pos])) return fail(s, "a number with a leading zero");
  } else {
    while (s->pos < s->len && is_digit(s->p[s->pos])) s->pos++;
  }
  if (s->pos < s->len && s->p[s->pos] == '.') {
    s->pos++;
    if (s->pos >= s->len || !is_digit(s->p[s->pos])) return fail(s, "a digit must follow the decimal point");
    while (s->pos < s->len && is_digit(s->p[s->pos])) s->pos++;
  }
  if (s->pos < s->len && (s->p[s->pos] == 'e' || s->p[s->pos] == 'E')) {
    s->pos++;
    if (s->pos < s->len && (s->p[s->pos] == '+' || s->p[s->pos] == '-')) s->pos++;
    if (s->pos >= s->len || !is_digit(s->p[s->pos])) return fail(s, "an exponent needs a digit");
    while (s->pos < s->len && is_digit(s->p[s->pos])) s->pos++;
  }
  return 0;
}

static int scan_literal(struct scan *s, const char *word) {
  size_t n = strlen(word);
  if (s->len - s->pos < n || memcmp(s->p + s->pos, word, n) != 0) return fail(s, "unknown literal");
  s->pos += n;
  return 0;
}

/* Scans the value at s->pos (whitespace already skipped) and reports its type. */
static int scan_value(struct scan *s, unsigned depth, enum rc_json_type *type) {
  if (s->pos >= s->len) return fail(s, "a value is missing");
  uint8_t c = s->p[s->pos];
  switch (c) {
  case '{':
  case '[': {
    if (depth >= RC_JSON_MAX_DEPTH) return fail(s, "nested too deeply");
    bool object = c == '{';
    *type = object ? RC_JSON_OBJECT : RC_JSON_ARRAY;
    uint8_t close = object ? '}' : ']';
    s->pos++;
    skip_ws(s);
    if (s->pos < s->len && s->p[s->pos] == close) {
      s->pos++;
      return 0;
    }
    for (;;) {
      enum rc_json_type t;
      if (object) {
        if (s->pos >= s->len || s->p[s->pos] != '"') return fail(s, "an object member needs a string name");
        if (scan_string(s) < 0) return -EINVAL;
        skip_ws(s);
        if (s->pos >= s->len || s->p[s->pos] != ':') return fail(s, "a ':' must follow a member name");
        s->pos++;
        skip_ws(s);
      }
      if (scan_value(s, depth + 1, &t) < 0) return -EINVAL;
      skip_ws(s);
      if (s->pos >= s->len) return fail(s, object ? "unterminated object" : "unterminated array");
      if (s->p[s->pos] == close) {
        s->pos++;
        return 0;
      }
      if (s->p[s->pos] != ',') return fail(s, "a ',' or the closing bracket is missing");
      s->pos++;
      skip_ws(s);
    }
  }
  case '"':
    *type = RC_JSON_STRING;
    return scan_string(s);
  case 't':
    *type = RC_JSON_TRUE;
    return scan_literal(s, "true");
  case 'f':
    *type = RC_JSON_FALSE;
    return scan_literal(s, "false");
  case 'n':
    *type = RC_JSON_NULL;
    return scan_literal(s, "null");
  default:
    *type = RC_JSON_NUMBER;
    if (c == '-' || is_digit(c)) return scan_number(s);
    return fail(s, "not a JSON value");
  }
}

int rc_json_check(const uint8_t *p, size_t len, const char **why, size_t *at) {
  struct scan s = {.p = p, .len = len};
  enum rc_json_type t;
  skip_ws(&s);
  if (scan_value(&s, 0, &t) == 0) {
    skip_ws(&s);
    if (s.pos == len) return 0;
    s.why = "something follows the value";
  }
  *why = s.why;
  *at = s.pos;
  return -EINVAL;
}

/* Whether the member name spanned at p[off..off+n) (quotes included) is key:
 * compared as decoded, so "\u0065xp" is "exp" (and a second exp beside it a
 * duplicate) as every JSON reader will see it. */
static bool name_is(const uint8_t *p, size_t off, size_t n, const char *key, size_t klen) {
  if (!memchr(p + off + 1, '\\', n - 2)) return n == klen + 2 && memcmp(p + off + 1, key, klen) == 0;
  uint8_t buf[256];
  if (n > sizeof buf) return false; /* keys are short: a name this long is not one */
  struct rc_json_span sp = {.off = off, .len = n, .type = RC_JSON_STRING};
  size_t d = rc_json_string_decode(p, &sp, buf);
  return d == klen && memcmp(buf, key, klen) == 0;
}

int rc_json_member(const uint8_t *p, size_t len, const char *key, struct rc_json_span *out) {
  struct scan s = {.p = p, .len = len};
  skip_ws(&s);
  if (s.pos >= len || p[s.pos] != '{') return -EINVAL;
  s.pos++;
  size_t klen = strlen(key);
  int found = -ENOENT;
  for (;;) {
    skip_ws(&s);
    if (s.pos >= len || p[s.pos] == '}') return found;
    size_t name = s.pos;
    if (p[s.pos] != '"' || scan_string(&s) < 0) return -EINVAL;
    bool match = name_is(p, name, s.pos - name, key, klen);
    skip_ws(&s);
    if (s.pos >= len || p[s.pos] != ':') return -EINVAL;
    s.pos++;
    skip_ws(&s);
    struct rc_json_span v = {.off = s.pos};
    if (scan_value(&s, 1, &v.type) < 0) return -EINVAL;
    v.len = s.pos - v.off;
    if (match) {
      if (found == 0) return -EEXIST;
      *out = v;
      found = 0;
    }
    skip_ws(&s);
    if (s.pos < len && p[s.pos] == ',') s.pos++;
  }
}

int rc_json_array_next(const uint8_t *p, const struct rc_json_span *arr, size_t *pos,
                       struct rc_json_span *out) {
  struct scan s = {.p = p, .len = arr->off + arr->len, .pos = *pos ? *pos : arr->off + 1};
  skip_ws(&s);
  if (s.pos < s.len && p[s.pos] == ',') s.pos++;
  skip_ws(&s);
  if (s.pos >= s.len || p[s.pos] == ']') return 0;
  out->off = s.pos;
  if (scan_value(&s, 1, &out->type) < 0) return 0;
  out->len = s.pos - out->off;
  *pos = s.pos;
  return 1;
}

static size_t put_utf8(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (uint8_t)(0xc0 | cp >> 6);
    o[1] = (uint8_t)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xe0 | cp >> 12);
    o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (uint8_t)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (uint8_t)(0xf0 | cp >> 18);
  o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (uint8_t)(0x80 | (cp & 0x3f));
  return 4;
}

static uint32_t hex4(const uint8_t *h) {
  return (uint32_t)(hexval(h[0]) << 12 | hexval(h[1]) << 8 | hexval(h[2]) << 4 | hexval(h[3]));
}

size_t rc_json_string_decode(const uint8_t *p, const struct rc_json_span *sp, uint8_t *out) {
  const uint8_t *c = p + sp->off + 1, *end = p + sp->off + sp->len - 1;
  size_t n = 0;
  while (c < end) {
    if (*c != '\\') {
      out[n++] = *c++;
      continue;
    }
    uint8_t e = c[1];
    c += 2;
    switch (e) {
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case 'u': {
      uint32_t cp = hex4(c);
      c += 4;
      /* A surrogate pair is one code point; a lone surrogate stays as it is. */
      if (cp >= 0xd800 && cp < 0xdc00 && end - c >= 6 && c[0] == '\\' && c[1] == 'u') {
        uint32_t lo = hex4(c + 2);
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          c += 6;
        }
      }
      /* Every escape is at least six bytes long, and no code point takes more
       * than four: the output never outruns the input. */
      n += put_utf8(out + n, cp);
      break;
    }
    default: out[n++] = e; break; /* \" \\ \/ */
    }
  }
  return n;
}
