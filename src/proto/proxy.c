/* SPDX-License-Identifier: MIT */
/* Trusted proxies: CIDR matching and the walk through Forwarded / X-Forwarded-For /
 * X-Real-IP from the right, as nginx's realip module does it. Every header value
 * is attacker-written text, so it is read within its length, with bounded work. */
#include "ringcast/proto/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* An address in the form matching uses: IPv4-mapped IPv6 folded to AF_INET. */
struct addr {
  int family;
  uint8_t a[16];
};

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void addr_set(struct addr *out, int family, const uint8_t a[16]) {
  memset(out, 0, sizeof *out);
  out->family = family;
  if (family == AF_INET6 && memcmp(a, v4_mapped_prefix, 12) == 0) {
    out->family = AF_INET;
    memcpy(out->a, a + 12, 4);
  } else if (family == AF_INET) {
    memcpy(out->a, a, 4);
  } else if (family == AF_INET6) {
    memcpy(out->a, a, 16);
  }
}

/* inet_pton wants a NUL-terminated string; header text is a span. Only the strict
 * forms pass: dotted quad without leading zeros, RFC 4291 text, no zone index. */
static bool parse_ip(const char *p, size_t n, int family, struct addr *out) {
  char buf[INET6_ADDRSTRLEN];
  uint8_t raw[16] = {0};
  if (n == 0 || n >= sizeof buf) return false;
  memcpy(buf, p, n);
  buf[n] = '\0';
  if (inet_pton(family, buf, raw) != 1) return false;
  addr_set(out, family, raw);
  return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static bool is_tchar(char c) {
  unsigned char u = (unsigned char)c;
  if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || is_digit(c)) return true;
  return u != 0 && strchr("!#$%&'*+-.^_`|~", u) != NULL;
}

static void trim(const char **p, size_t *n) {
  while (*n > 0 && is_ows(**p))
    (*p)++, (*n)--;
  while (*n > 0 && is_ows((*p)[*n - 1]))
    (*n)--;
}

/* --- CIDR ---------------------------------------------------------------- */

static void copy_err(char *err, size_t errsz, const char *msg) {
  if (errsz > 0) snprintf(err, errsz, "%s", msg);
}

/* Zeroes the bits past prefix; returns whether any were set. */
static bool clear_host_bits(uint8_t *a, unsigned bytes, unsigned prefix) {
  bool had = false;
  for (unsigned i = 0; i < bytes; i++) {
    unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
    uint8_t mask = (uint8_t)(keep == 0 ? 0 : 0xffu << (8 - keep));
    if (a[i] & (uint8_t)~mask) had = true;
    a[i] &= mask;
  }
  return had;
}

int rc_cidr_parse(const char *s, struct rc_cidr *out, char *err, size_t errsz) {
  static const char usage[] =
      "expected an address or a network such as 10.0.0.0/8, 192.0.2.7 or fd00::/8";
  memset(out, 0, sizeof *out);
  size_t len = strnlen(s, 64);
  const char *slash = memchr(s, '/', len);
  size_t alen = slash ? (size_t)(slash - s) : len;
  if (len == 64) {
    copy_err(err, errsz, usage);
    return -EINVAL;
  }
  int family = memchr(s, ':', alen) ? AF_INET6 : AF_INET;
  unsigned max = family == AF_INET ? 32 : 128;
  unsigned prefix = max;
  if (slash) {
    const char *d = slash + 1;
    size_t dn = len - alen - 1;
    if (dn == 0 || dn > 3) {
      copy_err(err, errsz, usage);
      return -EINVAL;
    }
    prefix = 0;
    for (size_t i = 0; i < dn; i++) {
      if (!is_digit(d[i])) {
        copy_err(err, errsz, usage);
        return -EINVAL;
      }
      prefix = prefix * 10 + (unsigned)(d[i] - '0');
    }
    if (prefix > max) {
      copy_err(err, errsz,
               family == AF_INET ? "an IPv4 prefix is 0 to 32" : "an IPv6 prefix is 0 to 128");
      return -EINVAL;
    }
  }
  uint8_t raw[16] = {0};
  char buf[INET6_ADDRSTRLEN];
  if (alen == 0 || alen >= sizeof buf) {
    copy_err(err, errsz, usage);
    return -EINVAL;
  }
  memcpy(buf, s, alen);
  buf[alen] = '\0';
  if (inet_pton(family, buf, raw) != 1) {
    copy_err(err, errsz, usage);
    return -EINVAL;
  }
  unsigned bytes = family == AF_INET ? 4 : 16;
  uint8_t net[16];
  memcpy(net, raw, sizeof net);
  if (clear_host_bits(net, bytes, prefix)) {
    char shown[INET6_ADDRSTRLEN];
    if (!inet_ntop(family, net, shown, sizeof shown)) shown[0] = '\0';
    if (errsz > 0)
      snprintf(err, errsz, "bits past the /%u prefix are set; the network is %s/%u", prefix, shown,
               prefix);
    return -EINVAL;
  }
  /* ::ffff:a.b.c.d/96+ names IPv4 peers; stored as IPv4 it matches them. */
  if (family == AF_INET6 && prefix >= 96 && memcmp(net, v4_mapped_prefix, 12) == 0) {
    family = AF_INET;
    prefix -= 96;
    memmove(net, net + 12, 4);
    memset(net + 4, 0, 12);
  }
  out->family = (uint8_t)family;
  out->prefix = (uint8_t)prefix;
  memcpy(out->addr, net, sizeof out->addr);
  return 0;
}

static bool cidr_has(const struct rc_cidr *c, const struct addr *a) {
  if (c->family != a->family) return false;
  unsigned full = c->prefix / 8u, rest = c->prefix % 8u;
  if (memcmp(c->addr, a->a, full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = (uint8_t)(0xffu << (8 - rest));
  return (a->a[full] & mask) == c->addr[full];
}

static bool list_has(const struct rc_cidr *l, unsigned n, const struct addr *a) {
  for (unsigned i = 0; i < n; i++)
    if (cidr_has(&l[i], a)) return true;
  return false;
}

bool rc_cidr_list_contains(const struct rc_cidr *l, unsigned n, int family,
                           const uint8_t addr[16]) {
  if (family != AF_INET && family != AF_INET6) return false;
  struct addr a;
  addr_set(&a, family, addr);
  return list_has(l, n, &a);
}

/* --- hops ---------------------------------------------------------------- */

enum hop_kind { HOP_ADDR, HOP_UNKNOWN, HOP_BAD };

/* RFC 7239's obfnode and obfport: "_" 1*( ALPHA / DIGIT / "." / "_" / "-" ). */
static bool is_obfuscated(const char *p, size_t n) {
  if (n < 2 || p[0] != '_') return false;
  for (size_t i = 1; i < n; i++) {
    char c = p[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/* A port after ':': 1*5DIGIT, or in Forwarded also an obfport. */
static bool is_port(const char *p, size_t n, bool forwarded) {
  if (forwarded && is_obfuscated(p, n)) return true;
  if (n == 0 || n > 5) return false;
  for (size_t i = 0; i < n; i++)
    if (!is_digit(p[i])) return false;
  return true;
}

/* One hop's text: "unknown", an obfuscated node (Forwarded only), "[v6]" or IPv4,
 * either with ":port", or (X-Forwarded-For, X-Real-IP) a bare IPv6 address. */
static enum hop_kind parse_hop(const char *p, size_t n, bool forwarded, struct addr *out) {
  if (n >= 7 && strncasecmp(p, "unknown", 7) == 0) {
    if (n == 7) return HOP_UNKNOWN;
    /* Forwarded allows a port after "unknown" too. */
    return forwarded && p[7] == ':' && is_port(p + 8, n - 8, true) ? HOP_UNKNOWN : HOP_BAD;
  }
  if (forwarded && n > 0 && p[0] == '_') {
    const char *colon = memchr(p, ':', n);
    size_t node = colon ? (size_t)(colon - p) : n;
    if (!is_obfuscated(p, node)) return HOP_BAD;
    if (colon && !is_port(colon + 1, n - node - 1, true)) return HOP_BAD;
    return HOP_UNKNOWN;
  }
  if (n > 0 && p[0] == '[') {
    const char *close = memchr(p, ']', n);
    if (!close) return HOP_BAD;
    size_t used = (size_t)(close - p) + 1;
    if (used < n && (p[used] != ':' || !is_port(p + used + 1, n - used - 1, forwarded)))
      return HOP_BAD;
    return parse_ip(p + 1, used - 2, AF_INET6, out) ? HOP_ADDR : HOP_BAD;
  }
  const char *colon = memchr(p, ':', n);
  if (colon && memchr(colon + 1, ':', n - (size_t)(colon - p) - 1)) {
    /* Two colons: an unbracketed IPv6 address, which only Forwarded forbids. */
    if (forwarded) return HOP_BAD;
    return parse_ip(p, n, AF_INET6, out) ? HOP_ADDR : HOP_BAD;
  }
  size_t host = colon ? (size_t)(colon - p) : n;
  if (colon && !is_port(colon + 1, n - host - 1, forwarded)) return HOP_BAD;
  return parse_ip(p, host, AF_INET, out) ? HOP_ADDR : HOP_BAD;
}

/* The walk from the right: cur starts as the (trusted) peer. */
struct walk {
  const struct rc_cidr *trusted;
  unsigned n_trusted;
  unsigned hops;
  struct addr cur;
};

/* Takes the next hop to the left. 0: go on; 1: reached an untrusted address, the
 * client; negative: the walk fails. */
static int walk_step(struct walk *w, const char *p, size_t n, bool forwarded) {
  if (w->hops == RC_PROXY_MAX_HOPS) return -E2BIG;
  w->hops++;
  struct addr a;
  switch (parse_hop(p, n, forwarded, &a)) {
  case HOP_BAD: return -EBADMSG;
  case HOP_UNKNOWN: return -ENODATA;
  case HOP_ADDR: break;
  }
  w->cur = a;
  return list_has(w->trusted, w->n_trusted, &a) ? 0 : 1;
}

/* An X-Forwarded-For line, from its last element to its first. */
static int walk_xff_line(struct walk *w, const char *v, size_t len) {
  size_t end = len;
  for (;;) {
    size_t start = end;
    while (start > 0 && v[start - 1] != ',')
      start--;
    const char *e = v + start;
    size_t en = end - start;
    trim(&e, &en);
    if (en > 0) {
      int rc = walk_step(w, e, en, false);
      if (rc != 0) return rc;
    }
    if (start == 0) return 0;
    end = start - 1;
  }
}

/* A Forwarded line is read left to right (a quoted-string may hold commas, so it
 * cannot be split from the right); the for= values of its last RC_PROXY_MAX_HOPS
 * elements are kept, which is all a walk can use. */
struct fwd_elem {
  const char *for_value; /* NULL: the element has no for= */
  size_t for_len;
  bool escaped; /* the quoted-string held a quoted-pair */
};

struct fwd_line {
  struct fwd_elem ring[RC_PROXY_MAX_HOPS];
  size_t count; /* elements in the line, not only those kept */
};

/* A parameter value: a token or a quoted-string. Sets *pos past it and the span to
 * its contents. */
static bool fwd_value(const char *v, size_t len, size_t *pos, const char **out, size_t *out_len,
                      bool *escaped) {
  size_t i = *pos;
  *escaped = false;
  if (i < len && v[i] == '"') {
    size_t start = ++i;
    for (; i < len && v[i] != '"'; i++) {
      unsigned char c = (unsigned char)v[i];
      if (c == '\\') {
        *escaped = true;
        if (++i == len) return false;
        c = (unsigned char)v[i];
        if (c != '\t' && (c < 0x20 || c == 0x7f)) return false;
      } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
        return false;
      }
    }
    if (i == len) return false;
    *out = v + start;
    *out_len = i - start;
    *pos = i + 1;
    return true;
  }
  size_t start = i;
  while (i < len && is_tchar(v[i]))
    i++;
  if (i == start) return false;
  *out = v + start;
  *out_len = i - start;
  *pos = i;
  return true;
}

static int fwd_parse_line(const char *v, size_t len, struct fwd_line *line) {
  size_t i = 0;
  line->count = 0;
  while (i < len) {
    struct fwd_elem el = {NULL, 0, false};
    bool any_pair = false;
    for (;;) {
      while (i < len && is_ows(v[i]))
        i++;
      if (i == len || v[i] == ',') break;
      if (v[i] == ';') {
        i++;
        continue;
      }
      size_t name = i;
      while (i < len && is_tchar(v[i]))
        i++;
      size_t name_len = i - name;
      if (name_len == 0 || i == len || v[i] != '=') return -EBADMSG;
      i++;
      const char *val;
      size_t val_len;
      bool escaped;
      if (!fwd_value(v, len, &i, &val, &val_len, &escaped)) return -EBADMSG;
      if (name_len == 3 && strncasecmp(v + name, "for", 3) == 0) {
        /* RFC 7239 section 4: a parameter occurs at most once per element. */
        if (el.for_value) return -EBADMSG;
        el.for_value = val;
        el.for_len = val_len;
        el.escaped = escaped;
      }
      any_pair = true;
      while (i < len && is_ows(v[i]))
        i++;
      if (i < len && v[i] != ',' && v[i] != ';') return -EBADMSG;
    }
    if (i < len) i++; /* the ',' */
    if (!any_pair) continue;
    line->ring[line->count % RC_PROXY_MAX_HOPS] = el;
    line->count++;
  }
  return 0;
}

static int walk_forwarded_line(struct walk *w, const char *v, size_t len) {
  struct fwd_line line;
  int rc = fwd_parse_line(v, len, &line);
  if (rc < 0) return rc;
  size_t kept = line.count < RC_PROXY_MAX_HOPS ? line.count : RC_PROXY_MAX_HOPS;
  for (size_t k = 0; k < kept; k++) {
    const struct fwd_elem *el = &line.ring[(line.count - 1 - k) % RC_PROXY_MAX_HOPS];
    if (!el->for_value) {
      if (w->hops == RC_PROXY_MAX_HOPS) return -E2BIG;
      return -ENODATA;
    }
    /* A node never needs a quoted-pair; one that has one is not a node. */
    rc = el->escaped ? -EBADMSG : walk_step(w, el->for_value, el->for_len, true);
    if (rc != 0) return rc;
  }
  /* The ring held all a walk can take: RC_PROXY_MAX_HOPS steps end it first. */
  return line.count > kept ? -E2BIG : 0;
}

/* --- the client address -------------------------------------------------- */

static const char *const header_names[] = {
    [RC_PROXY_FORWARDED] = "forwarded",
    [RC_PROXY_X_FORWARDED_FOR] = "x-forwarded-for",
    [RC_PROXY_X_REAL_IP] = "x-real-ip",
};

static bool is_named(const struct rc_http_header *h, enum rc_proxy_source src) {
  const char *name = header_names[src];
  size_t n = strlen(name);
  return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static bool has_header(const struct rc_http_header *hdrs, size_t n, enum rc_proxy_source src) {
  for (size_t i = 0; i < n; i++)
    if (is_named(&hdrs[i], src)) return true;
  return false;
}

/* X-Real-IP: one address; repeated lines must agree. */
static int walk_x_real_ip(struct walk *w, const struct rc_http_header *hdrs, size_t n) {
  const char *first = NULL;
  size_t first_len = 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_named(&hdrs[i], RC_PROXY_X_REAL_IP)) continue;
    const char *v = hdrs[i].value;
    size_t vn = hdrs[i].value_len;
    trim(&v, &vn);
    if (!first) {
      first = v;
      first_len = vn;
    } else if (vn != first_len || memcmp(v, first, vn) != 0) {
      return -EBADMSG;
    }
  }
  if (!first || first_len == 0) return -EBADMSG;
  int rc = walk_step(w, first, first_len, false);
  return rc < 0 ? rc : 0;
}

static int walk_lines(struct walk *w, const struct rc_http_header *hdrs, size_t n,
                      enum rc_proxy_source src) {
  if (src == RC_PROXY_X_REAL_IP) return walk_x_real_ip(w, hdrs, n);
  for (size_t i = n; i-- > 0;) {
    if (!is_named(&hdrs[i], src)) continue;
    int rc = src == RC_PROXY_FORWARDED ? walk_forwarded_line(w, hdrs[i].value, hdrs[i].value_len)
                                       : walk_xff_line(w, hdrs[i].value, hdrs[i].value_len);
    if (rc != 0) return rc;
  }
  return 0;
}

static void put(const struct addr *a, int *family_out, uint8_t addr_out[16]) {
  *family_out = a->family;
  memcpy(addr_out, a->a, 16);
}

int rc_proxy_client_addr(const struct rc_cidr *trusted, unsigned n_trusted, unsigned use,
                         int peer_family, const uint8_t peer[16], const struct rc_http_header *hdrs,
                         size_t n_hdrs, int *family_out, uint8_t addr_out[16]) {
  struct walk w = {trusted, n_trusted, 0, {0, {0}}};
  addr_set(&w.cur, peer_family, peer);
  if (peer_family != AF_INET && peer_family != AF_INET6) {
    *family_out = peer_family;
    memcpy(addr_out, peer, 16);
    return RC_PROXY_PEER;
  }
  const struct addr peer_addr = w.cur;
  put(&peer_addr, family_out, addr_out);
  if (!list_has(trusted, n_trusted, &peer_addr)) return RC_PROXY_PEER;
  enum rc_proxy_source src = RC_PROXY_PEER;
  for (int s = RC_PROXY_FORWARDED; s <= RC_PROXY_X_REAL_IP; s++) {
    if ((use & (1u << s)) && has_header(hdrs, n_hdrs, (enum rc_proxy_source)s)) {
      src = (enum rc_proxy_source)s;
      break;
    }
  }
  if (src == RC_PROXY_PEER) return RC_PROXY_PEER;
  int rc = walk_lines(&w, hdrs, n_hdrs, src);
  if (rc < 0) return rc;
  if (w.hops == 0) return -EBADMSG; /* present, but only empty elements */
  put(&w.cur, family_out, addr_out);
  return (int)src;
}
