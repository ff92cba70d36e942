/* SPDX-License-Identifier: MIT */
/* The $sys.stats payload: one sample of the server's counters, and the JSON
 * that compares it with the previous one (rates over the interval, latency
 * percentiles of the interval's sends). Pure: no I/O, no allocation, no
 * globals; any thread may call these. */
#ifndef RINGCAST_SESSION_SYS_STATS_H
#define RINGCAST_SESSION_SYS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "ringcast/util/config.h"
#include "ringcast/util/hist.h"

#define RC_SYS_STATS_TOPIC "$sys.stats"

struct rc_sys_shard_sample {
  uint64_t conns;         /* connections open, of every kind */
  uint64_t published;     /* messages stamped here as home shard (a total) */
  uint64_t delivered;     /* frames written to this shard's clients (a total) */
  uint64_t backlog_bytes; /* publishes waiting for this shard to stamp them */
};

struct rc_sys_sample {
  uint64_t mono_ms; /* a monotonic clock: rates are over its differences */
  uint64_t wall_ms; /* the Unix time, for "ts" */
  uint64_t uptime_s;
  uint64_t interval_ms; /* --stats-interval, so a reader knows when one is late */
  uint64_t conns;       /* connections open, of every kind */
  uint64_t ws_conns;    /* of them, WebSocket sessions */
  uint32_t topics;
  int64_t charged_bytes, budget_bytes;
  unsigned nshards;
  struct rc_sys_shard_sample shard[RC_MAX_SHARDS];
  struct rc_hist_snapshot latency; /* send latency, every shard merged (a total) */
};

/* Events per second between two readings of a total taken ms apart; negative
 * (no rate) when ms is 0. A total that went backwards counts as no events. */
double rc_sys_stats_rate(uint64_t before, uint64_t after, uint64_t ms);

/* out = now - before, bucket by bucket: what was observed in between. A bucket
 * that shrank (it cannot, but the totals are read without a lock one bucket at
 * a time) counts as empty. */
void rc_sys_stats_hist_diff(struct rc_hist_snapshot *out, const struct rc_hist_snapshot *now,
                            const struct rc_hist_snapshot *before, const struct rc_hist_scale *s);

/* Writes cur's JSON into out (cap bytes, NUL-terminated) with rates and
 * percentiles since prev; prev NULL (the first sample) gives null rates and
 * percentiles, as does an interval without sends. Returns the length, or
 * -ENOSPC when cap is too small (RC_SYS_STATS_MAX always suffices). */
long rc_sys_stats_render(const struct rc_sys_sample *prev, const struct rc_sys_sample *cur,
                         const struct rc_hist_scale *latency_scale, char *out, size_t cap);

/* Room for the largest payload: about 130 bytes per shard beside the rest. */
#define RC_SYS_STATS_MAX (1024 + 160 * RC_MAX_SHARDS)

#endif
