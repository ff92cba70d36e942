/* SPDX-License-Identifier: MIT */
/* The $sys.stats JSON: totals turned into rates and interval percentiles. */
#include "sys_stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

double rc_sys_stats_rate(uint64_t before, uint64_t after, uint64_t ms) {
  if (ms == 0) return -1;
  if (after < before) return 0;
  return (double)(after - before) * 1000.0 / (double)ms;
}

void rc_sys_stats_hist_diff(struct rc_hist_snapshot *out, const struct rc_hist_snapshot *now,
                            const struct rc_hist_snapshot *before, const struct rc_hist_scale *s) {
  *out = (struct rc_hist_snapshot){0};
  for (unsigned i = 0; i <= s->n && i <= RC_HIST_MAX_BOUNDS; i++) {
    uint64_t d = now->bucket[i] > before->bucket[i] ? now->bucket[i] - before->bucket[i] : 0;
    out->bucket[i] = d;
    out->count += d;
  }
  out->sum = now->sum > before->sum ? now->sum - before->sum : 0;
}

struct out {
  char *p;
  size_t len, cap;
  bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...) {
  if (o->full) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) {
    o->full = true;
    return;
  }
  o->len += (size_t)n;
}

/* A rate as JSON: null when there is none to give (the first sample). */
static void put_rate(struct out *o, const char *name, double r) {
  if (r < 0)
    put(o, "\"%s\":null", name);
  else
    put(o, "\"%s\":%.1f", name, r);
}

long rc_sys_stats_render(const struct rc_sys_sample *prev, const struct rc_sys_sample *cur,
                         const struct rc_hist_scale *latency_scale, char *out, size_t cap) {
  if (cap == 0) return -ENOSPC;
  struct out o = {.p = out, .cap = cap};
  /* Rates only between samples of the same server shape, taken apart in time. */
  bool have_prev = prev && prev->nshards == cur->nshards && cur->mono_ms > prev->mono_ms;
  uint64_t ms = have_prev ? cur->mono_ms - prev->mono_ms : 0;
  uint64_t published = 0, delivered = 0, prev_published = 0, prev_delivered = 0;
  for (unsigned s = 0; s < cur->nshards; s++) {
    published += cur->shard[s].published;
    delivered += cur->shard[s].delivered;
    if (have_prev) {
      prev_published += prev->shard[s].published;
      prev_delivered += prev->shard[s].delivered;
    }
  }
  /* The two gauges are read at slightly different moments: never below zero. */
  uint64_t http = cur->conns > cur->ws_conns ? cur->conns - cur->ws_conns : 0;
  put(&o,
      "{\"ts\":%" PRIu64 ",\"uptime_s\":%" PRIu64 ",\"interval_ms\":%" PRIu64
      ",\"connections\":{\"websocket\":%" PRIu64 ",\"http\":%" PRIu64 "},",
      cur->wall_ms, cur->uptime_s, cur->interval_ms, cur->ws_conns, http);
  put_rate(&o, "published_per_s",
           have_prev ? rc_sys_stats_rate(prev_published, published, ms) : -1);
  put(&o, ",");
  put_rate(&o, "delivered_per_s",
           have_prev ? rc_sys_stats_rate(prev_delivered, delivered, ms) : -1);
  struct rc_hist_snapshot d = {0};
  if (have_prev) rc_sys_stats_hist_diff(&d, &cur->latency, &prev->latency, latency_scale);
  if (d.count == 0) {
    put(&o, ",\"latency_ms\":{\"p50\":null,\"p90\":null,\"p99\":null,\"samples\":0}");
  } else {
    double to_ms = latency_scale->unit * 1e3;
    put(&o, ",\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"samples\":%" PRIu64 "}",
        rc_hist_quantile(&d, latency_scale, 0.50) * to_ms,
        rc_hist_quantile(&d, latency_scale, 0.90) * to_ms,
        rc_hist_quantile(&d, latency_scale, 0.99) * to_ms, d.count);
  }
  put(&o, ",\"shards\":[");
  for (unsigned s = 0; s < cur->nshards; s++) {
    const struct rc_sys_shard_sample *c = &cur->shard[s];
    put(&o, "%s{\"id\":%u,\"connections\":%" PRIu64 ",", s ? "," : "", s, c->conns);
    put_rate(&o, "published_per_s",
             have_prev ? rc_sys_stats_rate(prev->shard[s].published, c->published, ms) : -1);
    put(&o, ",");
    put_rate(&o, "delivered_per_s",
             have_prev ? rc_sys_stats_rate(prev->shard[s].delivered, c->delivered, ms) : -1);
    put(&o, ",\"backlog_bytes\":%" PRIu64 "}", c->backlog_bytes);
  }
  put(&o,
      "],\"topics\":%u,\"memory\":{\"charged_bytes\":%" PRId64 ",\"budget_bytes\":%" PRId64 "}}",
      cur->topics, cur->charged_bytes, cur->budget_bytes);
  if (o.full) return -ENOSPC;
  return (long)o.len;
}
