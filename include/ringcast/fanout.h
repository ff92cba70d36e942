/* SPDX-License-Identifier: MIT */
/* Publish and fan-out: routing a publish to its topic's home shard, stamping the
 * sequence number, encoding the frame once, delivering to local subscribers and
 * batching to every interested shard; and the subscriber bookkeeping behind it.
 * Shard thread only. */
#ifndef RINGCAST_FANOUT_H
#define RINGCAST_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "ringcast/frame.h"

struct rc_shard;
struct rc_conn;
struct rc_topic;

#define RC_MAX_SUBS_PER_CONN 1024

/* Publishes payload on tp from this shard: the home shard stamps it (a queue hop
 * when that is another shard). Copies the payload. 0 or -ENOMEM. */
int rc_fanout_publish(struct rc_shard *sh, struct rc_topic *tp, const uint8_t *payload,
                      size_t len);
/* Processes everything in the shard's inbox. */
void rc_fanout_drain_inbox(struct rc_shard *sh);
/* Pushes this turn's fan-out batches and rings the destination shards. */
void rc_fanout_flush_batches(struct rc_shard *sh);
/* Subscribes c to tp: 0, -EEXIST (already), -EMLINK (too many), -ENOMEM. */
int rc_fanout_subscribe(struct rc_shard *sh, struct rc_conn *c, struct rc_topic *tp);
/* 0 or -ENOENT. */
int rc_fanout_unsubscribe(struct rc_shard *sh, struct rc_conn *c, struct rc_topic *tp);
void rc_fanout_unsubscribe_all(struct rc_shard *sh, struct rc_conn *c);
/* Drops this shard's reference on m, returning it to its owner shard if that was
 * the last one. */
void rc_fanout_release(struct rc_shard *sh, struct rc_msg *m);
/* Frees batches still queued at shutdown (all shards stopped). */
void rc_fanout_drain_at_exit(struct rc_shard *sh);

#endif
