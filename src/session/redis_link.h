/* SPDX-License-Identifier: MIT */
/* A shard's link to Redis for the scale-out (--redis; docs/deploy/redis.md): two
 * TCP connections driven by the shard's own ring, one for commands (pipelined
 * publishes through the publish script, syncs, subscriber counts) and one in
 * subscribed mode for the channels of the topics this shard is home of. RESP
 * is hiredis' reader and formatter; the bytes move through rc_conn like a
 * client's.
 *
 * It is pub/sub's sequencer (pubsub.h, remote_*): a topic's channel is
 * subscribed while this node has subscribers of it, so a message crosses Redis
 * once per interested node; its seq, epoch and history are Redis'. When Redis
 * goes, publishes fail with a reason, subscribers stay, and once it is back
 * every followed topic is synced again: the hole is refilled from Redis'
 * stream or announced as a gap.
 *
 * Pointed at a Redis Cluster (7.0+), it finds the slot map (CLUSTER SLOTS)
 * and keeps the two connections per master (at most 16), each topic's
 * commands on the master of its slot and its channel in sharded pub/sub
 * (SPUBLISH, SSUBSCRIBE). Any failure or redirection takes the whole link
 * down and its reconnect finds the map again. Shard thread only. */
#ifndef RINGCAST_SESSION_REDIS_LINK_H
#define RINGCAST_SESSION_REDIS_LINK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ringcast/io/loop.h"
#include "ringcast/proto/redis_url.h"
#include "ringcast/pubsub/pubsub.h"
#include "ringcast/pubsub/topic.h"

/* Counters (written by the shard, read by any thread). */
struct rc_redis_link_stats {
  _Atomic uint64_t up;              /* 1 while both connections are open */
  _Atomic uint64_t connects;        /* the link came up */
  _Atomic uint64_t disconnects;     /* it went down (or a connect failed) */
  _Atomic uint64_t publishes_ok;
  _Atomic uint64_t publishes_error; /* refused by Redis, or lost with the connection */
  _Atomic uint64_t publishes_refused; /* not sent: the link was down */
  _Atomic uint64_t messages;        /* channel messages received */
  _Atomic uint64_t syncs;           /* topic positions asked for (first follow, holes, reconnects) */
  _Atomic uint64_t channels;        /* channels subscribed now */
  _Atomic uint64_t buffer_overflows; /* messages held during a sync past the bound: synced again */
  _Atomic uint64_t foreign;         /* channel messages not in ringcast's form (dropped) */
  _Atomic uint64_t patterns;        /* pattern subscriptions held now (PSUBSCRIBE) */
  _Atomic uint64_t pattern_messages; /* messages received through them */
  _Atomic uint64_t pattern_misses;  /* ... that no wildcard of this node wanted (dropped) */
  _Atomic uint64_t pattern_dropped; /* ... dropped on the way to their home shard (refilled) */
  _Atomic uint64_t cluster_masters; /* Redis Cluster masters linked to (0: a standalone Redis) */
};

/* A topic's subscribers across nodes, as Redis counts them (redis_count.lua). */
#define RC_REDIS_COUNT_NODES 64
struct rc_redis_count {
  const char *topic;                /* the name asked about */
  int err;                          /* 0, or why there is no answer (-ENOTCONN, -ECONNRESET, -EIO) */
  uint64_t total;                   /* every live node's count */
  unsigned n;                       /* nodes listed (at most RC_REDIS_COUNT_NODES; total counts all) */
  const char *node[RC_REDIS_COUNT_NODES];
  size_t node_len[RC_REDIS_COUNT_NODES];
  uint64_t count[RC_REDIS_COUNT_NODES];
};

struct rc_redis_link_config {
  const struct rc_redis_url *url;
  struct sockaddr_storage addr;     /* resolved by the main thread */
  socklen_t addr_len;
  uint32_t history;                 /* --history: what Redis' stream of a topic keeps */
  const char *node_id;
  /* Shared by every shard's link: moved when a shard's pattern subscriptions
   * are back after a reconnect, so all shards sync the topics they follow
   * through patterns. */
  _Atomic uint64_t *pattern_gen;
  /* --redis-patterns: the most pattern subscriptions a node holds at Redis,
   * which matches each of them against every PUBLISH. */
  size_t max_globs;
  /* Shared by every shard's link: the masters of the Redis Cluster found
   * behind --redis, 0 for a standalone Redis (or none found yet). Sessions
   * read it to refuse wildcards, which sharded pub/sub cannot carry. May be
   * NULL. */
  _Atomic uint64_t *cluster_masters;
  /* The answer to rc_redis_link_read_count, on the shard that asked. */
  void (*counted)(struct rc_loop *l, uint64_t token, const struct rc_redis_count *c);
};

struct rc_redis_link;

/* Why a wildcard subscribe is refused while --redis is a Redis Cluster. */
#define RC_REDIS_LINK_NO_WILDCARDS                                                       \
  "wildcards need classic pub/sub; with Redis Cluster ringcast uses sharded pub/sub, " \
  "which has no patterns"

/* Main thread: resolves url's host (blocking, once at start-up). 0 or -EINVAL
 * after logging why. */
int rc_redis_link_resolve(const struct rc_redis_url *url, struct sockaddr_storage *addr,
                          socklen_t *len);
/* Main thread, before the shard runs. NULL on ENOMEM. */
struct rc_redis_link *rc_redis_link_create(const struct rc_redis_link_config *cfg,
                                           struct rc_pubsub_shard *ps,
                                           struct rc_topic_table *topics);
/* Shard thread: connects (on_start), sends what this turn queued (end of
 * each turn), closes and fails what is in flight (on_stop), frees (on_exit). */
void rc_redis_link_start(struct rc_redis_link *k, struct rc_loop *l);
void rc_redis_link_flush(struct rc_redis_link *k);
void rc_redis_link_stop(struct rc_redis_link *k);
void rc_redis_link_destroy(struct rc_redis_link *k);
/* A publish about to be accepted on this shard: whether the link is up (the
 * refusal counted when not), so an HTTP publisher hears 503 now rather than a
 * 200 for a message that cannot reach Redis. */
bool rc_redis_link_admit(struct rc_redis_link *k);
const struct rc_redis_link_stats *rc_redis_link_stats(const struct rc_redis_link *k);

/* pub/sub's remote_publish and remote_interest (pubsub.h). */
int rc_redis_link_publish(struct rc_redis_link *k, struct rc_topic *tp, const uint8_t *payload,
                          size_t len, uint64_t ticket);
void rc_redis_link_interest(struct rc_redis_link *k, struct rc_topic *tp, bool on);
/* pub/sub's remote_patterns, remote_arrived and remote_lost (pubsub.h): the
 * node's patterns become Redis pattern subscriptions on shard 0's subscriber
 * connection, one per glob that no other covers, so a message crosses Redis
 * once per node; what they bring goes to the topic's home shard, which
 * follows the topic from there without a SUBSCRIBE of its own. */
void rc_redis_link_patterns(struct rc_redis_link *k, const char *const *p, const size_t *len,
                            size_t n);
void rc_redis_link_arrived(struct rc_redis_link *k, struct rc_topic *tp, uint64_t epoch,
                           uint64_t seq, const uint8_t *payload, size_t len);
void rc_redis_link_lost(struct rc_redis_link *k, struct rc_topic *tp, uint64_t from);
bool rc_redis_link_via_patterns(struct rc_redis_link *k, struct rc_topic *tp);
/* Asks Redis for the topic's subscriber counts on every node; cfg->counted
 * gets the answer with token (also when the link fails first). 0, -ENOTCONN
 * (the link is down: no answer follows) or -ENOMEM. */
int rc_redis_link_read_count(struct rc_redis_link *k, const char *topic, size_t len, uint64_t token);

#endif
