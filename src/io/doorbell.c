/* SPDX-License-Identifier: MIT */
/* The consumer's and the producer's halves of the sleep handshake (a Dekker pair
 * over `sleeping` and the work queue, with seq_cst fences on both sides). */
#include "ringcast/io/doorbell.h"

void rc_doorbell_init(struct rc_doorbell *d) {
  atomic_init(&d->sleeping, 0);
  atomic_init(&d->rung, 0);
}

void rc_doorbell_prepare_sleep(struct rc_doorbell *d) {
  atomic_store_explicit(&d->sleeping, 1, memory_order_seq_cst);
  atomic_thread_fence(memory_order_seq_cst);
}

void rc_doorbell_awake(struct rc_doorbell *d) {
  atomic_store_explicit(&d->sleeping, 0, memory_order_relaxed);
  /* Release: a producer that sees rung == 0 also sees sleeping == 0 or a newer
   * announcement; a stale ring in between only costs a spare wake-up. */
  atomic_store_explicit(&d->rung, 0, memory_order_release);
}

bool rc_doorbell_claim(struct rc_doorbell *d) {
  if (!atomic_load_explicit(&d->sleeping, memory_order_seq_cst)) return false;
  return atomic_exchange_explicit(&d->rung, 1, memory_order_acq_rel) == 0;
}
