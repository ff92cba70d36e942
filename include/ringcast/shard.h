/* SPDX-License-Identifier: MIT */
/* A shard: one pinned thread, one io_uring ring, one SO_REUSEPORT listener per
 * address, and every connection those listeners accepted. Other threads reach a
 * shard only through its inbox (an MPSC queue) and its doorbell. */
#ifndef RINGCAST_SHARD_H
#define RINGCAST_SHARD_H

#include <assert.h>
#include <liburing.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ringcast/config.h"
#include "ringcast/conn.h"
#include "ringcast/metrics.h"
#include "ringcast/mpsc.h"
#include "ringcast/pool.h"

struct rc_topic_table;
struct rc_batch;
struct rc_demo_feed;

/* State shared by all shards: read-only after start except the stop flag. */
struct rc_server {
  const struct rc_config *cfg;
  struct rc_topic_table *topics;
  struct rc_shard *shards[RC_MAX_SHARDS];
  unsigned nshards;
  _Atomic int stopping;
  _Atomic unsigned ready;          /* shards that finished set-up */
  uint64_t start_ms;
};

/* io_uring user_data: [op:8][gen:24][idx:32]. Decoded only in shard.c. */
enum rc_op {
  RC_OP_ACCEPT = 1,
  RC_OP_RECV,
  RC_OP_SEND,
  RC_OP_CLOSE,
  RC_OP_CANCEL,      /* result ignored: the cancelled op posts its own CQE */
  RC_OP_DOORBELL,    /* a MSG_RING from another shard */
  RC_OP_MSG_SENT,    /* our MSG_RING, only seen on failure */
  RC_OP_EVENTFD,
  RC_OP_SHUTDOWN,    /* lingering close; the slot stays open until it completes */
};

static inline uint64_t rc_ud(enum rc_op op, uint32_t gen, uint32_t idx) {
  return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xffffffu) << 32) | idx;
}
static inline enum rc_op rc_ud_op(uint64_t ud) { return (enum rc_op)(ud >> 56); }
static inline uint32_t rc_ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffffu; }
static inline uint32_t rc_ud_idx(uint64_t ud) { return (uint32_t)ud; }
static_assert(sizeof(uint64_t) == sizeof(((struct io_uring_cqe *)0)->user_data),
              "user_data is 64 bits");

struct rc_accept_slot {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint16_t listener;
  bool armed;
};

struct rc_shard {
  unsigned id;
  struct rc_server *srv;
  pthread_t thread;
  int cpu;                          /* -1: not pinned */
  struct io_uring ring;
  int ring_fd;                      /* a MSG_RING target for other shards */
  int event_fd;                     /* doorbell from threads without a ring */
  uint64_t event_val;
  bool use_msg_ring;
  bool stop_seen;
  int setup_error;

  int listen_fds[RC_CONFIG_MAX_LISTEN];
  unsigned n_listen;
  struct rc_accept_slot *accepts;
  unsigned n_accepts;
  bool accept_paused;

  struct rc_conn *conns;            /* indexed by direct-descriptor slot */
  uint32_t conn_cap;
  uint32_t n_conns;
  uint32_t n_closing;

  struct io_uring_buf_ring *br;
  uint8_t *bufs;
  uint32_t buf_count, buf_size;
  uint32_t bufs_to_return;

  struct rc_pool chunk_pool, hold_pool, send_pool;
  struct rc_conn *dirty_head, *pending_head, *rearm_head;

  struct rc_batch *out_batch[RC_MAX_SHARDS];
  uint64_t doorbells;               /* shards to ring this iteration */

  struct rc_demo_feed *demo;
  uint64_t now_ms;                  /* loop-iteration clock */
  uint64_t start_ms;
  uint32_t now_ds;                  /* deciseconds since start_ms, from 1 */
  uint64_t next_sweep_ms;           /* closing connections' deadlines */
  uint64_t next_timer_ms;           /* handshake, idle and ping timers */

  /* Cross-thread fields, each on its own cache line. */
  alignas(64) struct rc_mpsc inbox;
  alignas(64) _Atomic int sleeping;
  alignas(64) _Atomic int doorbell_pending;
  alignas(64) struct rc_shard_metrics metrics;
};

/* Creates shard id (allocations and listener sockets; no thread yet). */
int rc_shard_create(struct rc_server *srv, unsigned id, int cpu, struct rc_shard **out);
/* Starts the thread; it builds its ring inside the thread (SINGLE_ISSUER binds
 * the ring to the creating task). */
int rc_shard_start(struct rc_shard *sh);
/* Any thread: wakes the shard so it notices the stop flag. */
void rc_shard_wake_from_thread(struct rc_shard *sh);
void rc_shard_join(struct rc_shard *sh);
void rc_shard_destroy(struct rc_shard *sh);

/* Shard thread: an SQE, submitting first when the SQ is full. Never NULL. */
struct io_uring_sqe *rc_shard_get_sqe(struct rc_shard *sh);
/* Shard thread: arms the multishot recv of a connection. */
void rc_shard_arm_recv(struct rc_shard *sh, struct rc_conn *c);
static inline uint32_t rc_conn_slot(const struct rc_shard *sh, const struct rc_conn *c) {
  return (uint32_t)(c - sh->conns);
}
/* Puts c on the pending list (unsubscribe and teardown after this turn). */
void rc_shard_defer(struct rc_shard *sh, struct rc_conn *c);
uint64_t rc_now_ms(void);

#endif
