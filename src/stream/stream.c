/* SPDX-License-Identifier: MIT */
/* The cleartext stream: nothing between the socket and the session, so every
 * operation is the io layer's own and received bytes are never copied. */
#include "ringcast/stream/stream.h"

static int cleartext_attach(void *shard, struct rc_loop *l, struct rc_conn *c,
                            const struct rc_conn_ops *upper) {
  (void)shard;
  (void)l;
  c->ops = upper;
  return 0;
}

const struct rc_stream_type rc_stream_cleartext = {
    .name = "tcp",
    .attach = cleartext_attach,
    .send = rc_conn_send,
    .send_frame = rc_conn_send_frame,
    .close = rc_conn_close,
    .queued = rc_conn_waiting_bytes,
};
