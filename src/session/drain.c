/* SPDX-License-Identifier: MIT */
/* A shard's drain: the connections open when it begins are closed one by one,
 * evenly over --drain-seconds (each told beforehand when), then whatever is
 * left is closed when the window ends. */
#include "drain.h"

#include <stdio.h>
#include <stdlib.h>

#include "ringcast/proto/ws.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"

uint32_t rc_drain_offset_ms(uint32_t index, uint32_t count, uint32_t window_ms, uint32_t phase_num,
                            uint32_t phase_den) {
  if (!count || !phase_den || index >= count) return 0;
  /* (index + phase) / count of the window, in 128 bits: count * phase_den and
   * the product with window_ms may pass 64. */
  unsigned __int128 num = ((unsigned __int128)index * phase_den + phase_num) * window_ms;
  unsigned __int128 den = (unsigned __int128)count * phase_den;
  return (uint32_t)(num / den);
}

static uint32_t offset_of(const struct rc_session_shard *ss, uint32_t k) {
  unsigned nshards = ss->srv->nshards;
  return rc_drain_offset_ms(k, ss->drain.n, ss->drain_ms, 2 * ss->id + 1, 2 * nshards);
}

static void send_reconnect(struct rc_loop *l, struct rc_session *s, uint64_t after_ms) {
  /* Raw streams carry payloads only, and echo sessions are conformance
   * clients: neither could tell this message from data. */
  if (s->kind != RC_SESSION_WS || s->format != RC_FORMAT_ENVELOPE || !rc_conn_is_open(&s->conn))
    return;
  char msg[64];
  int n = snprintf(msg, sizeof msg, "{\"type\":\"reconnect\",\"after_ms\":%llu}",
                   (unsigned long long)after_ms);
  struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_TEXT, msg, (size_t)n);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  if (rc_session_send_frame(l, s, f) == 0)
    rc_counter_add(&rc_session_shard_of(l)->stats.reconnect_notices, 1);
}

/* Closes one connection for the drain: a WebSocket with 1001 after what is
 * queued for it; an HTTP connection only while it idles between requests. One
 * inside a request gets Connection: close on its response, and one whose first
 * request has not arrived yet (it was accepted just before the drain, or just
 * before a successor took the listeners) is waited for: closing it would
 * drop that request. The end of the window closes what is left. */
static void drain_close(struct rc_loop *l, struct rc_session *s, bool window_end) {
  if (!rc_conn_is_open(&s->conn)) return;
  if (s->kind == RC_SESSION_HTTP && (s->rx || !s->served) && !window_end) return;
  rc_counter_add(&rc_session_shard_of(l)->stats.drain_closes, 1);
  rc_session_mark_end(s, RC_END_SHUTDOWN); /* counted as shutdown, not a plain server close */
  rc_session_close(l, s, s->kind == RC_SESSION_WS ? RC_WS_CLOSE_GOING_AWAY : 0, "server restarting",
                   false);
}

static void close_left(struct rc_loop *l, struct rc_conn *c, void *arg) {
  if (c->outbound) return; /* the Redis link's, not a client */
  (void)arg;
  drain_close(l, rc_session_of(c), true);
}

static void drain_tick(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_drain_state *d = &ss->drain;
  uint64_t now = rc_loop_now_ms(l);
  while (d->next < d->n && d->start_ms + offset_of(ss, d->next) <= now) {
    struct rc_conn *c = rc_loop_conn_by_token(l, d->tokens[d->next++]);
    if (c) drain_close(l, rc_session_of(c), false);
  }
  if (d->next < d->n) {
    rc_loop_timer_set(l, lt, d->start_ms + offset_of(ss, d->next));
  } else if (now >= d->end_ms) {
    rc_loop_foreach_conn(l, close_left, NULL);
  } else {
    rc_loop_timer_set(l, lt, d->end_ms);
  }
}

struct collect {
  struct rc_drain_state *d;
  uint32_t cap;
};

static void collect_one(struct rc_loop *l, struct rc_conn *c, void *arg) {
  if (c->outbound) return; /* the Redis link's, not a client */
  struct collect *co = arg;
  if (!rc_conn_is_open(c) || co->d->n >= co->cap) return;
  co->d->tokens[co->d->n++] = rc_conn_token(l, c);
}

static void count_one(struct rc_loop *l, struct rc_conn *c, void *arg) {
  if (c->outbound) return; /* the Redis link's, not a client */
  (void)l;
  *(uint32_t *)arg += rc_conn_is_open(c);
}

void rc_drain_start(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct rc_drain_state *d = &ss->drain;
  uint64_t now = rc_loop_now_ms(l);
  d->active = true;
  d->start_ms = now;
  d->end_ms = now + ss->drain_ms;
  d->timer.fn = drain_tick;
  uint32_t open = 0;
  rc_loop_foreach_conn(l, count_one, &open);
  if (open) {
    d->tokens = malloc((size_t)open * sizeof *d->tokens);
    if (d->tokens) {
      struct collect co = {d, open};
      rc_loop_foreach_conn(l, collect_one, &co);
    } else {
      rc_warn("drain: no memory for the schedule of %u connections; they close when the "
              "window ends",
              open);
    }
  }
  for (uint32_t k = 0; k < d->n; k++) {
    struct rc_conn *c = rc_loop_conn_by_token(l, d->tokens[k]);
    if (c) send_reconnect(l, rc_session_of(c), offset_of(ss, k));
  }
  rc_debug("drain: %u connections closing over %u ms", open, ss->drain_ms);
  /* The first close waits for the next turn at the earliest: this turn's inbox
   * (messages accepted before the drain) is queued to its subscribers first. */
  rc_loop_timer_set(l, &d->timer, d->n ? d->start_ms + offset_of(ss, 0) : d->end_ms);
}

void rc_drain_late_upgrade(struct rc_loop *l, struct rc_session *s) {
  struct rc_drain_state *d = &rc_session_shard_of(l)->drain;
  if (!d->active) return;
  uint64_t now = rc_loop_now_ms(l);
  if (now >= d->end_ms) {
    drain_close(l, s, true);
    return;
  }
  send_reconnect(l, s, d->end_ms - now);
}

void rc_drain_stop(struct rc_loop *l) {
  struct rc_drain_state *d = &rc_session_shard_of(l)->drain;
  if (d->active) rc_loop_timer_cancel(l, &d->timer);
}

void rc_drain_fini(struct rc_session_shard *ss) {
  free(ss->drain.tokens);
  ss->drain.tokens = NULL;
}
