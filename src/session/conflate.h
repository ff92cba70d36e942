/* SPDX-License-Identifier: MIT */
/* Conflation: a lagging subscriber's queue keeps only the newest not-yet-sent
 * message of each topic. A conflating session keeps one slot per topic: the
 * last seq it was sent, and a message not yet sent. At the end of the turn in
 * which it starts, its exact subscriptions are parked (rc_pubsub_park): out of
 * their topics' delivery lists, so a message costs it nothing, the shard keeping
 * each topic's newest for it. Once its queue has drained, and at most every
 * RC_CONFLATE_INTERVAL_MS, each topic with something new goes out as a gap
 * notice ({"type":"gap",...,"conflated":true}) for what it skipped, then the
 * newest message; after RC_CONFLATE_IDLE_FLUSHES flushes with nothing new it is
 * unparked. What a lagging subscriber holds is bounded by its topics, not by
 * the publish rate.
 *
 * Who conflates: sessions with policy=conflate (or --slow-policy conflate) once
 * more than RC_CONFLATE_LAG bytes wait for them; and, under --slow-policy
 * disconnect, a subscriber that reaches --max-queue while the whole shard is
 * behind (most of its WebSocket sessions, and at least RC_CONFLATE_CROWD, hold
 * over half of --max-queue):
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
/* A conflating subscriber gets the newest of each topic at most this often.
 * Each flush is one small send (a gap notice and a message): flushing 10,000
 * lagging readers every 50 ms made more segments than their reader could take
 * (W5's overload step: p99 730 ms; at 100 ms 394-495 ms, docs/benchmarks.md),
 * so what left fresh aged in the sockets. */
#define RC_CONFLATE_INTERVAL_MS 100
/* Flushes in a row with nothing new before a subscriber stops conflating. */
#define RC_CONFLATE_IDLE_FLUSHES 20
/* Subscribers a shard needs before it counts as behind rather than them slow. */
#define RC_CONFLATE_CROWD 16

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
/* After an unsubscribe: slots of topics s no longer receives go, so nothing of
 * them is sent, and a later subscription starts afresh. */
void rc_conflate_forget(struct rc_loop *l, struct rc_session *s);
/* The session is closing: its table goes. */
void rc_conflate_release(struct rc_loop *l, struct rc_session *s);

#endif
