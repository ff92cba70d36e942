/* SPDX-License-Identifier: MIT */
/* A synthetic market-data feed: random-walk quotes and occasional trades for 32
 * symbols, about a thousand messages a second, published through the normal
 * fan-out path from the shard that runs it. */
#include "demo_feed.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringcast/pubsub/pubsub.h"
#include "ringcast/pubsub/topic.h"

#define TICK_MS 10
#define QUOTES_PER_TICK 8
#define TRADE_ONE_IN 4

static const char *const symbols[] = {
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "JPM",  "V",    "XOM",
    "UNH",  "MA",   "COST", "HD",   "PG",   "NFLX", "AMD",  "CRM",  "ORCL", "KO",   "PEP",
    "INTC", "CSCO", "IBM",  "QCOM", "TXN",  "ADBE", "NKE",  "DIS",  "BTC-USD", "ETH-USD",
};
#define NSYM (sizeof symbols / sizeof symbols[0])

struct rc_demo_feed {
  uint64_t next_ms;
  uint64_t rng;
  double px[NSYM];
  /* Held for the feed's life, so their sequences run on with no subscribers. */
  struct rc_topic *quotes[NSYM], *trades[NSYM];
  struct rc_topic_table *table;
  unsigned held;             /* quotes[0..held/2), trades likewise, taken so far */
};

static uint64_t next_rand(struct rc_demo_feed *f) {
  /* xorshift64*: plenty for a demo, and reproducible from the seed. */
  f->rng ^= f->rng >> 12;
  f->rng ^= f->rng << 25;
  f->rng ^= f->rng >> 27;
  return f->rng * 0x2545f4914f6cdd1dull;
}

static void release_all(struct rc_demo_feed *f) {
  for (unsigned k = 0; k < f->held; k++)
    rc_topic_release(f->table, k % 2 ? f->trades[k / 2] : f->quotes[k / 2]);
  f->held = 0;
}

static bool resolve(struct rc_demo_feed *f, struct rc_topic_table *topics) {
  char name[64];
  f->table = topics;
  for (unsigned i = 0; i < NSYM; i++) {
    snprintf(name, sizeof name, "quotes.%s", symbols[i]);
    if (rc_topic_acquire(topics, name, strlen(name), true, &f->quotes[i]) < 0) return false;
    f->held++;
    snprintf(name, sizeof name, "trades.%s", symbols[i]);
    if (rc_topic_acquire(topics, name, strlen(name), true, &f->trades[i]) < 0) return false;
    f->held++;
  }
  return true;
}

struct rc_demo_feed *rc_demo_feed_create(struct rc_topic_table *topics, uint64_t now_ms,
                                         uint64_t seed) {
  struct rc_demo_feed *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  if (!resolve(f, topics)) {
    release_all(f);
    free(f);
    return NULL;
  }
  f->next_ms = now_ms;
  f->rng = seed | 1;
  for (unsigned i = 0; i < NSYM; i++) f->px[i] = 20.0 + (double)(next_rand(f) % 50000) / 100.0;
  f->px[NSYM - 2] = 61000.0;
  f->px[NSYM - 1] = 3100.0;
  return f;
}

void rc_demo_feed_destroy(struct rc_demo_feed *f) {
  if (!f) return;
  release_all(f);
  free(f);
}

uint64_t rc_demo_feed_tick(struct rc_demo_feed *f, struct rc_pubsub_shard *ps, uint64_t now_ms) {
  /* Catch up at most a second after a stall rather than flooding. */
  if (now_ms > f->next_ms + 1000) f->next_ms = now_ms - 1000;
  char msg[256];
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  unsigned long long wall_ms = (unsigned long long)wall.tv_sec * 1000u + (unsigned long long)wall.tv_nsec / 1000000u;
  while (f->next_ms <= now_ms) {
    for (unsigned k = 0; k < QUOTES_PER_TICK; k++) {
      unsigned i = (unsigned)(next_rand(f) % NSYM);
      double step = ((double)(next_rand(f) % 2001) - 1000.0) / 100000.0;
      f->px[i] *= 1.0 + step * 0.1;
      double spread = f->px[i] * 0.0002;
      int n = snprintf(msg, sizeof msg,
                       "{\"sym\":\"%s\",\"bid\":%.2f,\"ask\":%.2f,\"bid_size\":%u,"
                       "\"ask_size\":%u,\"ts\":%llu}",
                       symbols[i], f->px[i] - spread, f->px[i] + spread,
                       (unsigned)(next_rand(f) % 50 + 1) * 100, (unsigned)(next_rand(f) % 50 + 1) * 100,
                       wall_ms);
      (void)rc_pubsub_publish(ps, f->quotes[i], (const uint8_t *)msg, (size_t)n, NULL);
      if (next_rand(f) % TRADE_ONE_IN == 0) {
        n = snprintf(msg, sizeof msg,
                     "{\"sym\":\"%s\",\"price\":%.2f,\"size\":%u,\"side\":\"%s\",\"ts\":%llu}",
                     symbols[i], f->px[i], (unsigned)(next_rand(f) % 20 + 1) * 10,
                     next_rand(f) & 1 ? "buy" : "sell", wall_ms);
        (void)rc_pubsub_publish(ps, f->trades[i], (const uint8_t *)msg, (size_t)n, NULL);
      }
    }
    f->next_ms += TICK_MS;
  }
  return f->next_ms;
}
