/* SPDX-License-Identifier: MIT */
/* A log-linear latency histogram (HDR-style): 64 sub-buckets per power of two,
 * so any recorded value is reported within 1/64 (about 1.6%) of its true value.
 * Fixed size, no allocation per sample. Values are unsigned 64-bit (ns). */
#ifndef RINGCAST_BENCH_HIST_H
#define RINGCAST_BENCH_HIST_H

#include <stdint.h>

#define RC_HIST_SUB_BITS 6
#define RC_HIST_SUB (1u << RC_HIST_SUB_BITS)
#define RC_HIST_BUCKETS ((64 - RC_HIST_SUB_BITS + 1) * RC_HIST_SUB)

struct rc_hist {
  uint64_t count;
  uint64_t max;
  uint64_t min;
  uint64_t sum;
  uint64_t b[RC_HIST_BUCKETS];
};

void rc_hist_init(struct rc_hist *h);
void rc_hist_record(struct rc_hist *h, uint64_t v);
/* Adds every sample of src into dst. */
void rc_hist_merge(struct rc_hist *dst, const struct rc_hist *src);
/* The value at quantile q (0..1): the upper edge of the bucket holding it,
 * clamped to the largest value recorded. 0 when empty. */
uint64_t rc_hist_quantile(const struct rc_hist *h, double q);
/* Bucket index of v, and the largest value that bucket holds. */
unsigned rc_hist_index(uint64_t v);
uint64_t rc_hist_bucket_high(unsigned idx);

#endif
