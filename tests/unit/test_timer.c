/* SPDX-License-Identifier: MIT */
/* The timer wheel: timers fire at their tick, never early, once; re-arming and
 * cancelling work from callbacks; deadlines beyond one revolution wait; a long
 * stall fires everything due; next() finds the earliest slot. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ringcast/io/timer.h"

static struct rc_timer_wheel *wheel(uint64_t now) {
  struct rc_timer_wheel *w = malloc(sizeof *w);
  rc_timer_wheel_init(w, now);
  return w;
}

Test(timer, fires_in_order_never_early) {
  struct rc_timer_wheel *w = wheel(1000);
  struct rc_timer t[3] = {0};
  rc_timer_arm(w, &t[0], 1005);
  rc_timer_arm(w, &t[1], 1002);
  rc_timer_arm(w, &t[2], 1005);
  cr_assert_eq(rc_timer_wheel_next(w), 1002);
  cr_assert_null(rc_timer_wheel_pop(w, 1001));
  cr_assert_eq(rc_timer_wheel_pop(w, 1002), &t[1]);
  cr_assert_null(rc_timer_wheel_pop(w, 1004));
  struct rc_timer *a = rc_timer_wheel_pop(w, 1010), *b = rc_timer_wheel_pop(w, 1010);
  cr_assert((a == &t[0] && b == &t[2]) || (a == &t[2] && b == &t[0]));
  cr_assert_null(rc_timer_wheel_pop(w, 1010));
  cr_assert_not(rc_timer_is_armed(&t[0]));
  cr_assert_eq(rc_timer_wheel_next(w), UINT64_MAX);
  free(w);
}

Test(timer, rearm_and_cancel) {
  struct rc_timer_wheel *w = wheel(0);
  struct rc_timer t = {0}, u = {0};
  rc_timer_arm(w, &t, 10);
  rc_timer_arm(w, &t, 50); /* moves it */
  rc_timer_arm(w, &u, 20);
  rc_timer_cancel(w, &u);
  rc_timer_cancel(w, &u); /* twice is harmless */
  cr_assert_null(rc_timer_wheel_pop(w, 49));
  cr_assert_eq(rc_timer_wheel_pop(w, 50), &t);
  free(w);
}

Test(timer, past_due_fires_next_tick_not_in_a_loop) {
  struct rc_timer_wheel *w = wheel(100);
  struct rc_timer t = {0};
  cr_assert_null(rc_timer_wheel_pop(w, 100));
  rc_timer_arm(w, &t, 50);
  cr_assert_eq(rc_timer_wheel_pop(w, 101), &t);
  /* Re-armed "for now" while being handled: waits for the next tick. */
  rc_timer_arm(w, &t, 101);
  cr_assert_null(rc_timer_wheel_pop(w, 101));
  cr_assert_eq(rc_timer_wheel_pop(w, 102), &t);
  free(w);
}

Test(timer, beyond_one_revolution_fires_at_its_end) {
  struct rc_timer_wheel *w = wheel(0);
  struct rc_timer t = {0};
  uint64_t at = rc_timer_arm(w, &t, RC_TIMER_SLOTS * 3 + 17);
  cr_assert_eq(at, RC_TIMER_SLOTS - 1, "one revolution at most; the owner re-arms for the rest");
  for (uint64_t now = 0; now < at; now += 500) cr_assert_null(rc_timer_wheel_pop(w, now));
  cr_assert_null(rc_timer_wheel_pop(w, at - 1));
  cr_assert_eq(rc_timer_wheel_pop(w, at), &t);
  free(w);
}

Test(timer, a_full_slot_drains_while_callbacks_rearm) {
  struct rc_timer_wheel *w = wheel(0);
  static struct rc_timer t[50];
  for (int i = 0; i < 50; i++) rc_timer_arm(w, &t[i], 7);
  int fired = 0;
  struct rc_timer *x;
  while ((x = rc_timer_wheel_pop(w, 7))) {
    fired++;
    rc_timer_arm(w, x, 7); /* "again now": the next tick, not this pass */
  }
  cr_assert_eq(fired, 50);
  cr_assert_eq(w->count, 50);
  cr_assert_eq(rc_timer_wheel_next(w), 8);
  free(w);
}

Test(timer, long_stall_fires_everything_due_once) {
  struct rc_timer_wheel *w = wheel(0);
  enum { N = 1000 };
  static struct rc_timer t[N];
  for (int i = 0; i < N; i++) rc_timer_arm(w, &t[i], 1 + (uint64_t)i * 37);
  int fired = 0;
  while (rc_timer_wheel_pop(w, 10 * RC_TIMER_SLOTS)) fired++;
  cr_assert_eq(fired, N);
  cr_assert_eq(w->count, 0);
  free(w);
}

Test(timer, next_wraps_around_the_wheel) {
  struct rc_timer_wheel *w = wheel(RC_TIMER_SLOTS - 3);
  struct rc_timer t = {0};
  rc_timer_arm(w, &t, RC_TIMER_SLOTS + 5);
  cr_assert_eq(rc_timer_wheel_next(w), RC_TIMER_SLOTS + 5);
  cr_assert_eq(rc_timer_wheel_pop(w, RC_TIMER_SLOTS + 5), &t);
  free(w);
}

Test(timer, ceil_never_early) {
  cr_assert_eq(rc_timer_tick_ceil(0), 0);
  cr_assert_eq(rc_timer_tick_ceil(1), 1);
  cr_assert_eq(rc_timer_tick_ceil(RC_TIMER_TICK_MS), 1);
  cr_assert_eq(rc_timer_tick_ceil(RC_TIMER_TICK_MS + 1), 2);
}
