/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/util/hist.h"

static const struct rc_hist_scale tens = {.n = 3, .unit = 1, .upper = {10, 20, 30}};

Test(hist, buckets_hold_values_up_to_their_bound) {
  struct rc_hist h;
  memset(&h, 0, sizeof h);
  uint64_t v[] = {0, 10, 11, 20, 30, 31, 1000};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) rc_hist_observe(&h, &tens, v[i]);
  struct rc_hist_snapshot s = {0};
  rc_hist_merge(&s, &h, &tens);
  cr_assert_eq(s.bucket[0], 2);  /* 0, 10 */
  cr_assert_eq(s.bucket[1], 2);  /* 11, 20 */
  cr_assert_eq(s.bucket[2], 1);  /* 30 */
  cr_assert_eq(s.bucket[3], 2);  /* above every bound */
  cr_assert_eq(s.count, 7);
  cr_assert_eq(s.sum, 1102);
}

Test(hist, merge_adds_shards) {
  struct rc_hist a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  rc_hist_observe(&a, &tens, 5);
  rc_hist_observe(&b, &tens, 25);
  rc_hist_observe(&b, &tens, 25);
  struct rc_hist_snapshot s = {0};
  rc_hist_merge(&s, &a, &tens);
  rc_hist_merge(&s, &b, &tens);
  cr_assert_eq(s.count, 3);
  cr_assert_eq(s.bucket[0], 1);
  cr_assert_eq(s.bucket[2], 2);
}

Test(hist, quantiles_interpolate_inside_a_bucket) {
  struct rc_hist_snapshot s = {0};
  cr_assert_eq(rc_hist_quantile(&s, &tens, 0.5), 0);
  s.bucket[1] = 10; /* ten values in (10, 20] */
  s.count = 10;
  cr_assert_float_eq(rc_hist_quantile(&s, &tens, 0.5), 15.0, 1e-9);
  cr_assert_float_eq(rc_hist_quantile(&s, &tens, 1.0), 20.0, 1e-9);
  s.bucket[3] = 90; /* most above every bound: the top bound is the answer */
  s.count = 100;
  cr_assert_float_eq(rc_hist_quantile(&s, &tens, 0.99), 30.0, 1e-9);
  cr_assert_float_eq(rc_hist_quantile(&s, &tens, 0.05), 15.0, 1e-9);
}

Test(hist, shipped_scales_are_increasing) {
  const struct rc_hist_scale *all[] = {&rc_hist_latency_ns, &rc_hist_size_bytes, &rc_hist_duration_ms};
  for (size_t k = 0; k < 3; k++) {
    cr_assert(all[k]->n > 0 && all[k]->n <= RC_HIST_MAX_BOUNDS);
    for (unsigned i = 1; i < all[k]->n; i++) cr_assert_gt(all[k]->upper[i], all[k]->upper[i - 1]);
  }
}
