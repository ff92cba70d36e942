/* SPDX-License-Identifier: MIT */
/* Origin patterns and the Origin check. One parser reads both a pattern and an
 * Origin value (a value is a pattern without wildcards), so the two cannot come to
 * disagree on what an origin is. */
#include "ringcast/proto/origin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const char usage[] = "expected scheme://host[:port], such as https://app.example.com, "
                            "https://*.example.com or http://localhost:*";

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static uint16_t default_port(const char *scheme) {
  if (strcmp(scheme, "http") == 0) return 80;
  if (strcmp(scheme, "https") == 0) return 443;
  return 0;
}

/* Labels of [a-z0-9_-], 1..63 bytes each, lowercased into out. Returns the label
 * count, or 0 when the name is malformed. */
static unsigned read_name(const char *p, size_t n, char *out) {
  unsigned labels = 0;
  size_t label_len = 0;
  for (size_t i = 0; i < n; i++) {
    char c = lower(p[i]);
    if (c == '.') {
      if (label_len == 0) return 0;
      labels++;
      label_len = 0;
    } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
      if (++label_len > 63) return 0;
    } else {
      return 0;
    }
    out[i] = c;
  }
  if (label_len == 0) return 0; /* empty, or a trailing dot */
  out[n] = '\0';
  return labels + 1;
}

/* "*" for a pattern, or 1..65535 written without leading zeros. */
static bool read_port(const char *p, size_t n, bool pattern, struct rc_origin_pattern *out) {
  if (pattern && n == 1 && p[0] == '*') {
    out->any_port = true;
    return true;
  }
  if (n == 0 || n > 5 || p[0] == '0') return false;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(p[i])) return false;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (v > 65535) return false;
  out->port = (uint16_t)v;
  return true;
}

/* Reads s[0..len) as a pattern, or (pattern false) as an Origin value, which may
 * not hold wildcards. On failure *why is a static reason. */
static int parse(const char *s, size_t len, bool pattern, struct rc_origin_pattern *out,
                 const char **why) {
  memset(out, 0, sizeof *out);
  *why = usage;
  if (len > RC_ORIGIN_MAX) {
    *why = "longer than 256 bytes";
    return -EINVAL;
  }
  size_t i = 0;
  if (len == 0 || !is_alpha(s[0])) return -EINVAL;
  while (i < len &&
         (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
    if (i == RC_ORIGIN_SCHEME_MAX) return -EINVAL;
    out->scheme[i] = lower(s[i]);
    i++;
  }
  if (len - i < 3 || memcmp(s + i, "://", 3) != 0) return -EINVAL;
  i += 3;

  /* The authority ends at the port or at the end; anything else is refused below. */
  size_t host = i, host_end;
  if (i < len && s[i] == '[') {
    const char *close = memchr(s + i, ']', len - i);
    char buf[INET6_ADDRSTRLEN];
    size_t inner = close ? (size_t)(close - s) - i - 1 : 0;
    if (!close || inner == 0 || inner >= sizeof buf) {
      *why = "an IPv6 host is written in brackets, as in http://[::1]:8080";
      return -EINVAL;
    }
    memcpy(buf, s + i + 1, inner);
    buf[inner] = '\0';
    if (inet_pton(AF_INET6, buf, out->ipv6) != 1) {
      *why = "the IPv6 address in brackets is malformed";
      return -EINVAL;
    }
    out->is_ipv6 = true;
    host_end = (size_t)(close - s) + 1;
  } else {
    if (pattern && len - i >= 2 && s[i] == '*' && s[i + 1] == '.') {
      out->any_subdomain = true;
      host = i += 2;
    }
    while (i < len && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#') {
      if (s[i] == '*') {
        *why = "'*' may only be the whole first label of the host, as in https://*.example.com";
        return -EINVAL;
      }
      if (s[i] == '@') {
        *why = "an origin has no user info";
        return -EINVAL;
      }
      i++;
    }
    host_end = i;
    if (host_end == host) {
      *why = "no host";
      return -EINVAL;
    }
    if (host_end - host > RC_ORIGIN_HOST_MAX) {
      *why = "the host is longer than 253 bytes";
      return -EINVAL;
    }
    unsigned labels = read_name(s + host, host_end - host, out->host);
    if (labels == 0) {
      *why = "the host is not a name of labels of letters, digits, '-' and '_' (write "
             "international names in their xn-- form)";
      return -EINVAL;
    }
    if (out->any_subdomain) {
      const char *last = strrchr(out->host, '.');
      last = last ? last + 1 : out->host;
      if (labels < 2 || is_digit(last[strlen(last) - 1])) {
        *why = "a wildcard needs a domain of two labels or more after '*.', such as "
               "*.example.com";
        return -EINVAL;
      }
    }
  }
  i = host_end;
  if (i < len && s[i] == ':') {
    size_t port = ++i;
    while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#')
      i++;
    if (!read_port(s + port, i - port, pattern, out)) {
      *why = pattern ? "the port is 1 to 65535, or * for any" : "the port is 1 to 65535";
      return -EINVAL;
    }
  }
  if (i < len) {
    *why = len - i == 1 && s[i] == '/' ? "an origin has no path: leave out the trailing '/'"
                                       : "an origin has no path, query or fragment";
    return -EINVAL;
  }
  if (out->port == 0 || out->port == default_port(out->scheme))
    out->port = default_port(out->scheme);
  return 0;
}

int rc_origin_pattern_parse(const char *s, struct rc_origin_pattern *out, char *err, size_t errsz) {
  const char *why;
  int rc = parse(s, strnlen(s, RC_ORIGIN_MAX + 1), true, out, &why);
  if (rc < 0 && errsz > 0) snprintf(err, errsz, "%s", why);
  return rc;
}

static bool host_matches(const struct rc_origin_pattern *p, const struct rc_origin_pattern *o) {
  if (p->is_ipv6 || o->is_ipv6)
    return p->is_ipv6 && o->is_ipv6 && memcmp(p->ipv6, o->ipv6, sizeof p->ipv6) == 0;
  if (!p->any_subdomain) return strcmp(p->host, o->host) == 0;
  /* One or more whole labels before the base: "x.example.com" ends in
   * ".example.com"; labels are never empty, so something precedes the dot. */
  size_t pn = strlen(p->host), on = strlen(o->host);
  return on > pn + 1 && o->host[on - pn - 1] == '.' && strcmp(o->host + on - pn, p->host) == 0;
}

bool rc_origin_allowed(const struct rc_origin_pattern *pats, unsigned n, const char *origin,
                       size_t len) {
  if (len == 4 && memcmp(origin, "null", 4) == 0) return false;
  struct rc_origin_pattern o;
  const char *why;
  if (parse(origin, len, false, &o, &why) < 0) return false;
  for (unsigned k = 0; k < n; k++) {
    const struct rc_origin_pattern *p = &pats[k];
    if (strcmp(p->scheme, o.scheme) != 0) continue;
    if (!p->any_port && p->port != o.port) continue;
    if (host_matches(p, &o)) return true;
  }
  return false;
}
