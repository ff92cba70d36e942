/* SPDX-License-Identifier: MIT */
/* The global topic table: topics by name, shared by every shard, each one alive
 * while someone holds a reference to it and reclaimed when the last goes.
 *
 * The table is split into partitions, each a chained hash under its own lock,
 * that grows and shrinks with the number of topics it holds, so millions of live
 * topics are possible and memory comes back when they go. Names hash with
 * SipHash under a key drawn at start-up, so no one can craft names that collide.
 *
 * Each topic has a home shard (hash modulo shard count) that alone assigns its
 * sequence numbers, an interest bitmap of shards with local subscribers, and one
 * subscriber list per shard, each touched only by its own shard
 * (pubsub/subscription.h keeps those lists).
 *
 * Every pointer to a topic that outlives the code that looked it up is a
 * reference: a shard's subscriber list (pub/sub pins it while the list is
 * not empty, and until its home shard can no longer be sending it messages of
 * the topic), a publish on its way to the home shard, the demo feed's topics,
 * and a command's own for as long as it runs. Reference counts change under the
 * partition lock; lookups and messages never touch them. */
#ifndef RINGCAST_PUBSUB_TOPIC_H
#define RINGCAST_PUBSUB_TOPIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/proto/topic_name.h"
#include "ringcast/util/budget.h"

struct rc_subscriber;
struct rc_pattern_group;

/* One subscriber entry in a shard's list for a topic. */
struct rc_subref {
  struct rc_subscriber *sub;
  uint32_t sub_idx;      /* index into the subscriber's subscription array */
};

/* One shard's subscribers of a topic, and the shard's hold on the topic. */
struct rc_sublist {
  uint32_t n, cap;       /* cap >= n + pending + parked: their places are kept */
  struct rc_subref *v;
  uint32_t cleared;      /* times the list went empty: tells a stale release apart */
  uint32_t pending;      /* subscribers waiting for the home shard's answer (not in v) */
  uint32_t parked;       /* subscribers conflating, taken out of v (rc_pubsub_park) */
  /* The shard's wildcard groups matching the topic, worked out again only when
   * the shard's pattern generation moved past pgen (0: never worked out). */
  uint32_t pgen;
  uint32_t npg;
  bool pinned;           /* the shard holds a reference on the topic */
  bool releasing;        /* a release is on its way round the home shard */
  uint64_t last_seq;     /* the last message of the topic handed to this shard's list */
  struct rc_hold *newest;  /* while any is parked: that message, for them to take */
  struct rc_pattern_group **pg;
};
_Static_assert(sizeof(struct rc_sublist) <= 64, "a topic holds one of these per shard");

struct rc_history;

/* A home shard's knowledge of a topic numbered by a remote sequencer. */
enum rc_topic_remote {
  RC_TOPIC_REMOTE_NONE = 0,  /* not following: no subscriber here wants it */
  RC_TOPIC_REMOTE_SYNCING,   /* interest told; waiting for where it stands */
  RC_TOPIC_REMOTE_LIVE,      /* seq and history follow the sequencer's */
};

struct rc_topic {
  struct rc_topic *next;   /* in its partition's bucket (partition lock) */
  uint64_t hash;
  uint32_t refs;           /* partition lock */
  uint16_t home;
  uint16_t name_len;
  const char *name;        /* NUL-terminated, in the same allocation */
  /* Drawn at random when the topic is created and fixed for its life: a new
   * epoch says its sequence numbers started again and its history is new. */
  uint64_t epoch;
  /* Bit s set while shard s has local subscribers, current or pending. Set and
   * cleared by shard s, read by the home shard on every publish. */
  _Atomic uint64_t interest;
  /* Bit s set while shard s holds a wildcard pin on the topic: it has (or had,
   * until its next sweep) a pattern group matching the name. Set before the topic
   * is visible by whoever creates it, or later by shard s; cleared by shard s.
   * The home fans out to interest | pattern_interest. */
  _Atomic uint64_t pattern_interest;
  /* Exact subscriptions of this node, every shard's, pending ones too: each
   * shard adds and takes its own (subscribing is rare next to messages); read
   * by the home for the scale-out's per-node counts. */
  _Atomic uint32_t nsubs;
  /* Home shard only. */
  uint64_t seq;
  struct rc_history *history;  /* NULL: none kept */
  struct rc_topic *tracked_prev, *tracked_next; /* in the home's list of topics it tracks */
  uint32_t last_s;         /* last message or heartbeat, home's clock (s) */
  bool tracked;
  /* Scale-out (pubsub.h, remote_*): where the home stands with the sequencer,
   * the subscriptions waiting for it, and the remote's own state for the topic. */
  uint8_t remote;          /* enum rc_topic_remote */
  bool remote_pattern;     /* followed for wildcard subscribers only (pubsub.h, remote_arrived) */
  /* The lowest seq of the messages routed here through a wildcard that were
   * dropped on the way (0: none): the home has the remote refill from there.
   * Lowered by any shard, taken by the home. */
  _Atomic uint64_t remote_hole;
  void *waiting;           /* joins answered once synced (pub/sub's) */
  void *remote_data;       /* the remote's (the Redis link's channel) */
  struct rc_sublist local[]; /* one per shard; local[s] touched only by shard s */
};

struct rc_topic_table;

/* Creates a table for up to max_topics topics and nshards shards, each topic's
 * memory charged to budget (NULL: none). */
struct rc_topic_table *rc_topic_table_create(uint32_t max_topics, unsigned nshards,
                                             struct rc_budget *budget);
/* Frees the table and every topic still in it; no shard may run. */
void rc_topic_table_destroy(struct rc_topic_table *t);
/* Any thread: a reference to the topic, creating it when create is set. 0,
 * -EINVAL (bad name), -ENOENT (absent, create not set), -ENOSPC (max_topics
 * reached), -ENOBUFS (over the memory budget) or -ENOMEM. */
int rc_topic_acquire(struct rc_topic_table *t, const char *name, size_t len, bool create,
                     struct rc_topic **out);
/* Called under the partition lock with each topic created, before any other
 * thread can see it: the shards that take a wildcard pin on it. The table sets
 * its pattern_interest to that mask and adds one reference per bit. Set once,
 * before any shard runs; the hook must not touch the table. */
void rc_topic_table_set_hook(struct rc_topic_table *t,
                             uint64_t (*on_create)(void *ctx, const struct rc_topic *tp),
                             void *ctx);
/* Any thread: calls fn for every topic, one partition at a time under its lock
 * (so no topic is created or freed in that partition meanwhile); fn returns how
 * many references to add to tp (>= 0) and must not call into the table. O(topics). */
void rc_topic_foreach(struct rc_topic_table *t, unsigned (*fn)(void *ctx, struct rc_topic *tp),
                      void *ctx);
/* Any thread: one more reference to a topic the caller holds one on. */
void rc_topic_ref(struct rc_topic_table *t, struct rc_topic *tp);
/* Any thread: drops a reference; the last one removes and frees the topic. */
void rc_topic_release(struct rc_topic_table *t, struct rc_topic *tp);
/* Topics alive now. */
uint32_t rc_topic_count(const struct rc_topic_table *t);
/* The table's keyed hash of a name. */
uint64_t rc_topic_hash(const struct rc_topic_table *t, const char *name, size_t len);

#endif
