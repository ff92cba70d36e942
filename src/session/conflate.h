/* SPDX-License-Identifier: MIT */
/* Conflation: a lagging subscriber's queue keeps only the newest not-yet-sent
 * message of each topic. While a session conflates, deliveries wait in a table
 * of one slot per topic it holds (a newer message replaces an older one, the
 * skipped range is remembered); once its queue has drained, each slot goes out
 * as a gap notice ({"type":"gap",...,"conflated":true}) followed by the newest
 * message. What a lagging subscriber holds is then bounded by its topics, not by
 * the publish rate.
 *
 * Who conflates: sessions with policy=conflate (or --slow-policy conflate) once
 * more than RC_CONFLATE_LAG bytes wait for them; and, under --slow-policy
 * disconnect, a subscriber that reaches --max-queue while the whole shard is
 * behind (most of its WebSocket sessions hold over a quarter of --max-queue):
 * closing everyone then would only start a reconnect storm, so the
 * shard sheds load this way instead, and counts it. Shard thread only. */
#ifndef RINGCAST_SESSION_CONFLATE_H
#define RINGCAST_SESSION_CONFLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

/* Bytes waiting for a policy=conflate subscriber before it starts conflating:
 * about a tenth of a second of a lagging subscriber's share of one core. */
#define RC_CONFLATE_LAG (16u << 10)

/* Delivery of h (topic tp) to s, which is conflating or should start to:
 * returns false when s neither conflates nor should (deliver normally). */
bool rc_conflate_offer(struct rc_loop *l, struct rc_session *s, struct rc_topic *tp,
                       struct rc_hold *h);
/* s could not queue h (--max-queue): conflate instead when its policy says so
 * or the shard is behind. false: the caller closes it as a slow consumer. */
bool rc_conflate_instead_of_close(struct rc_loop *l, struct rc_session *s, struct rc_topic *tp,
                                  struct rc_hold *h);
/* Each turn: sessions whose queue has drained get their newest messages. */
void rc_conflate_flush(struct rc_loop *l);
/* The session is closing: its table goes. */
void rc_conflate_release(struct rc_loop *l, struct rc_session *s);

#endif
