/* SPDX-License-Identifier: MIT */
/* The $sys.stats feed: samples, and publishes them while someone listens. */
#include "stats_feed.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/pubsub/pubsub.h"
#include "ringcast/pubsub/topic.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "session.h"
#include "sys_stats.h"

struct rc_stats_feed {
  const struct rc_server *srv;
  uint64_t start_ms;
  uint32_t interval_ms;
  bool quiet_logged;
  /* The last two samples: last, and the one taken now compared with it. */
  struct rc_sys_sample sample[2];
  unsigned last;
  char json[RC_SYS_STATS_MAX];
};

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void take(const struct rc_stats_feed *f, struct rc_sys_sample *out, uint64_t now_ms) {
  const struct rc_server *srv = f->srv;
  out->mono_ms = now_ms;
  out->wall_ms = wall_ms();
  out->uptime_s = (now_ms - f->start_ms) / 1000u;
  out->interval_ms = f->interval_ms;
  out->nshards = srv->nshards;
  out->conns = out->ws_conns = 0;
  out->latency = (struct rc_hist_snapshot){0};
  for (unsigned s = 0; s < srv->nshards; s++) {
    const struct rc_conn_stats *io = rc_loop_stats(srv->loops[s]);
    const struct rc_pubsub_stats *ps = rc_pubsub_shard_stats(srv->pubsub, s);
    struct rc_sys_shard_sample *sh = &out->shard[s];
    sh->conns = rc_counter_get(&io->conns_open);
    /* Messages queued to subscribers, as ringcast_messages_delivered_total
     * counts them (not acks, replies or HTTP responses). */
    sh->delivered = rc_counter_get(&srv->shards[s]->stats.delivered);
    sh->published = rc_counter_get(&ps->published);
    sh->backlog_bytes = rc_pubsub_backlog(srv->pubsub, s);
    out->conns += sh->conns;
    out->ws_conns += rc_counter_get(&srv->shards[s]->stats.active[RC_SESSION_WS]);
    rc_hist_merge(&out->latency, &io->send_latency, &rc_hist_latency_ns);
  }
  out->topics = rc_topic_count(rc_pubsub_topics(srv->pubsub));
  out->charged_bytes = rc_budget_used(&srv->budget);
  out->budget_bytes = srv->budget.limit;
}

struct rc_stats_feed *rc_stats_feed_create(const struct rc_server *srv, uint64_t now_ms,
                                           uint32_t interval_ms) {
  struct rc_stats_feed *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->srv = srv;
  f->start_ms = now_ms;
  f->interval_ms = interval_ms;
  take(f, &f->sample[0], now_ms);
  return f;
}

void rc_stats_feed_destroy(struct rc_stats_feed *f) { free(f); }

/* $sys.stats when someone would receive a message of it, referenced; NULL
 * otherwise. The topic is not held between ticks: it exists while someone
 * subscribes to it, like any topic, so a server nobody watches keeps no topic
 * (nor a --max-topics place) for it. A wildcard subscriber ("$sys.>") does not
 * make it exist, though: while any pattern is subscribed anywhere, the topic is
 * created for the tick, and the creation hook pins it for the patterns that
 * match; with none, it goes again at once. */
static struct rc_topic *listened_topic(const struct rc_stats_feed *f) {
  struct rc_topic_table *table = rc_pubsub_topics(f->srv->pubsub);
  struct rc_topic *tp;
  int ret = rc_topic_acquire(table, RC_SYS_STATS_TOPIC, sizeof RC_SYS_STATS_TOPIC - 1, false, &tp);
  if (ret == -ENOENT && rc_pubsub_pattern_count(f->srv->pubsub) > 0)
    ret = rc_topic_acquire(table, RC_SYS_STATS_TOPIC, sizeof RC_SYS_STATS_TOPIC - 1, true, &tp);
  if (ret < 0) return NULL; /* absent, or the table is full: no one to tell */
  /* Read relaxed, as a hint: a watcher who just arrived is served from the
   * next tick, one who just left costs one more message. */
  uint64_t listening = atomic_load_explicit(&tp->interest, memory_order_relaxed) |
                       atomic_load_explicit(&tp->pattern_interest, memory_order_relaxed);
  if (listening) return tp;
  rc_topic_release(table, tp);
  return NULL;
}

uint64_t rc_stats_feed_tick(struct rc_stats_feed *f, struct rc_pubsub_shard *ps, uint64_t now_ms) {
  unsigned next = f->last ^ 1u;
  /* Sampling is a few loads per shard, so it runs whether or not anyone
   * listens: the first message a new watcher gets already has its rates. */
  take(f, &f->sample[next], now_ms);
  const struct rc_sys_sample *prev = &f->sample[f->last];
  f->last = next;
  struct rc_topic *tp = listened_topic(f);
  if (!tp) return now_ms + f->interval_ms;
  long n =
      rc_sys_stats_render(prev, &f->sample[next], &rc_hist_latency_ns, f->json, sizeof f->json);
  if (n < 0) {
    rc_err("$sys.stats: payload over %zu bytes; this is a bug", sizeof f->json);
    abort();
  }
  int64_t ret = rc_pubsub_publish(ps, tp, (const uint8_t *)f->json, (size_t)n, NULL);
  rc_topic_release(rc_pubsub_topics(f->srv->pubsub), tp);
  if (ret < 0 && !f->quiet_logged) {
    /* Refused like any publish (backlog, memory): the next tick tries again. */
    rc_warn("$sys.stats: publish refused (%s); skipping samples until one is accepted",
            rc_session_publish_refusal((int)ret));
    f->quiet_logged = true;
  } else if (ret >= 0) {
    f->quiet_logged = false;
  }
  return now_ms + f->interval_ms;
}
