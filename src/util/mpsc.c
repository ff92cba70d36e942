/* SPDX-License-Identifier: MIT */
/* Vyukov's intrusive MPSC queue. The consumer may see a producer half-way
 * (head exchanged, link not yet stored): try_pop then returns NULL and is_empty
 * false, so the consumer neither loses the node nor goes to sleep on it. */
#include "ringcast/util/mpsc.h"

#include <stddef.h>

void rc_mpsc_init(struct rc_mpsc *q) {
  atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
  atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
  q->tail = &q->stub;
}

void rc_mpsc_push(struct rc_mpsc *q, struct rc_mpsc_node *node) {
  atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
  /* acq_rel: release publishes the node's contents to the consumer; acquire
   * orders our link store after the previous producer's exchange. */
  struct rc_mpsc_node *prev = atomic_exchange_explicit(&q->head, node, memory_order_acq_rel);
  /* Release pairs with the consumer's acquire load of next. */
  atomic_store_explicit(&prev->next, node, memory_order_release);
}

struct rc_mpsc_node *rc_mpsc_try_pop(struct rc_mpsc *q) {
  struct rc_mpsc_node *tail = q->tail;
  struct rc_mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &q->stub) {
    if (!next) return NULL;
    q->tail = next;
    tail = next;
    next = atomic_load_explicit(&next->next, memory_order_acquire);
  }
  if (next) {
    q->tail = next;
    return tail;
  }
  struct rc_mpsc_node *head = atomic_load_explicit(&q->head, memory_order_acquire);
  if (tail != head) return NULL; /* a producer is between its two steps */
  rc_mpsc_push(q, &q->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next) {
    q->tail = next;
    return tail;
  }
  return NULL;
}

bool rc_mpsc_is_empty(struct rc_mpsc *q) {
  /* seq_cst: this load is the consumer's half of the sleep handshake (store
   * sleeping, fence, load head), paired with the producer's fence after push. */
  struct rc_mpsc_node *head = atomic_load_explicit(&q->head, memory_order_seq_cst);
  return head == q->tail && atomic_load_explicit(&q->tail->next, memory_order_acquire) == NULL;
}
