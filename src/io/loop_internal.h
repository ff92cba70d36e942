/* SPDX-License-Identifier: MIT */
/* The shard loop's state, shared by the io layer's own files (loop.c runs the
 * loop and dispatches completions; conn.c owns every connection transition). */
#ifndef RINGCAST_IO_LOOP_INTERNAL_H
#define RINGCAST_IO_LOOP_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "ringcast/io/conn.h"
#include "ringcast/io/doorbell.h"
#include "ringcast/io/loop.h"
#include "ringcast/io/ring.h"
#include "ringcast/io/timer.h"
#include "ringcast/util/pool.h"

#define RC_SEND_IOV 64

/* Borrowed from the shard's pool while a send is in flight. */
struct rc_sendop {
  struct msghdr mh;
  uint32_t bytes;
  uint32_t entries;      /* queue entries it covers, the first maybe in part */
  struct iovec iov[RC_SEND_IOV];
};

/* End-of-turn work on a connection (rc_conn.todo). */
enum {
  RC_TODO_NOTIFY = 1u << 0,  /* it left OPEN this turn: tell the layer above */
  RC_TODO_CANCEL = 1u << 1,  /* aborted: cancel what is armed, release when none is */
  RC_TODO_REARM = 1u << 2,   /* its recv ended on -ENOBUFS: re-arm once buffers are back */
};

struct rc_accept_slot {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint16_t listener;
  bool armed;
};

struct rc_loop {
  unsigned id;
  int cpu;
  struct rc_loop_hooks hooks;
  pthread_t thread;
  struct rc_ring ring;
  int event_fd;                     /* doorbell from threads without a ring */
  uint64_t event_val;
  struct rc_loop *const *peers;
  unsigned n_peers;
  struct rc_frame_arena *arenas[RC_MAX_SHARDS];  /* the peers' arenas, for frame returns */

  _Atomic int stop_asked;
  _Atomic int started;              /* 0: setting up; 1: running; < 0: set-up failed */
  bool stopping;
  bool cut;                         /* the grace period ended; the rest were aborted */
  uint64_t stop_deadline_ms;

  int listen_fds[RC_CONFIG_MAX_LISTEN];
  unsigned n_listen;
  struct rc_accept_slot *accepts;
  unsigned n_accepts;
  bool accepts_full;                /* paused: the descriptor table is full */
  unsigned accept_backoff_ms;       /* paused after an unexpected accept error; 0: not */
  struct rc_loop_timer accept_retry;

  char *conns;                      /* slot_size bytes per direct-descriptor slot */
  size_t slot_size;
  uint32_t conn_cap;
  uint32_t n_conns;
  unsigned max_conns;
  uint64_t max_queue;

  struct io_uring_buf_ring *br;
  uint8_t *bufs;
  uint32_t buf_count, buf_size;
  uint32_t bufs_to_return;

  struct rc_pool chunks, sendops;
  struct rc_conn *dirty_head, *todo_head;  /* end with RC_LIST_END */
  struct rc_timer_wheel *wheel;
  uint64_t now_ms;

  struct rc_loop_stats stats;
  alignas(64) struct rc_frame_arena arena;
  alignas(64) struct rc_doorbell db;
};

/* Terminates the dirty and todo lists, so a NULL link means "not on the list". */
extern struct rc_conn rc_list_end;
#define RC_LIST_END (&rc_list_end)

static inline struct rc_conn *rc_loop_slot(const struct rc_loop *l, uint32_t slot) {
  return (struct rc_conn *)(l->conns + (size_t)slot * l->slot_size);
}

/* conn.c, for loop.c: the events that move a connection through its states. */
void rc_conn_open(struct rc_loop *l, struct rc_conn *c, const struct sockaddr_storage *peer,
                  socklen_t peer_len);
void rc_conn_arm_recv(struct rc_loop *l, struct rc_conn *c);
void rc_conn_recv_ended(struct rc_loop *l, struct rc_conn *c, int res);
void rc_conn_send_done(struct rc_loop *l, struct rc_conn *c, int res);
void rc_conn_shutdown_done(struct rc_loop *l, struct rc_conn *c);
void rc_conn_timer_fired(struct rc_loop *l, struct rc_conn *c);
void rc_conn_release_done(struct rc_loop *l, struct rc_conn *c, int res);
void rc_conn_run_todo(struct rc_loop *l, struct rc_conn *c);
void rc_conn_start_send(struct rc_loop *l, struct rc_conn *c);
/* At loop exit: tells the layer above if it has not been told, frees the slot. */
void rc_conn_discard(struct rc_loop *l, struct rc_conn *c);

#endif
