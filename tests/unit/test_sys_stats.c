/* SPDX-License-Identifier: MIT */
/* The $sys.stats payload: rates between samples, interval percentiles from
 * diffed histograms, null where there is no data, and valid JSON throughout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sys_stats.h"

static void base(struct rc_sys_sample *s, uint64_t mono_ms) {
  memset(s, 0, sizeof *s);
  s->mono_ms = mono_ms;
  s->wall_ms = 1700000000000ull + mono_ms;
  s->uptime_s = mono_ms / 1000;
  s->interval_ms = 1000;
  s->nshards = 2;
  s->topics = 3;
  s->charged_bytes = 4096;
  s->budget_bytes = 1 << 30;
}

static cJSON *render(const struct rc_sys_sample *prev, const struct rc_sys_sample *cur) {
  static char buf[RC_SYS_STATS_MAX];
  long n = rc_sys_stats_render(prev, cur, &rc_hist_latency_ns, buf, sizeof buf);
  cr_assert_gt(n, 0);
  cr_assert_eq(strlen(buf), (size_t)n);
  cJSON *j = cJSON_Parse(buf);
  cr_assert_not_null(j, "not JSON: %s", buf);
  return j;
}

static double get(const cJSON *o, const char *path) {
  char copy[128];
  snprintf(copy, sizeof copy, "%s", path);
  const cJSON *x = o;
  for (char *k = strtok(copy, "."); k; k = strtok(NULL, "."))
    x = cJSON_GetObjectItemCaseSensitive(x, k);
  cr_assert(cJSON_IsNumber(x), "%s is not a number", path);
  return x->valuedouble;
}

static bool is_null(const cJSON *o, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
  if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
  return cJSON_IsNull(x);
}

Test(sys_stats, rate) {
  cr_assert_float_eq(rc_sys_stats_rate(100, 600, 500), 1000.0, 1e-9);
  cr_assert_float_eq(rc_sys_stats_rate(5, 5, 1000), 0.0, 1e-9);
  cr_assert_float_eq(rc_sys_stats_rate(9, 5, 1000), 0.0, 1e-9, "a total never runs backwards");
  cr_assert_lt(rc_sys_stats_rate(0, 5, 0), 0.0, "no time passed: no rate");
}

Test(sys_stats, first_sample_has_no_rates) {
  struct rc_sys_sample cur;
  base(&cur, 1000);
  cur.conns = 7;
  cur.ws_conns = 5;
  cur.shard[0].conns = 3;
  cur.shard[1].conns = 4;
  cur.shard[1].backlog_bytes = 123;
  cJSON *j = render(NULL, &cur);
  cr_assert_float_eq(get(j, "connections.websocket"), 5, 1e-9);
  cr_assert_float_eq(get(j, "connections.http"), 2, 1e-9);
  cr_assert(is_null(j, "published_per_s", NULL));
  cr_assert(is_null(j, "delivered_per_s", NULL));
  cr_assert(is_null(j, "latency_ms", "p50"));
  cr_assert(is_null(j, "latency_ms", "p99"));
  const cJSON *shards = cJSON_GetObjectItemCaseSensitive(j, "shards");
  cr_assert_eq(cJSON_GetArraySize(shards), 2);
  cr_assert_float_eq(get(cJSON_GetArrayItem(shards, 1), "backlog_bytes"), 123, 1e-9);
  cr_assert_float_eq(get(cJSON_GetArrayItem(shards, 1), "id"), 1, 1e-9);
  cr_assert_float_eq(get(j, "topics"), 3, 1e-9);
  cr_assert_float_eq(get(j, "memory.budget_bytes"), 1 << 30, 1e-9);
  cr_assert_float_eq(get(j, "ts"), 1700000001000.0, 1e-3);
  cJSON_Delete(j);
}

Test(sys_stats, rates_between_samples) {
  struct rc_sys_sample a, b;
  base(&a, 1000);
  base(&b, 3000);
  a.shard[0].published = 100;
  b.shard[0].published = 300;
  a.shard[1].delivered = 1000;
  b.shard[1].delivered = 9000;
  cJSON *j = render(&a, &b);
  cr_assert_float_eq(get(j, "published_per_s"), 100.0, 1e-9);
  cr_assert_float_eq(get(j, "delivered_per_s"), 4000.0, 1e-9);
  const cJSON *shards = cJSON_GetObjectItemCaseSensitive(j, "shards");
  cr_assert_float_eq(get(cJSON_GetArrayItem(shards, 0), "published_per_s"), 100.0, 1e-9);
  cr_assert_float_eq(get(cJSON_GetArrayItem(shards, 0), "delivered_per_s"), 0.0, 1e-9);
  cr_assert_float_eq(get(cJSON_GetArrayItem(shards, 1), "delivered_per_s"), 4000.0, 1e-9);
  cJSON_Delete(j);
}

Test(sys_stats, gauges_read_apart_never_go_negative) {
  struct rc_sys_sample cur;
  base(&cur, 1000);
  cur.conns = 2;
  cur.ws_conns = 3;
  cJSON *j = render(NULL, &cur);
  cr_assert_float_eq(get(j, "connections.http"), 0, 1e-9);
  cJSON_Delete(j);
}

/* Percentiles describe the interval alone: what was observed before it does
 * not count, and an interval without sends has none. */
Test(sys_stats, latency_is_per_interval) {
  struct rc_hist h = {0};
  struct rc_sys_sample a, b, c;
  base(&a, 1000);
  base(&b, 2000);
  base(&c, 3000);
  for (int i = 0; i < 1000; i++)
    rc_hist_observe(&h, &rc_hist_latency_ns, 40000000); /* 40 ms */
  rc_hist_merge(&a.latency, &h, &rc_hist_latency_ns);
  for (int i = 0; i < 100; i++)
    rc_hist_observe(&h, &rc_hist_latency_ns, 80000); /* 0.08 ms */
  rc_hist_merge(&b.latency, &h, &rc_hist_latency_ns);
  rc_hist_merge(&c.latency, &h, &rc_hist_latency_ns);
  cJSON *j = render(&a, &b);
  double p50 = get(j, "latency_ms.p50"), p99 = get(j, "latency_ms.p99");
  cr_assert(p50 > 0.05 && p50 <= 0.1, "p50 %f is in the 50-100 us bucket", p50);
  cr_assert(p99 > 0.05 && p99 <= 0.1, "p99 %f: the 40 ms sends were before the interval", p99);
  cr_assert_float_eq(get(j, "latency_ms.samples"), 100, 1e-9);
  cJSON_Delete(j);
  j = render(&b, &c);
  cr_assert(is_null(j, "latency_ms", "p50"), "no sends in the interval");
  cr_assert(is_null(j, "latency_ms", "p90"));
  cr_assert_float_eq(get(j, "latency_ms.samples"), 0, 1e-9);
  cJSON_Delete(j);
}

Test(sys_stats, hist_diff_clamps) {
  struct rc_hist_snapshot now = {0}, before = {0}, d;
  now.bucket[0] = 5;
  before.bucket[0] = 2;
  before.bucket[1] = 9; /* read while it moved: counts as nothing */
  now.sum = 10;
  before.sum = 4;
  rc_sys_stats_hist_diff(&d, &now, &before, &rc_hist_latency_ns);
  cr_assert_eq(d.bucket[0], 3);
  cr_assert_eq(d.bucket[1], 0);
  cr_assert_eq(d.count, 3);
  cr_assert_eq(d.sum, 6);
}

Test(sys_stats, all_shards_fit_and_small_buffers_fail) {
  struct rc_sys_sample a, b;
  base(&a, 1000);
  base(&b, 2000);
  a.nshards = b.nshards = RC_MAX_SHARDS;
  for (unsigned s = 0; s < RC_MAX_SHARDS; s++) {
    b.shard[s] = (struct rc_sys_shard_sample){.conns = UINT64_MAX / 4,
                                              .published = UINT64_MAX / 2,
                                              .delivered = UINT64_MAX / 2,
                                              .backlog_bytes = UINT64_MAX};
  }
  b.conns = b.ws_conns = UINT64_MAX;
  b.wall_ms = b.uptime_s = UINT64_MAX;
  b.charged_bytes = b.budget_bytes = INT64_MAX;
  cJSON *j = render(&a, &b);
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "shards")), RC_MAX_SHARDS);
  cJSON_Delete(j);
  char small[64];
  cr_assert_eq(rc_sys_stats_render(&a, &b, &rc_hist_latency_ns, small, sizeof small), -ENOSPC);
  cr_assert_eq(rc_sys_stats_render(&a, &b, &rc_hist_latency_ns, small, 0), -ENOSPC);
}

Test(sys_stats, shard_count_change_gives_no_rates) {
  struct rc_sys_sample a, b;
  base(&a, 1000);
  base(&b, 2000);
  a.nshards = 1;
  cJSON *j = render(&a, &b);
  cr_assert(is_null(j, "delivered_per_s", NULL));
  cJSON_Delete(j);
}
