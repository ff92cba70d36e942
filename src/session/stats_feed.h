/* SPDX-License-Identifier: MIT */
/* The $sys.stats feed: every --stats-interval, one shard samples every shard's
 * counters and publishes the JSON (sys_stats.h) to $sys.stats through the
 * normal fan-out path, while anyone listens. Owned and ticked by one shard's
 * thread; it reads the other shards' counters, which any thread may. */
#ifndef RINGCAST_SESSION_STATS_FEED_H
#define RINGCAST_SESSION_STATS_FEED_H

#include <stdint.h>

struct rc_server;
struct rc_pubsub_shard;
struct rc_stats_feed;

/* Takes a first sample. NULL on ENOMEM. */
struct rc_stats_feed *rc_stats_feed_create(const struct rc_server *srv, uint64_t now_ms,
                                           uint32_t interval_ms);
void rc_stats_feed_destroy(struct rc_stats_feed *f);
/* Samples, publishes when someone subscribes; returns the time of the next tick. */
uint64_t rc_stats_feed_tick(struct rc_stats_feed *f, struct rc_pubsub_shard *ps, uint64_t now_ms);

#endif
