/* SPDX-License-Identifier: MIT */
/* Per-shard histograms merged at scrape (hist.h). */
#include "ringcast/util/hist.h"

#include "ringcast/util/counter.h"

const struct rc_hist_scale rc_hist_latency_ns = {
    .n = 17,
    .unit = 1e-9,
    .upper = {50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000,
              50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
              10000000000},
};

const struct rc_hist_scale rc_hist_size_bytes = {
    .n = 12,
    .unit = 1,
    .upper = {16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864},
};

const struct rc_hist_scale rc_hist_duration_ms = {
    .n = 12,
    .unit = 1e-3,
    .upper = {100, 1000, 10000, 60000, 300000, 900000, 3600000, 4 * 3600000ull, 12 * 3600000ull,
              24 * 3600000ull, 7 * 24 * 3600000ull, 30 * 24 * 3600000ull},
};

void rc_hist_observe(struct rc_hist *h, const struct rc_hist_scale *s, uint64_t v) {
  unsigned lo = 0, hi = s->n; /* the first bound >= v, or n */
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (s->upper[mid] >= v)
      hi = mid;
    else
      lo = mid + 1;
  }
  rc_counter_add(&h->bucket[lo], 1);
  rc_counter_add(&h->sum, v);
}

void rc_hist_merge(struct rc_hist_snapshot *snap, const struct rc_hist *h, const struct rc_hist_scale *s) {
  for (unsigned i = 0; i <= s->n; i++) {
    uint64_t b = rc_counter_get(&h->bucket[i]);
    snap->bucket[i] += b;
    snap->count += b;
  }
  snap->sum += rc_counter_get(&h->sum);
}

double rc_hist_quantile(const struct rc_hist_snapshot *snap, const struct rc_hist_scale *s, double q) {
  if (snap->count == 0 || s->n == 0) return 0;
  if (q > 1) q = 1;
  double rank = q * (double)snap->count, seen = 0;
  for (unsigned i = 0; i < s->n; i++) {
    double b = (double)snap->bucket[i];
    if (b > 0 && seen + b >= rank) {
      double lower = i ? (double)s->upper[i - 1] : 0, upper = (double)s->upper[i];
      return lower + (upper - lower) * ((rank - seen) / b);
    }
    seen += b;
  }
  return (double)s->upper[s->n - 1];
}
