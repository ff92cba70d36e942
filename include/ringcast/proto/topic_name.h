/* SPDX-License-Identifier: MIT */
/* The grammar of topic names, shared by every way a name reaches the server (URL,
 * command, publish path, batch record). Pure. */
#ifndef RINGCAST_PROTO_TOPIC_NAME_H
#define RINGCAST_PROTO_TOPIC_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define RC_TOPIC_NAME_MAX 128

/* The first character of the server's own topics ("$sys.stats"): clients may
 * subscribe to them but never publish, and a wildcard standing for a whole first
 * segment ("*.stats", ">") does not match them (the NATS convention), so only a
 * pattern that spells the '$' segment out ("$sys.>") reaches them. */
#define RC_TOPIC_RESERVED_CHAR '$'

/* Names are 1..128 bytes of [A-Za-z0-9._:/@-], the first of which may also be
 * '$' (a reserved name): safe in URLs, JSON and logs without escaping. */
bool rc_topic_name_is_valid(const char *name, size_t len);

/* Whether s[0..len) (a name or a pattern) is in the reserved namespace. */
static inline bool rc_topic_name_is_reserved(const char *s, size_t len) {
  return len > 0 && s[0] == RC_TOPIC_RESERVED_CHAR;
}

#endif
