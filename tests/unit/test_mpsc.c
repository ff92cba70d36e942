/* SPDX-License-Identifier: MIT */
/* The MPSC queue on one thread; the multi-producer stress run is in
 * tests/tsan/stress_threads.c (built with ThreadSanitizer by scripts/test.sh). */
#include <criterion/criterion.h>

#include "ringcast/util/mpsc.h"

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
