/* SPDX-License-Identifier: MIT */
/* The subscription index of one shard, kept from both sides so that every change
 * is O(1): each topic's list of this shard's subscribers (topic->local[shard]) and
 * each subscriber's array of topics, each entry knowing its place in the other.
 * The topic's interest bit for the shard follows its list: set when the list gains
 * its first subscriber, cleared when it loses its last. Shard thread only. */
#ifndef RINGCAST_PUBSUB_SUBSCRIPTION_H
#define RINGCAST_PUBSUB_SUBSCRIPTION_H

#include <stdbool.h>
#include <stdint.h>

struct rc_topic;

struct rc_subscription {
  struct rc_topic *topic;
  uint32_t list_idx;     /* index in topic->local[shard].v; unused while pending */
  uint32_t join;         /* non-zero: pending, waiting for the answer to this join */
};

/* A subscriber as pub/sub knows it: an embedded handle, owned by whoever embeds
 * it (a session). Zero-initialised means "no subscriptions". */
struct rc_subscriber {
  struct rc_subscription *v;
  uint16_t n, cap;
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
/* Removes every subscription of s and frees its array; emptied(ctx, tp) is
 * called for each topic left without subscribers here, after its last use. */
void rc_subscription_remove_all(unsigned shard, struct rc_subscriber *s,
                                void (*emptied)(void *ctx, struct rc_topic *tp), void *ctx);
/* s's index of tp, or -ENOENT when s is not subscribed to it. */
int rc_subscription_find(const struct rc_subscriber *s, const struct rc_topic *tp);

#endif
