/* SPDX-License-Identifier: MIT */
/* Conflation tables: one slot per topic, found by a scan of a table no longer
 * than the session's subscriptions (only lagging sessions have one), and the
 * shard's list of sessions that hold one, walked each turn. */
#include "conflate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/ws.h"
#include "ringcast/pubsub/message.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"

struct slot {
  struct rc_topic *topic;  /* a reference of the slot's own */
  struct rc_hold *h;       /* a message delivered while conflating, not yet sent; NULL: none */
  uint64_t last_sent;      /* the last seq of the topic queued to the subscriber */
};

struct rc_conflation {
  struct rc_session *s;
  uint64_t flushed_ms;     /* the last flush, loop clock */
  uint32_t idle;           /* flushes in a row that found nothing new */
  bool fresh;              /* started this turn: its subscriptions are not parked yet */
  struct rc_conflation *prev, *next;  /* the shard's list */
  uint32_t n, cap;
  struct slot v[];
};

static size_t table_size(uint32_t cap) { return sizeof(struct rc_conflation) + cap * sizeof(struct slot); }

/* Whether the session's queue holds less than its share, so more can go. */
static bool drained(const struct rc_session *s) {
  return s->stream->queued(&s->conn) <= RC_CONFLATE_LAG / 2;
}

static bool start(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  uint32_t cap = s->sub.n ? s->sub.n : 1;
  struct rc_conflation *cf = malloc(table_size(cap));
  if (!cf) return false;
  rc_budget_force(ss->budget, table_size(cap));
  *cf = (struct rc_conflation){.s = s, .cap = cap, .next = ss->conflating,
                               .flushed_ms = rc_loop_now_ms(l), .fresh = true};
  if (ss->conflating) ss->conflating->prev = cf;
  ss->conflating = cf;
  s->cf = cf;
  rc_counter_add(&ss->stats.conflating, 1);
  rc_counter_add(&ss->stats.conflation_starts, 1);
  return true;
}

static void slot_drop(struct rc_loop *l, struct slot *e) {
  if (e->h) rc_hold_unref(rc_loop_arena(l), e->h);
  rc_topic_release(rc_session_shard_of(l)->topics, e->topic);
}

/* Back to plain delivery: parked subscriptions return to their topics' lists.
 * closing: the session is going, its subscriptions with it. */
static void stop(struct rc_loop *l, struct rc_session *s, bool closing) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_conflation *cf = s->cf;
  for (uint16_t i = 0; !closing && i < s->sub.n; i++)
    if (!s->sub.v[i].pattern && s->sub.v[i].parked) rc_pubsub_unpark(ss->ps, &s->sub, i);
  for (uint32_t i = 0; i < cf->n; i++) slot_drop(l, &cf->v[i]);
  if (cf->prev) cf->prev->next = cf->next;
  else ss->conflating = cf->next;
  if (cf->next) cf->next->prev = cf->prev;
  rc_budget_release(ss->budget, table_size(cf->cap));
  free(cf);
  s->cf = NULL;
  rc_counter_sub(&ss->stats.conflating, 1);
}

/* The slot of tp, made (with last_sent) when missing; NULL on ENOMEM. */
static struct slot *slot_of(struct rc_loop *l, struct rc_session *s, struct rc_topic *tp,
                            uint64_t last_sent) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_conflation *cf = s->cf;
  for (uint32_t i = 0; i < cf->n; i++)
    if (cf->v[i].topic == tp) return &cf->v[i];
  if (cf->n == cf->cap) {
    uint32_t cap = cf->cap * 2;
    size_t grown = table_size(cap) - table_size(cf->cap);
    struct rc_conflation *g = realloc(cf, table_size(cap));
    if (!g) return NULL;
    rc_budget_force(ss->budget, grown);
    cf = s->cf = g;
    cf->cap = cap;
    if (cf->prev) cf->prev->next = cf;
    else ss->conflating = cf;
    if (cf->next) cf->next->prev = cf;
  }
  struct slot *e = &cf->v[cf->n++];
  *e = (struct slot){.topic = tp, .last_sent = last_sent};
  rc_topic_ref(ss->topics, tp); /* the session may unsubscribe before the slot goes */
  return e;
}

/* Keeps h as the newest of its topic. false: out of memory (nothing kept). */
static bool put(struct rc_loop *l, struct rc_session *s, struct rc_topic *tp, struct rc_hold *h) {
  /* A heartbeat says nothing a lagging subscriber's next message will not. */
  if (rc_message_is_heartbeat(h->frame)) return true;
  uint64_t seq = rc_message_seq(h->frame);
  struct slot *e = slot_of(l, s, tp, seq - 1);
  if (!e) return false;
  if (e->h) rc_hold_unref(rc_loop_arena(l), e->h); /* counted when its gap is sent */
  rc_hold_ref(h);
  e->h = h;
  return true;
}

/* Takes the session's live exact subscriptions out of their topics' lists:
 * from now on a message costs it nothing until it flushes. */
static void park_all(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  for (uint16_t i = 0; i < s->sub.n; i++) {
    struct rc_subscription *e = &s->sub.v[i];
    if (e->pattern || e->join || e->parked) continue;
    /* Every message the list was handed is queued, or in the slot. */
    if (!slot_of(l, s, e->topic, rc_pubsub_last_seq(ss->ps, e->topic))) return;
    rc_pubsub_park(ss->ps, &s->sub, i);
  }
}

bool rc_conflate_offer(struct rc_loop *l, struct rc_session *s, struct rc_topic *tp,
                       struct rc_hold *h) {
  if (!s->cf) {
    if (s->policy != RC_SLOW_CONFLATE || s->format == RC_FORMAT_RAW ||
        s->stream->queued(&s->conn) <= RC_CONFLATE_LAG)
      return false;
    if (!start(l, s)) return false;
  }
  if (!put(l, s, tp, h)) rc_session_slow_consumer(l, s, h->frame->len);
  return true;
}

struct lag {
  uint64_t threshold, lagging, n;
};

static void count_lagging(struct rc_loop *l, struct rc_conn *c, void *arg) {
  if (c->outbound) return; /* the Redis link's, not a client */
  (void)l;
  struct rc_session *s = rc_session_of(c);
  struct lag *m = arg;
  if (!rc_conn_is_open(c) || s->kind != RC_SESSION_WS) return;
  m->lagging += s->stream->queued(c) >= m->threshold;
  m->n++;
}

/* The shard is behind when its subscribers' queues grow together: most of its
 * WebSocket sessions (at least RC_CONFLATE_CROWD of them: a handful cannot make a
 * reconnect storm) hold over half of --max-queue. Decided from a walk of
 * its connections, at most ten times a second, when someone reaches
 * --max-queue (rare unless the shard is behind). */
static bool shard_behind(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  uint64_t now = rc_loop_now_ms(l);
  if (ss->behind_checked_ms && now - ss->behind_checked_ms < 100) return ss->behind;
  struct lag m = {.threshold = ss->max_queue / 2};
  rc_loop_foreach_conn(l, count_lagging, &m);
  ss->behind = m.n >= RC_CONFLATE_CROWD && m.lagging * 2 > m.n;
  ss->behind_checked_ms = now ? now : 1;
  return ss->behind;
}

bool rc_conflate_instead_of_close(struct rc_loop *l, struct rc_session *s, struct rc_topic *tp,
                                  struct rc_hold *h) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (s->format == RC_FORMAT_RAW) return false; /* no envelope to announce the gap in */
  bool shed = s->policy != RC_SLOW_CONFLATE;
  if (shed && !shard_behind(l)) return false;
  if (!s->cf && !start(l, s)) return false;
  if (shed) rc_counter_add(&ss->stats.shed, 1);
  if (!put(l, s, tp, h)) return false;
  return true;
}

/* For each slot whose topic has a message past what was sent: the gap notice
 * for what it skipped, then that message. Stops at a full queue, keeping what
 * did not go. Returns whether any slot had something new. */
static bool flush_one(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_conflation *cf = s->cf;
  bool any = false;
  for (uint32_t i = 0; i < cf->n && rc_conn_is_open(&s->conn); i++) {
    struct slot *e = &cf->v[i];
    int k = rc_subscription_find(&s->sub, e->topic);
    if (k < 0 && !s->sub.npatterns) {
      /* Unsubscribed since: nothing more of it goes out. */
      slot_drop(l, e);
      cf->v[i--] = cf->v[--cf->n];
      continue;
    }
    struct rc_hold *h = e->h;
    struct rc_hold *nh = k >= 0 && s->sub.v[k].parked ? rc_pubsub_newest(ss->ps, e->topic) : NULL;
    if (nh && (!h || rc_message_seq(nh->frame) > rc_message_seq(h->frame))) h = nh;
    uint64_t seq = h ? rc_message_seq(h->frame) : 0;
    if (seq <= e->last_sent) continue;
    any = true;
    if (seq > e->last_sent + 1) {
      char text[RC_TOPIC_NAME_MAX + 128];
      int n = snprintf(text, sizeof text,
                       "{\"type\":\"gap\",\"topic\":\"%s\",\"from\":%" PRIu64 ",\"to\":%" PRIu64
                       ",\"conflated\":true}",
                       e->topic->name, e->last_sent + 1, seq - 1);
      struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_TEXT, text, (size_t)n);
      if (!f) break;
      rc_frame_charge(f, ss->budget, true);
      if (s->stream->send_frame(l, &s->conn, f) < 0) break;
      rc_counter_add(&ss->stats.conflation_gaps, 1);
      rc_counter_add(&ss->stats.conflated, seq - 1 - e->last_sent);
      e->last_sent = seq - 1; /* announced: not again */
    }
    if (s->stream->send(l, &s->conn, h, RC_MESSAGE_VIEW_ENVELOPE) < 0) break;
    rc_counter_add(&ss->stats.delivered, 1);
    e->last_sent = seq;
    if (e->h) {
      rc_hold_unref(rc_loop_arena(l), e->h);
      e->h = NULL;
    }
  }
  return any;
}

void rc_conflate_flush(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  uint64_t now = rc_loop_now_ms(l);
  struct rc_conflation *next;
  for (struct rc_conflation *cf = ss->conflating; cf; cf = next) {
    next = cf->next;
    struct rc_session *s = cf->s;
    if (!rc_conn_is_open(&s->conn)) continue; /* released with the session */
    /* Parked in the turn it started, then once per interval, for subscriptions
     * that went live since: not a walk of its subscriptions every turn. */
    bool due = now - cf->flushed_ms >= RC_CONFLATE_INTERVAL_MS;
    if (cf->fresh || due) {
      cf->fresh = false;
      park_all(l, s);
      cf = s->cf; /* a new slot may have moved the table */
    }
    if (!due || !drained(s)) continue;
    cf->flushed_ms = now;
    /* Nothing new for a while: caught up, back to plain delivery. Not at the
     * first quiet flush: publishers send in bursts, and a subscriber unparked
     * between two of them would take the next burst message by message. */
    if (flush_one(l, s)) cf->idle = 0;
    else if (++cf->idle >= RC_CONFLATE_IDLE_FLUSHES) stop(l, s, false);
  }
}

/* Whether s still subscribes to tp, exactly or through one of its patterns. */
static bool still_wanted(const struct rc_session *s, const struct rc_topic *tp) {
  for (uint16_t i = 0; i < s->sub.n; i++) {
    const struct rc_subscription *e = &s->sub.v[i];
    if (e->pattern ? rc_topic_pattern_match(e->group->pattern, e->group->len, tp->name, tp->name_len)
                   : e->topic == tp)
      return true;
  }
  return false;
}

void rc_conflate_forget(struct rc_loop *l, struct rc_session *s) {
  struct rc_conflation *cf = s->cf;
  if (!cf) return;
  for (uint32_t i = 0; i < cf->n; i++) {
    if (still_wanted(s, cf->v[i].topic)) continue;
    slot_drop(l, &cf->v[i]);
    cf->v[i--] = cf->v[--cf->n];
  }
}

void rc_conflate_release(struct rc_loop *l, struct rc_session *s) {
  if (s->cf) stop(l, s, true);
}
