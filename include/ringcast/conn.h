/* SPDX-License-Identifier: MIT */
/* One client connection: its state, its outbound queue of frame references and
 * its single in-flight sendmsg. Owned by one shard; every function here runs on
 * that shard's thread. */
#ifndef RINGCAST_CONN_H
#define RINGCAST_CONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ringcast/frame.h"
#include "ringcast/utf8.h"

struct rc_shard;
struct rc_topic;

enum rc_conn_state { RC_CONN_FREE = 0, RC_CONN_HTTP, RC_CONN_WS };

enum rc_conn_flag {
  RC_CF_RECV_ARMED = 1u << 0,     /* a multishot recv is armed */
  RC_CF_SEND_INFLIGHT = 1u << 1,  /* exactly one sendmsg in flight */
  RC_CF_DIRTY = 1u << 2,          /* on the shard's dirty list */
  RC_CF_CLOSING = 1u << 3,        /* flush what is queued, then close */
  RC_CF_TEARDOWN = 1u << 4,       /* cancelling ops; close when none remain */
  RC_CF_CLOSE_SUBMITTED = 1u << 5,
  RC_CF_RAW = 1u << 6,            /* receives the raw view */
  RC_CF_REARM = 1u << 7,          /* on the re-arm list after -ENOBUFS */
  RC_CF_PENDING = 1u << 8,        /* on the pending (unsubscribe/teardown) list */
  RC_CF_OVER_LIMIT = 1u << 9,     /* accepted past --max-conns: gets 503 */
  RC_CF_ECHO = 1u << 10,          /* GET /echo: messages come back, no commands */
  RC_CF_SERVED = 1u << 11,        /* an HTTP request completed (now keep-alive idle) */
  RC_CF_LINGER = 1u << 12,        /* written out and shut for writing; awaiting EOF */
  RC_CF_SHUT_INFLIGHT = 1u << 13, /* the shutdown runs in io-wq: the slot must outlive it */
};

/* Entries per queue chunk: a chunk is 256 bytes. */
#define RC_QCHUNK_ENTRIES 31
#define RC_SEND_IOV 64

struct rc_qchunk {
  struct rc_qchunk *next;
  uintptr_t e[RC_QCHUNK_ENTRIES];  /* struct rc_hold * | view in bit 0 */
};

/* FIFO of frame references. Chunks come from the shard's pool, so an idle
 * connection owns none. */
struct rc_outq {
  struct rc_qchunk *head, *tail;
  uint16_t head_i, tail_i;
  uint32_t count;
  uint32_t off;          /* bytes of the head entry already written */
  uint64_t bytes;        /* bytes not yet written, in-flight ones included */
};

/* Borrowed from the shard's pool while a send is in flight. */
struct rc_sendop {
  struct msghdr mh;
  uint32_t bytes;
  uint32_t entries;      /* queue entries it covers, the first maybe in part */
  struct iovec iov[RC_SEND_IOV];
};

struct rc_buf {
  uint8_t *p;
  uint32_t len, cap;
};

struct rc_sub {
  struct rc_topic *topic;
  uint32_t list_idx;     /* index in topic->local[shard] */
};

struct rc_conn {
  uint32_t gen;
  uint16_t flags;
  uint8_t state;
  uint8_t frag_op;       /* opcode of the fragmented message being assembled */
  struct rc_outq q;
  struct rc_sendop *send;
  struct rc_buf in;      /* bytes of a partial request or frame */
  struct rc_buf msg;     /* payload of a fragmented message */
  struct rc_sub *subs;
  uint16_t n_subs, cap_subs;
  struct rc_utf8_state utf8;
  struct rc_conn *next_dirty;
  struct rc_conn *next_pending;
  struct rc_conn *next_rearm;
  uint64_t close_deadline_ms;
  /* Timer marks in deciseconds since the shard started (32 bits: 13 years). */
  uint32_t rx_ds;        /* last inbound bytes */
  uint32_t req_ds;       /* start of the current HTTP request (handshake timeout) */
  uint32_t ping_ds;      /* last keepalive ping sent; 0: none */
  union {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
  } peer;
};

/* Appends a reference to view v of h's message; takes one plain reference on h.
 * Counts toward --max-queue; a connection over it is closed as a slow consumer. */
void rc_conn_enqueue(struct rc_shard *sh, struct rc_conn *c, struct rc_hold *h,
                     enum rc_msg_view v);
/* Queues a private message (response, control frame, ack); takes ownership of m.
 * Returns 0 or -ENOMEM (m is freed and the connection closed). */
int rc_conn_send_msg(struct rc_shard *sh, struct rc_conn *c, struct rc_msg *m);
/* Queues a private WebSocket text frame. */
int rc_conn_send_text(struct rc_shard *sh, struct rc_conn *c, const char *s, size_t len);
/* Starts one sendmsg on every dirty connection that has none in flight. */
void rc_conn_flush(struct rc_shard *sh);
/* Completion of a connection's sendmsg. */
void rc_conn_on_send(struct rc_shard *sh, struct rc_conn *c, int res);
/* Graceful close: for WebSocket, drops anything not yet in flight when
 * drop_queued, queues a close frame with code and reason, and closes once it is
 * written (or after a bounded wait). code 0 closes after the queue drains. */
void rc_conn_close(struct rc_shard *sh, struct rc_conn *c, unsigned code, const char *reason,
                   bool drop_queued);
/* Cancels everything and closes the socket now. */
void rc_conn_abort(struct rc_shard *sh, struct rc_conn *c);
/* Continues a teardown: submits the close once no operation remains. */
void rc_conn_maybe_release(struct rc_shard *sh, struct rc_conn *c);
/* Called on the close completion: frees everything the connection held. */
void rc_conn_free(struct rc_shard *sh, struct rc_conn *c);
/* Drops one plain reference on h (and its shard reference when it was the last). */
void rc_hold_unref(struct rc_shard *sh, struct rc_hold *h);
/* Wraps a message this shard now holds one reference on. NULL on ENOMEM. */
struct rc_hold *rc_hold_create(struct rc_shard *sh, struct rc_msg *m);
/* Formats the peer address for logs. */
void rc_conn_peer_text(const struct rc_conn *c, char *out, size_t size);

/* Byte-buffer helpers for reassembly: append grows to at most max bytes. */
int rc_buf_append(struct rc_buf *b, const void *p, size_t n, size_t max);
void rc_buf_consume(struct rc_buf *b, size_t n);
void rc_buf_free(struct rc_buf *b);

#endif
