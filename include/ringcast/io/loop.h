/* SPDX-License-Identifier: MIT */
/* The shard loop: one pinned thread, one io_uring ring created inside it, one
 * SO_REUSEPORT listener per address, accepts into direct descriptors, multishot
 * receives over a provided-buffer ring, sends, the timer wheel, doorbells between
 * shards, and a staged stop. It is mechanism only: what connections mean and what
 * else runs each turn comes from above through hooks and operations tables, and it
 * includes nothing above it.
 *
 * A turn: reap completions in batches and dispatch them; fire due timers; call
 * hooks.on_turn; hand the layer above its closed connections and re-arm receives;
 * start one send per connection with data queued; then announce sleep and wait
 * for a completion, the next timer or a doorbell. */
#ifndef RINGCAST_IO_LOOP_H
#define RINGCAST_IO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/io/conn.h"
#include "ringcast/io/listener.h"
#include "ringcast/io/timer.h"
#include "ringcast/util/frame.h"



struct rc_loop;

/* One listening socket a loop accepts from. */
struct rc_loop_socket {
  const struct rc_listen_addr *addr;
  /* A listening socket handed over by the server this one replaces (the loop
   * owns it from rc_loop_create on, even when that fails); -1: open a new one. */
  int fd;
  /* The administrative listener (monitoring): its connections have
   * RC_ADMIN_SLOTS slots of their own, so they are taken even when the public
   * listeners have filled the table. */
  bool admin;
};

struct rc_loop_params {
  unsigned id;
  int cpu;                            /* -1: not pinned */
  unsigned max_conns;
  size_t slot_size;                   /* >= sizeof(struct rc_conn): the layer above's per-connection struct, which starts with one */
  uint64_t max_queue;                 /* bytes waiting behind a send before rc_conn_send refuses */
  /* Several per address when a server with more shards handed its sockets over:
   * every one keeps being accepted from, since closing one would reset the
   * connections waiting in its queue. */
  const struct rc_loop_socket *sockets;
  unsigned n_sockets;                 /* at most RC_LOOP_MAX_SOCKETS */
};

#define RC_LOOP_MAX_SOCKETS (RC_MAX_SHARDS * (RC_CONFIG_MAX_LISTEN + 1))

struct rc_loop_hooks {
  void *user;
  /* In the loop's thread once its ring is up, before the first turn. */
  void (*on_start)(struct rc_loop *l);
  /* A connection was accepted (state OPEN, no ops yet): set its ops. over_limit:
   * it is past max_conns and must be refused. admin: it came in on the
   * administrative listener. from: the address it came in on (its settings, such
   * as TLS). */
  void (*on_accept)(struct rc_loop *l, struct rc_conn *c, bool over_limit, bool admin,
                    const struct rc_listen_addr *from);
  /* Once a turn, after completions and timers: drain queues, flush batches. */
  void (*on_turn)(struct rc_loop *l);
  /* After the sleep is announced: whether work arrived that needs another turn. */
  bool (*has_work)(struct rc_loop *l);
  /* The stop was asked: close connections (gracefully). The loop then waits for
   * them up to the grace period before cutting the rest. */
  void (*on_stop)(struct rc_loop *l);
  /* Optional: rc_loop_drain was called; runs once, in the loop's thread. */
  void (*on_drain)(struct rc_loop *l);
  /* Optional: in the loop's thread after its last turn, every connection gone:
   * free what the thread itself holds. */
  void (*on_exit)(struct rc_loop *l);
};

/* Main thread: allocations and listening sockets, no thread yet. 0 or a negative
 * errno (logged). */
int rc_loop_create(const struct rc_loop_params *p, const struct rc_loop_hooks *h,
                   struct rc_loop **out);
/* Main thread, before any loop starts: the loops a loop may wake, by id. */
void rc_loop_set_peers(struct rc_loop *l, struct rc_loop *const *all, unsigned n);
/* Starts the thread; waits until its ring is up. 0 or the set-up error. */
int rc_loop_start(struct rc_loop *l);
/* Any thread: asks the loop to stop (hooks.on_stop runs in its thread). */
void rc_loop_stop(struct rc_loop *l);
void rc_loop_join(struct rc_loop *l);
/* Any thread: asks the loop to begin draining (hooks.on_drain runs in its thread). */
void rc_loop_drain(struct rc_loop *l);
/* Any thread: the loop stops accepting, cancels its armed accepts, then closes
 * its listening sockets. Whatever waits in their queues is kept only if another
 * process holds the same sockets (a takeover): closing the last reference to a
 * listening socket resets its queue. */
void rc_loop_release_listeners(struct rc_loop *l);
/* Any thread: the loop cancels and re-arms its accepts, so each looks at its
 * socket's queue again. An accept waits on a listening socket exclusively
 * (the kernel wakes one waiter per connection, IORING_OP_ACCEPT's
 * poll_exclusive): when another process sharing the socket cancels a request
 * the kernel had just woken for a connection, that connection stays queued
 * and no waiter of ours hears of it until the next one arrives. A re-armed
 * accept checks the queue at once. */
void rc_loop_repoll_accepts(struct rc_loop *l);
/* Any thread: whether, after rc_loop_release_listeners, every listening socket
 * is closed (no connection arrives any more; rc_loop_conn_count then counts
 * every one still to come to an end). */
bool rc_loop_listeners_closed(const struct rc_loop *l);
/* Main thread, while the loop runs and before rc_loop_release_listeners: its
 * listening sockets (still owned by the loop) and whether each is the
 * administrative one. Returns how many, at most max. */
unsigned rc_loop_listeners(const struct rc_loop *l, int *fds, bool *admin, unsigned max);
/* Any thread: connections open at the end of the loop's last turn, but those it
 * opened itself (rc_loop_connect): what a drain waits for is its clients. */
uint32_t rc_loop_conn_count(const struct rc_loop *l);
/* After join: frees what is left. */
void rc_loop_destroy(struct rc_loop *l);

unsigned rc_loop_id(const struct rc_loop *l);
void *rc_loop_user(const struct rc_loop *l);
/* The loop's clock (CLOCK_MONOTONIC ms), read once per turn. */
uint64_t rc_loop_now_ms(const struct rc_loop *l);
/* The same turn's reading in nanoseconds (for latencies; comparable across shards). */
uint64_t rc_loop_now_ns(const struct rc_loop *l);
/* Loop thread: bytes free in the loop's pools (queue chunks, sends, frame holds). */
uint64_t rc_loop_pool_free_bytes(const struct rc_loop *l);
struct rc_frame_arena *rc_loop_arena(struct rc_loop *l);
const struct rc_conn_stats *rc_loop_stats(const struct rc_loop *l);

/* Shard thread: rings the peers in mask that are asleep (one full fence for all
 * of them). Call after pushing their work. */
void rc_loop_wake(struct rc_loop *l, uint64_t mask);
/* Calls fn for every connection not FREE. fn may close or abort it. */
void rc_loop_foreach_conn(struct rc_loop *l, void (*fn)(struct rc_loop *, struct rc_conn *, void *),
                          void *arg);
/* The OPEN connection a token names, or NULL when it has closed since. */
struct rc_conn *rc_loop_conn_by_token(struct rc_loop *l, uint64_t token);

/* Outcome of rc_loop_connect: when res is 0, c is the connection, OPEN with the
 * ops and layer given, outbound set and its receive armed (it is the caller's from
 * here on, like an accepted one); otherwise c is NULL and res a negative errno:
 * -ECONNREFUSED or another connect error, -ETIMEDOUT after timeout_ms, -ENFILE
 * when the kernel's table had no slot, -ECANCELED when the loop is stopping. */
typedef void (*rc_connect_done)(struct rc_loop *l, struct rc_conn *c, int res, void *arg);
/* Loop thread only: opens a TCP connection to addr (IPv4 or IPv6, copied) with
 * TCP_NODELAY, into a direct-descriptor slot of this shard like an accepted one,
 * from RC_LINK_SLOTS slots of its own (outside max_conns, never refused by it;
 * connections still connecting count). timeout_ms 0: no timeout of ours (the
 * kernel's SYN retries end it). done runs exactly once, in a later turn (never
 * inside this call). Returns 0 when started, or a negative errno and done never
 * runs: -ENFILE (every link slot taken), -EAFNOSUPPORT or -EINVAL (addr),
 * -ECANCELED (stopping), or socket(2)'s error. */
int rc_loop_connect(struct rc_loop *l, const struct sockaddr *addr, socklen_t len,
                    unsigned timeout_ms, const struct rc_conn_ops *ops, void *layer,
                    rc_connect_done done, void *arg);

/* A timer of the loop's own (not a connection's). */
struct rc_loop_timer {
  struct rc_timer t;
  void (*fn)(struct rc_loop *l, struct rc_loop_timer *lt);
};
void rc_loop_timer_set(struct rc_loop *l, struct rc_loop_timer *lt, uint64_t due_ms);
void rc_loop_timer_cancel(struct rc_loop *l, struct rc_loop_timer *lt);

#endif
