/* SPDX-License-Identifier: MIT */
/* The Redis globs that carry wildcard subscriptions across --redis nodes
 * (docs/deploy/redis.md): a topic's channel is "rc:{T}", and a NATS pattern
 * (proto/topic_pattern.h) maps to the glob with each "*" or ">" segment as
 * Redis' '*'. The glob is broader than the pattern ('*' crosses dots), so a
 * node checks each name it brings against its patterns. Pure. */
#ifndef RINGCAST_PROTO_REDIS_GLOB_H
#define RINGCAST_PROTO_REDIS_GLOB_H

#include <stdbool.h>
#include <stddef.h>

#include "ringcast/proto/topic_pattern.h"

/* "rc:{" + pattern + "}" */
#define RC_REDIS_GLOB_MAX (RC_TOPIC_PATTERN_MAX + 5)

/* Writes valid pattern p[0..len)'s glob to out (RC_REDIS_GLOB_MAX bytes, not
 * NUL-terminated) and returns its length. "quotes.*" and "quotes.>" are both
 * "rc:{quotes.*}". Names hold no glob character but '*', so nothing needs
 * escaping. */
size_t rc_redis_glob_of(const char *p, size_t len, char *out);

/* Whether every channel that glob h matches, glob g matches too, for globs
 * whose only special character is '*' (those rc_redis_glob_of writes): then
 * a node holding g needs no subscription to h. Linear in gn + hn but for
 * backtracking to the last '*', as Redis' own matcher. */
bool rc_redis_glob_covers(const char *g, size_t gn, const char *h, size_t hn);

#endif
