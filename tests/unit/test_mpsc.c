/* SPDX-License-Identifier: MIT */
/* The MPSC queue, single-threaded and under a multi-producer stress run (also
 * built with ThreadSanitizer by scripts/test.sh). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "ringcast/mpsc.h"

struct item {
  struct rc_mpsc_node node;
  unsigned producer;
  unsigned seq;
};

Test(mpsc, fifo_single_thread) {
  struct rc_mpsc q;
  rc_mpsc_init(&q);
  cr_assert(rc_mpsc_is_empty(&q));
  cr_assert_null(rc_mpsc_try_pop(&q));
  struct item it[5];
  for (unsigned i = 0; i < 5; i++) {
    it[i].seq = i;
    rc_mpsc_push(&q, &it[i].node);
  }
  cr_assert_not(rc_mpsc_is_empty(&q));
  for (unsigned i = 0; i < 5; i++) {
    struct item *x = (struct item *)rc_mpsc_try_pop(&q);
    cr_assert_not_null(x);
    cr_assert_eq(x->seq, i);
  }
  cr_assert_null(rc_mpsc_try_pop(&q));
  cr_assert(rc_mpsc_is_empty(&q));
  rc_mpsc_push(&q, &it[0].node);
  cr_assert_eq((struct item *)rc_mpsc_try_pop(&q), &it[0], "reusable after draining");
}

#define PRODUCERS 4
#define PER_PRODUCER 100000

struct stress {
  struct rc_mpsc q;
  struct item *items;
  unsigned id;
};

static struct rc_mpsc stress_q;
static struct item *stress_items;

static void *produce(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < PER_PRODUCER; i++) {
    struct item *x = &stress_items[id * PER_PRODUCER + i];
    x->producer = id;
    x->seq = i;
    rc_mpsc_push(&stress_q, &x->node);
  }
  return NULL;
}

Test(mpsc, multi_producer_stress_keeps_per_producer_order, .timeout = 60) {
  rc_mpsc_init(&stress_q);
  stress_items = calloc(PRODUCERS * PER_PRODUCER, sizeof *stress_items);
  pthread_t th[PRODUCERS];
  for (unsigned i = 0; i < PRODUCERS; i++) pthread_create(&th[i], NULL, produce, (void *)(uintptr_t)i);
  unsigned next[PRODUCERS] = {0};
  unsigned total = 0;
  while (total < PRODUCERS * PER_PRODUCER) {
    struct item *x = (struct item *)rc_mpsc_try_pop(&stress_q);
    if (!x) continue;
    cr_assert_eq(x->seq, next[x->producer], "producer %u out of order", x->producer);
    next[x->producer]++;
    total++;
  }
  for (unsigned i = 0; i < PRODUCERS; i++) pthread_join(th[i], NULL);
  cr_assert_null(rc_mpsc_try_pop(&stress_q));
  cr_assert(rc_mpsc_is_empty(&stress_q));
  free(stress_items);
}
