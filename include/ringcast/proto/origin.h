/* SPDX-License-Identifier: MIT */
/* Browser origins: the --allow-origin patterns and the check of a request's Origin
 * header against them. Pure: no I/O, no allocation, callable from any thread. */
#ifndef RINGCAST_PROTO_ORIGIN_H
#define RINGCAST_PROTO_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Patterns and Origin values longer than this are refused / not allowed. */
#define RC_ORIGIN_MAX 256
#define RC_ORIGIN_SCHEME_MAX 32
#define RC_ORIGIN_HOST_MAX 253

/* A pattern is scheme://host[:port], what a browser sends as Origin (RFC 6454
 * section 6.2), with two wildcards:
 *   scheme  RFC 3986 letters (http, https, chrome-extension...), case-insensitive.
 *   host    a name of dot-separated labels of letters, digits, '-' and '_'
 *           (the ASCII form: punycode for IDNs), case-insensitive; or an IPv6
 *           literal in brackets, compared as an address ([::1] = [0:0::1]); or an
 *           IPv4 literal, compared as text (browsers write it canonically).
 *           "*." as the whole first label matches one or more labels: with
 *           https, *.example.com allows https://a.example.com and
 *           https://a.b.example.com but not https://example.com itself (list it as
 *           well) nor https://badexample.com. The rest must be a domain of at least
 *           two labels (*.com is refused as a mistake) that does not end in a
 *           number (no wildcard over an address).
 *   port    1 to 65535 without leading zeros, or "*" for any port (the scheme's
 *           default included). The scheme's default port (80 for http, 443 for
 *           https) is the same as no port: https://a.example.com:443 and
 *           https://a.example.com are one origin.
 * No path, query, fragment or user info: "https://a.example.com/" is refused with
 * a message, not read as the origin it starts with. */
struct rc_origin_pattern {
  char scheme[RC_ORIGIN_SCHEME_MAX + 1]; /* lowercase */
  char host[RC_ORIGIN_HOST_MAX + 1];     /* lowercase name; the part after "*." */
  uint8_t ipv6[16];                      /* the host, when is_ipv6 */
  bool is_ipv6;
  bool any_subdomain; /* "*." */
  bool any_port;      /* ":*" */
  uint16_t port;      /* explicit or the scheme's default; 0: none */
};

/* Parses the NUL-terminated pattern s. Returns 0, or -EINVAL with the reason in
 * err (for a message after the flag and its value). */
int rc_origin_pattern_parse(const char *s, struct rc_origin_pattern *out, char *err, size_t errsz);

/* Whether the Origin header value origin[0..len) (no NUL needed) is allowed by one
 * of pats[0..n). Never allowed: "null" (an opaque origin: sandboxed frames, file:
 * pages, some redirects), a list of several origins, a value over RC_ORIGIN_MAX
 * bytes, or anything that is not a serialised origin as above. */
bool rc_origin_allowed(const struct rc_origin_pattern *pats, unsigned n, const char *origin,
                       size_t len);

#endif
