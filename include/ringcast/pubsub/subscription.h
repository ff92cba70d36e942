/* SPDX-License-Identifier: MIT */
/* The subscription index of one shard, kept from both sides so that every change
 * is O(1): each topic's list of this shard's subscribers (topic->local[shard]) and
 * each subscriber's array of topics, each entry knowing its place in the other.
 * The topic's interest bit for the shard follows its list: set when the list gains
 * its first subscriber, cleared when it loses its last. Shard thread only. */
#ifndef RINGCAST_PUBSUB_SUBSCRIPTION_H
#define RINGCAST_PUBSUB_SUBSCRIPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/proto/topic_pattern.h"
#include "ringcast/pubsub/topic.h"

/* One shard's subscribers of one wildcard pattern: what a topic's list is to
 * an exact subscription. Owned by pub/sub (one per pattern subscribed on the
 * shard, kept in the shard's pattern index); shard thread only. */
struct rc_pattern_group {
  uint32_t n, cap;
  struct rc_subref *v;   /* sub_idx: index into the subscriber's array */
  struct rc_pattern_group *prev, *next;  /* the shard's list of groups */
  uint16_t len;
  char pattern[RC_TOPIC_PATTERN_MAX + 1];
};

/* One entry of a subscriber's array: a topic, or (pattern set) a pattern group. */
struct rc_subscription {
  union {
    struct rc_topic *topic;
    struct rc_pattern_group *group;
  };
  uint32_t list_idx;     /* index in topic->local[shard].v or group->v; unused while pending */
  uint32_t join;         /* non-zero: pending, waiting for the answer to this join */
  bool pattern;
  bool parked;           /* out of the topic's list while its subscriber conflates */
};

/* A subscriber as pub/sub knows it: an embedded handle, owned by whoever embeds
 * it (a session). Zero-initialised means "no subscriptions". */
struct rc_subscriber {
  struct rc_subscription *v;
  uint16_t n, cap;
  uint16_t npatterns;    /* entries that are patterns */
};

/* Subscribes s to tp on this shard, at once (join 0) or pending until
 * rc_subscription_activate (join: the caller's non-zero id for it). A pending
 * subscriber counts for the topic's interest but gets no messages; its place in
 * the list is reserved, so activating it cannot fail. 1 when tp had no
 * subscriber here before, 0 otherwise, -EEXIST (already, pending or not),
 * -EMLINK (s holds `limit` topics), or -ENOMEM (nothing changed). */
int rc_subscription_add(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp,
                        unsigned limit, uint32_t join);
/* The pending subscription of s to tp made with this join id becomes a current
 * one: true, or false when there is none (unsubscribed, or subscribed anew). */
bool rc_subscription_activate(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp,
                              uint32_t join);
/* 1 when tp has no subscriber here any more (current or pending), 0 otherwise, or -ENOENT when s is not
 * subscribed to tp. */
int rc_subscription_remove(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp);
/* Removes every subscription of s (which must hold no pattern: pub/sub takes
 * those off first) and frees its array; emptied(ctx, tp) is
 * called for each topic left without subscribers here, after its last use. */
void rc_subscription_remove_all(unsigned shard, struct rc_subscriber *s,
                                void (*emptied)(void *ctx, struct rc_topic *tp), void *ctx);
/* Takes s's entry i (a live, exact subscription) out of its topic's list, or
 * puts it back: the subscriber stays subscribed, and its place is kept, so
 * neither can fail. */
void rc_subscription_park(unsigned shard, struct rc_subscriber *s, uint16_t i);
void rc_subscription_unpark(unsigned shard, struct rc_subscriber *s, uint16_t i);
/* s's index of tp, or -ENOENT when s is not subscribed to it. */
int rc_subscription_find(const struct rc_subscriber *s, const struct rc_topic *tp);

/* s's index of its subscription to pattern p[0..len), or -ENOENT. */
int rc_subscription_find_pattern(const struct rc_subscriber *s, const char *p, size_t len);
/* Adds s to group g: 1 when g had no subscriber before, 0 otherwise, -EMLINK
 * (s holds `limit` subscriptions or `pattern_limit` patterns) or -ENOMEM
 * (nothing changed). The caller checked that s does not hold g's pattern. */
int rc_subscription_add_pattern(struct rc_subscriber *s, struct rc_pattern_group *g,
                                unsigned limit, unsigned pattern_limit);
/* Removes s's entry i (a pattern): true when its group has no subscriber left. */
bool rc_subscription_remove_pattern(unsigned shard, struct rc_subscriber *s, uint16_t i);
/* The index of a subscription of s that would deliver some message twice
 * alongside a subscription to x[0..len) (a pattern when pattern is set): a
 * pattern matching the name x, a name x matches, or a pattern overlapping x.
 * The same name or pattern does not count (that is -EEXIST). -ENOENT: none. */
int rc_subscription_overlap(const struct rc_subscriber *s, const char *x, size_t len, bool pattern);
/* What entry e names: its topic's name or its pattern. */
const char *rc_subscription_name(const struct rc_subscription *e);

#endif
