/* SPDX-License-Identifier: MIT */
/* Histograms kept like the statistics counters (counter.h): each written by one
 * shard thread with relaxed loads and stores, read by any thread and merged at
 * scrape. Buckets are stored apart (not cumulative) so an observation touches one
 * bucket; the exposition and the quantile estimate accumulate them. */
#ifndef RINGCAST_UTIL_HIST_H
#define RINGCAST_UTIL_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RC_HIST_MAX_BOUNDS 24

/* A histogram's bucket upper bounds, in the integer unit it is observed in; `unit`
 * converts that unit to the base unit shown (1e-9: nanoseconds shown as seconds). */
struct rc_hist_scale {
  unsigned n;
  double unit;
  uint64_t upper[RC_HIST_MAX_BOUNDS];
};

/* Send latency (publish accepted to the send carrying it completed), nanoseconds. */
extern const struct rc_hist_scale rc_hist_latency_ns;
/* Published payload sizes, bytes. */
extern const struct rc_hist_scale rc_hist_size_bytes;
/* Connection lifetimes, milliseconds. */
extern const struct rc_hist_scale rc_hist_duration_ms;

struct rc_hist {
  _Atomic uint64_t bucket[RC_HIST_MAX_BOUNDS + 1]; /* [i]: upper[i-1] < v <= upper[i]; [n]: above all */
  _Atomic uint64_t sum;                            /* of the observed values, in the scale's unit */
};

/* A merged copy, read from any thread. */
struct rc_hist_snapshot {
  uint64_t bucket[RC_HIST_MAX_BOUNDS + 1];
  uint64_t count, sum;
};

/* Owner thread only. */
void rc_hist_observe(struct rc_hist *h, const struct rc_hist_scale *s, uint64_t v);
/* Any thread: adds h's buckets into *snap (zero it first to start a merge). */
void rc_hist_merge(struct rc_hist_snapshot *snap, const struct rc_hist *h, const struct rc_hist_scale *s);
/* The q-quantile (0 < q <= 1) estimated by linear interpolation inside its bucket,
 * in the scale's unit; the top bound when it falls above every bound; 0 when empty. */
double rc_hist_quantile(const struct rc_hist_snapshot *snap, const struct rc_hist_scale *s, double q);

#endif
