/* SPDX-License-Identifier: MIT */
/* The subscriber adapter: a session as a pub/sub subscriber. Deliveries become
 * queue entries on the connection (the envelope or the raw view), a full queue a
 * slow-consumer close, and a publish's result from its home shard the
 * acknowledgement its publisher waits for. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "ringcast/proto/ws.h"
#include "ringcast/pubsub/message.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "delivery.h"

void rc_delivery_deliver(void *ctx, struct rc_subscriber *sub, struct rc_hold *h) {
  struct rc_session_shard *ss = ctx;
  struct rc_session *s = (struct rc_session *)((char *)sub - offsetof(struct rc_session, sub));
  enum rc_frame_view v =
      s->format == RC_FORMAT_RAW ? RC_MESSAGE_VIEW_RAW : RC_MESSAGE_VIEW_ENVELOPE;
  int ret = s->stream->send(ss->loop, &s->conn, h, v);
  if (ret == -ENOBUFS) rc_session_slow_consumer(ss->loop, s, rc_frame_view_len(h->frame, v));
}

void rc_delivery_ack_publish(struct rc_loop *l, struct rc_session *s, const char *topic,
                             int64_t seq, const char *id_json, size_t id_len) {
  char text[RC_PUBSUB_NOTE_MAX + RC_TOPIC_NAME_MAX + 160];
  int n;
  const char *sep = id_len ? ",\"id\":" : "";
  if (seq > 0)
    n = snprintf(text, sizeof text,
                 "{\"type\":\"ack\",\"op\":\"publish\"%s%.*s,\"topic\":\"%s\",\"seq\":%" PRId64 "}",
                 sep, (int)id_len, id_json, topic, seq);
  else
    n = snprintf(text, sizeof text,
                 "{\"type\":\"error\",\"op\":\"publish\"%s%.*s,\"topic\":\"%s\",\"error\":\"%s\"}",
                 sep, (int)id_len, id_json, topic,
                 rc_session_publish_refusal((int)seq));
  if (n < 0 || (size_t)n >= sizeof text) {
    rc_conn_abort(l, &s->conn); /* cannot happen: the id is bounded */
    return;
  }
  struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_TEXT, text, (size_t)n);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  rc_session_send_frame(l, s, f);
}

void rc_delivery_published(void *ctx, const struct rc_publish_result *r) {
  struct rc_session_shard *ss = ctx;
  struct rc_conn *c = rc_loop_conn_by_token(ss->loop, r->token);
  if (!c) {
    rc_counter_add(&ss->stats.acks_lost, 1); /* the publisher left before its ack */
    return;
  }
  rc_delivery_ack_publish(ss->loop, rc_session_of(c), r->topic,
                          r->err ? r->err : (int64_t)r->seq, r->note, r->note_len);
}
