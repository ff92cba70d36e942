/* SPDX-License-Identifier: MIT */
/* Intrusive multi-producer single-consumer queue (Vyukov's node-based design):
 * push is wait-free (one exchange and one store), pop needs no atomic
 * read-modify-write. Unbounded, so a shard never blocks on another shard. */
#ifndef RINGCAST_MPSC_H
#define RINGCAST_MPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>

struct rc_mpsc_node {
  _Atomic(struct rc_mpsc_node *) next;
};

struct rc_mpsc {
  /* Producers exchange head; the consumer alone walks tail. Separate cache lines
   * so producers do not slow the consumer's reads. */
  alignas(64) _Atomic(struct rc_mpsc_node *) head;
  alignas(64) struct rc_mpsc_node *tail;
  struct rc_mpsc_node stub;
};

void rc_mpsc_init(struct rc_mpsc *q);
/* Any thread. The node must stay valid until popped. */
void rc_mpsc_push(struct rc_mpsc *q, struct rc_mpsc_node *node);
/* Consumer thread only. Returns the oldest node, or NULL when empty or when a
 * producer is between its two steps (the caller retries on its next turn). */
struct rc_mpsc_node *rc_mpsc_try_pop(struct rc_mpsc *q);
/* Consumer thread only, seq_cst: false if anything was pushed, even half-way. Used
 * in the sleep handshake. */
bool rc_mpsc_is_empty(struct rc_mpsc *q);

#endif
