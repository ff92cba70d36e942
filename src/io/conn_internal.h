/* SPDX-License-Identifier: MIT */
/* The connection core: everything a connection's transitions and its send path
 * touch (the ring, the slot table, pools, the timer wheel, the end-of-turn lists,
 * the counters). struct rc_loop begins with one (loop.c asserts it), so the
 * public rc_conn_* calls, which take the loop, reach it without knowing the rest
 * of the loop. loop.c feeds it the completions it dispatches. */
#ifndef RINGCAST_IO_CONN_INTERNAL_H
#define RINGCAST_IO_CONN_INTERNAL_H

#include <sys/socket.h>

#include "ringcast/io/conn.h"
#include "ringcast/io/ring.h"
#include "ringcast/io/timer.h"
#include "ringcast/util/frame.h"
#include "ringcast/util/pool.h"

#define RC_SEND_IOV 64

/* Borrowed from the shard's pool while a send is in flight. */
struct rc_sendop {
  struct msghdr mh;
  uint32_t bytes;
  uint32_t entries;      /* queue entries it covers, the first maybe in part */
  uint64_t oldest_ns;    /* the oldest publish stamp among them; 0: none */
  struct iovec iov[RC_SEND_IOV];
};

/* End-of-turn work on a connection (rc_conn.todo). */
enum {
  RC_TODO_NOTIFY = 1u << 0,  /* it left OPEN this turn: tell the layer above */
  RC_TODO_CANCEL = 1u << 1,  /* aborted: cancel what is armed, release when none is */
  RC_TODO_REARM = 1u << 2,   /* its recv ended on -ENOBUFS: re-arm once buffers are back */
};

struct rc_conn_core {
  struct rc_ring ring;
  char *conns;                      /* slot_size bytes per direct-descriptor slot */
  size_t slot_size;
  uint32_t conn_cap;
  uint32_t n_conns;
  uint32_t n_admin;              /* of them, on the administrative listener */
  uint32_t n_outbound;           /* of them, opened by rc_loop_connect */
  uint64_t max_queue;
  uint64_t now_ms;
  uint64_t now_ns;                  /* the same turn's clock, for send latency */
  struct rc_pool chunks, sendops;
  struct rc_conn *dirty_head, *todo_head;  /* end with RC_LIST_END */
  struct rc_timer_wheel *wheel;
  struct rc_conn_stats stats;
  struct rc_frame_arena *arena;
};

/* Terminates the dirty and todo lists, so a NULL link means "not on the list". */
extern struct rc_conn rc_list_end;
#define RC_LIST_END (&rc_list_end)

static inline struct rc_conn_core *rc_conn_core_of(struct rc_loop *l) {
  return (struct rc_conn_core *)(void *)l;
}
static inline struct rc_loop *rc_conn_loop_of(struct rc_conn_core *k) {
  return (struct rc_loop *)(void *)k;
}
static inline struct rc_conn *rc_conn_at(const struct rc_conn_core *k, uint32_t slot) {
  return (struct rc_conn *)(k->conns + (size_t)slot * k->slot_size);
}

/* The events that move a connection through its states, for loop.c. */
void rc_conn_open(struct rc_conn_core *k, struct rc_conn *c, const struct sockaddr_storage *peer,
                  socklen_t peer_len);
void rc_conn_recv_ended(struct rc_conn_core *k, struct rc_conn *c, int res);
void rc_conn_send_done(struct rc_conn_core *k, struct rc_conn *c, int res);
void rc_conn_shutdown_done(struct rc_conn_core *k, struct rc_conn *c);
void rc_conn_timer_fired(struct rc_loop *l, struct rc_conn *c);
void rc_conn_release_done(struct rc_conn_core *k, struct rc_conn *c, int res);
/* Runs the end-of-turn work of every connection on the todo list. */
void rc_conn_run_todo(struct rc_loop *l);
/* Starts one send on every connection with data queued and none in flight. */
void rc_conn_start_sends(struct rc_conn_core *k);
/* At loop exit: tells the layer above if it has not been told, frees the slot. */
void rc_conn_discard(struct rc_loop *l, struct rc_conn *c);

#endif
