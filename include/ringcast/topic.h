/* SPDX-License-Identifier: MIT */
/* The global topic table: a fixed-size, lock-free, insert-only open-addressing
 * hash of topic name to topic. Read-mostly and shared by every shard. Each topic
 * has a home shard (hash modulo shard count) that alone assigns its sequence
 * numbers, an interest bitmap of shards with local subscribers, and one
 * subscriber list per shard, each touched only by its own shard. */
#ifndef RINGCAST_TOPIC_H
#define RINGCAST_TOPIC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_TOPIC_NAME_MAX 128
#define RC_TOPIC_TABLE_DEFAULT 65536

struct rc_conn;

/* One subscriber entry in a shard's list for a topic. */
struct rc_subref {
  struct rc_conn *conn;
  uint32_t sub_idx;      /* index into conn's subscription array */
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
/* Names are 1..128 bytes of [A-Za-z0-9._:/@-]: safe in URLs, JSON and logs. */
bool rc_topic_name_is_valid(const char *name, size_t len);
uint64_t rc_topic_hash(const char *name, size_t len);

/* Shard `shard` only: append or remove a subscriber in local[shard], keeping the
 * interest bit in step. Append returns the entry's index or -ENOMEM. Remove
 * swaps the last entry into idx and returns the moved entry (conn NULL if none). */
int rc_topic_local_add(struct rc_topic *tp, unsigned shard, struct rc_conn *c,
                       uint32_t sub_idx);
struct rc_subref rc_topic_local_remove(struct rc_topic *tp, unsigned shard, uint32_t idx);

#endif
