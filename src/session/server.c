/* SPDX-License-Identifier: MIT */
/* Wiring: one pub/sub engine, one loop and session context per shard, and the
 * hooks through which the loop drives pub/sub (drain and flush each turn, the
 * sleep check) and pub/sub wakes other loops. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo_feed.h"
#include "ringcast/proto/ws.h"
#include "ringcast/session/server.h"
#include "ringcast/stream/tls.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "conflate.h"
#include "delivery.h"
#include "drain.h"
#include "request.h"
#include "redis_link.h"
#include "session.h"
#include "stats_feed.h"
#include "websocket.h"

/* An idle subscriber must stay small (docs/architecture.md, "Memory"). */
static_assert(sizeof(struct rc_session) <= 256, "a connection's session grew past 256 bytes");

#define TICKS_PER_S (1000u / RC_TIMER_TICK_MS)

/* ---- a connection's operations (what the io layer calls) ---- */

static void on_data(struct rc_loop *l, struct rc_conn *c, uint8_t *p, size_t n) {
  struct rc_session *s = rc_session_of(c);
  s->rx_tick = rc_session_now(l);
  if (s->kind == RC_SESSION_HTTP) {
    rc_request_on_data(l, s, p, n);
  } else {
    s->ping_tick = 0; /* anything received answers the keepalive */
    rc_websocket_on_data(l, s, p, n);
  }
}

/* The deadline that fired, if any is due, and what it means. */
static void on_timer(struct rc_loop *l, struct rc_conn *c) {
  struct rc_session *s = rc_session_of(c);
  struct rc_session_shard *ss = rc_session_shard_of(l);
  uint32_t now = rc_session_now(l);
  char peer[64];
  /* A request answered late (through Redis) is complete: no 408 for it. */
  if (ss->handshake_ticks && rc_session_awaits_request(s) && !s->awaiting &&
      now - s->req_tick >= ss->handshake_ticks) {
    rc_conn_peer_text(c, peer, sizeof peer);
    rc_info("%s: no complete request within --handshake-timeout %us; closing with 408", peer,
            ss->handshake_ticks / TICKS_PER_S);
    rc_counter_add(&ss->stats.timeouts, 1);
    rc_session_mark_end(s, RC_END_TIMEOUT);
    static const char body[] = "{\"error\":\"request not completed within --handshake-timeout\"}\n";
    rc_request_respond(l, s, 408, "application/json", NULL, body, sizeof body - 1, true);
    return;
  }
  if (s->auth.kind == RC_AUTH_PENDING && now - s->auth_tick >= rc_session_auth_ticks(ss)) {
    rc_conn_peer_text(c, peer, sizeof peer);
    rc_info("%s: no auth command within --handshake-timeout; closing with 1008", peer);
    rc_access_count(ss->access, RC_ACCESS_AUTH_TIMEOUT);
    rc_session_mark_end(s, RC_END_AUTH);
    rc_session_close(l, s, RC_WS_CLOSE_POLICY, "authentication required: send {\"op\":\"auth\"}", false);
    return;
  }
  int64_t deadline = rc_access_deadline(ss->access, &s->auth);
  if (deadline && (int64_t)time(NULL) >= deadline) {
    rc_conn_peer_text(c, peer, sizeof peer);
    rc_info("%s: token of '%s' expired; closing with 1008", peer, rc_jwt_grant_subject(s->auth.grant));
    rc_access_count(ss->access, RC_ACCESS_EXPIRED_LIVE);
    rc_session_mark_end(s, RC_END_AUTH);
    rc_session_close(l, s, RC_WS_CLOSE_POLICY, "token expired", false);
    return;
  }
  if (ss->idle_ticks && now - s->rx_tick >= ss->idle_ticks) {
    rc_conn_peer_text(c, peer, sizeof peer);
    rc_info("%s: nothing received for --idle-timeout %us; closing", peer, ss->idle_ticks / TICKS_PER_S);
    rc_counter_add(&ss->stats.timeouts, 1);
    rc_session_mark_end(s, RC_END_IDLE);
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
  rc_session_closed(l, rc_session_of(c));
  rc_conflate_release(l, rc_session_of(c));
  rc_session_release(l, rc_session_of(c));
}

static const struct rc_conn_ops session_ops = {
    .on_data = on_data,
    .on_timer = on_timer,
    .on_close = on_close,
};

/* ---- the loop's hooks ---- */

static void demo_tick(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  rc_loop_timer_set(l, lt, rc_demo_feed_tick(ss->demo, ss->ps, rc_loop_now_ms(l)));
}

static void stats_tick(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  rc_loop_timer_set(l, lt, rc_stats_feed_tick(ss->stats_feed, ss->ps, rc_loop_now_ms(l)));
}

static void sweep_tick(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  rc_admission_sweep(ss->adm, rc_loop_now_ms(l));
  rc_loop_timer_set(l, lt, rc_loop_now_ms(l) + 2000);
}

/* Adds up what one connection has queued (census_tick). */
struct census {
  uint64_t total, max;
};

static void census_one(struct rc_loop *l, struct rc_conn *c, void *arg) {
  if (c->outbound) return; /* the Redis link's, not a client */
  (void)l;
  struct census *cs = arg;
  /* A closing connection's stream state may be gone already; what it has left
   * is on its way out, bounded by the close grace. */
  if (!rc_conn_is_open(c)) return;
  uint64_t q = rc_session_of(c)->stream->queued(c);
  cs->total += q;
  if (q > cs->max) cs->max = q;
}

/* Once a second the shard measures its own queues and pools and publishes them
 * as gauges: the scraping thread never walks a shard's connections, and the
 * send path keeps no running totals. The walk touches every slot of the shard's
 * table once a second: 0.7 ms for 100,000 slots of 256 bytes, cold, in a
 * microbenchmark of the same access pattern (one state byte, one indirect call). */
static void census_tick(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  struct census cs = {0, 0};
  rc_loop_foreach_conn(l, census_one, &cs);
  atomic_store_explicit(&ss->stats.queued_bytes, cs.total, memory_order_relaxed);
  atomic_store_explicit(&ss->stats.queued_bytes_max, cs.max, memory_order_relaxed);
  uint64_t pooled =
      rc_loop_pool_free_bytes(l) + (ss->tls ? rc_tls_shard_pool_free_bytes(ss->tls) : 0);
  atomic_store_explicit(&ss->stats.pool_free_bytes, pooled, memory_order_relaxed);
  rc_loop_timer_set(l, lt, rc_loop_now_ms(l) + 1000);
}

static void pubsub_tick(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  rc_pubsub_set_clock(ss->ps, rc_loop_now_ms(l));
  rc_pubsub_set_clock_ns(ss->ps, rc_loop_now_ns(l));
  rc_pubsub_tick(ss->ps);
  rc_pubsub_flush(ss->ps); /* heartbeats for other shards go now */
  rc_loop_timer_set(l, lt, rc_loop_now_ms(l) + 1000);
}

static void on_start(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  const struct rc_config *cfg = ss->srv->cfg;
  ss->census_timer.fn = census_tick;
  rc_loop_timer_set(l, &ss->census_timer, rc_loop_now_ms(l) + 1000);
  /* Wildcards need the tick too: it lets go of pins of patterns gone. */
  if (cfg->history || cfg->topic_heartbeat || cfg->max_patterns || ss->redis) {
    ss->pubsub_timer.fn = pubsub_tick;
    rc_loop_timer_set(l, &ss->pubsub_timer, rc_loop_now_ms(l) + 1000);
  }
  if (ss->adm && ss->id == 0) {
    /* Addresses that left and whose bucket refilled are forgotten. */
    ss->sweep_timer.fn = sweep_tick;
    rc_loop_timer_set(l, &ss->sweep_timer, rc_loop_now_ms(l) + 2000);
  }
  if (ss->id == 0 && cfg->stats_interval_ms) {
    ss->stats_feed = rc_stats_feed_create(ss->srv, rc_loop_now_ms(l), cfg->stats_interval_ms);
    if (ss->stats_feed) {
      ss->stats_timer.fn = stats_tick;
      rc_loop_timer_set(l, &ss->stats_timer, rc_loop_now_ms(l) + cfg->stats_interval_ms);
    } else {
      rc_warn("$sys.stats: out of memory; running without the stats feed");
    }
  }
  if (ss->redis) rc_redis_link_start(ss->redis, l);
  if (!ss->demo_feed) return;
  ss->demo = rc_demo_feed_create(ss->topics, rc_loop_now_ms(l), 42);
  if (!ss->demo) {
    rc_warn("demo feed: out of memory or topic table full; running without it");
    return;
  }
  ss->demo_timer.fn = demo_tick;
  rc_loop_timer_set(l, &ss->demo_timer, rc_loop_now_ms(l));
}

/* How long a refused connection may take to read its answer: its slot must
 * come back fast when a flood is being refused. */
#define REFUSAL_GRACE_MS 250

static void refuse(struct rc_loop *l, struct rc_session *s, int status, const char *why,
                   enum rc_session_attempt result) {
  rc_session_mark_end(s, RC_END_REFUSED);
  rc_session_attempt(l, s, result);
  char body[256];
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", why);
  rc_request_respond(l, s, status, "application/json", "Retry-After: 1\r\n", body, (size_t)n, true);
  rc_conn_hurry_close(l, &s->conn, REFUSAL_GRACE_MS);
}

static void on_accept(struct rc_loop *l, struct rc_conn *c, bool over_limit, bool admin,
                      const struct rc_listen_addr *from) {
  struct rc_session *s = rc_session_of(c);
  struct rc_session_shard *ss = rc_session_shard_of(l);
  bool tls = from->tls && ss->tls;
  s->stream = tls ? &rc_stream_tls : &rc_stream_cleartext;
  s->admin = admin;
  rc_session_opened(l, s);
  if (s->stream->attach(tls ? ss->tls : NULL, l, c, &session_ops) < 0) {
    rc_conn_abort(l, c);
    return;
  }
  s->rx_tick = s->req_tick = rc_session_now(l);
  rc_session_fill_tokens(l, s);
  if (over_limit) {
    refuse(l, s, 503, "server full: this shard is at --max-conns", RC_ATTEMPT_REFUSED_FULL);
    return;
  }
  /* A trusted proxy speaks for many clients: each is admitted by its own
   * address once its request says which (request.c). */
  if (ss->adm && !admin && !rc_access_trusted_peer(ss->access, c)) {
    unsigned retry = 1;
    int ret = rc_admission_open(ss->adm, c, rc_loop_now_ms(l), &retry);
    if (ret < 0) {
      char peer[64];
      rc_conn_peer_text(c, peer, sizeof peer);
      rc_debug("%s: refused by the per-address limits (%d)", peer, ret);
      refuse(l, s, rc_admission_status(ret), rc_admission_refusal(ret), RC_ATTEMPT_REFUSED_LIMIT);
      return;
    }
    s->admitted = s->handshaking = true;
  }
  rc_session_rearm_timer(l, s);
}


/* Inbox work per turn: a flooded inbox is taken in slices, with the loop's
 * completions, timers and sends between them, so the shard keeps serving its own
 * clients (has_work keeps the loop from sleeping while work remains), and each
 * subscriber is queued at most a quarter of --max-queue per turn before its send
 * starts: a shard catching up does not look to its readers like their own
 * slowness. */
#define DRAIN_SLICE 1024

static void on_turn(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  rc_pubsub_set_clock(ss->ps, rc_loop_now_ms(l));
  rc_pubsub_set_clock_ns(ss->ps, rc_loop_now_ns(l));
  rc_pubsub_drain(ss->ps, DRAIN_SLICE, ss->max_queue / 4);
  rc_pubsub_flush(ss->ps);
  rc_conflate_flush(l);
  if (ss->redis) rc_redis_link_flush(ss->redis); /* this turn's publishes, pipelined */
}

static bool has_work(struct rc_loop *l) { return rc_pubsub_has_work(rc_session_shard_of(l)->ps); }

static void stop_one(struct rc_loop *l, struct rc_conn *c, void *arg) {
  if (c->outbound) return; /* the Redis link's, not a client */
  (void)arg;
  if (!rc_conn_is_open(c)) return;
  struct rc_session *s = rc_session_of(c);
  rc_session_mark_end(s, RC_END_SHUTDOWN);
  rc_session_close(l, s, s->kind == RC_SESSION_WS ? RC_WS_CLOSE_GOING_AWAY : 0,
                   "server shutting down", false);
}

static void on_stop(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (ss->demo) rc_loop_timer_cancel(l, &ss->demo_timer);
  if (ss->stats_feed) rc_loop_timer_cancel(l, &ss->stats_timer);
  if (ss->adm && ss->id == 0) rc_loop_timer_cancel(l, &ss->sweep_timer);
  if (ss->pubsub_timer.fn) rc_loop_timer_cancel(l, &ss->pubsub_timer);
  rc_loop_timer_cancel(l, &ss->census_timer);
  if (ss->redis) rc_redis_link_stop(ss->redis);
  rc_drain_stop(l);
  rc_loop_foreach_conn(l, stop_one, NULL);
}

/* wolfCrypt's per-thread ECC cache, filled by ES256 tokens and ECDSA handshakes. */
static void on_exit_thread(struct rc_loop *l) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (ss->tls) rc_tls_shard_thread_exit(ss->tls);
  rc_jwt_thread_exit();
}

static void wake(void *ctx, uint64_t mask) {
  struct rc_session_shard *ss = ctx;
  rc_loop_wake(ss->loop, mask);
}

/* A GET /topics/<name> answered by Redis: to the connection that asked, if it
 * is still there and waiting. */
static void topic_counted(struct rc_loop *l, uint64_t token, const struct rc_redis_count *c) {
  struct rc_conn *conn = rc_loop_conn_by_token(l, token);
  if (!conn) return;
  struct rc_session *s = rc_session_of(conn);
  if (s->kind == RC_SESSION_HTTP && s->awaiting) rc_request_count_answered(l, s, c);
}

static int remote_publish(void *ctx, struct rc_topic *tp, const uint8_t *payload, size_t len,
                          uint64_t ticket) {
  return rc_redis_link_publish(((struct rc_session_shard *)ctx)->redis, tp, payload, len, ticket);
}

static void remote_interest(void *ctx, struct rc_topic *tp, bool on) {
  rc_redis_link_interest(((struct rc_session_shard *)ctx)->redis, tp, on);
}

static void remote_patterns(void *ctx, const char *const *p, const size_t *len, size_t n) {
  rc_redis_link_patterns(((struct rc_session_shard *)ctx)->redis, p, len, n);
}

static void remote_arrived(void *ctx, struct rc_topic *tp, uint64_t epoch, uint64_t seq,
                           const uint8_t *payload, size_t len) {
  rc_redis_link_arrived(((struct rc_session_shard *)ctx)->redis, tp, epoch, seq, payload, len);
}

static bool remote_via_patterns(void *ctx, struct rc_topic *tp) {
  return rc_redis_link_via_patterns(((struct rc_session_shard *)ctx)->redis, tp);
}

static void remote_lost(void *ctx, struct rc_topic *tp, uint64_t from) {
  rc_redis_link_lost(((struct rc_session_shard *)ctx)->redis, tp, from);
}

static const struct rc_loop_hooks hooks = {
    .on_start = on_start,
    .on_accept = on_accept,
    .on_turn = on_turn,
    .has_work = has_work,
    .on_stop = on_stop,
    .on_drain = rc_drain_start,
    .on_exit = on_exit_thread,
};

static int cpu_of(const struct rc_config *cfg, unsigned i) {
  if (!cfg->pin) return -1;
  if (cfg->n_cpus) return cfg->cpus[i];
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  return (int)(i % (unsigned)(ncpu > 0 ? ncpu : 1));
}

/* Shard i's listening sockets: the adopted ones of each address dealt out
 * round-robin (a shard may get several, and every one is accepted from, since
 * closing one would reset its queue), or a new socket where none is left for
 * it. The administrative address is shard 0's alone. Marks what it took in
 * taken. */
static unsigned shard_sockets(const struct rc_server *srv, unsigned i,
                              const struct rc_server_adopted *adopted, bool *taken,
                              struct rc_loop_socket *out) {
  const struct rc_config *cfg = srv->cfg;
  unsigned n = 0;
  for (unsigned a = 0; a <= cfg->n_listen; a++) {
    bool admin = a == cfg->n_listen;
    if (admin && (!cfg->has_admin || i != 0)) continue;
    const struct rc_listen_addr *addr = admin ? &cfg->admin : &cfg->listen[a];
    unsigned seen = 0, mine = 0;
    for (unsigned j = 0; adopted && j < adopted->n; j++) {
      if (adopted->addr[j] != a) continue;
      if (admin || seen++ % srv->nshards == i) {
        out[n++] = (struct rc_loop_socket){addr, adopted->fd[j], admin};
        taken[j] = true;
        mine++;
      }
    }
    if (!mine) out[n++] = (struct rc_loop_socket){addr, -1, admin};
  }
  return n;
}

static int create_shard(struct rc_server *srv, unsigned i, const struct rc_server_adopted *adopted,
                        bool *taken) {
  const struct rc_config *cfg = srv->cfg;
  static struct rc_loop_socket sockets[RC_LOOP_MAX_SOCKETS]; /* main thread only */
  unsigned n_sockets = shard_sockets(srv, i, adopted, taken, sockets);
  struct rc_session_shard *ss = calloc(1, sizeof *ss);
  if (!ss) {
    for (unsigned k = 0; k < n_sockets; k++)
      if (sockets[k].fd >= 0) close(sockets[k].fd);
    return -ENOMEM;
  }
  srv->shards[i] = ss;
  ss->id = i;
  ss->srv = srv;
  ss->topics = rc_pubsub_topics(srv->pubsub);
  ss->budget = &srv->budget;
  ss->publish_answered = rc_request_publish_answered;
  ss->adm = rc_admission_enabled(srv->admission) ? srv->admission : NULL;
  ss->access = srv->access;
  ss->max_message = cfg->max_message;
  ss->max_queue = cfg->max_queue;
  ss->max_commands = cfg->max_commands;
  ss->max_command = cfg->max_command_bytes;
  ss->echo = cfg->echo;
  ss->slow_policy = cfg->slow_policy;
  ss->admin_only_metrics = cfg->has_admin;
  ss->handshake_ticks = cfg->handshake_timeout * TICKS_PER_S;
  ss->idle_ticks = cfg->idle_timeout * TICKS_PER_S;
  ss->ping_ticks = cfg->ping_interval * TICKS_PER_S;
  ss->demo_feed = cfg->demo_feed && i == 0;
  ss->drain_ms = cfg->drain_seconds * 1000u;
  struct rc_loop_params p = {
      .id = i,
      .cpu = cpu_of(cfg, i),
      .max_conns = cfg->max_conns,
      .slot_size = sizeof(struct rc_session),
      .max_queue = cfg->max_queue,
      /* One shard serves monitoring: it answers from every shard's counters. */
      .sockets = sockets,
      .n_sockets = n_sockets,
  };
  struct rc_loop_hooks h = hooks;
  h.user = ss;
  int ret = rc_loop_create(&p, &h, &srv->loops[i]);
  if (ret < 0) return ret;
  ss->loop = srv->loops[i];
  if (srv->tls && !(ss->tls = rc_tls_shard_create(srv->tls, ss->loop, &srv->budget))) return -ENOMEM;
  return 0;
}

static void close_untaken(const struct rc_server_adopted *adopted, const bool *taken) {
  for (unsigned j = 0; adopted && j < adopted->n; j++)
    if (!taken[j]) close(adopted->fd[j]);
}

int rc_server_create(const struct rc_config *cfg, const struct rc_server_adopted *adopted,
                     struct rc_server **out) {
  static bool taken[RC_SERVER_MAX_ADOPTED]; /* main thread only */
  memset(taken, 0, sizeof taken);
  struct rc_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    close_untaken(adopted, taken);
    return -ENOMEM;
  }
  srv->cfg = cfg;
  srv->nshards = cfg->threads;
  int ret = -ENOMEM;
  rc_budget_init(&srv->budget, cfg->max_memory);
  struct rc_pubsub_limits lim = {
      .max_backlog = cfg->max_backlog,
      .budget = &srv->budget,
      .history = {.msgs = cfg->history,
                  .bytes = cfg->history_bytes,
                  .ttl_s = cfg->history_ttl,
                  /* History is the one thing that stays when the load goes:
                   * it may not crowd out the rest of the budget. */
                  .memory = cfg->max_memory / 2,
                  .heartbeat_s = cfg->topic_heartbeat},
      .max_patterns = cfg->max_patterns,
  };
  srv->pubsub = rc_pubsub_create(cfg->threads, cfg->max_topics, &lim);
  if (!srv->pubsub) goto fail;
  struct rc_admission_limits alim = {.max_conns = cfg->max_conns_per_ip,
                                     .max_handshakes = cfg->max_handshakes_per_ip,
                                     .rate = cfg->connect_rate_per_ip};
  srv->admission = rc_admission_create(&alim, &srv->budget);
  if (!srv->admission) goto fail;
  if ((ret = rc_access_create(cfg, &srv->access)) < 0) {
    close_untaken(adopted, taken);
    rc_server_destroy(srv);
    return ret;
  }
  if (cfg->tls_cert) {
    char err[512];
    if ((ret = rc_tls_create(cfg->tls_cert, cfg->tls_key, &srv->tls, err, sizeof err)) < 0) {
      rc_err("%s", err);
      close_untaken(adopted, taken);
      rc_server_destroy(srv);
      return ret;
    }
  }
  for (unsigned i = 0; i < srv->nshards; i++)
    if ((ret = create_shard(srv, i, adopted, taken)) < 0) goto fail;
  /* A node's name in Redis' counts: the host's name and port unless given. */
  static char node_id[128]; /* main thread, once */
  if (!cfg->node_id) {
    char host[64] = "ringcast";
    gethostname(host, sizeof host - 1);
    const struct sockaddr_storage *a = &cfg->listen[0].addr;
    unsigned port = ntohs(a->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)a)->sin6_port
                                                   : ((const struct sockaddr_in *)a)->sin_port);
    snprintf(node_id, sizeof node_id, "%s:%u", host, port);
  }
  struct rc_redis_link_config rcfg = {.url = &cfg->redis, .history = cfg->history,
                                      .node_id = cfg->node_id ? cfg->node_id : node_id,
                                      .counted = topic_counted,
                                      .pattern_gen = &srv->redis_pattern_gen,
                                      .max_globs = cfg->redis_patterns,
                                      .cluster_masters = &srv->redis_cluster_masters};
  if (cfg->has_redis && (ret = rc_redis_link_resolve(&cfg->redis, &rcfg.addr, &rcfg.addr_len)) < 0) {
    close_untaken(adopted, taken);
    rc_server_destroy(srv);
    return ret;
  }
  for (unsigned i = 0; i < srv->nshards; i++) {
    rc_loop_set_peers(srv->loops[i], srv->loops, srv->nshards);
    struct rc_pubsub_callbacks cb = {
        .ctx = srv->shards[i],
        .deliver = rc_delivery_deliver,
        .resolve = rc_delivery_resolve,
        .joined = rc_delivery_joined,
        .published = rc_delivery_published,
        .wake = wake,
        .remote_publish = cfg->has_redis ? remote_publish : NULL,
        .remote_interest = cfg->has_redis ? remote_interest : NULL,
        .remote_patterns = cfg->has_redis ? remote_patterns : NULL,
        .remote_arrived = cfg->has_redis ? remote_arrived : NULL,
        .remote_lost = cfg->has_redis ? remote_lost : NULL,
        .remote_via_patterns = cfg->has_redis ? remote_via_patterns : NULL,
    };
    struct rc_pubsub_shard *ps;
    if ((ret = rc_pubsub_shard_create(srv->pubsub, i, rc_loop_arena(srv->loops[i]), &cb, &ps)) < 0)
      goto fail;
    srv->shards[i]->ps = ps;
    ret = -ENOMEM;
    if (cfg->has_redis && !(srv->shards[i]->redis = rc_redis_link_create(&rcfg, ps, rc_pubsub_topics(srv->pubsub))))
      goto fail;
  }
  *out = srv;
  return 0;
fail:
  rc_err("creating the server: %s", strerror(-ret));
  close_untaken(adopted, taken);
  rc_server_destroy(srv);
  return ret;
}

int rc_server_start(struct rc_server *srv) {
  for (; srv->started < srv->nshards; srv->started++) {
    int ret = rc_loop_start(srv->loops[srv->started]);
    if (ret < 0) {
      rc_err("shard %u could not start: %s", srv->started, strerror(-ret));
      rc_loop_join(srv->loops[srv->started]);
      return ret;
    }
  }
  return 0;
}

void rc_server_stop(struct rc_server *srv) {
  for (unsigned i = 0; i < srv->started; i++) rc_loop_stop(srv->loops[i]);
}

void rc_server_drain(struct rc_server *srv, bool handed_over) {
  int phase = handed_over ? RC_SERVER_HANDED_OVER : RC_SERVER_DRAINING;
  int was = atomic_load_explicit(&srv->phase, memory_order_relaxed);
  if (phase <= was) return;
  /* Release: a shard that sees the new phase in a request sees the settings
   * written before it. */
  atomic_store_explicit(&srv->phase, phase, memory_order_release);
  if (was != RC_SERVER_SERVING) return;
  for (unsigned i = 0; i < srv->started; i++) rc_loop_drain(srv->loops[i]);
}

unsigned rc_server_listeners(const struct rc_server *srv, int *fds, bool *admin, unsigned max) {
  unsigned n = 0;
  for (unsigned i = 0; i < srv->started; i++)
    n += rc_loop_listeners(srv->loops[i], fds + n, admin + n, max - n);
  return n;
}

void rc_server_release_listeners(struct rc_server *srv) {
  for (unsigned i = 0; i < srv->started; i++) rc_loop_release_listeners(srv->loops[i]);
}

void rc_server_repoll_accepts(struct rc_server *srv) {
  for (unsigned i = 0; i < srv->started; i++) rc_loop_repoll_accepts(srv->loops[i]);
}

bool rc_server_listeners_closed(const struct rc_server *srv) {
  for (unsigned i = 0; i < srv->started; i++)
    if (!rc_loop_listeners_closed(srv->loops[i])) return false;
  return true;
}

uint64_t rc_server_conn_count(const struct rc_server *srv) {
  uint64_t n = 0;
  for (unsigned i = 0; i < srv->started; i++) n += rc_loop_conn_count(srv->loops[i]);
  return n;
}

void rc_server_join(struct rc_server *srv) {
  for (unsigned i = 0; i < srv->started; i++) rc_loop_join(srv->loops[i]);
}

void rc_server_destroy(struct rc_server *srv) {
  if (!srv) return;
  /* Pub/sub first: it frees what its queues still hold; the loops' arenas then
   * take back every frame returned to them. */
  for (unsigned i = 0; i < srv->nshards; i++)
    if (srv->shards[i]) rc_redis_link_destroy(srv->shards[i]->redis); /* it holds publishes and topics */
  for (unsigned i = 0; i < srv->nshards; i++)
    if (srv->shards[i] && srv->shards[i]->ps) rc_pubsub_shard_destroy(srv->shards[i]->ps);
  for (unsigned i = 0; i < srv->nshards; i++) {
    struct rc_tls_shard *tls = srv->shards[i] ? srv->shards[i]->tls : NULL;
    if (srv->shards[i]) {
      rc_demo_feed_destroy(srv->shards[i]->demo);
      rc_stats_feed_destroy(srv->shards[i]->stats_feed);
      rc_drain_fini(srv->shards[i]);
    }
    free(srv->shards[i]);
    rc_loop_destroy(srv->loops[i]);
    rc_tls_shard_destroy(tls); /* after the loop: its connections' TLS state came from here */
  }
  rc_tls_destroy(srv->tls);
  rc_access_destroy(srv->access);
  rc_pubsub_destroy(srv->pubsub);
  rc_admission_destroy(srv->admission);
  free(srv);
}
