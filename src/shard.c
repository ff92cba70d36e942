/* SPDX-License-Identifier: MIT */
/* The shard loop: ring set-up inside the pinned thread, accepts into direct
 * descriptors, multishot receives over a provided-buffer ring, dispatch of every
 * completion, the inbox, deferred closes, the sleep/wake handshake and shutdown. */
#include "ringcast/shard.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/demo_feed.h"
#include "ringcast/fanout.h"
#include "ringcast/listener.h"
#include "ringcast/log.h"
#include "ringcast/session.h"
#include "ringcast/uring_compat.h"
#include "ringcast/ws.h"

#define ACCEPTS_PER_LISTENER 8
#define SQ_ENTRIES 4096
/* A full CQ ends multishot requests; size it for bursts (16 B per entry). */
#define CQ_ENTRIES 32768
#define RECV_BUF_COUNT 512   /* power of two, at most 32768 */
#define RECV_BUF_SIZE 2048
#define RECV_BGID 0
#define CQE_BATCH 256
#define IDLE_WAIT_MS 1000    /* safety net against a lost doorbell */
#define SHUTDOWN_GRACE_MS 2000

uint64_t rc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct io_uring_sqe *rc_shard_get_sqe(struct rc_shard *sh) {
  struct io_uring_sqe *sqe;
  while (!(sqe = io_uring_get_sqe(&sh->ring))) {
    int ret = io_uring_submit(&sh->ring);
    if (ret < 0 && ret != -EBUSY && ret != -EAGAIN) {
      rc_err("io_uring_submit: %s", strerror(-ret));
      abort();
    }
  }
  return sqe;
}

void rc_shard_defer(struct rc_shard *sh, struct rc_conn *c) {
  if (c->flags & RC_CF_PENDING) return;
  c->flags |= RC_CF_PENDING;
  c->next_pending = sh->pending_head;
  sh->pending_head = c;
}

void rc_shard_arm_recv(struct rc_shard *sh, struct rc_conn *c) {
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  uint32_t slot = rc_conn_slot(sh, c);
  io_uring_prep_recv_multishot(sqe, (int)slot, NULL, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->buf_group = RECV_BGID;
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_RECV, c->gen, slot));
  c->flags |= RC_CF_RECV_ARMED;
}

static void arm_accept(struct rc_shard *sh, unsigned idx) {
  struct rc_accept_slot *a = &sh->accepts[idx];
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  a->addr_len = sizeof a->addr;
  /* Single-shot accepts, several armed, each with its own address slot: a
   * multishot accept shares one address buffer, and a direct descriptor has no
   * fd for getpeername. */
  rc_prep_accept_direct_alloc(sqe, sh->listen_fds[a->listener], (struct sockaddr *)&a->addr,
                              &a->addr_len);
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_ACCEPT, 0, idx));
  a->armed = true;
}

static void arm_eventfd(struct rc_shard *sh) {
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  io_uring_prep_read(sqe, sh->event_fd, &sh->event_val, sizeof sh->event_val, 0);
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_EVENTFD, 0, 0));
}

static void resume_accepts(struct rc_shard *sh) {
  if (!sh->accept_paused || sh->stop_seen) return;
  sh->accept_paused = false;
  for (unsigned i = 0; i < sh->n_accepts; i++)
    if (!sh->accepts[i].armed) arm_accept(sh, i);
}

static void on_accept(struct rc_shard *sh, unsigned idx, int res) {
  struct rc_accept_slot *a = &sh->accepts[idx];
  a->armed = false;
  if (res >= 0) {
    if ((uint32_t)res >= sh->conn_cap) {
      rc_err("accept returned slot %d beyond the table of %u", res, sh->conn_cap);
      abort();
    }
    struct rc_conn *c = &sh->conns[res];
    if (c->state != RC_CONN_FREE) {
      rc_err("accept reused slot %d that is still in use", res);
      abort();
    }
    c->state = RC_CONN_HTTP;
    c->rx_ds = c->req_ds = sh->now_ds;
    memcpy(&c->peer, &a->addr, a->addr_len < sizeof c->peer ? a->addr_len : sizeof c->peer);
    sh->n_conns++;
    RC_METRIC_ADD(&sh->metrics, conns_accepted, 1);
    RC_METRIC_ADD(&sh->metrics, conns_open, 1);
    rc_shard_arm_recv(sh, c);
    if (sh->n_conns > sh->srv->cfg->max_conns) {
      c->flags |= RC_CF_OVER_LIMIT;
      RC_METRIC_ADD(&sh->metrics, conns_refused, 1);
      static const char body[] = "{\"error\":\"server full: this shard is at --max-conns\"}\n";
      rc_http_respond(sh, c, 503, "application/json", "Retry-After: 1\r\n", body,
                      sizeof body - 1, 1);
    }
  } else if (res == -ENFILE) {
    /* The direct-descriptor table is full: the kernel already closed the new
     * connection. Stop accepting until a slot frees up. */
    if (!sh->accept_paused) rc_warn("connection table full (%u slots); pausing accepts", sh->conn_cap);
    sh->accept_paused = true;
    return;
  } else if (res != -ECANCELED) {
    rc_debug("accept: %s", strerror(-res));
  }
  if (sh->stop_seen || res == -ECANCELED) return;
  if (sh->accept_paused) return;
  arm_accept(sh, idx);
}

static void return_buffer(struct rc_shard *sh, unsigned bid) {
  io_uring_buf_ring_add(sh->br, sh->bufs + (size_t)bid * sh->buf_size, sh->buf_size,
                        (unsigned short)bid, io_uring_buf_ring_mask(sh->buf_count),
                        (int)sh->bufs_to_return++);
}

static void on_recv(struct rc_shard *sh, struct rc_conn *c, const struct io_uring_cqe *cqe) {
  int res = cqe->res;
  if (!(cqe->flags & IORING_CQE_F_MORE)) c->flags &= (uint16_t)~RC_CF_RECV_ARMED;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    uint8_t *p = sh->bufs + (size_t)bid * sh->buf_size;
    if (res > 0) c->rx_ds = sh->now_ds;
    if (res > 0 && !(c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN))) {
      if (c->state == RC_CONN_HTTP) rc_http_on_data(sh, c, p, (size_t)res);
      else rc_ws_on_data(sh, c, p, (size_t)res);
    }
    return_buffer(sh, bid);
  }
  if (c->flags & RC_CF_RECV_ARMED) return;
  if (c->flags & RC_CF_TEARDOWN) {
    rc_conn_maybe_release(sh, c);
  } else if (res == -ENOBUFS) {
    /* Flow control, not failure: re-arm once buffers are back. */
    RC_METRIC_ADD(&sh->metrics, recv_enobufs, 1);
    if (!(c->flags & RC_CF_REARM)) {
      c->flags |= RC_CF_REARM;
      c->next_rearm = sh->rearm_head;
      sh->rearm_head = c;
    }
  } else if (res > 0) {
    rc_shard_arm_recv(sh, c); /* ended by a full CQ or similar: re-arm */
  } else {
    if (res == -EINVAL)
      rc_err("multishot recv rejected (needs Linux 6.0+): %s", strerror(-res));
    else if (res < 0 && res != -ECONNRESET && res != -ECANCELED)
      rc_debug("recv on slot %u: %s", rc_conn_slot(sh, c), strerror(-res));
    /* res == 0: the peer closed its side. */
    rc_conn_abort(sh, c);
  }
}

static struct rc_conn *conn_of(struct rc_shard *sh, uint64_t ud) {
  uint32_t idx = rc_ud_idx(ud);
  if (idx >= sh->conn_cap || sh->conns[idx].gen != rc_ud_gen(ud) ||
      sh->conns[idx].state == RC_CONN_FREE) {
    rc_err("completion for a stale connection (slot %u); this is a bug", idx);
    abort();
  }
  return &sh->conns[idx];
}

static void dispatch(struct rc_shard *sh, const struct io_uring_cqe *cqe) {
  uint64_t ud = cqe->user_data;
  switch (rc_ud_op(ud)) {
  case RC_OP_ACCEPT: on_accept(sh, rc_ud_idx(ud), cqe->res); break;
  case RC_OP_RECV: on_recv(sh, conn_of(sh, ud), cqe); break;
  case RC_OP_SEND: rc_conn_on_send(sh, conn_of(sh, ud), cqe->res); break;
  case RC_OP_CLOSE:
    rc_conn_free(sh, conn_of(sh, ud));
    resume_accepts(sh);
    break;
  case RC_OP_CANCEL: break; /* the cancelled request posts its own completion */
  case RC_OP_SHUTDOWN: {
    /* Failure (the peer already gone) changes nothing: EOF or the close
     * deadline ends the lingering. */
    struct rc_conn *c = conn_of(sh, ud);
    c->flags &= (uint16_t)~RC_CF_SHUT_INFLIGHT;
    rc_conn_maybe_release(sh, c);
    break;
  }
  case RC_OP_DOORBELL: break; /* the wake-up was the point */
  case RC_OP_MSG_SENT: {
    /* MSG_RING failed (e.g. -EOVERFLOW): ring the eventfd instead. */
    struct rc_shard *t = sh->srv->shards[rc_ud_idx(ud)];
    rc_debug("msg_ring to shard %u: %s", rc_ud_idx(ud), strerror(-cqe->res));
    (void)!eventfd_write(t->event_fd, 1);
    break;
  }
  case RC_OP_EVENTFD:
    if (cqe->res < 0 && cqe->res != -EAGAIN && cqe->res != -ECANCELED)
      rc_warn("eventfd read: %s", strerror(-cqe->res));
    arm_eventfd(sh);
    break;
  default:
    rc_err("completion with unknown user_data %#llx", (unsigned long long)ud);
    abort();
  }
}

/* Cancels c's operation `op`; its own final completion follows, the cancel's
 * result (skipped on success) is ignored. */
static void cancel_op(struct rc_shard *sh, struct rc_conn *c, enum rc_op op) {
  uint32_t slot = rc_conn_slot(sh, c);
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  io_uring_prep_cancel64(sqe, rc_ud(op, c->gen, slot), 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_CANCEL, c->gen, slot));
}

static void process_pending(struct rc_shard *sh) {
  while (sh->pending_head) {
    struct rc_conn *c = sh->pending_head;
    sh->pending_head = c->next_pending;
    c->next_pending = NULL;
    c->flags &= (uint16_t)~RC_CF_PENDING;
    if (c->n_subs) rc_fanout_unsubscribe_all(sh, c);
    if (!(c->flags & RC_CF_TEARDOWN)) continue;
    if (c->flags & RC_CF_RECV_ARMED) cancel_op(sh, c, RC_OP_RECV);
    if (c->flags & RC_CF_SEND_INFLIGHT) cancel_op(sh, c, RC_OP_SEND);
    rc_conn_maybe_release(sh, c);
  }
}

static void process_rearm(struct rc_shard *sh) {
  while (sh->rearm_head) {
    struct rc_conn *c = sh->rearm_head;
    sh->rearm_head = c->next_rearm;
    c->next_rearm = NULL;
    c->flags &= (uint16_t)~RC_CF_REARM;
    if (c->flags & RC_CF_TEARDOWN) rc_conn_maybe_release(sh, c);
    else rc_shard_arm_recv(sh, c);
  }
}

/* Cuts closing connections whose flush took too long. */
static void sweep_closing(struct rc_shard *sh, bool force) {
  for (uint32_t i = 0; i < sh->conn_cap && (sh->n_closing || force); i++) {
    struct rc_conn *c = &sh->conns[i];
    if (c->state == RC_CONN_FREE || (c->flags & RC_CF_TEARDOWN)) continue;
    if (force || ((c->flags & RC_CF_CLOSING) && sh->now_ms >= c->close_deadline_ms))
      rc_conn_abort(sh, c);
  }
}

/* Handshake, idle and keepalive timers: one pass over the connections, at most
 * once a second (a quarter of the shortest timeout when that is less). */
static void sweep_timers(struct rc_shard *sh) {
  const struct rc_config *cfg = sh->srv->cfg;
  uint32_t now = sh->now_ds;
  uint32_t hs = cfg->handshake_timeout * 10, idle = cfg->idle_timeout * 10,
           ping = cfg->ping_interval * 10;
  for (uint32_t i = 0; i < sh->conn_cap; i++) {
    struct rc_conn *c = &sh->conns[i];
    if (c->state == RC_CONN_FREE || (c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN))) continue;
    uint32_t silent = now - c->rx_ds;
    char peer[64];
    if (c->state == RC_CONN_HTTP && hs && (c->in.len || !(c->flags & RC_CF_SERVED)) &&
        now - c->req_ds > hs) {
      rc_conn_peer_text(c, peer, sizeof peer);
      rc_info("%s: no complete request within --handshake-timeout %us; closing with 408", peer,
              cfg->handshake_timeout);
      RC_METRIC_ADD(&sh->metrics, timeouts, 1);
      static const char body[] = "{\"error\":\"request not completed within --handshake-timeout\"}\n";
      rc_http_respond(sh, c, 408, "application/json", NULL, body, sizeof body - 1, 1);
    } else if (idle && silent > idle) {
      rc_conn_peer_text(c, peer, sizeof peer);
      rc_info("%s: nothing received for --idle-timeout %us; closing", peer, cfg->idle_timeout);
      RC_METRIC_ADD(&sh->metrics, timeouts, 1);
      rc_conn_close(sh, c, RC_WS_CLOSE_GOING_AWAY, "idle timeout", false);
    } else if (c->state == RC_CONN_WS && ping && silent >= ping &&
               (c->ping_ds == 0 || now - c->ping_ds >= ping)) {
      struct rc_msg *m = rc_msg_create_ws((uint16_t)sh->id, RC_WS_OP_PING, NULL, 0);
      if (!m) {
        rc_conn_abort(sh, c);
        continue;
      }
      c->ping_ds = now;
      RC_METRIC_ADD(&sh->metrics, pings_sent, 1);
      rc_conn_send_msg(sh, c, m);
    }
  }
}

static uint64_t timer_period_ms(const struct rc_config *cfg) {
  unsigned shortest = 0;
  const unsigned t[] = {cfg->handshake_timeout, cfg->idle_timeout, cfg->ping_interval};
  for (int i = 0; i < 3; i++)
    if (t[i] && (!shortest || t[i] < shortest)) shortest = t[i];
  if (!shortest) return 0;
  uint64_t ms = (uint64_t)shortest * 1000 / 4;
  return ms < 1000 ? (ms < 100 ? 100 : ms) : 1000;
}

static void begin_shutdown(struct rc_shard *sh) {
  sh->stop_seen = true;
  for (unsigned l = 0; l < sh->n_listen; l++) {
    struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
    io_uring_prep_cancel_fd(sqe, sh->listen_fds[l], IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_CANCEL, 0, 0));
  }
  for (uint32_t i = 0; i < sh->conn_cap; i++) {
    struct rc_conn *c = &sh->conns[i];
    if (c->state == RC_CONN_FREE) continue;
    rc_conn_close(sh, c, c->state == RC_CONN_WS ? 1001u : 0u, "server shutting down", false);
  }
}

static void run_loop(struct rc_shard *sh) {
  struct io_uring_cqe *cqes[CQE_BATCH];
  uint64_t stop_deadline = 0;
  bool forced = false;
  uint64_t timer_period = timer_period_ms(sh->srv->cfg);
  for (;;) {
    sh->now_ms = rc_now_ms();
    sh->now_ds = (uint32_t)((sh->now_ms - sh->start_ms) / 100) + 1;
    unsigned n;
    while ((n = io_uring_peek_batch_cqe(&sh->ring, cqes, CQE_BATCH)) > 0) {
      for (unsigned i = 0; i < n; i++) dispatch(sh, cqes[i]);
      io_uring_cq_advance(&sh->ring, n);
      if (n < CQE_BATCH) break;
    }
    if (sh->bufs_to_return) {
      io_uring_buf_ring_advance(sh->br, (int)sh->bufs_to_return);
      sh->bufs_to_return = 0;
    }
    process_rearm(sh);
    rc_fanout_drain_inbox(sh);
    uint64_t next_tick = sh->now_ms + IDLE_WAIT_MS;
    if (sh->demo && !sh->stop_seen) next_tick = rc_demo_feed_tick(sh->demo, sh, sh->now_ms);

    if (!sh->stop_seen && atomic_load_explicit(&sh->srv->stopping, memory_order_acquire)) {
      begin_shutdown(sh);
      stop_deadline = sh->now_ms + SHUTDOWN_GRACE_MS;
    }
    if ((sh->n_closing || sh->stop_seen) && sh->now_ms >= sh->next_sweep_ms) {
      bool force = sh->stop_seen && sh->now_ms >= stop_deadline && !forced;
      if (force) {
        rc_warn("%u connections still closing after %d ms; cutting them", sh->n_conns,
                SHUTDOWN_GRACE_MS);
        forced = true;
      }
      sweep_closing(sh, force);
      sh->next_sweep_ms = sh->now_ms + 100;
    }
    if (timer_period && !sh->stop_seen && sh->now_ms >= sh->next_timer_ms) {
      sweep_timers(sh);
      sh->next_timer_ms = sh->now_ms + timer_period;
    }
    if (timer_period && next_tick > sh->next_timer_ms) next_tick = sh->next_timer_ms;
    process_pending(sh);
    rc_conn_flush(sh);
    rc_fanout_flush_batches(sh);

    if (sh->stop_seen) {
      bool accepts_done = true;
      for (unsigned i = 0; i < sh->n_accepts; i++) accepts_done &= !sh->accepts[i].armed;
      if ((sh->n_conns == 0 && accepts_done) || sh->now_ms > stop_deadline + 1000) {
        io_uring_submit(&sh->ring);
        break;
      }
      if (next_tick > sh->now_ms + 100) next_tick = sh->now_ms + 100;
    } else if (sh->n_closing && next_tick > sh->now_ms + 100) {
      next_tick = sh->now_ms + 100;
    }

    /* Sleep handshake, consumer side: announce, full fence, then look again. A
     * producer that pushed before our fence is seen by is_empty; one that pushes
     * after it sees `sleeping` and rings. */
    atomic_store_explicit(&sh->sleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    if (!rc_mpsc_is_empty(&sh->inbox) || sh->pending_head || sh->rearm_head) {
      atomic_store_explicit(&sh->sleeping, 0, memory_order_relaxed);
      int ret = io_uring_submit_and_get_events(&sh->ring);
      if (ret < 0 && ret != -EINTR && ret != -EBUSY) rc_warn("submit: %s", strerror(-ret));
      continue;
    }
    uint64_t wait_ms = next_tick > sh->now_ms ? next_tick - sh->now_ms : 0;
    struct __kernel_timespec ts = {.tv_sec = (long long)(wait_ms / 1000),
                                   .tv_nsec = (long long)(wait_ms % 1000) * 1000000};
    struct io_uring_cqe *cqe;
    int ret = io_uring_submit_and_wait_timeout(&sh->ring, &cqe, 1, &ts, NULL);
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY)
      rc_warn("submit_and_wait: %s", strerror(-ret));
    atomic_store_explicit(&sh->sleeping, 0, memory_order_relaxed);
    atomic_store_explicit(&sh->doorbell_pending, 0, memory_order_release);
  }
}

static int setup_ring(struct rc_shard *sh) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* SINGLE_ISSUER (6.0) + DEFER_TASKRUN (6.1): completions run only when this
   * thread waits, with no IPIs. TASKRUN_FLAG lets liburing see deferred work.
   * SUBMIT_ALL (5.18): one bad SQE does not stop the batch. CQSIZE: bursts of
   * multishot completions must not overflow the CQ. */
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  p.cq_entries = CQ_ENTRIES;
  int ret = io_uring_queue_init_params(SQ_ENTRIES, &sh->ring, &p);
  if (ret == -EINVAL) {
    rc_warn("io_uring without DEFER_TASKRUN (needs Linux 6.1); using COOP_TASKRUN");
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE |
              IORING_SETUP_CLAMP;
    p.cq_entries = CQ_ENTRIES;
    ret = io_uring_queue_init_params(SQ_ENTRIES, &sh->ring, &p);
  }
  if (ret < 0) {
    rc_err("io_uring_queue_init: %s", strerror(-ret));
    return ret;
  }
  if (!(p.features & IORING_FEAT_NODROP))
    rc_warn("kernel lacks IORING_FEAT_NODROP: completions may be lost on CQ overflow");
  struct io_uring_probe *probe = io_uring_get_probe_ring(&sh->ring);
  static const struct { int op; const char *name; } need[] = {
      {IORING_OP_ACCEPT, "accept"}, {IORING_OP_RECV, "recv"}, {IORING_OP_SENDMSG, "sendmsg"},
      {IORING_OP_CLOSE, "close"}, {IORING_OP_ASYNC_CANCEL, "async_cancel"}, {IORING_OP_READ, "read"},
  };
  for (size_t i = 0; probe && i < sizeof need / sizeof need[0]; i++) {
    if (!io_uring_opcode_supported(probe, need[i].op)) {
      rc_err("kernel io_uring lacks %s; ringcast needs Linux 6.0 or later", need[i].name);
      io_uring_free_probe(probe);
      return -ENOSYS;
    }
  }
  sh->use_msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
  if (!sh->use_msg_ring) rc_warn("no IORING_OP_MSG_RING (5.18); shards wake each other by eventfd");
  if (probe) io_uring_free_probe(probe);
  sh->ring_fd = sh->ring.ring_fd;
  (void)io_uring_register_ring_fd(&sh->ring); /* an optimisation; fine if absent */

  ret = io_uring_register_files_sparse(&sh->ring, sh->conn_cap);
  if (ret < 0) {
    rc_err("registering %u direct descriptors: %s (RLIMIT_NOFILE bounds it; lower --max-conns)",
           sh->conn_cap, strerror(-ret));
    return ret;
  }
  size_t br_size = sh->buf_count * sizeof(struct io_uring_buf);
  void *br;
  if (posix_memalign(&br, 4096, br_size)) return -ENOMEM;
  sh->br = br;
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br,
                                 .ring_entries = sh->buf_count, .bgid = RECV_BGID};
  ret = io_uring_register_buf_ring(&sh->ring, &reg, 0);
  if (ret < 0) {
    rc_err("registering the provided-buffer ring: %s (needs Linux 5.19)", strerror(-ret));
    return ret;
  }
  io_uring_buf_ring_init(sh->br);
  for (unsigned i = 0; i < sh->buf_count; i++) return_buffer(sh, i);
  io_uring_buf_ring_advance(sh->br, (int)sh->bufs_to_return);
  sh->bufs_to_return = 0;
  return 0;
}

static void *shard_main(void *arg) {
  struct rc_shard *sh = arg;
  rc_log_set_thread_shard((int)sh->id);
  if (sh->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(sh->cpu, &set);
    int ret = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (ret) rc_warn("pinning to CPU %d: %s; running unpinned", sh->cpu, strerror(ret));
  }
  int ret = setup_ring(sh);
  if (ret < 0) {
    sh->setup_error = ret;
    atomic_fetch_add_explicit(&sh->srv->ready, 1, memory_order_release);
    return NULL;
  }
  arm_eventfd(sh);
  for (unsigned i = 0; i < sh->n_accepts; i++) arm_accept(sh, i);
  io_uring_submit(&sh->ring);
  sh->start_ms = rc_now_ms();
  if (sh->srv->cfg->demo_feed && sh->id == 0) sh->demo = rc_demo_feed_create(sh->start_ms, 42);
  atomic_fetch_add_explicit(&sh->srv->ready, 1, memory_order_release);
  run_loop(sh);
  for (uint32_t i = 0; i < sh->conn_cap; i++)
    if (sh->conns[i].state != RC_CONN_FREE) {
      if (sh->conns[i].n_subs) rc_fanout_unsubscribe_all(sh, &sh->conns[i]);
      rc_conn_free(sh, &sh->conns[i]);
    }
  io_uring_queue_exit(&sh->ring);
  return NULL;
}

int rc_shard_create(struct rc_server *srv, unsigned id, int cpu, struct rc_shard **out) {
  const struct rc_config *cfg = srv->cfg;
  struct rc_shard *sh = aligned_alloc(64, (sizeof *sh + 63) & ~(size_t)63);
  if (!sh) return -ENOMEM;
  memset(sh, 0, sizeof *sh);
  sh->id = id;
  sh->srv = srv;
  sh->cpu = cpu;
  sh->event_fd = -1;
  rc_mpsc_init(&sh->inbox);
  rc_pool_init(&sh->chunk_pool, sizeof(struct rc_qchunk), 64);
  rc_pool_init(&sh->hold_pool, sizeof(struct rc_hold), 256);
  rc_pool_init(&sh->send_pool, sizeof(struct rc_sendop), 16);
  sh->conn_cap = cfg->max_conns + RC_CONN_SPARE;
  sh->buf_count = RECV_BUF_COUNT;
  sh->buf_size = RECV_BUF_SIZE;
  int ret = -ENOMEM;
  /* Reserved, not committed: an unused connection slot costs no memory. */
  sh->conns = mmap(NULL, (size_t)sh->conn_cap * sizeof(struct rc_conn), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sh->conns == MAP_FAILED) {
    sh->conns = NULL;
    goto fail;
  }
  if (posix_memalign((void **)&sh->bufs, 4096, (size_t)sh->buf_count * sh->buf_size)) {
    sh->bufs = NULL;
    goto fail;
  }
  sh->n_accepts = cfg->n_listen * ACCEPTS_PER_LISTENER;
  sh->accepts = calloc(sh->n_accepts, sizeof *sh->accepts);
  if (!sh->accepts) goto fail;
  sh->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sh->event_fd < 0) {
    ret = -errno;
    rc_err("eventfd: %s", strerror(errno));
    goto fail;
  }
  for (unsigned l = 0; l < cfg->n_listen; l++) {
    char err[256];
    int fd = rc_listener_open(&cfg->listen[l], err, sizeof err);
    if (fd < 0) {
      rc_err("%s", err);
      ret = fd;
      goto fail;
    }
    sh->listen_fds[sh->n_listen++] = fd;
  }
  for (unsigned i = 0; i < sh->n_accepts; i++)
    sh->accepts[i].listener = (uint16_t)(i / ACCEPTS_PER_LISTENER);
  *out = sh;
  return 0;
fail:
  rc_shard_destroy(sh);
  return ret;
}

int rc_shard_start(struct rc_shard *sh) {
  int ret = pthread_create(&sh->thread, NULL, shard_main, sh);
  return ret ? -ret : 0;
}

void rc_shard_wake_from_thread(struct rc_shard *sh) { (void)!eventfd_write(sh->event_fd, 1); }

void rc_shard_join(struct rc_shard *sh) { pthread_join(sh->thread, NULL); }

void rc_shard_destroy(struct rc_shard *sh) {
  if (!sh) return;
  for (unsigned l = 0; l < sh->n_listen; l++) close(sh->listen_fds[l]);
  if (sh->event_fd >= 0) close(sh->event_fd);
  if (sh->conns) munmap(sh->conns, (size_t)sh->conn_cap * sizeof(struct rc_conn));
  rc_demo_feed_destroy(sh->demo);
  free(sh->accepts);
  free(sh->bufs);
  free(sh->br);
  rc_pool_fini(&sh->chunk_pool);
  rc_pool_fini(&sh->hold_pool);
  rc_pool_fini(&sh->send_pool);
  free(sh);
}
