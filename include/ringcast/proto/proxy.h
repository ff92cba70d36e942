/* SPDX-License-Identifier: MIT */
/* Trusted reverse proxies: the --trust-proxy CIDR list, and the client address
 * read from Forwarded / X-Forwarded-For / X-Real-IP when, and only when, the peer is
 * one of them. Pure: no I/O, no allocation, callable from any thread. */
#ifndef RINGCAST_PROTO_PROXY_H
#define RINGCAST_PROTO_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/proto/http.h"

/* Addresses here are the server's own peer form: a family (AF_INET or AF_INET6)
 * and 16 bytes, an IPv4 address in the first 4 (network order) and the rest 0. */

/* One --trust-proxy entry. An IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) is
 * stored as the IPv4 network it names, so either spelling matches the same peers. */
struct rc_cidr {
  uint8_t family;   /* AF_INET or AF_INET6 */
  uint8_t prefix;   /* 0..32 or 0..128 */
  uint8_t addr[16]; /* host bits are zero */
};

/* Parses "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Host bits
 * must be zero ("10.1.0.0/8" is refused: it is almost always a typo). Returns 0, or
 * -EINVAL with the reason in err (for a message after the flag and its value). */
int rc_cidr_parse(const char *s, struct rc_cidr *out, char *err, size_t errsz);

/* Whether the address falls in one of l[0..n). An IPv4-mapped IPv6 address
 * (::ffff:10.1.2.3, how a dual-stack socket reports an IPv4 peer) is matched as
 * the IPv4 address; an IPv4 address never matches an IPv6 network (::/0 trusts
 * every IPv6 peer, not every peer), as in nginx. False for any other family. */
bool rc_cidr_list_contains(const struct rc_cidr *l, unsigned n, int family, const uint8_t addr[16]);

/* Where the client address came from (a return value of rc_proxy_client_addr). */
enum rc_proxy_source {
  RC_PROXY_PEER = 0, /* the peer itself: untrusted, or no header to read */
  RC_PROXY_FORWARDED,
  RC_PROXY_X_FORWARDED_FOR,
  RC_PROXY_X_REAL_IP,
};

/* Which headers rc_proxy_client_addr may read: a set of bits. A proxy passes on
 * the headers it does not set itself, so a client can write a Forwarded header
 * that a proxy setting only X-Forwarded-For leaves in place. Read only what the
 * trusted proxies set (or make them drop the rest); RC_PROXY_USE_ALL is right only
 * when they overwrite or remove all three. */
#define RC_PROXY_USE_FORWARDED (1u << RC_PROXY_FORWARDED)
#define RC_PROXY_USE_X_FORWARDED_FOR (1u << RC_PROXY_X_FORWARDED_FOR)
#define RC_PROXY_USE_X_REAL_IP (1u << RC_PROXY_X_REAL_IP)
#define RC_PROXY_USE_ALL                                                                           \
  (RC_PROXY_USE_FORWARDED | RC_PROXY_USE_X_FORWARDED_FOR | RC_PROXY_USE_X_REAL_IP)

/* Hops walked through one request's chain at most. */
#define RC_PROXY_MAX_HOPS 32

/* The client behind the trusted proxies, the way nginx's realip module finds it
 * with real_ip_recursive on:
 *  - An untrusted peer is the client; its headers are not read at all.
 *  - Otherwise one header is read: the first of Forwarded (RFC 7239, its for=
 *    parameters), X-Forwarded-For, X-Real-IP that is in `use` and present in the
 *    request, even when it turns out malformed (falling through to the next one
 *    would let a malformed value pick the header that is believed).
 *  - Its hops are walked from the right; each hop a trusted proxy wrote is taken,
 *    and the walk ends at the first untrusted address: the client. When every hop
 *    is trusted the leftmost one is the client.
 * hdrs[0..n_hdrs) are the request's headers in order (rc_http_request.headers);
 * a header given on several lines is the lines joined by commas, in order (RFC
 * 9110 section 5.3), which is how these are read. X-Real-IP holds one address;
 * repeated, every line must say the same.
 * Hops: an IPv4 address, "[IPv6]" or a bare IPv6 address (X-Forwarded-For), each
 * with an optional port, which is dropped. In Forwarded a node with a port or an
 * IPv6 address is a quoted-string ("[2001:db8::1]:4711"), as the RFC's grammar
 * requires. Empty list elements are skipped.
 * Writes the client to *family_out, addr_out (IPv4-mapped addresses come out as
 * AF_INET) and returns its enum rc_proxy_source, or, with the peer written out as
 * the client, a negative code for the caller to log:
 *   -EBADMSG  a header value walked is malformed (or a header is present but empty)
 *   -ENODATA  a trusted hop names the client "unknown" or by an obfuscated
 *             identifier (RFC 7239 section 6), or a Forwarded element has no for=
 *   -E2BIG    more than RC_PROXY_MAX_HOPS hops would have to be walked
 * Values are read within their lengths; none needs a NUL. */
int rc_proxy_client_addr(const struct rc_cidr *trusted, unsigned n_trusted, unsigned use,
                         int peer_family, const uint8_t peer[16], const struct rc_http_header *hdrs,
                         size_t n_hdrs, int *family_out, uint8_t addr_out[16]);

#endif
