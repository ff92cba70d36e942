/* SPDX-License-Identifier: MIT */
/* The global topic table: a fixed-size, lock-free, insert-only open-addressing
 * hash of topic name to topic. Read-mostly and shared by every shard. Each topic
 * has a home shard (hash modulo shard count) that alone assigns its sequence
 * numbers, an interest bitmap of shards with local subscribers, and one
 * subscriber list per shard, each touched only by its own shard
 * (pubsub/subscription.h keeps those lists). */
#ifndef RINGCAST_PUBSUB_TOPIC_H
#define RINGCAST_PUBSUB_TOPIC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/proto/topic_name.h"

#define RC_TOPIC_TABLE_DEFAULT 65536

struct rc_subscriber;

/* One subscriber entry in a shard's list for a topic. */
struct rc_subref {
  struct rc_subscriber *sub;
  uint32_t sub_idx;      /* index into the subscriber's subscription array */
};

struct rc_sublist {
  uint32_t n, cap;
  struct rc_subref *v;
};

struct rc_topic {
  uint64_t hash;
  uint16_t home;
  uint16_t name_len;
  char name[RC_TOPIC_NAME_MAX + 1];
  /* Bit s set while shard s has local subscribers. Set and cleared by shard s,
   * read by the home shard on every publish. */
  alignas(64) _Atomic uint64_t interest;
  /* Home shard only. */
  alignas(64) uint64_t seq;
  struct rc_sublist local[]; /* one per shard; local[s] touched only by shard s */
};

struct rc_topic_table;

/* Creates a table for up to max_topics topics and nshards shards. */
struct rc_topic_table *rc_topic_table_create(uint32_t max_topics, unsigned nshards);
/* Frees the table and every topic; no shard may run. */
void rc_topic_table_destroy(struct rc_topic_table *t);
/* Any thread. Finds or creates the topic; 0, -EINVAL (bad name) or -ENOSPC (table
 * full). Topics live as long as the table. */
int rc_topic_get(struct rc_topic_table *t, const char *name, size_t len,
                 struct rc_topic **out);
/* Any thread; NULL when absent. */
struct rc_topic *rc_topic_find(struct rc_topic_table *t, const char *name, size_t len);
uint32_t rc_topic_count(const struct rc_topic_table *t);
uint64_t rc_topic_hash(const char *name, size_t len);

#endif
