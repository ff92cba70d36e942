/* SPDX-License-Identifier: MIT */
/* The Redis pattern subscriptions that carry wildcards across --redis nodes
 * (docs/deploy/redis.md, Wildcards). A topic's channel is "rc:{T}"; a NATS
 * pattern (proto/topic_pattern.h) is carried by the prefix glob "rc:{L*" where
 * L is its literal part up to its first wildcard ("quotes.*.bid" and
 * "quotes.>" are both "rc:{quotes.*"). Broader than the pattern, so a node
 * checks each name against its patterns; in return the globs are cheap for
 * Redis (one prefix compare each per PUBLISH, no backtracking), and of two
 * prefix globs either one covers the other or no channel matches both: once
 * those covered are left out, a message crosses once per node. Pure. */
#ifndef RINGCAST_PROTO_REDIS_GLOB_H
#define RINGCAST_PROTO_REDIS_GLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/proto/topic_pattern.h"

/* "rc:{" and the pattern's literal prefix; the '*' is the subscriber's to add. */
#define RC_REDIS_GLOB_MAX (RC_TOPIC_PATTERN_MAX + 4)

struct rc_redis_glob {
  uint8_t len;
  char text[RC_REDIS_GLOB_MAX]; /* not NUL-terminated */
};

/* Fills g with valid pattern p[0..len)'s prefix. */
void rc_redis_glob_of(const char *p, size_t len, struct rc_redis_glob *g);

/* Sorts v[0..n), drops repeats and the prefixes another one covers, and when
 * more than max (>= 1) are left, cuts every prefix to the longest length that
 * leaves at most max (at worst "rc:{": every channel). Returns how many are
 * kept, at the front of v, sorted, no one a prefix of another. *cut_to gets the
 * length the prefixes were cut to past "rc:{", or SIZE_MAX when none was cut. */
size_t rc_redis_glob_reduce(struct rc_redis_glob *v, size_t n, size_t max, size_t *cut_to);

/* The order rc_redis_glob_reduce sorts by: bytes, then length. */
int rc_redis_glob_cmp(const struct rc_redis_glob *a, const struct rc_redis_glob *b);

/* Whether glob g's subscription brings channel c[0..len). */
bool rc_redis_glob_matches(const struct rc_redis_glob *g, const char *c, size_t len);

#endif
