/* SPDX-License-Identifier: MIT */
/* The per-message path. A publish goes to its topic's home shard, which stamps
 * the sequence number, encodes the frame once, queues it to its own subscribers
 * and adds it to one batch per other interested shard; batches travel through the
 * destination's MPSC inbox, and a doorbell wakes the destination only if it sleeps.
 * Per subscriber the cost is one queue entry and a plain increment. */
#include "ringcast/fanout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "ringcast/conn.h"
#include "ringcast/log.h"
#include "ringcast/shard.h"
#include "ringcast/topic.h"

#define BATCH_CAP 256

struct rc_pubreq {
  struct rc_inbox_item item;
  struct rc_topic *topic;
  uint32_t len;
  uint8_t cls;
  uint8_t data[];
};

struct rc_batch {
  struct rc_inbox_item item;
  uint32_t n;
  struct rc_msg *msgs[BATCH_CAP];
};

void rc_fanout_release(struct rc_shard *sh, struct rc_msg *m) {
  if (!rc_msg_shard_unref(m)) return;
  if (m->owner == sh->id) {
    rc_msg_destroy(m);
    return;
  }
  /* Freed by the shard that allocated it, so jemalloc frees on the allocating
   * thread. Not rung: the owner drains it on its next turn. */
  rc_mpsc_push(&sh->srv->shards[m->owner]->inbox, &m->item.node);
}

/* Queues m to this shard's subscribers of tp; consumes one shard reference. */
static void deliver_local(struct rc_shard *sh, struct rc_topic *tp, struct rc_msg *m) {
  struct rc_sublist *l = &tp->local[sh->id];
  if (l->n == 0) {
    rc_fanout_release(sh, m);
    return;
  }
  struct rc_hold *h = rc_hold_create(sh, m);
  if (!h) {
    rc_err("out of memory delivering %s seq %llu", tp->name, (unsigned long long)m->seq);
    rc_fanout_release(sh, m);
    return;
  }
  for (uint32_t i = 0; i < l->n; i++) {
    struct rc_conn *c = l->v[i].conn;
    rc_conn_enqueue(sh, c, h, (c->flags & RC_CF_RAW) ? RC_VIEW_RAW : RC_VIEW_ENVELOPE);
  }
  rc_hold_unref(sh, h);
}

static void push_batch(struct rc_shard *sh, unsigned dest) {
  struct rc_batch *b = sh->out_batch[dest];
  sh->out_batch[dest] = NULL;
  rc_mpsc_push(&sh->srv->shards[dest]->inbox, &b->item.node);
  sh->doorbells |= 1ull << dest;
}

static void batch_add(struct rc_shard *sh, unsigned dest, struct rc_msg *m) {
  struct rc_batch *b = sh->out_batch[dest];
  if (b && b->n == BATCH_CAP) {
    push_batch(sh, dest);
    b = NULL;
  }
  if (!b) {
    b = malloc(sizeof *b);
    if (!b) {
      rc_err("out of memory batching to shard %u", dest);
      rc_fanout_release(sh, m); /* the reference that was meant for dest */
      return;
    }
    b->item.kind = RC_INBOX_FANOUT;
    b->n = 0;
    sh->out_batch[dest] = b;
  }
  b->msgs[b->n++] = m;
}

static int home_publish(struct rc_shard *sh, struct rc_topic *tp, const uint8_t *payload,
                        size_t len, enum rc_payload_class cls) {
  struct rc_msg *m = rc_msg_create_published((uint16_t)sh->id, tp, tp->seq + 1, payload, len, cls);
  if (!m) {
    rc_err("out of memory encoding a message for %s", tp->name);
    return -ENOMEM;
  }
  tp->seq++;
  RC_METRIC_ADD(&sh->metrics, messages_published, 1);
  /* seq_cst pairs with the subscriber shard's fetch_or: a subscription that was
   * acknowledged before this publish arrived is seen here. */
  uint64_t others = atomic_load_explicit(&tp->interest, memory_order_seq_cst) &
                    ~(1ull << sh->id);
  /* All references exist before any other shard can see the message. */
  atomic_store_explicit(&m->shard_refs, 1u + (uint32_t)__builtin_popcountll(others),
                        memory_order_relaxed);
  while (others) {
    unsigned d = (unsigned)__builtin_ctzll(others);
    others &= others - 1;
    batch_add(sh, d, m);
  }
  deliver_local(sh, tp, m);
  return 0;
}

int rc_fanout_publish(struct rc_shard *sh, struct rc_topic *tp, const uint8_t *payload,
                      size_t len) {
  enum rc_payload_class cls = rc_payload_classify(payload, len);
  if (tp->home == sh->id) return home_publish(sh, tp, payload, len, cls);
  struct rc_pubreq *r = malloc(sizeof *r + len);
  if (!r) return -ENOMEM;
  r->item.kind = RC_INBOX_PUBLISH;
  r->topic = tp;
  r->len = (uint32_t)len;
  r->cls = (uint8_t)cls;
  memcpy(r->data, payload, len);
  rc_mpsc_push(&sh->srv->shards[tp->home]->inbox, &r->item.node);
  sh->doorbells |= 1ull << tp->home;
  return 0;
}

void rc_fanout_drain_inbox(struct rc_shard *sh) {
  struct rc_mpsc_node *n;
  while ((n = rc_mpsc_try_pop(&sh->inbox))) {
    struct rc_inbox_item *it = (struct rc_inbox_item *)n;
    switch (it->kind) {
    case RC_INBOX_PUBLISH: {
      struct rc_pubreq *r = (struct rc_pubreq *)it;
      (void)home_publish(sh, r->topic, r->data, r->len, (enum rc_payload_class)r->cls);
      free(r);
      break;
    }
    case RC_INBOX_FANOUT: {
      struct rc_batch *b = (struct rc_batch *)it;
      for (uint32_t i = 0; i < b->n; i++) deliver_local(sh, b->msgs[i]->topic, b->msgs[i]);
      free(b);
      break;
    }
    case RC_INBOX_RETURN:
      rc_msg_destroy((struct rc_msg *)it);
      break;
    default:
      rc_err("inbox item of unknown kind %u", it->kind);
      abort();
    }
  }
}

void rc_fanout_flush_batches(struct rc_shard *sh) {
  for (unsigned d = 0; d < sh->srv->nshards; d++)
    if (sh->out_batch[d]) push_batch(sh, d);
  if (!sh->doorbells) return;
  /* seq_cst fence between our pushes and the loads of `sleeping`: the producer
   * half of the sleep handshake (the consumer stores sleeping, fences, then
   * checks its inbox). Without it both sides could miss each other. */
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t bells = sh->doorbells;
  sh->doorbells = 0;
  while (bells) {
    unsigned d = (unsigned)__builtin_ctzll(bells);
    bells &= bells - 1;
    struct rc_shard *t = sh->srv->shards[d];
    if (d == sh->id || !atomic_load_explicit(&t->sleeping, memory_order_seq_cst)) continue;
    /* One doorbell per sleep, however many producers ring. */
    if (atomic_exchange_explicit(&t->doorbell_pending, 1, memory_order_acq_rel)) continue;
    if (sh->use_msg_ring) {
      struct io_uring_sqe *sqe = rc_shard_get_sqe(sh);
      io_uring_prep_msg_ring(sqe, t->ring_fd, 0, rc_ud(RC_OP_DOORBELL, 0, sh->id), 0);
      /* Only a failure posts a completion on our ring. */
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
      io_uring_sqe_set_data64(sqe, rc_ud(RC_OP_MSG_SENT, 0, d));
    } else {
      (void)!eventfd_write(t->event_fd, 1); /* a full counter still wakes it */
    }
  }
}

int rc_fanout_subscribe(struct rc_shard *sh, struct rc_conn *c, struct rc_topic *tp) {
  for (uint16_t i = 0; i < c->n_subs; i++)
    if (c->subs[i].topic == tp) return -EEXIST;
  if (c->n_subs >= RC_MAX_SUBS_PER_CONN) return -EMLINK;
  if (c->n_subs == c->cap_subs) {
    uint16_t cap = c->cap_subs ? (uint16_t)(c->cap_subs * 2) : 1;
    struct rc_sub *v = realloc(c->subs, cap * sizeof *v);
    if (!v) return -ENOMEM;
    c->subs = v;
    c->cap_subs = cap;
  }
  int idx = rc_topic_local_add(tp, sh->id, c, c->n_subs);
  if (idx < 0) return idx;
  c->subs[c->n_subs++] = (struct rc_sub){.topic = tp, .list_idx = (uint32_t)idx};
  return 0;
}

static void remove_sub(struct rc_shard *sh, struct rc_conn *c, uint16_t i) {
  struct rc_sub s = c->subs[i];
  struct rc_subref moved = rc_topic_local_remove(s.topic, sh->id, s.list_idx);
  if (moved.conn) moved.conn->subs[moved.sub_idx].list_idx = s.list_idx;
  uint16_t last = (uint16_t)(c->n_subs - 1);
  if (i != last) {
    c->subs[i] = c->subs[last];
    c->subs[i].topic->local[sh->id].v[c->subs[i].list_idx].sub_idx = i;
  }
  c->n_subs--;
}

int rc_fanout_unsubscribe(struct rc_shard *sh, struct rc_conn *c, struct rc_topic *tp) {
  for (uint16_t i = 0; i < c->n_subs; i++) {
    if (c->subs[i].topic == tp) {
      remove_sub(sh, c, i);
      return 0;
    }
  }
  return -ENOENT;
}

void rc_fanout_unsubscribe_all(struct rc_shard *sh, struct rc_conn *c) {
  while (c->n_subs) remove_sub(sh, c, (uint16_t)(c->n_subs - 1));
  free(c->subs);
  c->subs = NULL;
  c->cap_subs = 0;
}

void rc_fanout_drain_at_exit(struct rc_shard *sh) {
  for (unsigned d = 0; d < sh->srv->nshards; d++) {
    struct rc_batch *b = sh->out_batch[d];
    if (!b) continue;
    for (uint32_t i = 0; i < b->n; i++)
      if (rc_msg_shard_unref(b->msgs[i])) rc_msg_destroy(b->msgs[i]);
    free(b);
    sh->out_batch[d] = NULL;
  }
  struct rc_mpsc_node *n;
  while ((n = rc_mpsc_try_pop(&sh->inbox))) {
    struct rc_inbox_item *it = (struct rc_inbox_item *)n;
    if (it->kind == RC_INBOX_FANOUT) {
      struct rc_batch *b = (struct rc_batch *)it;
      for (uint32_t i = 0; i < b->n; i++)
        if (rc_msg_shard_unref(b->msgs[i])) rc_msg_destroy(b->msgs[i]);
    }
    if (it->kind == RC_INBOX_RETURN) rc_msg_destroy((struct rc_msg *)it);
    else free(it);
  }
}
