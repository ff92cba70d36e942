/* SPDX-License-Identifier: MIT */
/* Log-linear histogram: values below 2^6 have one bucket each; above, each power
 * of two is split into 64 equal sub-buckets. */
#include "hist.h"

#include <string.h>

void rc_hist_init(struct rc_hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

unsigned rc_hist_index(uint64_t v) {
  if (v < RC_HIST_SUB) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);     /* >= RC_HIST_SUB_BITS */
  unsigned shift = msb - RC_HIST_SUB_BITS;
  unsigned sub = (unsigned)(v >> shift) & (RC_HIST_SUB - 1);
  return (shift + 1) * RC_HIST_SUB + sub;
}

uint64_t rc_hist_bucket_high(unsigned idx) {
  if (idx < RC_HIST_SUB) return idx;
  unsigned shift = idx / RC_HIST_SUB - 1;
  uint64_t sub = idx % RC_HIST_SUB;
  uint64_t low = (RC_HIST_SUB + sub) << shift;
  return low + ((uint64_t)1 << shift) - 1;
}

void rc_hist_record(struct rc_hist *h, uint64_t v) {
  h->b[rc_hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v > h->max) h->max = v;
  if (v < h->min) h->min = v;
}

void rc_hist_merge(struct rc_hist *dst, const struct rc_hist *src) {
  for (unsigned i = 0; i < RC_HIST_BUCKETS; i++) dst->b[i] += src->b[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->max > dst->max) dst->max = src->max;
  if (src->min < dst->min) dst->min = src->min;
}

uint64_t rc_hist_quantile(const struct rc_hist *h, double q) {
  if (!h->count) return 0;
  if (q <= 0) return h->min;
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if (rank >= h->count) rank = h->count - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < RC_HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen > rank) {
      uint64_t v = rc_hist_bucket_high(i);
      return v > h->max ? h->max : v;
    }
  }
  return h->max;
}
