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
 * are allowed because names may have them. A pattern may start with '$' like a
 * name; a "*" or ">" first segment never matches a reserved name ("$sys.stats"),
 * so "$sys.>" reaches those and ">" does not (NATS's rule for "$SYS"). */
bool rc_topic_pattern_is_valid(const char *p, size_t len);

/* Whether name[0..nlen) matches pattern p[0..plen). Both must be valid (checked
 * once, when they enter the server); for other input the answer is false or
 * meaningless, but nothing is read outside the two buffers. Linear in
 * plen + nlen: one pass, no backtracking. */
bool rc_topic_pattern_match(const char *p, size_t plen, const char *name, size_t nlen);

/* Whether some name could match both valid patterns p and q (a subscriber
 * holding both would get its messages twice). Names are taken without the
 * length bound, so two patterns that meet only past RC_TOPIC_NAME_MAX count as
 * overlapping: the answer errs towards refusing. Linear in plen + qlen. */
bool rc_topic_pattern_overlap(const char *p, size_t plen, const char *q, size_t qlen);

/* Whether every name matching valid pattern p also matches valid pattern g (a
 * grant g allows the whole of a subscription to p). Linear in glen + plen. */
bool rc_topic_pattern_covers(const char *g, size_t glen, const char *p, size_t plen);

/* Whether s[0..len) spells a pattern rather than a name: it holds '*' or '>'
 * (no name does). It may still be an invalid pattern. */
bool rc_topic_pattern_has_wildcard(const char *s, size_t len);

#endif
