/* SPDX-License-Identifier: MIT */
#include "ringcast/proto/redis_url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Percent-escapes are what a password with ':' or '@' in it needs in a URL. */
static int unescape(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      char hex[3] = {s[i + 1], s[i + 2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (end != hex + 2 || v == 0) return -1;
      c = (char)v;
      i += 2;
    }
    if (o + 1 >= cap) return -1;
    out[o++] = c;
  }
  out[o] = 0;
  return 0;
}

int rc_redis_url_parse(const char *s, struct rc_redis_url *out, const char **why) {
  memset(out, 0, sizeof *out);
  out->port = 6379;
  if (strncmp(s, "rediss://", 9) == 0) {
    *why = "TLS to Redis (rediss://) is not built in; reach a TLS-only Redis through a local "
           "TLS tunnel and give its redis:// address (docs/deploy/redis.md)";
    return -EINVAL;
  }
  if (strncmp(s, "redis://", 8) != 0) {
    *why = "expected redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]";
    return -EINVAL;
  }
  const char *p = s + 8;
  const char *end = p + strcspn(p, "/?#");
  if (*end == '?' || *end == '#') {
    *why = "query and fragment parts are not supported; put the database number after '/'";
    return -EINVAL;
  }
  const char *at = memrchr(p, '@', (size_t)(end - p));
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) {
      *why = "credentials must be :PASSWORD@ or USER:PASSWORD@";
      return -EINVAL;
    }
    if (unescape(p, (size_t)(colon - p), out->user, sizeof out->user) < 0 ||
        unescape(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password) < 0) {
      *why = "bad percent-escape, or user or password longer than 255 bytes";
      return -EINVAL;
    }
    if (!out->password[0]) {
      *why = "empty password; leave the credentials out for a Redis without AUTH";
      return -EINVAL;
    }
    p = at + 1;
  }
  const char *host_end;
  const char *port_at = NULL;
  if (*p == '[') {
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (!close) {
      *why = "unterminated [IPv6] address";
      return -EINVAL;
    }
    if ((size_t)(close - p - 1) > RC_REDIS_HOST_MAX || close == p + 1) {
      *why = "bad [IPv6] address";
      return -EINVAL;
    }
    memcpy(out->host, p + 1, (size_t)(close - p - 1));
    host_end = close + 1;
    if (host_end < end && *host_end != ':') {
      *why = "expected ':PORT' after the [IPv6] address";
      return -EINVAL;
    }
  } else {
    host_end = memchr(p, ':', (size_t)(end - p));
    if (!host_end) host_end = end;
    if (host_end == p || (size_t)(host_end - p) > RC_REDIS_HOST_MAX) {
      *why = "missing or overlong host";
      return -EINVAL;
    }
    memcpy(out->host, p, (size_t)(host_end - p));
  }
  if (host_end < end) port_at = host_end + 1;
  if (port_at) {
    char *e;
    unsigned long v = strtoul(port_at, &e, 10);
    if (e != end || port_at == end || v == 0 || v > 65535 || *port_at == '+' || *port_at == '-') {
      *why = "port must be 1 to 65535";
      return -EINVAL;
    }
    out->port = (uint16_t)v;
  }
  if (*end == '/' && end[1]) {
    char *e;
    const char *d = end + 1;
    unsigned long v = strtoul(d, &e, 10);
    if (*e || *d == '+' || *d == '-' || v > 1000000) {
      *why = "database must be a number (e.g. /0)";
      return -EINVAL;
    }
    out->db = (uint32_t)v;
  }
  return 0;
}
