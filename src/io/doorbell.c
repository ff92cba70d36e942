/* SPDX-License-Identifier: MIT */
/* The consumer's and the producer's halves of the sleep handshake: a Dekker pair
 * over the state word and the work queue, with seq_cst fences on both sides. */
#include "ringcast/io/doorbell.h"

void rc_doorbell_init(struct rc_doorbell *d) { atomic_init(&d->state, RC_DOORBELL_AWAKE); }

void rc_doorbell_prepare_sleep(struct rc_doorbell *d) {
  atomic_store_explicit(&d->state, RC_DOORBELL_SLEEPING, memory_order_seq_cst);
  atomic_thread_fence(memory_order_seq_cst);
}

void rc_doorbell_awake(struct rc_doorbell *d) {
  atomic_store_explicit(&d->state, RC_DOORBELL_AWAKE, memory_order_relaxed);
}

bool rc_doorbell_claim(struct rc_doorbell *d) {
  int expected = RC_DOORBELL_SLEEPING;
  return atomic_compare_exchange_strong_explicit(&d->state, &expected, RC_DOORBELL_RUNG,
                                                 memory_order_seq_cst, memory_order_seq_cst);
}
