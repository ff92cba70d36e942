/* SPDX-License-Identifier: MIT */
/* The sleep/wake handshake, step by step (the cross-thread stress is in
 * tests/tsan/stress_threads.c). */
#include <criterion/criterion.h>

#include "ringcast/io/doorbell.h"

Test(doorbell, rings_only_a_sleeper_and_once_per_sleep) {
  struct rc_doorbell d;
  rc_doorbell_init(&d);
  cr_assert_not(rc_doorbell_claim(&d), "an awake shard is not rung");
  rc_doorbell_prepare_sleep(&d);
  cr_assert(rc_doorbell_claim(&d), "the first producer rings a sleeper");
  cr_assert_not(rc_doorbell_claim(&d), "later producers do not ring again");
  rc_doorbell_awake(&d);
  cr_assert_not(rc_doorbell_claim(&d));
}

/* The lost wake-up: the shard announced sleep, a producer rang, the shard found
 * the work itself and went on without waiting. Its next sleep must be ringable. */
Test(doorbell, work_found_after_announcing_sleep_does_not_eat_the_next_ring) {
  struct rc_doorbell d;
  rc_doorbell_init(&d);
  rc_doorbell_prepare_sleep(&d);
  cr_assert(rc_doorbell_claim(&d));
  rc_doorbell_awake(&d); /* work turned up: no wait */
  rc_doorbell_prepare_sleep(&d);
  cr_assert(rc_doorbell_claim(&d), "the next sleep is rung again");
}
