/* SPDX-License-Identifier: MIT */
/* Topic patterns, NATS-style: what a token may subscribe or publish to. Pure: no
 * allocation, no globals; any thread may call these. */
#ifndef RINGCAST_PROTO_TOPIC_PATTERN_H
#define RINGCAST_PROTO_TOPIC_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "ringcast/proto/topic_name.h"

/* A pattern is no longer than the longest name it could spell out. */
#define RC_TOPIC_PATTERN_MAX RC_TOPIC_NAME_MAX

/* Patterns are 1..128 bytes of the topic name characters plus the wildcards,
 * segments split by '.':
 *   "*"  as a whole segment matches exactly one non-empty segment;
 *   ">"  as the last whole segment matches one or more non-empty segments;
 * any other segment matches itself byte for byte, so a pattern without wildcards
 * matches just the name it spells. A wildcard inside a segment ("quo*", "a.>b")
 * or a ">" before the last segment is invalid. Empty literal segments ("a..b")
 * are allowed because names may have them. */
bool rc_topic_pattern_is_valid(const char *p, size_t len);

/* Whether name[0..nlen) matches pattern p[0..plen). Both must be valid (checked
 * once, when they enter the server); for other input the answer is false or
 * meaningless, but nothing is read outside the two buffers. Linear in
 * plen + nlen: one pass, no backtracking. */
bool rc_topic_pattern_match(const char *p, size_t plen, const char *name, size_t nlen);

#endif
