/* SPDX-License-Identifier: MIT */
/* ringcast-bench's measuring parts: the log-linear histogram and the sequence
 * checker. */
#include <criterion/criterion.h>

#include "hist.h"
#include "seqcheck.h"

Test(hist, small_values_are_exact) {
  struct rc_hist h;
  rc_hist_init(&h);
  for (uint64_t v = 0; v < 64; v++) rc_hist_record(&h, v);
  cr_assert_eq(h.count, 64);
  cr_assert_eq(rc_hist_quantile(&h, 0.5), 32);
  cr_assert_eq(rc_hist_quantile(&h, 0), 0);
  cr_assert_eq(rc_hist_quantile(&h, 1.0), 63);
}

Test(hist, relative_error_is_bounded) {
  for (uint64_t v = 1; v < (1ull << 40); v = v * 3 + 7) {
    unsigned idx = rc_hist_index(v);
    uint64_t high = rc_hist_bucket_high(idx);
    cr_assert(high >= v, "bucket %u of %llu ends at %llu", idx, (unsigned long long)v,
              (unsigned long long)high);
    cr_assert((double)(high - v) <= (double)v / 64.0 + 1, "%llu reported as %llu",
              (unsigned long long)v, (unsigned long long)high);
    if (idx) cr_assert(rc_hist_bucket_high(idx - 1) < v, "buckets do not overlap");
  }
}

Test(hist, percentiles_of_a_uniform_range) {
  struct rc_hist h;
  rc_hist_init(&h);
  for (uint64_t v = 1; v <= 100000; v++) rc_hist_record(&h, v * 1000); /* 1 us .. 100 ms in ns */
  double p50 = (double)rc_hist_quantile(&h, 0.5), p99 = (double)rc_hist_quantile(&h, 0.99);
  cr_assert(p50 >= 50e6 && p50 <= 50e6 * 1.02, "p50 %.0f", p50);
  cr_assert(p99 >= 99e6 && p99 <= 99e6 * 1.02, "p99 %.0f", p99);
  cr_assert_eq(rc_hist_quantile(&h, 1.0), 100000000, "the maximum is exact");
  struct rc_hist other;
  rc_hist_init(&other);
  rc_hist_record(&other, 5);
  rc_hist_merge(&h, &other);
  cr_assert_eq(h.count, 100001);
  cr_assert_eq(h.min, 5);
}

Test(hist, empty) {
  struct rc_hist h;
  rc_hist_init(&h);
  cr_assert_eq(rc_hist_quantile(&h, 0.99), 0);
}

Test(seqcheck, in_order_stream) {
  struct rc_seq_stream s = {0};
  struct rc_seq_totals t = {0};
  cr_assert_eq(rc_seq_observe(&s, &t, 1), RC_SEQ_FIRST);
  for (uint64_t i = 2; i <= 100; i++) cr_assert_eq(rc_seq_observe(&s, &t, i), RC_SEQ_NEXT);
  cr_assert_eq(t.gaps + t.duplicates + t.reorders, 0);
  cr_assert_eq(rc_seq_missing(&s, 1, 100), 0);
  cr_assert_eq(rc_seq_missing(&s, 1, 103), 3, "messages missing at the end are loss too");
}

Test(seqcheck, gaps_duplicates_reorders) {
  struct rc_seq_stream s = {0};
  struct rc_seq_totals t = {0};
  rc_seq_observe(&s, &t, 1);
  cr_assert_eq(rc_seq_observe(&s, &t, 4), RC_SEQ_GAP);
  cr_assert_eq(t.gaps, 2);
  cr_assert_eq(rc_seq_observe(&s, &t, 4), RC_SEQ_DUPLICATE);
  cr_assert_eq(rc_seq_observe(&s, &t, 2), RC_SEQ_REORDER);
  cr_assert_eq(rc_seq_observe(&s, &t, 5), RC_SEQ_NEXT);
  cr_assert_eq(t.duplicates, 1);
  cr_assert_eq(t.reorders, 1);
  cr_assert_eq(rc_seq_missing(&s, 1, 5), 2, "2 and 3 never arrived in order");
}

Test(seqcheck, stream_joined_late) {
  struct rc_seq_stream s = {0};
  struct rc_seq_totals t = {0};
  for (uint64_t i = 41; i <= 50; i++) rc_seq_observe(&s, &t, i);
  cr_assert_eq(rc_seq_missing(&s, 41, 50), 0);
  cr_assert_eq(rc_seq_missing(&s, 1, 50), 40, "counted from where it should have started");
  struct rc_seq_stream empty = {0};
  cr_assert_eq(rc_seq_missing(&empty, 1, 7), 7, "a stream that got nothing lost everything");
}
