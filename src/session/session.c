/* SPDX-License-Identifier: MIT */
/* What every kind of session shares: the handshake, idle and keepalive
 * deadlines behind a connection's one timer, writing frames, and the ways a
 * session ends (protocol error, slow consumer, close) or is released. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ringcast/proto/ws.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "session.h"

#define TICKS_PER_S (1000u / RC_TIMER_TICK_MS)

const char *const rc_session_kind_names[RC_SESSION_KINDS] = {
    [RC_SESSION_HTTP] = "http",
    [RC_SESSION_WS] = "websocket",
};

const char *const rc_session_end_names[RC_SESSION_ENDS] = {
    [RC_END_NONE] = NULL,
    [RC_END_CLIENT] = "client_close",
    [RC_END_SERVER] = "server_close",
    [RC_END_SLOW] = "slow_consumer",
    [RC_END_PROTOCOL] = "protocol_error",
    [RC_END_TIMEOUT] = "timeout",
    [RC_END_IDLE] = "idle",
    [RC_END_AUTH] = "auth",
    [RC_END_RATE] = "rate_limited",
    [RC_END_REFUSED] = "refused",
    [RC_END_OVERLOAD] = "overload",
    [RC_END_RESET] = "reset",
    [RC_END_SHUTDOWN] = "shutdown",
};

const char *const rc_session_attempt_names[RC_SESSION_ATTEMPTS] = {
    [RC_ATTEMPT_NONE] = NULL,
    [RC_ATTEMPT_ACCEPTED] = "accepted",
    [RC_ATTEMPT_REFUSED_FULL] = "refused_full",
    [RC_ATTEMPT_REFUSED_LIMIT] = "refused_limit",
    [RC_ATTEMPT_HANDSHAKE_FAILED] = "handshake_failed",
    [RC_ATTEMPT_AUTH_FAILED] = "auth_failed",
};

void rc_session_attempt(struct rc_loop *l, struct rc_session *s, enum rc_session_attempt result) {
  if (s->attempt || result == RC_ATTEMPT_NONE) return;
  s->attempt = (uint8_t)result;
  rc_counter_add(&rc_session_shard_of(l)->stats.attempts[result], 1);
}

void rc_session_opened(struct rc_loop *l, struct rc_session *s) {
  s->kind = RC_SESSION_HTTP;
  s->open_tick = rc_session_now(l);
  rc_counter_add(&rc_session_shard_of(l)->stats.active[RC_SESSION_HTTP], 1);
}

void rc_session_set_kind(struct rc_loop *l, struct rc_session *s, enum rc_session_kind kind) {
  struct rc_session_stats *st = &rc_session_shard_of(l)->stats;
  rc_counter_sub(&st->active[s->kind], 1);
  rc_counter_add(&st->active[kind], 1);
  s->kind = (uint8_t)kind;
}

/* The cause the io layer saw, for a close the session did not name. */
static enum rc_session_end end_of_conn(const struct rc_conn *c) {
  switch (c->end) {
  case RC_CONN_END_EOF: return RC_END_CLIENT;
  case RC_CONN_END_ERROR: return RC_END_RESET;
  case RC_CONN_END_PROTOCOL: return RC_END_PROTOCOL;
  case RC_CONN_END_NOMEM: return RC_END_OVERLOAD;
  case RC_CONN_END_SHUTDOWN: return RC_END_SHUTDOWN;
  default:
    /* Every close the session starts names its cause first, but for its
     * aborts, which are all allocation failures (a frame or buffer it could
     * not make). */
    return RC_END_OVERLOAD;
  }
}

void rc_session_closed(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_stats *st = &rc_session_shard_of(l)->stats;
  enum rc_session_end why = s->end ? (enum rc_session_end)s->end : end_of_conn(&s->conn);
  rc_counter_add(&st->closed[why], 1);
  if (!s->attempt)
    rc_session_attempt(l, s,
                       why == RC_END_AUTH ? RC_ATTEMPT_AUTH_FAILED : RC_ATTEMPT_HANDSHAKE_FAILED);
  uint32_t ticks = rc_session_now(l) - s->open_tick;
  rc_hist_observe(&st->duration[s->kind], &rc_hist_duration_ms, (uint64_t)ticks * RC_TIMER_TICK_MS);
  rc_counter_sub(&st->active[s->kind], 1);
}

uint32_t rc_session_auth_ticks(const struct rc_session_shard *ss) {
  /* Without --handshake-timeout a pending auth still ends: the default's 10 s. */
  return ss->handshake_ticks ? ss->handshake_ticks : 10 * TICKS_PER_S;
}

/* Ticks until `mark + period`, 0 when it has passed (modulo 2^32). */
static uint32_t ticks_left(uint32_t now, uint32_t mark, uint32_t period) {
  uint32_t gone = now - mark;
  return gone >= period ? 0 : period - gone;
}

bool rc_session_awaits_request(const struct rc_session *s) {
  return s->kind == RC_SESSION_HTTP && ((s->rx && s->rx->in.len) || !s->served);
}

void rc_session_rearm_timer(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  uint32_t now = rc_session_now(l), next = UINT32_MAX;
  if (ss->handshake_ticks && rc_session_awaits_request(s)) {
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
  if (s->auth.kind == RC_AUTH_PENDING) {
    uint32_t t = ticks_left(now, s->auth_tick, rc_session_auth_ticks(ss));
    if (t < next) next = t;
  }
  int64_t deadline = rc_access_deadline(ss->access, &s->auth);
  if (deadline) {
    /* Wall-clock seconds to loop ticks, capped well inside the tick arithmetic. */
    int64_t left = deadline - (int64_t)time(NULL);
    uint32_t t = left <= 0 ? 0 : left > 86400 ? 86400u * TICKS_PER_S : (uint32_t)left * TICKS_PER_S;
    if (t < next) next = t;
  }
  if (next == UINT32_MAX) rc_conn_cancel_timer(l, &s->conn);
  else rc_conn_set_timer(l, &s->conn, rc_loop_now_ms(l) + (uint64_t)next * RC_TIMER_TICK_MS);
}

static void rx_free(struct rc_loop *l, struct rc_session_rx *rx) {
  rc_budget_release(rc_session_shard_of(l)->budget, rx->charged);
  rx->charged = 0;
  rc_bytebuf_free(&rx->in);
  rc_bytebuf_free(&rx->msg);
}

/* Brings the budget's charge for a receive state kept between receives to what
 * it holds now. false: growing it would pass --max-memory (nothing changed). */
static bool rx_charge(struct rc_loop *l, struct rc_session_rx *rx) {
  struct rc_budget *b = rc_session_shard_of(l)->budget;
  size_t cost = sizeof *rx + rx->in.cap + rx->msg.cap;
  if (cost > rx->charged) {
    if (!rc_budget_try(b, cost - rx->charged)) return false;
  } else {
    rc_budget_release(b, rx->charged - cost);
  }
  rx->charged = (uint32_t)cost;
  return true;
}

void rc_session_set_auth(struct rc_loop *l, struct rc_session *s, struct rc_auth *auth) {
  struct rc_budget *b = rc_session_shard_of(l)->budget;
  if (s->auth.grant) rc_budget_release(b, rc_jwt_grant_size(s->auth.grant));
  rc_auth_clear(&s->auth);
  if (!auth) return;
  s->auth = *auth;
  /* A grant lives as long as its connection: it counts against --max-memory. */
  if (s->auth.grant) rc_budget_force(b, rc_jwt_grant_size(s->auth.grant));
  auth->grant = NULL;
}

void rc_session_release(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (s->admitted) {
    rc_admission_close(ss->adm, &s->conn, s->handshaking, rc_loop_now_ms(l));
    s->admitted = s->handshaking = false;
  }
  if (s->sub.v) rc_pubsub_unsubscribe_all(ss->ps, &s->sub);
  rc_session_set_auth(l, s, NULL);
  if (s->rx) {
    rx_free(l, s->rx);
    free(s->rx);
    s->rx = NULL;
  }
}

bool rc_session_rx_is_pending(const struct rc_session_rx *rx) {
  return rx->in.len || rx->msg.len || rx->frag_op || rx->ctl_op || rx->rd.in_payload ||
         rx->rd.hlen || rx->req.active;
}

bool rc_session_rx_settle(struct rc_loop *l, struct rc_session *s, struct rc_session_rx *rx) {
  bool keep = rc_conn_is_open(&s->conn) && rc_session_rx_is_pending(rx);
  bool fits = !keep || rx_charge(l, rx);
  if (!fits) {
    keep = false;
    rc_counter_add(&rc_session_shard_of(l)->stats.refused_memory, 1);
  }
  if (rx == s->rx) {
    if (keep) return true;
    rx_free(l, rx);
    free(rx);
    s->rx = NULL;
    return fits;
  }
  if (!keep) {
    rx_free(l, rx);
    return fits;
  }
  s->rx = malloc(sizeof *s->rx);
  if (!s->rx) {
    rx_free(l, rx);
    rc_conn_abort(l, &s->conn);
    return true;
  }
  *s->rx = *rx; /* the buffers (and their charge) move with it */
  return true;
}

int rc_session_send_frame(struct rc_loop *l, struct rc_session *s, struct rc_frame *f) {
  size_t len = f->len;
  /* A reply to what was accepted: charged, never refused (the per-connection
   * --max-queue bounds it), so the budget sees it and refuses new work. */
  rc_frame_charge(f, rc_session_shard_of(l)->budget, true);
  int ret = s->stream->send_frame(l, &s->conn, f);
  if (ret == -ENOBUFS) rc_session_slow_consumer(l, s, len);
  return ret;
}

void rc_session_close(struct rc_loop *l, struct rc_session *s, unsigned code, const char *reason,
                      bool drop_queued) {
  rc_session_mark_end(s, RC_END_SERVER); /* unless a cause was named before */
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
  rc_session_mark_end(s, RC_END_PROTOCOL);
  rc_session_close(l, s, code, reason, false);
}

void rc_session_slow_consumer(struct rc_loop *l, struct rc_session *s, size_t adding) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (!rc_conn_is_open(&s->conn)) return;
  rc_counter_add(&ss->stats.slow_disconnects, 1);
  rc_session_mark_end(s, RC_END_SLOW);
  char peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  rc_info("slow consumer %s: %llu bytes queued + %zu > --max-queue %llu; closing with 1008", peer,
          (unsigned long long)s->stream->queued(&s->conn), adding,
          (unsigned long long)ss->max_queue);
  rc_session_close(l, s, RC_WS_CLOSE_POLICY, "slow consumer: send queue exceeded --max-queue",
                   true);
}

const char *rc_session_publish_refusal(int err) {
  switch (err) {
  case -EAGAIN:
    return "the topic's home shard has --max-backlog bytes of publishes waiting; message not "
           "published, retry later";
  case -ENOBUFS:
    return "the server is over its memory budget (--max-memory); message not published, retry "
           "later";
  case -ENOMEM: return "out of memory; message not published";
  case -ENOTCONN:
    return "Redis (--redis) is unreachable; message not published, retry later";
  case -ECONNRESET:
    return "the connection to Redis was lost with this message on its way; it may or may not "
           "have been published (a resumed subscription shows which)";
  case -EIO: return "Redis refused the publish (the server log says why); message not published";
  case -ESHUTDOWN: return "the server is stopping; message not published";
  default: return "message not published";
  }
}

const char *rc_session_reserved_refusal(struct rc_loop *l, const struct rc_session *s,
                                        const char *name, size_t len) {
  bool reserved = rc_topic_name_is_reserved(name, len);
  if (s->admin) return reserved ? NULL : RC_SESSION_ADMIN_ONLY;
  /* Like /metrics: server internals leave the public port with --admin-listen. */
  if (reserved && rc_session_shard_of(l)->admin_only_metrics)
    return "the server's own '$' topics are served on the --admin-listen address only";
  return NULL;
}

const char *rc_session_topic_refusal(int err) {
  switch (err) {
  case -EINVAL:
    return "invalid topic name: 1-128 characters of A-Z a-z 0-9 . _ - : / @ (and a leading $ for "
           "the server's own topics)";
  case -ENOSPC: return "the server holds --max-topics topics; no new topic can be created now";
  case -ENOBUFS:
    return "the server is over its memory budget (--max-memory); no new topic can be created now";
  case -ENOMEM: return "out of memory creating a topic";
  default: return "topic not available";
  }
}

void rc_session_topics_release(struct rc_loop *l, struct rc_topic **list, unsigned n) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  for (unsigned i = 0; i < n; i++) rc_topic_release(ss->topics, list[i]);
}

/* A token bucket in hundredths of a message, refilled per 10 ms tick, holding a
 * second's worth: --max-commands-per-sec a second, that many at once. */
bool rc_session_take_tokens(struct rc_loop *l, struct rc_session *s, unsigned n) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (!ss->max_commands) return true;
  uint32_t now = rc_session_now(l);
  uint64_t cap = (uint64_t)ss->max_commands * 100;
  uint64_t t = s->cmd_tokens + (uint64_t)(now - s->cmd_tick) * ss->max_commands;
  if (t > cap) t = cap;
  s->cmd_tick = now;
  uint64_t want = (uint64_t)n * 100;
  if (want > cap) want = cap; /* a command worth more than a second waits for a full bucket */
  if (t < want) {
    s->cmd_tokens = (uint32_t)t;
    rc_counter_add(&ss->stats.rate_limited, 1);
    rc_session_mark_end(s, RC_END_RATE); /* the caller refuses and closes */
    return false;
  }
  s->cmd_tokens = (uint32_t)(t - want);
  return true;
}


void rc_session_fill_tokens(struct rc_loop *l, struct rc_session *s) {
  s->cmd_tick = rc_session_now(l);
  s->cmd_tokens = rc_session_shard_of(l)->max_commands * 100;
}
