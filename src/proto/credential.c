/* SPDX-License-Identifier: MIT */
/* Credential extraction from request text, and the static publish keys. The
 * extractors only find and shape-check a token; the key set is the one place that
 * compares secrets, so its comparison is the one written not to leak timing. */
#include "ringcast/proto/credential.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 6750 section 2.1 b64token. */
static bool is_token68(const char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)p[i];
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_' && c != '~' && c != '+' && c != '/') break;
    i++;
  }
  if (i == 0) return false;
  while (i < n && p[i] == '=')
    i++;
  return i == n;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **p, size_t *n) {
  while (*n > 0 && is_blank(**p))
    (*p)++, (*n)--;
  while (*n > 0 && is_blank((*p)[*n - 1]))
    (*n)--;
}

static bool header_is(const struct rc_http_header *h, const char *name) {
  size_t n = strlen(name);
  return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* The checks every found token gets, wherever it came from. */
static int check_token(const char *p, size_t n, const char **why) {
  if (n == 0) {
    *why = "the token is empty";
    return -EBADMSG;
  }
  if (n > RC_CREDENTIAL_TOKEN_MAX) {
    *why = "the token is longer than 4096 bytes";
    return -E2BIG;
  }
  if (!is_token68(p, n)) {
    *why = "the token has characters outside RFC 6750's b64token";
    return -EBADMSG;
  }
  return 0;
}

int rc_credential_bearer(const struct rc_http_header *hdrs, size_t n, const char **tok,
                         size_t *tok_len, const char **why) {
  const char *v = NULL;
  size_t vn = 0;
  for (size_t i = 0; i < n; i++) {
    if (!header_is(&hdrs[i], "authorization")) continue;
    const char *hv = hdrs[i].value;
    size_t hn = hdrs[i].value_len;
    trim(&hv, &hn);
    if (!v) {
      v = hv;
      vn = hn;
    } else if (hn != vn || memcmp(hv, v, vn) != 0) {
      /* Two credentials: which one a proxy or framework in front acted on is
       * anyone's guess, so neither is taken. */
      *why = "Authorization is given twice with different values";
      return -EEXIST;
    }
  }
  if (!v) {
    *why = "no Authorization header";
    return -ENOENT;
  }
  size_t s = 0;
  while (s < vn && v[s] != ' ')
    s++;
  if (s != 6 || strncasecmp(v, "bearer", 6) != 0) {
    *why = "Authorization is not a Bearer credential";
    return s == 0 ? -EBADMSG : -ENOTSUP;
  }
  size_t t = s;
  while (t < vn && v[t] == ' ')
    t++;
  if (t == s || t == vn) {
    *why = "Authorization: Bearer has no token";
    return -EBADMSG;
  }
  int rc = check_token(v + t, vn - t, why);
  if (rc < 0) return rc;
  *tok = v + t;
  *tok_len = vn - t;
  return 0;
}

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int rc_credential_query(const char *query, size_t len, char *out, size_t out_size, size_t *out_len,
                        const char **why) {
  const char *end = query ? query + len : NULL;
  for (const char *p = query; p && p < end;) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    const char *ke = eq ? eq : pe;
    /* The key is compared as written: "%74oken" is not token=. */
    if (ke - p == 5 && memcmp(p, "token", 5) == 0) {
      if (out_size == 0) {
        *why = "no room for the token";
        return -E2BIG;
      }
      size_t room = out_size > RC_CREDENTIAL_TOKEN_MAX ? RC_CREDENTIAL_TOKEN_MAX : out_size - 1;
      size_t o = 0;
      for (const char *v = eq ? eq + 1 : pe; v < pe; v++) {
        int c = (unsigned char)*v;
        if (c == '%') {
          int hi = pe - v >= 3 ? hex(v[1]) : -1, lo = pe - v >= 3 ? hex(v[2]) : -1;
          if (hi < 0 || lo < 0) {
            *why = "token= has a malformed percent-escape";
            return -EBADMSG;
          }
          c = hi * 16 + lo;
          v += 2;
        }
        if (o == room) {
          *why = "token= is longer than the room for a token";
          return -E2BIG;
        }
        out[o++] = (char)c;
      }
      out[o] = '\0';
      int rc = check_token(out, o, why);
      if (rc < 0) return rc;
      *out_len = o;
      return 0;
    }
    p = amp ? amp + 1 : end;
  }
  *why = "no token= parameter";
  return -ENOENT;
}

/* One Cookie line; 1 when found, 0 when not, negative when found but bad. */
static int cookie_in(const char *v, size_t vn, const char *name, size_t name_len, const char **tok,
                     size_t *tok_len, const char **why) {
  const char *end = v + vn;
  for (const char *p = v; p < end;) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *pe = semi ? semi : end;
    const char *pair = p;
    size_t pn = (size_t)(pe - p);
    p = semi ? semi + 1 : end;
    trim(&pair, &pn);
    const char *eq = memchr(pair, '=', pn);
    if (!eq) continue;
    const char *nm = pair;
    size_t nn = (size_t)(eq - pair);
    trim(&nm, &nn);
    if (nn != name_len || memcmp(nm, name, nn) != 0) continue;
    const char *val = eq + 1;
    size_t vl = (size_t)(pair + pn - val);
    trim(&val, &vl);
    if (vl > 0 && val[0] == '"') {
      if (vl < 2 || val[vl - 1] != '"') {
        *why = "the cookie's quoted value has no closing quote";
        return -EBADMSG;
      }
      val++;
      vl -= 2;
    }
    int rc = check_token(val, vl, why);
    if (rc < 0) return rc;
    *tok = val;
    *tok_len = vl;
    return 1;
  }
  return 0;
}

int rc_credential_cookie(const struct rc_http_header *hdrs, size_t n, const char *name,
                         const char **tok, size_t *tok_len, const char **why) {
  size_t name_len = strlen(name);
  for (size_t i = 0; name_len > 0 && i < n; i++) {
    if (!header_is(&hdrs[i], "cookie")) continue;
    int rc = cookie_in(hdrs[i].value, hdrs[i].value_len, name, name_len, tok, tok_len, why);
    if (rc < 0) return rc;
    if (rc == 1) return 0;
  }
  *why = "no such cookie";
  return -ENOENT;
}

/* --- publish keys -------------------------------------------------------- */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int rc_publish_keys_parse(const char *name, const char *text, size_t len,
                          struct rc_publish_keys *out, char *err, size_t errsz) {
  memset(out, 0, sizeof *out);
  if (len > RC_PUBLISH_KEY_FILE_MAX) {
    snprintf(err, errsz, "%s: larger than %u bytes", name, RC_PUBLISH_KEY_FILE_MAX);
    return -EINVAL;
  }
  size_t lines = 1;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  size_t cap = lines < RC_PUBLISH_KEYS_MAX ? lines : RC_PUBLISH_KEYS_MAX;
  out->bytes = malloc(len > 0 ? len : 1);
  out->keys = calloc(cap, sizeof *out->keys);
  if (!out->bytes || !out->keys) {
    snprintf(err, errsz, "%s: out of memory", name);
    rc_publish_keys_fini(out);
    return -ENOMEM;
  }
  size_t used = 0;
  unsigned line_no = 0;
  for (size_t i = 0; i < len;) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t line_end = nl ? (size_t)(nl - text) : len;
    const char *p = text + i;
    size_t n = line_end - i;
    i = nl ? line_end + 1 : len;
    line_no++;
    while (n > 0 && is_space(*p))
      p++, n--;
    while (n > 0 && is_space(p[n - 1]))
      n--;
    if (n == 0 || p[0] == '#') continue;
    const char *why = NULL;
    if (n < RC_PUBLISH_KEY_MIN)
      why = "the key is shorter than 16 bytes";
    else if (n > RC_PUBLISH_KEY_MAX)
      why = "the key is longer than 1024 bytes";
    for (size_t k = 0; !why && k < n; k++)
      if (p[k] < 0x21 || p[k] > 0x7e) why = "a key is printable ASCII without spaces";
    if (!why && out->n == RC_PUBLISH_KEYS_MAX) why = "more than 4096 keys";
    if (why) {
      /* The key itself stays out of the message: it would end up in a log. */
      snprintf(err, errsz, "%s:%u: %s", name, line_no, why);
      rc_publish_keys_fini(out);
      return -EINVAL;
    }
    memcpy(out->bytes + used, p, n);
    out->keys[out->n].off = used;
    out->keys[out->n].len = n;
    out->n++;
    used += n;
  }
  if (out->n == 0) {
    snprintf(err, errsz, "%s: no key in it (only blank lines and # comments)", name);
    rc_publish_keys_fini(out);
    return -EINVAL;
  }
  return 0;
}

int rc_publish_keys_load(const char *path, struct rc_publish_keys *out, char *err, size_t errsz) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errsz, "%s: %s", path, strerror(e));
    return -e;
  }
  int rc = 0;
  /* One byte more than allowed, to tell a file at the limit from a longer one. */
  char *buf = malloc(RC_PUBLISH_KEY_FILE_MAX + 1);
  size_t got = 0;
  if (!buf) {
    snprintf(err, errsz, "%s: out of memory", path);
    rc = -ENOMEM;
    goto out_close;
  }
  while (got <= RC_PUBLISH_KEY_FILE_MAX) {
    ssize_t r = read(fd, buf + got, RC_PUBLISH_KEY_FILE_MAX + 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = -errno;
      snprintf(err, errsz, "%s: %s", path, strerror(-rc));
      goto out_free;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  rc = rc_publish_keys_parse(path, buf, got, out, err, errsz);
out_free:
  explicit_bzero(buf, got);
  free(buf);
out_close:
  close(fd);
  return rc;
}

void rc_publish_keys_fini(struct rc_publish_keys *k) {
  if (k->bytes && k->keys && k->n > 0)
    explicit_bzero(k->bytes, k->keys[k->n - 1].off + k->keys[k->n - 1].len);
  free(k->bytes);
  free(k->keys);
  memset(k, 0, sizeof *k);
}

bool rc_publish_keys_match(const struct rc_publish_keys *k, const char *key, size_t len) {
  /* Both depend on len alone, which the client chose and knows. */
  if (len == 0 || len > RC_PUBLISH_KEY_MAX) return false;
  const unsigned char *in = (const unsigned char *)key;
  unsigned found = 0;
  for (unsigned i = 0; i < k->n; i++) {
    const unsigned char *s = (const unsigned char *)k->bytes + k->keys[i].off;
    size_t kl = k->keys[i].len;
    unsigned diff = kl != len;
    /* The empty asm hides diff's value, so the compiler cannot skip the loop
     * once the lengths differ. */
    __asm__("" : "+r"(diff));
    for (size_t j = 0; j < kl; j++)
      diff |= (unsigned)(s[j] ^ in[j < len ? j : 0]);
    found |= diff == 0;
    /* Likewise: a found key must not end the search early. */
    __asm__ volatile("" : "+r"(found));
  }
  return found != 0;
}
