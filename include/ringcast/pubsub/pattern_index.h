/* SPDX-License-Identifier: MIT */
/* The wildcard pattern index: subscribed patterns (proto/topic_pattern.h) kept as
 * a trie of '.'-separated segments, so that when a topic is created pub/sub finds
 * every pattern matching its name without scanning the patterns that do not.
 *
 * Not thread-safe: the caller serialises every call on one index (its lock or
 * its thread). Each pattern carries one caller-owned value pointer; the index
 * copies pattern text and never frees or reads the values. */
#ifndef RINGCAST_PUBSUB_PATTERN_INDEX_H
#define RINGCAST_PUBSUB_PATTERN_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "ringcast/proto/topic_pattern.h"

struct rc_pattern_index;

/* An empty index, or NULL when out of memory. */
struct rc_pattern_index *rc_pattern_index_create(void);
/* Frees the index and everything it allocated; values stay the caller's. NULL is
 * a no-op. */
void rc_pattern_index_destroy(struct rc_pattern_index *ix);

/* The value slot of pattern p[0..len), which the caller has checked with
 * rc_topic_pattern_is_valid. When p is absent and create is set, p is added with
 * a NULL value. The slot stays where it is until p is removed or the index
 * destroyed. NULL when p is absent and create is clear, or when adding it ran
 * out of memory (the index is then unchanged). */
void **rc_pattern_index_slot(struct rc_pattern_index *ix, const char *p, size_t len, bool create);

/* Removes pattern p[0..len) and the trie nodes no other pattern uses; returns
 * its value, or NULL when p is absent. Never allocates, so cannot fail. */
void *rc_pattern_index_remove(struct rc_pattern_index *ix, const char *p, size_t len);

/* Calls fn(ctx, pattern, pattern_len, value) once for each pattern that matches
 * name[0..len), a valid topic name (proto/topic_name.h), in no set order, and
 * returns how many matched. fn may be NULL to count only; it must not change ix.
 * The pattern text passed to fn is the index's copy, valid until the pattern is
 * removed. Work is proportional to the trie nodes on paths that match a prefix
 * of name, not to the number of patterns. */
size_t rc_pattern_index_match(const struct rc_pattern_index *ix, const char *name, size_t len,
                              void (*fn)(void *ctx, const char *p, size_t plen, void *value),
                              void *ctx);

/* Calls fn once for each pattern the index holds, in no set order; fn must not
 * change ix. Work is proportional to the index's size. */
void rc_pattern_index_foreach(const struct rc_pattern_index *ix,
                              void (*fn)(void *ctx, const char *p, size_t plen, void *value),
                              void *ctx);

/* How many patterns the index holds. */
size_t rc_pattern_index_count(const struct rc_pattern_index *ix);
/* Bytes the index has asked the allocator for (nodes, child tables, pattern
 * copies and the index itself), for the memory budget. */
size_t rc_pattern_index_bytes(const struct rc_pattern_index *ix);

#endif
