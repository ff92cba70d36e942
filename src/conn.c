/* SPDX-License-Identifier: MIT */
/* A connection's outbound path: the queue of frame references, the one sendmsg in
 * flight that coalesces everything queued, slow-consumer handling, and the close
 * sequence (cancel what is armed, then close the direct descriptor, then free). */
#include "ringcast/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/fanout.h"
#include "ringcast/log.h"
#include "ringcast/shard.h"
#include "ringcast/ws.h"

/* An idle subscriber must stay small (docs/architecture.md, "Memory"). */
static_assert(sizeof(struct rc_conn) <= 256, "struct rc_conn grew past 256 bytes");
static_assert(sizeof(struct rc_qchunk) == 256, "queue chunks are 256 bytes");

/* Bytes one sendmsg may carry; more waits for the next one. Also the most a
 * connection holds beyond --max-queue while a send is stuck. */
#define SEND_MAX_BYTES (256u << 10)
/* How long a closing connection may take to flush before it is cut. */
#define CLOSE_GRACE_MS 3000

static inline uintptr_t entry_make(struct rc_hold *h, enum rc_msg_view v) {
  return (uintptr_t)h | (uintptr_t)v;
}
static inline struct rc_hold *entry_hold(uintptr_t e) { return (struct rc_hold *)(e & ~(uintptr_t)1); }
static inline enum rc_msg_view entry_view(uintptr_t e) { return (enum rc_msg_view)(e & 1); }
static inline size_t entry_len(uintptr_t e) {
  return rc_msg_view_len(entry_hold(e)->msg, entry_view(e));
}

struct rc_hold *rc_hold_create(struct rc_shard *sh, struct rc_msg *m) {
  struct rc_hold *h = rc_pool_get(&sh->hold_pool);
  if (!h) return NULL;
  h->msg = m;
  h->refs = 1;
  return h;
}

void rc_hold_unref(struct rc_shard *sh, struct rc_hold *h) {
  if (--h->refs) return;
  struct rc_msg *m = h->msg;
  rc_pool_put(&sh->hold_pool, h);
  rc_fanout_release(sh, m);
}

static void mark_dirty(struct rc_shard *sh, struct rc_conn *c) {
  /* A send in flight picks up new entries when it completes. */
  if (c->flags & (RC_CF_DIRTY | RC_CF_SEND_INFLIGHT)) return;
  c->flags |= RC_CF_DIRTY;
  c->next_dirty = sh->dirty_head;
  sh->dirty_head = c;
}

static int outq_push(struct rc_shard *sh, struct rc_conn *c, struct rc_hold *h,
                     enum rc_msg_view v) {
  struct rc_outq *q = &c->q;
  if (!q->tail || q->tail_i == RC_QCHUNK_ENTRIES) {
    struct rc_qchunk *ch = rc_pool_get(&sh->chunk_pool);
    if (!ch) return -ENOMEM;
    ch->next = NULL;
    if (q->tail) q->tail->next = ch;
    else q->head = ch;
    q->tail = ch;
    q->tail_i = 0;
    if (q->count == 0) q->head_i = 0;
  }
  q->tail->e[q->tail_i++] = entry_make(h, v);
  h->refs++;
  q->count++;
  q->bytes += rc_msg_view_len(h->msg, v);
  mark_dirty(sh, c);
  return 0;
}

/* Removes the head entry; the caller has accounted for its bytes. */
static void outq_pop(struct rc_shard *sh, struct rc_conn *c) {
  struct rc_outq *q = &c->q;
  uintptr_t e = q->head->e[q->head_i++];
  q->count--;
  q->off = 0;
  if (q->count == 0) {
    rc_pool_put(&sh->chunk_pool, q->head);
    q->head = q->tail = NULL;
    q->head_i = q->tail_i = 0;
  } else if (q->head_i == RC_QCHUNK_ENTRIES) {
    struct rc_qchunk *next = q->head->next;
    rc_pool_put(&sh->chunk_pool, q->head);
    q->head = next;
    q->head_i = 0;
  }
  rc_hold_unref(sh, entry_hold(e));
}

/* Drops every entry after the first `keep` (those a send in flight covers).
 * Chunk indexes wrap lazily: (chunk, RC_QCHUNK_ENTRIES) means "end of chunk". */
static void outq_truncate(struct rc_shard *sh, struct rc_conn *c, uint32_t keep) {
  struct rc_outq *q = &c->q;
  if (keep >= q->count) return;
  struct rc_qchunk *ch = q->head;
  unsigned i = q->head_i;
  for (uint32_t k = 0; k < keep; k++) {
    if (i == RC_QCHUNK_ENTRIES) {
      ch = ch->next;
      i = 0;
    }
    i++;
  }
  struct rc_qchunk *last_kept = keep ? ch : NULL;
  unsigned last_kept_i = i;
  uint32_t dropped = q->count - keep;
  for (uint32_t k = 0; k < dropped; k++) {
    if (i == RC_QCHUNK_ENTRIES) {
      ch = ch->next;
      i = 0;
    }
    uintptr_t e = ch->e[i++];
    size_t len = entry_len(e) - (keep == 0 && k == 0 ? q->off : 0);
    q->bytes -= len;
    rc_hold_unref(sh, entry_hold(e));
  }
  struct rc_qchunk *doomed = last_kept ? last_kept->next : q->head;
  while (doomed) {
    struct rc_qchunk *next = doomed->next;
    rc_pool_put(&sh->chunk_pool, doomed);
    doomed = next;
  }
  q->count = keep;
  if (last_kept) {
    last_kept->next = NULL;
    q->tail = last_kept;
    q->tail_i = (uint16_t)last_kept_i;
  } else {
    q->head = q->tail = NULL;
    q->head_i = q->tail_i = 0;
    q->off = 0;
    q->bytes = 0;
  }
}

void rc_conn_peer_text(const struct rc_conn *c, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (c->peer.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &c->peer.v4.sin_addr, ip, sizeof ip);
    port = ntohs(c->peer.v4.sin_port);
    snprintf(out, size, "%s:%u", ip, port);
  } else if (c->peer.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &c->peer.v6.sin6_addr, ip, sizeof ip);
    port = ntohs(c->peer.v6.sin6_port);
    snprintf(out, size, "[%s]:%u", ip, port);
  } else {
    snprintf(out, size, "unknown");
  }
}

static void slow_consumer(struct rc_shard *sh, struct rc_conn *c, size_t adding) {
  RC_METRIC_ADD(&sh->metrics, slow_disconnects, 1);
  char peer[64];
  rc_conn_peer_text(c, peer, sizeof peer);
  rc_info("slow consumer %s: %llu bytes queued + %zu > --max-queue %llu; closing with 1008",
          peer, (unsigned long long)(c->q.bytes - (c->send ? c->send->bytes : 0)), adding,
          (unsigned long long)sh->srv->cfg->max_queue);
  rc_conn_close(sh, c, RC_WS_CLOSE_POLICY, "slow consumer: send queue exceeded --max-queue", true);
}

/* --max-queue bounds the bytes waiting behind the send in flight: those already
 * handed to the kernel are the socket buffer's business. A single message larger
 * than the limit may still go out on an empty queue. */
static bool over_limit(struct rc_shard *sh, struct rc_conn *c, size_t len) {
  uint64_t waiting = c->q.bytes - (c->send ? c->send->bytes : 0);
  return c->q.count && waiting > 0 && waiting + len > sh->srv->cfg->max_queue;
}

void rc_conn_enqueue(struct rc_shard *sh, struct rc_conn *c, struct rc_hold *h,
                     enum rc_msg_view v) {
  if (c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN)) return;
  size_t len = rc_msg_view_len(h->msg, v);
  if (over_limit(sh, c, len)) {
    slow_consumer(sh, c, len);
    return;
  }
  if (outq_push(sh, c, h, v) < 0) rc_conn_abort(sh, c);
}

int rc_conn_send_msg(struct rc_shard *sh, struct rc_conn *c, struct rc_msg *m) {
  if (c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN)) {
    rc_msg_destroy(m);
    return 0;
  }
  struct rc_hold *h = rc_hold_create(sh, m);
  if (!h) {
    rc_msg_destroy(m);
    rc_conn_abort(sh, c);
    return -ENOMEM;
  }
  int ret = 0;
  if (over_limit(sh, c, m->env_len)) {
    slow_consumer(sh, c, m->env_len);
  } else if (outq_push(sh, c, h, RC_VIEW_ENVELOPE) < 0) {
    rc_conn_abort(sh, c);
    ret = -ENOMEM;
  }
  rc_hold_unref(sh, h);
  return ret;
}

int rc_conn_send_text(struct rc_shard *sh, struct rc_conn *c, const char *s, size_t len) {
  struct rc_msg *m = rc_msg_create_ws((uint16_t)sh->id, RC_WS_OP_TEXT, s, len);
  if (!m) {
    rc_conn_abort(sh, c);
    return -ENOMEM;
  }
  return rc_conn_send_msg(sh, c, m);
}

static void start_send(struct rc_shard *sh, struct rc_conn *c) {
  struct rc_sendop *s = rc_pool_get(&sh->send_pool);
  if (!s) {
    rc_conn_abort(sh, c);
    return;
  }
  struct rc_outq *q = &c->q;
  struct rc_qchunk *ch = q->head;
  unsigned i = q->head_i;
  int niov = 0;
  uint32_t bytes = 0;
  uint32_t k = 0;
  for (; k < q->count && niov + 2 <= RC_SEND_IOV && bytes < SEND_MAX_BYTES; k++) {
    if (i == RC_QCHUNK_ENTRIES) {
      ch = ch->next;
      i = 0;
    }
    uintptr_t e = ch->e[i++];
    struct iovec v[2];
    int n = rc_msg_view_iov(entry_hold(e)->msg, entry_view(e), v);
    size_t skip = k == 0 ? q->off : 0;
    for (int j = 0; j < n; j++) {
      if (skip >= v[j].iov_len) {
        skip -= v[j].iov_len;
        continue;
      }
      s->iov[niov].iov_base = (uint8_t *)v[j].iov_base + skip;
      s->iov[niov].iov_len = v[j].iov_len - skip;
      bytes += (uint32_t)s->iov[niov].iov_len;
      niov++;
      skip = 0;
    }
  }
  memset(&s->mh, 0, sizeof s->mh);
  s->mh.msg_iov = s->iov;
  s->mh.msg_iovlen = (size_t)niov;
  s->bytes = bytes;
  s->entries = k;
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  /* MSG_WAITALL: the kernel keeps sending after a partial write, so the
   * completion is all or an error; one send in flight keeps bytes in order.
   * A single buffer goes out as a plain send, which spares the kernel copying
   * and checking a msghdr and iovec (about 5% of the per-send cost, measured
   * with perf at one frame per send). */
  if (niov == 1)
    io_uring_prep_send(sqe, (int)rc_conn_slot(sh, c), s->iov[0].iov_base, s->iov[0].iov_len,
                       MSG_WAITALL);
  else
    io_uring_prep_sendmsg(sqe, (int)rc_conn_slot(sh, c), &s->mh, MSG_WAITALL);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_SEND, c->gen, rc_conn_slot(sh, c)));
  c->send = s;
  c->flags |= RC_CF_SEND_INFLIGHT;
}

void rc_conn_flush(struct rc_shard *sh) {
  while (sh->dirty_head) {
    struct rc_conn *c = sh->dirty_head;
    sh->dirty_head = c->next_dirty;
    c->next_dirty = NULL;
    c->flags &= (uint16_t)~RC_CF_DIRTY;
    if (c->flags & (RC_CF_SEND_INFLIGHT | RC_CF_TEARDOWN) || c->q.count == 0) continue;
    start_send(sh, c);
  }
}

/* Everything, the close frame or error response included, is written: shut the
 * write side and wait (until the close deadline) for the peer to close its side,
 * discarding what it still sends. Closing at once would turn unread input into a
 * reset, which can destroy the close frame or response before the peer reads it. */
static void linger(struct rc_shard *sh, struct rc_conn *c) {
  if (!(c->flags & RC_CF_RECV_ARMED)) {
    rc_conn_abort(sh, c);
    return;
  }
  if (c->flags & RC_CF_LINGER) return;
  c->flags |= RC_CF_LINGER | RC_CF_SHUT_INFLIGHT;
  /* IORING_OP_SHUTDOWN always runs in an io-wq worker, which looks the fixed
   * slot up only when it runs: the slot may not be closed (and reused by an
   * accept) before this completes, so its completion is awaited. */
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  io_uring_prep_shutdown(sqe, (int)rc_conn_slot(sh, c), SHUT_WR);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_SHUTDOWN, c->gen, rc_conn_slot(sh, c)));
}

void rc_conn_on_send(struct rc_shard *sh, struct rc_conn *c, int res) {
  struct rc_sendop *s = c->send;
  c->send = NULL;
  c->flags &= (uint16_t)~RC_CF_SEND_INFLIGHT;
  uint32_t asked = s->bytes;
  rc_pool_put(&sh->send_pool, s);
  uint64_t left = res > 0 ? (uint64_t)res : 0;
  uint64_t frames = 0;
  RC_METRIC_ADD(&sh->metrics, bytes_delivered, left);
  RC_METRIC_ADD(&sh->metrics, sends, 1);
  while (left && c->q.count) {
    struct rc_outq *q = &c->q;
    size_t rest = entry_len(q->head->e[q->head_i]) - q->off;
    if (left < rest) {
      q->off += (uint32_t)left;
      q->bytes -= left;
      break;
    }
    left -= rest;
    q->bytes -= rest;
    outq_pop(sh, c);
    frames++;
  }
  RC_METRIC_ADD(&sh->metrics, frames_delivered, frames);
  if (c->flags & RC_CF_TEARDOWN) {
    rc_conn_maybe_release(sh, c);
    return;
  }
  if (res < 0 || (uint32_t)res < asked) {
    /* A stream cannot resume mid-frame after an error. */
    if (res != -ECANCELED && res != -EPIPE && res != -ECONNRESET)
      rc_debug("send on slot %u failed: %s", rc_conn_slot(sh, c), strerror(res < 0 ? -res : EIO));
    rc_conn_abort(sh, c);
    return;
  }
  if (c->q.count) mark_dirty(sh, c);
  else if (c->flags & RC_CF_CLOSING) linger(sh, c);
}

void rc_conn_close(struct rc_shard *sh, struct rc_conn *c, unsigned code, const char *reason,
                   bool drop_queued) {
  if (c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN)) return;
  c->flags |= RC_CF_CLOSING;
  sh->n_closing++;
  c->close_deadline_ms = sh->now_ms + CLOSE_GRACE_MS;
  /* Keep what the in-flight send covers: its bytes are already promised. */
  if (drop_queued) outq_truncate(sh, c, c->send ? c->send->entries : 0);
  rc_shard_defer(sh, c);
  if (c->state == RC_CONN_WS && code) {
    struct rc_msg *m = rc_msg_create_close((uint16_t)sh->id, code, reason);
    struct rc_hold *h = m ? rc_hold_create(sh, m) : NULL;
    if (!h) {
      if (m) rc_msg_destroy(m);
      rc_conn_abort(sh, c);
      return;
    }
    if (outq_push(sh, c, h, RC_VIEW_ENVELOPE) < 0) rc_conn_abort(sh, c);
    rc_hold_unref(sh, h);
  }
  if (!(c->flags & RC_CF_SEND_INFLIGHT) && c->q.count == 0) linger(sh, c);
}

void rc_conn_abort(struct rc_shard *sh, struct rc_conn *c) {
  if (c->flags & RC_CF_TEARDOWN) return;
  c->flags |= RC_CF_TEARDOWN;
  rc_shard_defer(sh, c);
}

void rc_conn_maybe_release(struct rc_shard *sh, struct rc_conn *c) {
  if (!(c->flags & RC_CF_TEARDOWN) ||
      (c->flags & (RC_CF_RECV_ARMED | RC_CF_SEND_INFLIGHT | RC_CF_SHUT_INFLIGHT)) ||
      (c->flags & RC_CF_CLOSE_SUBMITTED) || (c->flags & RC_CF_PENDING))
    return;
  /* Every operation on the slot has posted its last completion, so the slot can
   * be closed and reused by the next accept. */
  struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
  io_uring_prep_close_direct(sqe, rc_conn_slot(sh, c));
  io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_CLOSE, c->gen, rc_conn_slot(sh, c)));
  c->flags |= RC_CF_CLOSE_SUBMITTED;
}

void rc_conn_free(struct rc_shard *sh, struct rc_conn *c) {
  while (c->q.count) outq_pop(sh, c);
  rc_buf_free(&c->in);
  rc_buf_free(&c->msg);
  free(c->subs);
  if (c->flags & RC_CF_CLOSING) sh->n_closing--;
  uint32_t gen = c->gen;
  memset(c, 0, sizeof *c);
  c->gen = (gen + 1) & 0xffffffu;
  sh->n_conns--;
  RC_METRIC_SUB(&sh->metrics, conns_open, 1);
}

int rc_buf_append(struct rc_buf *b, const void *p, size_t n, size_t max) {
  if ((size_t)b->len + n > max) return -EMSGSIZE;
  if (n == 0) return 0; /* an empty fragment: nothing to copy, and b->p may be NULL */
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    if (cap > max) cap = max;
    uint8_t *np = realloc(b->p, cap);
    if (!np) return -ENOMEM;
    b->p = np;
    b->cap = (uint32_t)cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += (uint32_t)n;
  return 0;
}

void rc_buf_consume(struct rc_buf *b, size_t n) {
  if (n >= b->len) {
    rc_buf_free(b);
    return;
  }
  memmove(b->p, b->p + n, b->len - n);
  b->len -= (uint32_t)n;
}

void rc_buf_free(struct rc_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}
