/* SPDX-License-Identifier: MIT */
/* --redis: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], the form Redis' own clients
 * take. HOST is a name, an IPv4 address or a bracketed IPv6 one; PORT defaults to
 * 6379 and DB to 0. rediss:// (TLS) is recognised and refused with a reason: the
 * link speaks plain TCP (docs/deploy/redis.md says how to reach a TLS-only Redis). */
#ifndef RINGCAST_PROTO_REDIS_URL_H
#define RINGCAST_PROTO_REDIS_URL_H

#include <stdint.h>

#define RC_REDIS_HOST_MAX 255
#define RC_REDIS_SECRET_MAX 255

struct rc_redis_url {
  char host[RC_REDIS_HOST_MAX + 1];
  uint16_t port;
  uint32_t db;
  char user[RC_REDIS_SECRET_MAX + 1];      /* "" : AUTH with the password alone */
  char password[RC_REDIS_SECRET_MAX + 1];  /* "" : no AUTH */
};

/* 0, or -EINVAL with *why naming what is wrong (a static string). */
int rc_redis_url_parse(const char *s, struct rc_redis_url *out, const char **why);

#endif
