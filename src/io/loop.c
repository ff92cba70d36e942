/* SPDX-License-Identifier: MIT */
/* The shard loop: set-up inside the pinned thread, accepts into direct
 * descriptors, outbound connects into the same table, multishot receives over a
 * provided-buffer ring, dispatch of every completion, the timer wheel, doorbells,
 * and the staged stop. Policy (what runs each turn, what a connection means)
 * comes from the hooks and ops tables. */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn_internal.h"
#include "ringcast/io/doorbell.h"
#include "ringcast/io/loop.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"

#define ACCEPTS_PER_LISTENER 8
#define SQ_ENTRIES 4096
/* A full CQ ends multishot requests; size it for bursts (16 B per entry). */
#define CQ_ENTRIES 32768
#define RECV_BUF_COUNT 512   /* power of two, at most 32768 */
#define RECV_BUF_SIZE 2048
#define CQE_BATCH 256
#define IDLE_WAIT_MS 1000    /* safety net against a lost doorbell */
#define STOP_GRACE_MS 2000
#define STOP_POLL_MS 100

struct rc_listener {
  int fd;                           /* -1 once released */
  const struct rc_listen_addr *addr;
  bool admin;
};

struct rc_accept_slot {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint16_t listener;
  bool armed;
};

/* What an outbound connection's entry still waits for (rc_connect_slot.armed). */
enum {
  CONNECT_ARMED_CONNECT = 1u << 0,
  CONNECT_ARMED_TIMEOUT = 1u << 1,
  CONNECT_ARMED_INSTALL = 1u << 2,
};

/* An outbound connection until it has a slot in the table (rc_loop_connect).
 * The kernel reads addr, timeout and installed after the SQE is prepared, so
 * they live here, not on the caller's stack. */
struct rc_connect_slot {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int fd;                           /* the regular socket; -1: the entry is free */
  int installed;                    /* FILES_UPDATE reads the fd here, writes the slot back */
  int res;                          /* the connect's result */
  uint8_t armed;                    /* CONNECT_ARMED_* */
  bool timed_out;                   /* the linked timeout fired */
  struct __kernel_timespec timeout;
  const struct rc_conn_ops *ops;
  void *layer;
  rc_connect_done done;
  void *arg;
};

struct rc_loop {
  struct rc_conn_core core;         /* first: rc_conn_core_of() relies on it */
  unsigned id;
  int cpu;
  struct rc_loop_hooks hooks;
  pthread_t thread;
  int event_fd;                     /* doorbell from threads without a ring */
  uint64_t event_val;
  struct rc_loop *const *peers;
  unsigned n_peers;
  struct rc_frame_arena *arenas[RC_MAX_SHARDS];  /* the peers' arenas, for frame returns */

  _Atomic int stop_asked;
  _Atomic int drain_asked;
  _Atomic int release_asked;
  _Atomic int repoll_asked;
  _Atomic uint32_t open_conns;      /* n_conns as of the last turn, for the main thread */
  _Atomic int listeners_closed;     /* released, and every listener closed */
  _Atomic int started;              /* 0: setting up; 1: running; < 0: set-up failed */
  bool stopping;
  bool draining;                    /* hooks.on_drain ran */
  bool released;                    /* accepting ended; listeners closing or closed */
  bool cut;                         /* the grace period ended; the rest were aborted */
  uint64_t stop_deadline_ms;

  struct rc_listener *listeners;
  unsigned n_listen;
  bool has_admin;
  struct rc_accept_slot *accepts;
  unsigned n_accepts;
  unsigned accepts_armed;
  bool accepts_full;                /* paused: no slot left for another accept */
  unsigned accept_backoff_ms;       /* paused after an unexpected accept error; 0: not */
  struct rc_loop_timer accept_retry;
  unsigned max_conns;
  struct rc_connect_slot connects[RC_LINK_SLOTS];
  unsigned n_connecting;            /* entries in use: each holds a link slot */

  struct io_uring_buf_ring *br;
  uint8_t *bufs;
  uint32_t buf_count, buf_size;
  uint32_t bufs_to_return;

  alignas(64) struct rc_frame_arena arena;
  alignas(64) struct rc_doorbell db;
};
static_assert(offsetof(struct rc_loop, core) == 0, "rc_conn_core_of() casts the loop to its core");

/* The loop's clock, read once per turn: milliseconds for timers, nanoseconds
 * from the same reading for send latency (no second clock_gettime). */
static void clock_read(struct rc_conn_core *k) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  k->now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  k->now_ms = k->now_ns / 1000000u;
}

unsigned rc_loop_id(const struct rc_loop *l) { return l->id; }
void *rc_loop_user(const struct rc_loop *l) { return l->hooks.user; }
uint64_t rc_loop_now_ms(const struct rc_loop *l) { return l->core.now_ms; }
uint64_t rc_loop_now_ns(const struct rc_loop *l) { return l->core.now_ns; }
uint64_t rc_loop_pool_free_bytes(const struct rc_loop *l) {
  return rc_pool_free_bytes(&l->core.chunks) + rc_pool_free_bytes(&l->core.sendops) +
         rc_pool_free_bytes(&l->arena.holds);
}
struct rc_frame_arena *rc_loop_arena(struct rc_loop *l) { return &l->arena; }
const struct rc_conn_stats *rc_loop_stats(const struct rc_loop *l) { return &l->core.stats; }

void rc_loop_set_peers(struct rc_loop *l, struct rc_loop *const *all, unsigned n) {
  l->peers = all;
  l->n_peers = n;
  for (unsigned i = 0; i < n; i++) l->arenas[i] = &all[i]->arena;
}

void rc_loop_timer_set(struct rc_loop *l, struct rc_loop_timer *lt, uint64_t due_ms) {
  rc_timer_arm(l->core.wheel, &lt->t, rc_timer_tick_ceil(due_ms));
}

void rc_loop_timer_cancel(struct rc_loop *l, struct rc_loop_timer *lt) {
  rc_timer_cancel(l->core.wheel, &lt->t);
}

struct rc_conn *rc_loop_conn_by_token(struct rc_loop *l, uint64_t token) {
  uint32_t slot = (uint32_t)token;
  if (slot >= l->core.conn_cap) return NULL;
  struct rc_conn *c = rc_conn_at(&l->core, slot);
  return c->state == RC_CONN_OPEN && c->gen == (uint32_t)(token >> 32) ? c : NULL;
}

void rc_loop_foreach_conn(struct rc_loop *l, void (*fn)(struct rc_loop *, struct rc_conn *, void *),
                          void *arg) {
  for (uint32_t i = 0; i < l->core.conn_cap && l->core.n_conns; i++) {
    struct rc_conn *c = rc_conn_at(&l->core, i);
    if (c->state != RC_CONN_FREE) fn(l, c, arg);
  }
}

/* ---- accepts ---- */

static void arm_accept(struct rc_loop *l, unsigned idx) {
  struct rc_accept_slot *a = &l->accepts[idx];
  struct io_uring_sqe *sqe = rc_ring_get_sqe(&l->core.ring);
  a->addr_len = sizeof a->addr;
  /* Single-shot accepts, several armed, each with its own address slot: a
   * multishot accept shares one address buffer, and a direct descriptor has no
   * fd for getpeername. */
  rc_ring_prep_accept_direct_alloc(sqe, l->listeners[a->listener].fd, (struct sockaddr *)&a->addr,
                                   &a->addr_len);
  io_uring_sqe_set_data64(sqe, rc_ring_ud(RC_RING_OP_ACCEPT, 0, idx));
  a->armed = true;
  l->accepts_armed++;
}

/* An accept is armed only while a slot is sure to be free for it: a connection
 * the kernel cannot place in the table is reset, where one left in the
 * listener's backlog waits (and the spare slots beyond --max-conns answer 503
 * to those over the limit). The table is split three ways: the public
 * listeners' share, RC_ADMIN_SLOTS when there is an admin listener, and
 * RC_LINK_SLOTS for outbound connections (rc_loop_connect keeps within them,
 * counting those still connecting), so no party can take another's slot. */
static bool accept_room(const struct rc_loop *l, unsigned idx) {
  uint32_t armed = l->accepts_armed, admin_armed = 0;
  for (unsigned i = 0; l->has_admin && i < l->n_accepts; i++)
    admin_armed += l->accepts[i].armed && l->listeners[l->accepts[i].listener].admin;
  if (l->listeners[l->accepts[idx].listener].admin)
    return l->core.n_admin + admin_armed < RC_ADMIN_SLOTS &&
           l->core.n_conns + l->n_connecting + armed < l->core.conn_cap;
  /* The public listeners leave the admin and link slots free, whoever holds
   * them now. */
  uint32_t reserved = (l->has_admin ? RC_ADMIN_SLOTS : 0) + RC_LINK_SLOTS;
  return (l->core.n_conns - l->core.n_admin - l->core.n_outbound) + (armed - admin_armed) +
             reserved <
         l->core.conn_cap;
}

static void rearm_accepts(struct rc_loop *l) {
  if (l->stopping || l->released || l->accept_backoff_ms) return;
  l->accepts_full = false;
  for (unsigned i = 0; i < l->n_accepts; i++) {
    if (l->accepts[i].armed) continue;
    if (accept_room(l, i)) arm_accept(l, i);
    else l->accepts_full = true;
  }
}

static void accept_retry_fired(struct rc_loop *l, struct rc_loop_timer *lt) {
  (void)lt;
  l->accept_backoff_ms = 0;
  rearm_accepts(l);
}

static void on_accept(struct rc_loop *l, unsigned idx, int res) {
  struct rc_accept_slot *a = &l->accepts[idx];
  a->armed = false;
  l->accepts_armed--;
  if (res >= 0) {
    if ((uint32_t)res >= l->core.conn_cap) {
      rc_err("accept returned slot %d beyond the table of %u", res, l->core.conn_cap);
      abort();
    }
    struct rc_conn *c = rc_conn_at(&l->core, (uint32_t)res);
    if (c->state != RC_CONN_FREE) {
      rc_err("accept reused slot %d that is still in use", res);
      abort();
    }
    rc_conn_open(&l->core, c, &a->addr, a->addr_len);
    rc_counter_add(&l->core.stats.conns_accepted, 1);
    bool admin = l->listeners[a->listener].admin;
    if (admin) {
      c->admin = 1;
      l->core.n_admin++;
    }
    bool over =
        !admin && l->core.n_conns - l->core.n_admin - l->core.n_outbound > l->max_conns;
    if (over) rc_counter_add(&l->core.stats.conns_refused, 1);
    l->hooks.on_accept(l, c, over, admin, l->listeners[a->listener].addr);
  } else if (res == -ECANCELED) {
    /* A stop or a release (no re-arm below), or a re-poll: re-armed, the
     * accept looks at the queue again at once. */
  } else if (res == -ENFILE) {
    /* The direct-descriptor table is full: the kernel already closed the new
     * connection. Accept again once a slot is released. */
    if (!l->accepts_full) rc_warn("connection table full (%u slots); pausing accepts", l->core.conn_cap);
    l->accepts_full = true;
    return;
  } else if (!rc_listener_error_is_transient(-res)) {
    /* It may persist (out of memory, a broken listener): re-arming at once would
     * spin. Every accept of this shard waits for the back-off. */
    rc_counter_add(&l->core.stats.accept_errors, 1);
    unsigned ms = rc_listener_backoff_ms(l->accept_backoff_ms);
    if (!l->accept_backoff_ms)
      rc_warn("accept: %s; accepting again in %u ms", strerror(-res), ms);
    if (!rc_timer_is_armed(&l->accept_retry.t)) {
      l->accept_backoff_ms = ms;
      rc_loop_timer_set(l, &l->accept_retry, l->core.now_ms + ms);
    }
    return;
  } else {
    rc_counter_add(&l->core.stats.accept_errors, 1);
    rc_debug("accept: %s", strerror(-res));
  }
  if (l->stopping || l->released || l->accept_backoff_ms) return;
  if (accept_room(l, idx)) arm_accept(l, idx);
  else l->accepts_full = true; /* a released slot re-arms it */
}

/* ---- outbound connects ---- */

/* The socket is a regular fd until it is connected, and only then moves into
 * the direct-descriptor table: TCP_NODELAY cannot be set on a direct descriptor
 * with liburing 2.3 (no io_uring_prep_cmd_sock; SOCKET_URING_OP_SETSOCKOPT needs
 * Linux 6.7), and an accepted socket inherits it from its listener where this
 * one has none. IORING_OP_FILES_UPDATE with IORING_FILE_INDEX_ALLOC (Linux 5.19)
 * lets the kernel pick the slot, as it does for the accepts: a slot chosen here
 * could be taken meanwhile by an accept whose completion is not reaped yet.
 * SOCK_NONBLOCK: should the connect ever run in an io-wq worker, it cannot
 * block it; io_uring waits for the socket to become writable either way. */
int rc_loop_connect(struct rc_loop *l, const struct sockaddr *addr, socklen_t len,
                    unsigned timeout_ms, const struct rc_conn_ops *ops, void *layer,
                    rc_connect_done done, void *arg) {
  if (l->stopping) return -ECANCELED;
  if (!addr || !ops || !done) return -EINVAL;
  socklen_t need = addr->sa_family == AF_INET    ? (socklen_t)sizeof(struct sockaddr_in)
                   : addr->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                                 : 0;
  if (!need) return -EAFNOSUPPORT;
  if (len < need || len > sizeof(struct sockaddr_storage)) return -EINVAL;
  if (l->core.n_outbound + l->n_connecting >= RC_LINK_SLOTS) return -ENFILE;
  unsigned idx = 0;
  while (l->connects[idx].fd >= 0) idx++; /* one is free: n_connecting < RC_LINK_SLOTS */
  struct rc_connect_slot *e = &l->connects[idx];
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return -errno;
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  *e = (struct rc_connect_slot){.addr_len = len, .fd = fd, .ops = ops, .layer = layer,
                                .done = done, .arg = arg};
  memcpy(&e->addr, addr, len);
  struct io_uring_sqe *sqe[2];
  rc_ring_get_sqes(&l->core.ring, sqe, timeout_ms ? 2 : 1);
  io_uring_prep_connect(sqe[0], fd, (struct sockaddr *)&e->addr, e->addr_len);
  io_uring_sqe_set_data64(sqe[0], rc_ring_ud(RC_RING_OP_CONNECT, 0, idx));
  e->armed = CONNECT_ARMED_CONNECT;
  if (timeout_ms) {
    sqe[0]->flags |= IOSQE_IO_LINK;
    e->timeout.tv_sec = timeout_ms / 1000;
    e->timeout.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    io_uring_prep_link_timeout(sqe[1], &e->timeout, 0);
    io_uring_sqe_set_data64(sqe[1], rc_ring_ud(RC_RING_OP_CONNECT_TIMEOUT, 0, idx));
    e->armed |= CONNECT_ARMED_TIMEOUT;
  }
  l->n_connecting++;
  return 0;
}

static struct rc_connect_slot *connect_of(struct rc_loop *l, uint64_t ud, uint8_t armed) {
  uint32_t idx = rc_ring_ud_idx(ud);
  if (idx >= RC_LINK_SLOTS || l->connects[idx].fd < 0 || !(l->connects[idx].armed & armed)) {
    rc_err("completion for a connect not in flight (entry %u); this is a bug", idx);
    abort();
  }
  l->connects[idx].armed &= (uint8_t)~armed;
  return &l->connects[idx];
}

/* The entry is free again before done runs, so done may connect again. */
static void connect_finish(struct rc_loop *l, struct rc_connect_slot *e, struct rc_conn *c,
                           int res) {
  rc_connect_done done = e->done;
  void *arg = e->arg;
  close(e->fd); /* the table holds its own reference to a socket it took */
  e->fd = -1;
  l->n_connecting--;
  done(l, c, res, arg);
}

static void install(struct rc_loop *l, struct rc_connect_slot *e) {
  struct io_uring_sqe *sqe = rc_ring_get_sqe(&l->core.ring);
  e->installed = e->fd;
  io_uring_prep_files_update(sqe, &e->installed, 1, 0);
  /* The kernel reads the 32-bit offset: all ones asks it to pick a slot. */
  sqe->off = IORING_FILE_INDEX_ALLOC;
  io_uring_sqe_set_data64(sqe, rc_ring_ud(RC_RING_OP_INSTALL, 0, (uint32_t)(e - l->connects)));
  e->armed = CONNECT_ARMED_INSTALL;
}

/* Once the connect and its timeout have both completed (one batch: the
 * connect's end disarms the timeout, the timeout's firing cancels the connect). */
static void connect_progress(struct rc_loop *l, struct rc_connect_slot *e) {
  if (e->armed) return;
  int res = e->res;
  if (res == 0 && !l->stopping) {
    install(l, e);
    return;
  }
  if (res == 0 || (res == -ECANCELED && !e->timed_out)) res = -ECANCELED;
  else if (res == -ECANCELED) res = -ETIMEDOUT;
  connect_finish(l, e, NULL, res);
}

static void on_connect(struct rc_loop *l, struct rc_connect_slot *e, int res) {
  e->res = res;
  connect_progress(l, e);
}

static void on_connect_timeout(struct rc_loop *l, struct rc_connect_slot *e, int res) {
  /* -ECANCELED: the connect ended first. -ETIME: it fired and cancelled the
   * connect; anything else: it fired but could not (the connect's own result
   * then decides). */
  if (res != -ECANCELED) e->timed_out = true;
  connect_progress(l, e);
}

static void on_install(struct rc_loop *l, struct rc_connect_slot *e, int res) {
  if (res < 1) {
    if (res != -ENFILE) rc_warn("installing a connected socket: %s", strerror(res ? -res : EIO));
    connect_finish(l, e, NULL, res ? res : -EIO);
    return;
  }
  uint32_t slot = (uint32_t)e->installed;
  struct rc_conn *c = slot < l->core.conn_cap ? rc_conn_at(&l->core, slot) : NULL;
  if (!c || c->state != RC_CONN_FREE) {
    rc_err("connect installed into slot %u, %s", slot, c ? "still in use" : "beyond the table");
    abort();
  }
  if (l->stopping) {
    /* Nothing is armed on the slot yet, so it can go at once; a synchronous
     * update saves a turn of the stop for this once-per-stop case. */
    int none = -1;
    int ret = io_uring_register_files_update(&l->core.ring.ring, slot, &none, 1);
    if (ret < 0) {
      rc_warn("closing slot %u: %s", slot, strerror(-ret));
      rc_counter_add(&l->core.stats.close_errors, 1);
    }
    connect_finish(l, e, NULL, -ECANCELED);
    return;
  }
  rc_conn_open(&l->core, c, &e->addr, e->addr_len);
  c->outbound = 1;
  l->core.n_outbound++;
  c->ops = e->ops;
  c->layer = e->layer;
  connect_finish(l, e, c, 0);
}

static void cancel_connects(struct rc_loop *l) {
  for (unsigned i = 0; i < RC_LINK_SLOTS; i++) {
    if (!(l->connects[i].armed & CONNECT_ARMED_CONNECT)) continue;
    struct io_uring_sqe *sqe = rc_ring_get_sqe(&l->core.ring);
    io_uring_prep_cancel64(sqe, rc_ring_ud(RC_RING_OP_CONNECT, 0, i), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, rc_ring_ud(RC_RING_OP_CANCEL, 0, i));
  }
}

/* ---- receives ---- */

static void return_buffer(struct rc_loop *l, unsigned bid) {
  io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * l->buf_size, l->buf_size,
                        (unsigned short)bid, io_uring_buf_ring_mask(l->buf_count),
                        (int)l->bufs_to_return++);
}

static void on_recv(struct rc_loop *l, struct rc_conn *c, const struct io_uring_cqe *cqe) {
  int res = cqe->res;
  if (!(cqe->flags & IORING_CQE_F_MORE)) c->armed &= (uint8_t)~RC_CONN_ARMED_RECV;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    /* Input after a close is discarded (RFC 6455 5.5.1 for WebSocket). */
    if (res > 0 && c->state == RC_CONN_OPEN)
      c->ops->on_data(l, c, l->bufs + (size_t)bid * l->buf_size, (size_t)res);
    return_buffer(l, bid);
  }
  if (!(c->armed & RC_CONN_ARMED_RECV)) rc_conn_recv_ended(&l->core, c, res);
}

/* ---- doorbells ---- */

static void arm_eventfd(struct rc_loop *l) {
  struct io_uring_sqe *sqe = rc_ring_get_sqe(&l->core.ring);
  io_uring_prep_read(sqe, l->event_fd, &l->event_val, sizeof l->event_val, 0);
  io_uring_sqe_set_data64(sqe, rc_ring_ud(RC_RING_OP_EVENTFD, 0, 0));
}

void rc_loop_wake(struct rc_loop *l, uint64_t mask) {
  /* The producer half of the sleep handshake: a full fence between this turn's
   * pushes and the loads of the targets' `sleeping`. */
  atomic_thread_fence(memory_order_seq_cst);
  while (mask) {
    unsigned d = (unsigned)__builtin_ctzll(mask);
    mask &= mask - 1;
    if (d == l->id || d >= l->n_peers) continue;
    struct rc_loop *t = l->peers[d];
    if (!rc_doorbell_claim(&t->db)) continue;
    if (l->core.ring.has_msg_ring) {
      struct io_uring_sqe *sqe = rc_ring_get_sqe(&l->core.ring);
      io_uring_prep_msg_ring(sqe, t->core.ring.fd, 0, rc_ring_ud(RC_RING_OP_DOORBELL, 0, l->id), 0);
      /* Only a failure posts a completion on our ring. */
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      io_uring_sqe_set_data64(sqe, rc_ring_ud(RC_RING_OP_MSG_SENT, 0, d));
    } else {
      (void)!eventfd_write(t->event_fd, 1); /* a full counter still wakes it */
    }
  }
}

void rc_loop_stop(struct rc_loop *l) {
  atomic_store_explicit(&l->stop_asked, 1, memory_order_release);
  (void)!eventfd_write(l->event_fd, 1);
}

void rc_loop_drain(struct rc_loop *l) {
  atomic_store_explicit(&l->drain_asked, 1, memory_order_release);
  (void)!eventfd_write(l->event_fd, 1);
}

void rc_loop_repoll_accepts(struct rc_loop *l) {
  atomic_store_explicit(&l->repoll_asked, 1, memory_order_release);
  (void)!eventfd_write(l->event_fd, 1);
}

void rc_loop_release_listeners(struct rc_loop *l) {
  atomic_store_explicit(&l->release_asked, 1, memory_order_release);
  (void)!eventfd_write(l->event_fd, 1);
}

bool rc_loop_listeners_closed(const struct rc_loop *l) {
  return atomic_load_explicit(&l->listeners_closed, memory_order_acquire);
}

uint32_t rc_loop_conn_count(const struct rc_loop *l) {
  return atomic_load_explicit(&l->open_conns, memory_order_relaxed);
}

unsigned rc_loop_listeners(const struct rc_loop *l, int *fds, bool *admin, unsigned max) {
  unsigned n = 0;
  for (unsigned i = 0; i < l->n_listen && n < max; i++) {
    if (l->listeners[i].fd < 0) continue;
    fds[n] = l->listeners[i].fd;
    admin[n++] = l->listeners[i].admin;
  }
  return n;
}

/* ---- dispatch ---- */

static struct rc_conn *conn_of(struct rc_loop *l, uint64_t ud) {
  uint32_t idx = rc_ring_ud_idx(ud);
  struct rc_conn *c = idx < l->core.conn_cap ? rc_conn_at(&l->core, idx) : NULL;
  if (!c || c->gen != rc_ring_ud_gen(ud) || c->state == RC_CONN_FREE) {
    rc_err("completion for a stale connection (slot %u); this is a bug", idx);
    abort();
  }
  return c;
}

static void dispatch(struct rc_loop *l, const struct io_uring_cqe *cqe) {
  uint64_t ud = cqe->user_data;
  switch (rc_ring_ud_op(ud)) {
  case RC_RING_OP_ACCEPT: on_accept(l, rc_ring_ud_idx(ud), cqe->res); break;
  case RC_RING_OP_RECV: on_recv(l, conn_of(l, ud), cqe); break;
  case RC_RING_OP_SEND: rc_conn_send_done(&l->core, conn_of(l, ud), cqe->res); break;
  case RC_RING_OP_SHUTDOWN: rc_conn_shutdown_done(&l->core, conn_of(l, ud)); break;
  case RC_RING_OP_CONNECT: on_connect(l, connect_of(l, ud, CONNECT_ARMED_CONNECT), cqe->res); break;
  case RC_RING_OP_CONNECT_TIMEOUT:
    on_connect_timeout(l, connect_of(l, ud, CONNECT_ARMED_TIMEOUT), cqe->res);
    break;
  case RC_RING_OP_INSTALL: on_install(l, connect_of(l, ud, CONNECT_ARMED_INSTALL), cqe->res); break;
  case RC_RING_OP_CLOSE:
    rc_conn_release_done(&l->core, conn_of(l, ud), cqe->res);
    if (l->accepts_full) rearm_accepts(l);
    break;
  case RC_RING_OP_CANCEL: break; /* the cancelled request posts its own completion */
  case RC_RING_OP_DOORBELL: break; /* the wake-up was the point */
  case RC_RING_OP_MSG_SENT: {
    /* MSG_RING failed (e.g. -EOVERFLOW): ring the eventfd instead. */
    unsigned d = rc_ring_ud_idx(ud);
    rc_debug("msg_ring to shard %u: %s", d, strerror(-cqe->res));
    (void)!eventfd_write(l->peers[d]->event_fd, 1);
    break;
  }
  case RC_RING_OP_EVENTFD:
    if (cqe->res < 0 && cqe->res != -EAGAIN && cqe->res != -ECANCELED)
      rc_warn("eventfd read: %s", strerror(-cqe->res));
    if (cqe->res != -ECANCELED) arm_eventfd(l);
    break;
  default:
    rc_err("completion with unknown user_data %#llx", (unsigned long long)ud);
    abort();
  }
}

static void fire_timers(struct rc_loop *l) {
  uint64_t now = rc_timer_tick(l->core.now_ms);
  char *lo = l->core.conns, *hi = l->core.conns + (size_t)l->core.conn_cap * l->core.slot_size;
  struct rc_timer *t;
  while ((t = rc_timer_wheel_pop(l->core.wheel, now))) {
    /* A connection's timer lives in its slot; any other is a loop timer. */
    if ((char *)t >= lo && (char *)t < hi) {
      struct rc_conn *c =
          rc_conn_at(&l->core, (uint32_t)(((char *)t - lo) / l->core.slot_size));
      rc_conn_timer_fired(l, c);
    } else {
      struct rc_loop_timer *lt = (struct rc_loop_timer *)t;
      lt->fn(l, lt);
    }
  }
}

static void cancel_armed_accepts(struct rc_loop *l) {
  for (unsigned i = 0; i < l->n_listen; i++) {
    if (l->listeners[i].fd < 0) continue;
    struct io_uring_sqe *sqe = rc_ring_get_sqe(&l->core.ring);
    io_uring_prep_cancel_fd(sqe, l->listeners[i].fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, rc_ring_ud(RC_RING_OP_CANCEL, 0, 0));
  }
}

static void cancel_accepts(struct rc_loop *l) {
  cancel_armed_accepts(l);
  rc_loop_timer_cancel(l, &l->accept_retry);
}

static void begin_stop(struct rc_loop *l) {
  l->stopping = true;
  l->stop_deadline_ms = l->core.now_ms + STOP_GRACE_MS;
  cancel_accepts(l);
  cancel_connects(l);
  l->hooks.on_stop(l);
}

/* The cancellation must reach the kernel while the fds are still open (it finds
 * requests by the file the fd names): the sockets are closed in a later turn,
 * once every armed accept has completed. An accept that won the race with the
 * cancellation brought a connection, which is served like any other. */
static void release_progress(struct rc_loop *l) {
  if (!l->released) {
    l->released = true;
    cancel_accepts(l);
    io_uring_submit(&l->core.ring.ring);
    return;
  }
  if (l->accepts_armed || atomic_load_explicit(&l->listeners_closed, memory_order_relaxed)) return;
  unsigned closed = 0;
  for (unsigned i = 0; i < l->n_listen; i++) {
    if (l->listeners[i].fd < 0) continue;
    close(l->listeners[i].fd);
    l->listeners[i].fd = -1;
    closed++;
  }
  if (closed) rc_debug("released %u listening sockets", closed);
  /* No connection arrives from here on: the count published with the flag is
   * every connection this loop will ever hold. */
  atomic_store_explicit(&l->open_conns, l->core.n_conns - l->core.n_outbound, memory_order_relaxed);
  atomic_store_explicit(&l->listeners_closed, 1, memory_order_release);
}

static void cut_one(struct rc_loop *l, struct rc_conn *c, void *arg) {
  (void)arg;
  rc_conn_abort(l, c);
}

/* Whether the stop is complete. */
static bool stop_progress(struct rc_loop *l) {
  bool accepts_done = true;
  for (unsigned i = 0; i < l->n_accepts; i++) accepts_done &= !l->accepts[i].armed;
  if (l->core.n_conns == 0 && accepts_done && l->n_connecting == 0) return true;
  if (l->core.now_ms >= l->stop_deadline_ms && !l->cut) {
    rc_warn("%u connections still closing after %d ms; cutting them", l->core.n_conns, STOP_GRACE_MS);
    l->cut = true;
    rc_loop_foreach_conn(l, cut_one, NULL);
  }
  return l->core.now_ms > l->stop_deadline_ms + 1000;
}

static void run(struct rc_loop *l) {
  struct io_uring_cqe cqes[CQE_BATCH];
  for (;;) {
    clock_read(&l->core);
    unsigned n;
    while ((n = rc_ring_reap(&l->core.ring, cqes, CQE_BATCH)) > 0) {
      for (unsigned i = 0; i < n; i++) dispatch(l, &cqes[i]);
      if (n < CQE_BATCH) break;
    }
    if (l->bufs_to_return) {
      io_uring_buf_ring_advance(l->br, (int)l->bufs_to_return);
      l->bufs_to_return = 0;
    }
    fire_timers(l);
    if (!l->stopping && atomic_load_explicit(&l->stop_asked, memory_order_acquire)) begin_stop(l);
    if (!l->draining && atomic_load_explicit(&l->drain_asked, memory_order_acquire)) {
      l->draining = true;
      if (l->hooks.on_drain && !l->stopping) l->hooks.on_drain(l);
    }
    if (atomic_load_explicit(&l->release_asked, memory_order_acquire)) release_progress(l);
    if (atomic_exchange_explicit(&l->repoll_asked, 0, memory_order_acq_rel) && !l->stopping &&
        !l->released)
      cancel_armed_accepts(l);
    l->hooks.on_turn(l);
    rc_frame_arena_reclaim(&l->arena);
    rc_conn_run_todo(l);
    rc_conn_start_sends(&l->core);
    atomic_store_explicit(&l->open_conns, l->core.n_conns - l->core.n_outbound, memory_order_relaxed);
    if (l->core.ring.stashed_total) {
      rc_counter_add(&l->core.stats.cqe_stashed, l->core.ring.stashed_total);
      l->core.ring.stashed_total = 0;
    }

    uint64_t wait_ms = IDLE_WAIT_MS;
    if (l->stopping) {
      if (stop_progress(l)) {
        io_uring_submit(&l->core.ring.ring);
        return;
      }
      wait_ms = STOP_POLL_MS;
    }
    uint64_t next = rc_timer_wheel_next(l->core.wheel);
    if (next != UINT64_MAX) {
      uint64_t due = next * RC_TIMER_TICK_MS;
      uint64_t in = due > l->core.now_ms ? due - l->core.now_ms : 0;
      if (in < wait_ms) wait_ms = in;
    }
    /* Sleep handshake, consumer side: announce, full fence, then look again. A
     * producer that pushed before our fence is seen by has_work; one that pushes
     * after it sees `sleeping` and rings. */
    rc_doorbell_prepare_sleep(&l->db);
    if (l->hooks.has_work(l) || l->core.todo_head != RC_LIST_END || rc_ring_has_cqe(&l->core.ring)) {
      rc_doorbell_awake(&l->db);
      int ret = io_uring_submit_and_get_events(&l->core.ring.ring);
      if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
        rc_warn("submit: %s", strerror(-ret));
      continue;
    }
    struct __kernel_timespec ts = {.tv_sec = (long long)(wait_ms / 1000),
                                   .tv_nsec = (long long)(wait_ms % 1000) * 1000000};
    struct io_uring_cqe *cqe;
    int ret = io_uring_submit_and_wait_timeout(&l->core.ring.ring, &cqe, 1, &ts, NULL);
    if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
      rc_warn("submit_and_wait: %s", strerror(-ret));
    rc_doorbell_awake(&l->db);
  }
}

/* ---- set-up and teardown ---- */

static int setup_in_thread(struct rc_loop *l) {
  char err[256];
  int ret = rc_ring_init(&l->core.ring, SQ_ENTRIES, CQ_ENTRIES, err, sizeof err);
  if (ret < 0) {
    rc_err("%s", err);
    return ret;
  }
  ret = io_uring_register_files_sparse(&l->core.ring.ring, l->core.conn_cap);
  if (ret < 0) {
    rc_err("registering %u direct descriptors: %s (RLIMIT_NOFILE bounds it; lower --max-conns)",
           l->core.conn_cap, strerror(-ret));
    return ret;
  }
  size_t br_size = l->buf_count * sizeof(struct io_uring_buf);
  void *br;
  if (posix_memalign(&br, 4096, br_size)) return -ENOMEM;
  l->br = br;
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br,
                                 .ring_entries = l->buf_count, .bgid = 0};
  ret = io_uring_register_buf_ring(&l->core.ring.ring, &reg, 0);
  if (ret < 0) {
    rc_err("registering the provided-buffer ring: %s (needs Linux 5.19)", strerror(-ret));
    return ret;
  }
  io_uring_buf_ring_init(l->br);
  for (unsigned i = 0; i < l->buf_count; i++) return_buffer(l, i);
  io_uring_buf_ring_advance(l->br, (int)l->bufs_to_return);
  l->bufs_to_return = 0;
  return 0;
}

static void *loop_main(void *arg) {
  struct rc_loop *l = arg;
  rc_log_set_thread_shard((int)l->id);
  if (l->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(l->cpu, &set);
    int ret = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (ret) rc_warn("pinning to CPU %d: %s; running unpinned", l->cpu, strerror(ret));
  }
  int ret = setup_in_thread(l);
  if (ret < 0) {
    if (l->core.ring.fd > 0) rc_ring_exit(&l->core.ring);
    atomic_store_explicit(&l->started, ret, memory_order_release);
    return NULL;
  }
  clock_read(&l->core);
  rc_timer_wheel_init(l->core.wheel, rc_timer_tick(l->core.now_ms));
  arm_eventfd(l);
  for (unsigned i = 0; i < l->n_accepts; i++) arm_accept(l, i);
  io_uring_submit(&l->core.ring.ring);
  l->hooks.on_start(l);
  atomic_store_explicit(&l->started, 1, memory_order_release);
  run(l);
  /* Only a stop past its deadline leaves a connect behind; the ring's exit
   * cancels what the kernel still holds of it. */
  for (unsigned i = 0; i < RC_LINK_SLOTS; i++)
    if (l->connects[i].fd >= 0) connect_finish(l, &l->connects[i], NULL, -ECANCELED);
  for (uint32_t i = 0; i < l->core.conn_cap && l->core.n_conns; i++) {
    struct rc_conn *c = rc_conn_at(&l->core, i);
    if (c->state != RC_CONN_FREE) rc_conn_discard(l, c);
  }
  if (l->hooks.on_exit) l->hooks.on_exit(l);
  rc_ring_exit(&l->core.ring);
  return NULL;
}

int rc_loop_create(const struct rc_loop_params *p, const struct rc_loop_hooks *h,
                   struct rc_loop **out) {
  if (p->slot_size < sizeof(struct rc_conn) || p->n_sockets > RC_LOOP_MAX_SOCKETS) {
    for (unsigned i = 0; i < p->n_sockets; i++)
      if (p->sockets[i].fd >= 0) close(p->sockets[i].fd);
    return -EINVAL;
  }
  struct rc_loop *l = aligned_alloc(64, (sizeof *l + 63) & ~(size_t)63);
  bool has_admin = false;
  for (unsigned i = 0; i < p->n_sockets; i++) has_admin |= p->sockets[i].admin;
  if (l) {
    memset(l, 0, sizeof *l);
    l->listeners = calloc(p->n_sockets ? p->n_sockets : 1, sizeof *l->listeners);
  }
  if (!l || !l->listeners) {
    for (unsigned i = 0; i < p->n_sockets; i++)
      if (p->sockets[i].fd >= 0) close(p->sockets[i].fd);
    free(l);
    return -ENOMEM;
  }
  /* Handed-over sockets belong to the loop from here on, whatever fails next. */
  for (unsigned i = 0; i < p->n_sockets; i++)
    if (p->sockets[i].fd >= 0)
      l->listeners[l->n_listen++] = (struct rc_listener){p->sockets[i].fd, p->sockets[i].addr,
                                                         p->sockets[i].admin};
  l->id = p->id;
  l->cpu = p->cpu;
  l->hooks = *h;
  l->event_fd = -1;
  l->max_conns = p->max_conns;
  l->core.max_queue = p->max_queue;
  l->core.conn_cap =
      p->max_conns + RC_CONN_SPARE + (has_admin ? RC_ADMIN_SLOTS : 0) + RC_LINK_SLOTS;
  for (unsigned i = 0; i < RC_LINK_SLOTS; i++) l->connects[i].fd = -1;
  l->has_admin = has_admin;
  /* Keep slots pointer-aligned whatever the layer above embeds. */
  l->core.slot_size = (p->slot_size + 15) & ~(size_t)15;
  l->buf_count = RECV_BUF_COUNT;
  l->buf_size = RECV_BUF_SIZE;
  l->core.dirty_head = l->core.todo_head = RC_LIST_END;
  l->accept_retry.fn = accept_retry_fired;
  rc_outq_pool_init(&l->core.chunks);
  rc_pool_init(&l->core.sendops, sizeof(struct rc_sendop), 16);
  rc_doorbell_init(&l->db);
  rc_frame_arena_init(&l->arena, p->id, l->arenas);
  l->core.arena = &l->arena;
  int ret = -ENOMEM;
  l->core.wheel = malloc(sizeof *l->core.wheel);
  if (!l->core.wheel) goto fail;
  /* Reserved, not committed: an unused connection slot costs no memory. */
  l->core.conns = mmap(NULL, (size_t)l->core.conn_cap * l->core.slot_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (l->core.conns == MAP_FAILED) {
    l->core.conns = NULL;
    goto fail;
  }
  if (posix_memalign((void **)&l->bufs, 4096, (size_t)l->buf_count * l->buf_size)) {
    l->bufs = NULL;
    goto fail;
  }
  l->n_accepts = p->n_sockets * ACCEPTS_PER_LISTENER;
  l->accepts = calloc(l->n_accepts ? l->n_accepts : 1, sizeof *l->accepts);
  if (!l->accepts) goto fail;
  l->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (l->event_fd < 0) {
    ret = -errno;
    rc_err("eventfd: %s", strerror(errno));
    goto fail;
  }
  for (unsigned i = 0; i < p->n_sockets; i++) {
    if (p->sockets[i].fd >= 0) continue;
    char err[256];
    int fd = rc_listener_open(p->sockets[i].addr, err, sizeof err);
    if (fd < 0) {
      rc_err("%s%s", p->sockets[i].admin ? "--admin-listen: " : "", err);
      ret = fd;
      goto fail;
    }
    l->listeners[l->n_listen++] = (struct rc_listener){fd, p->sockets[i].addr, p->sockets[i].admin};
  }
  for (unsigned i = 0; i < l->n_accepts; i++)
    l->accepts[i].listener = (uint16_t)(i / ACCEPTS_PER_LISTENER);
  *out = l;
  return 0;
fail:
  rc_loop_destroy(l);
  return ret;
}

int rc_loop_start(struct rc_loop *l) {
  int ret = pthread_create(&l->thread, NULL, loop_main, l);
  if (ret) return -ret;
  int started;
  while (!(started = atomic_load_explicit(&l->started, memory_order_acquire)))
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  return started < 0 ? started : 0;
}

void rc_loop_join(struct rc_loop *l) { pthread_join(l->thread, NULL); }

void rc_loop_destroy(struct rc_loop *l) {
  if (!l) return;
  for (unsigned i = 0; i < l->n_listen; i++)
    if (l->listeners[i].fd >= 0) close(l->listeners[i].fd);
  free(l->listeners);
  if (l->event_fd >= 0) close(l->event_fd);
  if (l->core.conns) munmap(l->core.conns, (size_t)l->core.conn_cap * l->core.slot_size);
  free(l->accepts);
  free(l->bufs);
  free(l->br);
  free(l->core.wheel);
  rc_pool_fini(&l->core.chunks);
  rc_pool_fini(&l->core.sendops);
  rc_frame_arena_fini(&l->arena);
  free(l);
}
