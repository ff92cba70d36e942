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

#include "ringcast/proto/position.h"
#include "ringcast/proto/topic_pattern.h"
#include "ringcast/proto/ws.h"
#include "ringcast/pubsub/message.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "conflate.h"
#include "delivery.h"

static struct rc_session *session_of_sub(struct rc_subscriber *sub) {
  return (struct rc_session *)((char *)sub - offsetof(struct rc_session, sub));
}

void rc_delivery_deliver(void *ctx, struct rc_subscriber *sub, struct rc_topic *tp,
                         struct rc_hold *h) {
  struct rc_session_shard *ss = ctx;
  struct rc_session *s = session_of_sub(sub);
  if ((s->cf || s->policy == RC_SLOW_CONFLATE) && rc_conflate_offer(ss->loop, s, tp, h)) return;
  enum rc_frame_view v =
      s->format == RC_FORMAT_RAW ? RC_MESSAGE_VIEW_RAW : RC_MESSAGE_VIEW_ENVELOPE;
  bool heartbeat = rc_message_is_heartbeat(h->frame);
  /* A raw stream is payloads only: nothing of the envelope's in-band messages. */
  if (v == RC_MESSAGE_VIEW_RAW && heartbeat) return;
  int ret = s->stream->send(ss->loop, &s->conn, h, v);
  if (ret == 0 && !heartbeat) rc_counter_add(&ss->stats.delivered, 1);
  if (ret == -ENOBUFS && !rc_conflate_instead_of_close(ss->loop, s, tp, h))
    rc_session_slow_consumer(ss->loop, s, rc_frame_view_len(h->frame, v));
}

static void send_text(struct rc_loop *l, struct rc_session *s, const char *text, size_t len) {
  struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_TEXT, text, len);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  rc_session_send_frame(l, s, f);
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
  send_text(l, s, text, (size_t)n);
}

void rc_delivery_ack_pattern(struct rc_loop *l, struct rc_session *s, const char *pattern,
                             size_t len, const char *id_json, size_t id_len, bool already) {
  char text[RC_PUBSUB_NOTE_MAX + RC_TOPIC_PATTERN_MAX + 128];
  /* Patterns hold no character JSON would escape (proto/topic_pattern.h). */
  int n = snprintf(text, sizeof text, "{\"type\":\"ack\",\"op\":\"subscribe\"%s%.*s,\"pattern\":\"%.*s\"%s}",
                   id_len ? ",\"id\":" : "", (int)id_len, id_json, (int)len, pattern,
                   already ? ",\"already_subscribed\":true" : "");
  if (n < 0 || (size_t)n >= sizeof text) {
    rc_conn_abort(l, &s->conn); /* cannot happen: both are bounded */
    return;
  }
  send_text(l, s, text, (size_t)n);
}

void rc_delivery_published(void *ctx, const struct rc_publish_result *r) {
  struct rc_session_shard *ss = ctx;
  struct rc_conn *c = rc_loop_conn_by_token(ss->loop, r->token);
  if (!c) {
    rc_counter_add(&ss->stats.acks_lost, 1); /* the publisher left before its ack */
    return;
  }
  struct rc_session *s = rc_session_of(c);
  if (s->kind == RC_SESSION_HTTP) {
    /* A POST /publish through Redis (request.c) waits for this. */
    if (s->awaiting) ss->publish_answered(ss->loop, s, r);
    return;
  }
  rc_delivery_ack_publish(ss->loop, s, r->topic, r->err ? r->err : (int64_t)r->seq, r->note,
                          r->note_len);
}

struct rc_subscriber *rc_delivery_resolve(void *ctx, uint64_t token) {
  struct rc_session_shard *ss = ctx;
  struct rc_conn *c = rc_loop_conn_by_token(ss->loop, token);
  return c && rc_conn_is_open(c) ? &rc_session_of(c)->sub : NULL;
}

static const char *const gap_reasons[] = {
    [RC_JOIN_GAP_HISTORY] = "history",
    [RC_JOIN_GAP_EPOCH] = "epoch",
};

/* Appends to buf at *n, keeping the result a string even when it is cut (the
 * caller checks the room it left). */
#define APPEND(...)                                                                     \
  do {                                                                                  \
    int k_ = snprintf(buf + n, sizeof buf - n, __VA_ARGS__);                            \
    n += k_ > 0 && (size_t)k_ < sizeof buf - n ? (size_t)k_ : sizeof buf - n;           \
  } while (0)

/* One of the upgrade's topics= is answered: the 101 goes once all are. */
static void url_join_done(struct rc_loop *l, struct rc_session *s) {
  if (s->joining && --s->joining == 0) rc_conn_uncork(l, &s->conn);
}

bool rc_delivery_joined(void *ctx, struct rc_subscriber *sub, const struct rc_join_result *r) {
  struct rc_session_shard *ss = ctx;
  struct rc_loop *l = ss->loop;
  struct rc_session *s = session_of_sub(sub);
  bool url = r->note_len == 1 && memcmp(r->note, RC_DELIVERY_URL_JOIN, 1) == 0;
  if (!r->live) {
    /* Ended before it went live (the client unsubscribed at once): the 101
     * waits for it no longer. */
    if (url) url_join_done(l, s);
    return false;
  }
  const char *id = url ? "" : r->note;
  size_t id_len = url ? 0 : r->note_len;
  enum rc_join_outcome outcome = r->outcome;
  uint64_t gap_from = r->gap_from, gap_to = r->gap_to;
  bool resumed = outcome != RC_JOIN_LIVE;
  bool replay = r->replay > 0;
  /* A replay must not make a subscriber look slow: past half of --max-queue,
   * with what it already has queued, it becomes an announced gap instead. */
  if (replay && (r->replay_withheld ||
                 s->stream->queued(&s->conn) + r->replay_bytes > ss->max_queue / 2)) {
    replay = false;
    if (outcome == RC_JOIN_RECOVERED) {
      outcome = RC_JOIN_GAP_HISTORY;
      gap_from = r->seq - r->replay + 1;
    }
    if (r->snapshot || outcome == RC_JOIN_GAP_HISTORY) gap_to = r->seq;
  }
  if (s->format != RC_FORMAT_RAW) {
    char buf[RC_PUBSUB_NOTE_MAX + 2 * RC_TOPIC_NAME_MAX + 512];
    size_t n = 0;
    char epoch[RC_EPOCH_TEXT_LEN + 1];
    rc_epoch_format(r->epoch, epoch);
    APPEND("{\"type\":\"ack\",\"op\":\"subscribe\"%s%.*s,\"topic\":\"%s\",\"seq\":%" PRIu64
           ",\"epoch\":\"%s\"",
           id_len ? ",\"id\":" : "", (int)id_len, id, r->topic->name, r->seq, epoch);
    if (outcome != RC_JOIN_LIVE) APPEND(",\"recovered\":%s", outcome == RC_JOIN_RECOVERED ? "true" : "false");
    if (r->snapshot_asked) APPEND(",\"snapshot\":%s", r->snapshot && replay ? "true" : "false");
    APPEND("}");
    send_text(l, s, buf, n);
    n = 0;
    if (outcome == RC_JOIN_GAP_HISTORY || outcome == RC_JOIN_GAP_EPOCH) {
      APPEND("{\"type\":\"gap\",\"topic\":\"%s\",\"from\":%" PRIu64 ",\"to\":%" PRIu64
             ",\"recovered\":false,\"epoch\":\"%s\",\"reason\":\"%s\"}",
             r->topic->name, gap_from, gap_to, epoch,
             r->replay && !replay ? "replay exceeds half of --max-queue" : gap_reasons[outcome]);
      send_text(l, s, buf, n);
    } else if (outcome == RC_JOIN_AHEAD) {
      APPEND("{\"type\":\"error\",\"op\":\"subscribe\"%s%.*s,\"topic\":\"%s\",\"error\":\"since is past "
             "this topic's seq %" PRIu64 " in epoch %s; subscribed from %" PRIu64 "\"}",
             id_len ? ",\"id\":" : "", (int)id_len, id, r->topic->name, r->seq, epoch, r->seq + 1);
      send_text(l, s, buf, n);
    }
  }
  /* Counted as the client is told: a replay too large for its queue is a gap
   * here though history held it. An ahead position is a gap too: what the
   * client believes it has is not what this server sent. */
  if (resumed) rc_counter_add(&ss->stats.reconnects[outcome == RC_JOIN_RECOVERED ? 0 : 1], 1);
  if (url) url_join_done(l, s);
  return replay && rc_conn_is_open(&s->conn);
}
