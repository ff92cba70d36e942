/* SPDX-License-Identifier: MIT */
/* A connection's life as a session: the operations the io layer calls (data,
 * timer, close), the handshake, idle and keepalive deadlines behind its one
 * timer, and the ways a session ends (protocol error, slow consumer, shutdown). */
#include <errno.h>
#include <stdio.h>

#include "ringcast/proto/ws.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "session_internal.h"

static void on_data(struct rc_loop *l, struct rc_conn *c, uint8_t *p, size_t n) {
  struct rc_session *s = rc_session_of(c);
  s->rx_tick = rc_session_now(l);
  s->ping_tick = 0;
  if (s->kind == RC_SESSION_HTTP) rc_request_on_data(l, s, p, n);
  else rc_websocket_on_data(l, s, p, n);
}

/* Ticks until `mark + period`, 0 when it has passed (modulo 2^32). */
static uint32_t ticks_left(uint32_t now, uint32_t mark, uint32_t period) {
  uint32_t gone = now - mark;
  return gone >= period ? 0 : period - gone;
}

static bool awaits_request(const struct rc_session *s) {
  return s->kind == RC_SESSION_HTTP && (s->in.len || !s->served);
}

void rc_session_rearm_timer(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  uint32_t now = rc_session_now(l), next = UINT32_MAX;
  if (ss->handshake_ticks && awaits_request(s)) {
    uint32_t t = ticks_left(now, s->req_tick, ss->handshake_ticks);
    if (t < next) next = t;
  }
  if (ss->idle_ticks) {
    uint32_t t = ticks_left(now, s->rx_tick, ss->idle_ticks);
    if (t < next) next = t;
  }
  if (ss->ping_ticks && s->kind == RC_SESSION_WS) {
    uint32_t t = ticks_left(now, s->ping_tick ? s->ping_tick : s->rx_tick, ss->ping_ticks);
    if (t < next) next = t;
  }
  if (next == UINT32_MAX) rc_conn_cancel_timer(l, &s->conn);
  else rc_conn_set_timer(l, &s->conn, rc_loop_now_ms(l) + (uint64_t)next * RC_TIMER_TICK_MS);
}

static void on_timer(struct rc_loop *l, struct rc_conn *c) {
  struct rc_session *s = rc_session_of(c);
  struct rc_session_shard *ss = rc_session_shard_of(l);
  const struct rc_config *cfg = ss->srv->cfg;
  uint32_t now = rc_session_now(l);
  char peer[64];
  if (ss->handshake_ticks && awaits_request(s) && now - s->req_tick >= ss->handshake_ticks) {
    rc_conn_peer_text(c, peer, sizeof peer);
    rc_info("%s: no complete request within --handshake-timeout %us; closing with 408", peer,
            cfg->handshake_timeout);
    rc_counter_add(&ss->stats.timeouts, 1);
    static const char body[] = "{\"error\":\"request not completed within --handshake-timeout\"}\n";
    rc_request_respond(l, s, 408, "application/json", NULL, body, sizeof body - 1, true);
    return;
  }
  if (ss->idle_ticks && now - s->rx_tick >= ss->idle_ticks) {
    rc_conn_peer_text(c, peer, sizeof peer);
    rc_info("%s: nothing received for --idle-timeout %us; closing", peer, cfg->idle_timeout);
    rc_counter_add(&ss->stats.timeouts, 1);
    rc_session_close(l, s, RC_WS_CLOSE_GOING_AWAY, "idle timeout", false);
    return;
  }
  if (ss->ping_ticks && s->kind == RC_SESSION_WS &&
      now - (s->ping_tick ? s->ping_tick : s->rx_tick) >= ss->ping_ticks) {
    s->ping_tick = now ? now : 1;
    rc_websocket_ping(l, s);
    if (!rc_conn_is_open(c)) return;
  }
  rc_session_rearm_timer(l, s);
}

static void on_close(struct rc_loop *l, struct rc_conn *c) {
  struct rc_session *s = rc_session_of(c);
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (s->sub.n || s->sub.v) rc_pubsub_unsubscribe_all(ss->ps, &s->sub);
  rc_bytebuf_free(&s->in);
  rc_bytebuf_free(&s->msg);
}

const struct rc_conn_ops rc_session_ops = {
    .on_data = on_data,
    .on_timer = on_timer,
    .on_close = on_close,
};

int rc_session_send_frame(struct rc_loop *l, struct rc_session *s, struct rc_frame *f) {
  size_t len = f->len;
  int ret = s->stream->send_frame(l, &s->conn, f);
  if (ret == -ENOBUFS) rc_session_slow_consumer(l, s, len);
  return ret;
}

void rc_session_close(struct rc_loop *l, struct rc_session *s, unsigned code, const char *reason,
                      bool drop_queued) {
  struct rc_frame *last = NULL;
  if (s->kind == RC_SESSION_WS && code) {
    last = rc_frame_create_close((uint16_t)rc_loop_id(l), code, reason);
    if (!last) {
      rc_conn_abort(l, &s->conn);
      return;
    }
  }
  s->stream->close(l, &s->conn, last, drop_queued);
}

void rc_session_protocol_close(struct rc_loop *l, struct rc_session *s, unsigned code,
                               const char *reason) {
  char peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  rc_info("%s: closing with %u: %s", peer, code, reason);
  rc_counter_add(&rc_session_shard_of(l)->stats.protocol_errors, 1);
  rc_session_close(l, s, code, reason, false);
}

void rc_session_slow_consumer(struct rc_loop *l, struct rc_session *s, size_t adding) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (!rc_conn_is_open(&s->conn)) return;
  rc_counter_add(&ss->stats.slow_disconnects, 1);
  char peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  rc_info("slow consumer %s: %llu bytes queued + %zu > --max-queue %llu; closing with 1008", peer,
          (unsigned long long)rc_conn_waiting_bytes(&s->conn), adding,
          (unsigned long long)ss->max_queue);
  rc_session_close(l, s, RC_WS_CLOSE_POLICY, "slow consumer: send queue exceeded --max-queue",
                   true);
}
