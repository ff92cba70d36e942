/* SPDX-License-Identifier: MIT */
/* --demo-feed: a synthetic market-data feed (quotes and trades for a few dozen
 * symbols, about a thousand messages a second) published from one shard. */
#ifndef RINGCAST_SESSION_DEMO_FEED_H
#define RINGCAST_SESSION_DEMO_FEED_H

#include <stdint.h>

struct rc_pubsub_shard;
struct rc_topic_table;
struct rc_demo_feed;

/* Resolves (creates) its topics now. NULL on ENOMEM or a full topic table. */
struct rc_demo_feed *rc_demo_feed_create(struct rc_topic_table *topics, uint64_t now_ms,
                                         uint64_t seed);
void rc_demo_feed_destroy(struct rc_demo_feed *f);
/* Publishes what is due by now_ms; returns the time of the next tick. */
uint64_t rc_demo_feed_tick(struct rc_demo_feed *f, struct rc_pubsub_shard *ps, uint64_t now_ms);

#endif
