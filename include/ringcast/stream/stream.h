/* SPDX-License-Identifier: MIT */
/* The byte stream a session speaks through: what it writes and how received
 * bytes reach it. One table of operations per kind of stream, as Redis'
 * ConnectionType lets TLS slide under its networking code unchanged: cleartext
 * (received bytes go straight to the session, frames straight to the
 * connection's queue) and TLS (ringcast/stream/tls.h: decrypts on the way up,
 * encrypts coalesced frames on the way down) behind the same four calls. Shard
 * thread only. */
#ifndef RINGCAST_STREAM_STREAM_H
#define RINGCAST_STREAM_STREAM_H

#include <stdbool.h>

#include "ringcast/io/conn.h"
#include "ringcast/io/loop.h"
#include "ringcast/util/frame.h"

struct rc_stream_type {
  const char *name;
  /* A connection was accepted: route its received bytes, timer and close to
   * `upper` (the session). shard: the stream's context for this shard (NULL for
   * cleartext). 0 or a negative errno (the caller aborts). */
  int (*attach)(void *shard, struct rc_loop *l, struct rc_conn *c, const struct rc_conn_ops *upper);
  /* As rc_conn_send, rc_conn_send_frame and rc_conn_close, for the session's
   * plaintext. */
  int (*send)(struct rc_loop *l, struct rc_conn *c, struct rc_hold *h, enum rc_frame_view v);
  int (*send_frame)(struct rc_loop *l, struct rc_conn *c, struct rc_frame *f);
  void (*close)(struct rc_loop *l, struct rc_conn *c, struct rc_frame *last, bool drop_queued);
  /* Bytes queued for the connection and not yet handed to the kernel, the
   * stream's own (TLS plaintext not yet encrypted) included: for logs. */
  uint64_t (*queued)(const struct rc_conn *c);
};

/* Plain TCP. */
extern const struct rc_stream_type rc_stream_cleartext;

#endif
