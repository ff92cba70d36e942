/* SPDX-License-Identifier: MIT */
/* A connection as the io layer knows it: a slot in its shard's direct-descriptor
 * table, an operations table set by the layer above, an outbound queue of frame
 * references with exactly one send in flight, one timer, and a life that is one
 * explicit state machine (docs/architecture.md draws it; src/io/conn.c holds every
 * transition):
 *
 *   FREE --accept/connect--> OPEN --close--> DRAINING --all written--> LINGERING
 *                              |                |                          |
 *                              +-----abort------+------abort/EOF/deadline--+--> CANCELLING
 *   CANCELLING --no operation left--> RELEASING --close completes--> FREE
 *
 * The layer above sees data and timers only while OPEN, and on_close exactly once,
 * at the end of the loop turn in which the connection left OPEN, so nothing it
 * owns is freed under its own feet. Shard thread only. */
#ifndef RINGCAST_IO_CONN_H
#define RINGCAST_IO_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ringcast/io/outq.h"
#include "ringcast/io/timer.h"
#include "ringcast/util/frame.h"
#include "ringcast/util/hist.h"

struct rc_loop;
struct rc_conn;
struct rc_sendop;

enum rc_conn_state {
  RC_CONN_FREE = 0,     /* the slot holds no connection */
  RC_CONN_OPEN,         /* receiving and sending */
  RC_CONN_DRAINING,     /* closing: what is queued goes out, input is discarded */
  RC_CONN_LINGERING,    /* written out, write side shut: discard input until EOF or deadline */
  RC_CONN_CANCELLING,   /* aborted: waiting for every armed operation's last completion */
  RC_CONN_RELEASING,    /* the direct descriptor's close is submitted */
};

/* Operations the kernel holds for a connection (not its state: which completions
 * are still to come). */
enum rc_conn_armed {
  RC_CONN_ARMED_RECV = 1u << 0,     /* the multishot recv */
  RC_CONN_ARMED_SEND = 1u << 1,     /* the one send in flight */
  RC_CONN_ARMED_SHUTDOWN = 1u << 2, /* runs in io-wq and resolves the slot late */
};

/* Why a connection stopped, as far as the layers below the session know it
 * (rc_conn.end): the session names every other cause itself. The first cause
 * marked stays. */
enum rc_conn_end {
  RC_CONN_END_NONE = 0,
  RC_CONN_END_EOF,       /* the peer closed its side (a TLS close_notify too) */
  RC_CONN_END_ERROR,     /* a receive or send failed: reset, broken pipe */
  RC_CONN_END_NOMEM,     /* out of memory queueing or sending */
  RC_CONN_END_PROTOCOL,  /* a stream's own protocol failed (a TLS handshake or record) */
  RC_CONN_END_SHUTDOWN,  /* still open when its loop exited */
};

/* Set by the layer above (a stream) when the connection opens. */
struct rc_conn_ops {
  /* Bytes received while OPEN; p may be modified in place. */
  void (*on_data)(struct rc_loop *l, struct rc_conn *c, uint8_t *p, size_t n);
  /* The connection's timer fired while OPEN. */
  void (*on_timer)(struct rc_loop *l, struct rc_conn *c);
  /* The connection left OPEN (this turn); free what the layer above holds. */
  void (*on_close)(struct rc_loop *l, struct rc_conn *c);
  /* Optional: while OPEN, no send is in flight and the layer above asked with
   * rc_conn_want_write: queue its bytes now (a TLS stream encrypts here, so
   * what piled up behind a send becomes one batch of records). Returns whether
   * it still has bytes to give (it is asked again when the next send ends). */
  bool (*on_writable)(struct rc_loop *l, struct rc_conn *c);
};

/* Counters of a shard's connections (written by its thread, read by any). */
struct rc_conn_stats {
  _Atomic uint64_t conns_open;
  _Atomic uint64_t conns_accepted;
  _Atomic uint64_t conns_refused;     /* accepted past max_conns */
  _Atomic uint64_t accept_errors;
  _Atomic uint64_t close_errors;
  _Atomic uint64_t frames_sent;
  _Atomic uint64_t bytes_sent;
  _Atomic uint64_t sends;
  _Atomic uint64_t short_sends;       /* resumed where the kernel stopped */
  _Atomic uint64_t recv_enobufs;
  _Atomic uint64_t cqe_stashed;
  /* Publish accepted to the send carrying the message completed, sampled from
   * the oldest frame of each send (rc_hist_latency_ns). */
  struct rc_hist send_latency;
};

struct rc_conn {
  uint32_t gen;                  /* bumped when the slot is freed; in user_data */
  uint32_t slot;                 /* index in the direct-descriptor table */
  uint8_t state;                 /* enum rc_conn_state */
  uint8_t armed;                 /* enum rc_conn_armed bits */
  uint8_t todo;                  /* end-of-turn work (loop-private) */
  uint8_t peer_family;           /* AF_INET or AF_INET6 */
  uint16_t peer_port;            /* host order */
  uint8_t admin : 1;             /* accepted on the administrative listener */
  uint8_t outbound : 1;          /* opened by rc_loop_connect, not accepted */
  uint8_t corked : 1;            /* while OPEN, queued bytes wait for rc_conn_uncork */
  uint8_t end : 3;               /* enum rc_conn_end */
  uint8_t wants_write;           /* the layer above has bytes for on_writable */
  const struct rc_conn_ops *ops;
  void *layer;                   /* the layer above's own state (a TLS stream's); opaque here */
  struct rc_outq q;
  struct rc_sendop *send;        /* borrowed from the shard while a send is in flight */
  struct rc_conn *next_dirty;    /* non-NULL while on the loop's list of sends to start */
  struct rc_conn *next_todo;     /* non-NULL while on the loop's end-of-turn list */
  struct rc_timer timer;         /* the layer above's while OPEN; the close deadline after */
  uint8_t peer_addr[16];         /* IPv4 in the first 4 bytes */
};

static inline bool rc_conn_is_open(const struct rc_conn *c) { return c->state == RC_CONN_OPEN; }
/* Records why the connection is ending unless a cause is already recorded; the
 * layer above reads c->end in on_close. */
static inline void rc_conn_mark_end(struct rc_conn *c, enum rc_conn_end why) {
  if (!c->end) c->end = (uint8_t)why & 7u;
}

/* A closing connection (DRAINING or LINGERING) gets at most ms more to finish
 * instead of the usual grace: for refusals of a flood, whose slots must come
 * back fast. */
void rc_conn_hurry_close(struct rc_loop *l, struct rc_conn *c, unsigned ms);

/* Queues view v of h's frame (one plain reference on h). 0; -EPIPE when the
 * connection no longer takes data (not OPEN); -ENOBUFS when the bytes waiting
 * behind the send in flight would pass the shard's --max-queue (nothing queued:
 * the caller decides, e.g. a slow-consumer close); -ENOMEM (the connection is
 * aborted). */
int rc_conn_send(struct rc_loop *l, struct rc_conn *c, struct rc_hold *h, enum rc_frame_view v);
/* Queues a frame of this shard's own (a response, a control frame, an ack),
 * taking ownership of f whatever the result. Results as rc_conn_send. */
int rc_conn_send_frame(struct rc_loop *l, struct rc_conn *c, struct rc_frame *f);
/* Queues a frame of the layer above's own past --max-queue (taking ownership
 * whatever the result): for a stream whose bytes were counted against the limit
 * before they became these (TLS records of queued plaintext). 0, -EPIPE (not
 * OPEN) or -ENOMEM (the connection is aborted). */
int rc_conn_push_frame(struct rc_loop *l, struct rc_conn *c, struct rc_frame *f);
/* Holds every send of an OPEN connection back (queueing goes on, in order)
 * until rc_conn_uncork: for a reply that must not leave before what the layer
 * above is still gathering to follow it. A close sends what is queued anyway. */
static inline void rc_conn_cork(struct rc_conn *c) { c->corked = 1; }
void rc_conn_uncork(struct rc_loop *l, struct rc_conn *c);
/* The layer above has bytes to give: on_writable runs before the next send
 * starts (at the end of this turn when none is in flight). */
void rc_conn_want_write(struct rc_loop *l, struct rc_conn *c);
/* Whether one more frame of len bytes would pass --max-queue, counting what the
 * layer above holds for this connection (held_bytes in held_entries entries) with
 * what waits here: rc_conn_send's test for a stream that queues before it writes. */
bool rc_conn_over_limit(struct rc_loop *l, const struct rc_conn *c, uint64_t held_bytes,
                        uint64_t held_entries, size_t len);
/* Graceful close (OPEN -> DRAINING): drops what no send covers yet when
 * drop_queued, queues `last` (a close frame, say; owned, may be NULL) past any
 * limit, and once all is written shuts the write side and lingers until the
 * peer's EOF or the close deadline (3 s). No effect unless OPEN (last is freed). */
void rc_conn_close(struct rc_loop *l, struct rc_conn *c, struct rc_frame *last, bool drop_queued);
/* Cancels everything and closes the socket now (-> CANCELLING). */
void rc_conn_abort(struct rc_loop *l, struct rc_conn *c);
/* While OPEN: arms the connection's timer for the loop-clock time due_ms (a tick
 * of 10 ms; never early), or cancels it. */
void rc_conn_set_timer(struct rc_loop *l, struct rc_conn *c, uint64_t due_ms);
void rc_conn_cancel_timer(struct rc_loop *l, struct rc_conn *c);
/* Bytes queued and not yet handed to the kernel (behind the send in flight). */
uint64_t rc_conn_waiting_bytes(const struct rc_conn *c);
/* A token naming this connection (slot and generation) that stays false for
 * whatever later uses the slot; see rc_loop_conn_by_token. */
uint64_t rc_conn_token(const struct rc_loop *l, const struct rc_conn *c);
/* "ip:port" or "[ip6]:port" for logs. */
void rc_conn_peer_text(const struct rc_conn *c, char *out, size_t size);

#endif
