/* SPDX-License-Identifier: MIT */
/* A one-pass walk over a JSON object's top-level members. Strings are skipped
 * with memchr (payloads are mostly one long string), nested values by
 * bracket depth; only the top level is checked for well-formedness, which is
 * all the bench relies on. */
#include "envelope.h"

#include <errno.h>
#include <string.h>

static size_t skip_ws(const uint8_t *b, size_t len, size_t i) {
  while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
    i++;
  return i;
}

/* b[i] is an opening quote; the index after its closing quote, or -EINVAL. */
static ssize_t skip_string(const uint8_t *b, size_t len, size_t i) {
  size_t start = i++;
  while (i < len) {
    const uint8_t *q = memchr(b + i, '"', len - i);
    if (!q) return -EINVAL;
    size_t j = (size_t)(q - b), k = j;
    while (k > start + 1 && b[k - 1] == '\\')
      k--;
    if ((j - k) % 2 == 0)
      return (ssize_t)(j + 1); /* an even run of backslashes escapes only itself */
    i = j + 1;
  }
  return -EINVAL;
}

static ssize_t skip_literal(const uint8_t *b, size_t len, size_t i, const char *lit) {
  size_t n = strlen(lit);
  if (len - i < n || memcmp(b + i, lit, n) != 0) return -EINVAL;
  return (ssize_t)(i + n);
}

static ssize_t skip_nested(const uint8_t *b, size_t len, size_t i) {
  unsigned depth = 0;
  while (i < len) {
    uint8_t c = b[i];
    if (c == '"') {
      ssize_t e = skip_string(b, len, i);
      if (e < 0) return e;
      i = (size_t)e;
      continue;
    }
    if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return (ssize_t)(i + 1);
    }
    i++;
  }
  return -EINVAL;
}

/* The index after the value starting at b[i], or -EINVAL. */
static ssize_t skip_value(const uint8_t *b, size_t len, size_t i) {
  switch (b[i]) {
  case '"': return skip_string(b, len, i);
  case '{':
  case '[': return skip_nested(b, len, i);
  case 't': return skip_literal(b, len, i, "true");
  case 'f': return skip_literal(b, len, i, "false");
  case 'n': return skip_literal(b, len, i, "null");
  default: break;
  }
  size_t j = i;
  while (j < len && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' ||
                     (b[j] >= '0' && b[j] <= '9')))
    j++;
  return j > i ? (ssize_t)j : -EINVAL;
}

/* An unsigned integer with nothing of a number after it; the index after it. */
static ssize_t parse_u64(const uint8_t *b, size_t len, size_t i, uint64_t *out) {
  uint64_t v = 0;
  size_t j = i;
  for (; j < len && b[j] >= '0' && b[j] <= '9'; j++) {
    unsigned d = (unsigned)(b[j] - '0');
    if (v > (UINT64_MAX - d) / 10) return -EINVAL;
    v = v * 10 + d;
  }
  if (j == i || (j < len && (b[j] == '.' || b[j] == 'e' || b[j] == 'E'))) return -EINVAL;
  *out = v;
  return (ssize_t)j;
}

static ssize_t parse_bool(const uint8_t *b, size_t len, size_t i, bool *out) {
  ssize_t e = skip_literal(b, len, i, "true");
  if (e >= 0) {
    *out = true;
    return e;
  }
  *out = false;
  return skip_literal(b, len, i, "false");
}

static bool key_is(const uint8_t *k, size_t kl, const char *name) {
  return kl == strlen(name) && memcmp(k, name, kl) == 0;
}

static enum rc_env_type type_of(struct rc_env_str v) {
  if (rc_env_str_is(v, "msg")) return RC_ENV_MSG;
  if (rc_env_str_is(v, "ack")) return RC_ENV_ACK;
  if (rc_env_str_is(v, "gap")) return RC_ENV_GAP;
  if (rc_env_str_is(v, "hb")) return RC_ENV_HB;
  if (rc_env_str_is(v, "error")) return RC_ENV_ERROR;
  return RC_ENV_OTHER;
}

bool rc_env_str_is(struct rc_env_str v, const char *s) {
  return v.p && v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

ssize_t rc_env_parse(const uint8_t *b, size_t len, struct rc_env *out) {
  memset(out, 0, sizeof *out);
  out->recovered = -1;
  size_t i = skip_ws(b, len, 0);
  if (i >= len || b[i] != '{') return -EINVAL;
  i = skip_ws(b, len, i + 1);
  if (i < len && b[i] == '}') return (ssize_t)(i + 1);
  for (;;) {
    if (i >= len || b[i] != '"') return -EINVAL;
    ssize_t e = skip_string(b, len, i);
    if (e < 0) return e;
    const uint8_t *k = b + i + 1;
    size_t kl = (size_t)e - i - 2;
    i = skip_ws(b, len, (size_t)e);
    if (i >= len || b[i] != ':') return -EINVAL;
    i = skip_ws(b, len, i + 1);
    if (i >= len) return -EINVAL;
    struct rc_env_str *str = NULL;
    if (key_is(k, kl, "type") || key_is(k, kl, "topic") || key_is(k, kl, "op") ||
        key_is(k, kl, "epoch") || key_is(k, kl, "reason")) {
      struct rc_env_str tmp;
      str = key_is(k, kl, "topic")    ? &out->topic
            : key_is(k, kl, "op")     ? &out->op
            : key_is(k, kl, "epoch")  ? &out->epoch
            : key_is(k, kl, "reason") ? &out->reason
                                      : &tmp;
      e = skip_value(b, len, i);
      if (e < 0) return e;
      if (b[i] == '"') {
        str->p = (const char *)b + i + 1;
        str->len = (size_t)e - i - 2;
        if (str == &tmp) out->type = type_of(tmp);
      } else if (str == &tmp) {
        out->type = RC_ENV_OTHER;
      }
    } else if (key_is(k, kl, "seq")) {
      e = parse_u64(b, len, i, &out->seq);
      out->has_seq = true;
    } else if (key_is(k, kl, "from")) {
      e = parse_u64(b, len, i, &out->from);
      out->has_from = true;
    } else if (key_is(k, kl, "to")) {
      e = parse_u64(b, len, i, &out->to);
      out->has_to = true;
    } else if (key_is(k, kl, "recovered")) {
      bool v;
      e = parse_bool(b, len, i, &v);
      out->recovered = v ? 1 : 0;
    } else if (key_is(k, kl, "conflated")) {
      e = parse_bool(b, len, i, &out->conflated);
    } else if (key_is(k, kl, "data")) {
      e = skip_value(b, len, i);
      if (e >= 0) {
        out->data = b + i;
        out->data_len = (size_t)e - i;
      }
    } else {
      e = skip_value(b, len, i);
    }
    if (e < 0) return e;
    i = skip_ws(b, len, (size_t)e);
    if (i >= len) return -EINVAL;
    if (b[i] == '}') return (ssize_t)(i + 1);
    if (b[i] != ',') return -EINVAL;
    i = skip_ws(b, len, i + 1);
  }
}
