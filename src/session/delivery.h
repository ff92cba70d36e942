/* SPDX-License-Identifier: MIT */
/* The subscriber adapter: a session as a pub/sub subscriber (its delivery
 * callback), and publish acknowledgements. Shard thread only. */
#ifndef RINGCAST_SESSION_DELIVERY_H
#define RINGCAST_SESSION_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "ringcast/pubsub/pubsub.h"
#include "session.h"

/* rc_pubsub_callbacks.deliver; ctx is the shard's struct rc_session_shard. */
void rc_delivery_deliver(void *ctx, struct rc_subscriber *sub, struct rc_topic *tp,
                         struct rc_hold *h);
/* rc_pubsub_callbacks.resolve: the session a join's token names, if still open. */
struct rc_subscriber *rc_delivery_resolve(void *ctx, uint64_t token);
/* rc_pubsub_callbacks.joined: the subscription's ack (topic, seq, epoch), and
 * the gap or refusal a resume gets instead of its replay. */
bool rc_delivery_joined(void *ctx, struct rc_subscriber *sub, const struct rc_join_result *r);
/* What a join from the upgrade's topics= carries in its request (the rest come
 * from commands): the upgrade's 101 waits for the last of them. */
#define RC_DELIVERY_URL_JOIN "\x01"
/* rc_pubsub_callbacks.published: acknowledges a forwarded publish. */
void rc_delivery_published(void *ctx, const struct rc_publish_result *r);
/* The ack (seq > 0) or error (a negative errno) for a publish command; id_json is
 * the command's id as JSON text (may be empty). */
void rc_delivery_ack_publish(struct rc_loop *l, struct rc_session *s, const char *topic,
                             int64_t seq, const char *id_json, size_t id_len);
/* The ack of a wildcard subscription, live at once: {"type":"ack","op":"subscribe",
 * "pattern":...} (no seq or epoch: each delivery names its own topic and seq). */
void rc_delivery_ack_pattern(struct rc_loop *l, struct rc_session *s, const char *pattern,
                             size_t len, const char *id_json, size_t id_len, bool already);

#endif
