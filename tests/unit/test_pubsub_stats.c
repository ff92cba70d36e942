/* SPDX-License-Identifier: MIT */
/* What pub/sub measures for the operations signals, with two shards driven in
 * turn from one thread: the inbox depth from each side's single-writer counters,
 * the age of the item last taken, the publish stamp a message carries from the
 * shard that accepted it, the size histogram at the home shard, and replays
 * marked untimed. */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/pubsub/pubsub.h"
#include "ringcast/util/counter.h"

#define SHARDS 2

static struct rc_frame_arena ar[SHARDS];
static struct rc_frame_arena *const all[SHARDS] = {&ar[0], &ar[1]};
static struct rc_pubsub *ps;
static struct rc_pubsub_shard *sh[SHARDS];
static struct rc_subscriber sub;
static struct rc_join_result last_join;
static unsigned delivered;
static uint64_t last_stamp;
static uint32_t last_flags;

static struct rc_subscriber *resolve(void *ctx, uint64_t token) {
  (void)ctx;
  return token == 1 ? &sub : NULL;
}
static bool joined(void *ctx, struct rc_subscriber *s, const struct rc_join_result *r) {
  (void)ctx, (void)s;
  last_join = *r;
  return true;
}
static void deliver(void *ctx, struct rc_subscriber *s, struct rc_topic *tp, struct rc_hold *h) {
  (void)ctx, (void)s, (void)tp;
  delivered++;
  last_stamp = h->frame->stamp_ns;
  last_flags = h->flags;
}
static void published(void *ctx, const struct rc_publish_result *r) { (void)ctx, (void)r; }
static void wake(void *ctx, uint64_t mask) { (void)ctx, (void)mask; }

static void setup(void) {
  struct rc_pubsub_limits lim = {.history = {.msgs = 10}};
  ps = rc_pubsub_create(SHARDS, 64, &lim);
  cr_assert_not_null(ps);
  static const struct rc_pubsub_callbacks cb = {.resolve = resolve,
                                                .joined = joined,
                                                .deliver = deliver,
                                                .published = published,
                                                .wake = wake};
  for (unsigned i = 0; i < SHARDS; i++) {
    rc_frame_arena_init(&ar[i], i, all);
    cr_assert_eq(rc_pubsub_shard_create(ps, i, &ar[i], &cb, &sh[i]), 0);
  }
  memset(&sub, 0, sizeof sub);
  delivered = 0;
}

static void teardown(void) {
  rc_pubsub_unsubscribe_all(sh[0], &sub);
  for (int k = 0; k < 4; k++)
    for (unsigned i = 0; i < SHARDS; i++) {
      rc_pubsub_drain(sh[i], 1024, 1 << 20);
      rc_pubsub_flush(sh[i]);
    }
  for (unsigned i = 0; i < SHARDS; i++)
    rc_pubsub_shard_destroy(sh[i]);
  rc_pubsub_destroy(ps);
  for (unsigned i = 0; i < SHARDS; i++)
    rc_frame_arena_fini(&ar[i]);
}

/* A topic whose home is shard 1, so shard 0's publishes and subscriptions
 * cross the inboxes. */
static struct rc_topic *topic_homed_on_1(void) {
  char name[16];
  for (int i = 0;; i++) {
    snprintf(name, sizeof name, "t%d", i);
    struct rc_topic *tp;
    cr_assert_eq(rc_topic_acquire(rc_pubsub_topics(ps), name, strlen(name), true, &tp), 0);
    if (tp->home == 1) return tp;
    rc_topic_release(rc_pubsub_topics(ps), tp);
  }
}

static void turn(unsigned s, uint64_t now_ns) {
  rc_pubsub_set_clock(sh[s], now_ns / 1000000);
  rc_pubsub_set_clock_ns(sh[s], now_ns);
  rc_pubsub_drain(sh[s], 1024, 1 << 20);
  rc_pubsub_flush(sh[s]);
}

static const struct rc_pubsub_stats *stats(unsigned s) { return rc_pubsub_shard_stats(ps, s); }

/* Subscribes `sub` (token 1) on shard 0 and runs the join round trip. */
static void join(struct rc_topic *tp, const struct rc_join_request *req) {
  cr_assert_eq(rc_pubsub_subscribe(sh[0], &sub, tp, 8, req), 0);
  rc_pubsub_flush(sh[0]);
  turn(1, 1000);
  turn(0, 1000);
  cr_assert(last_join.live, "the subscription went live");
}

Test(pubsub_stats, inbox_depth_age_and_the_publish_stamp, .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  join(tp, &(struct rc_join_request){.token = 1});
  cr_assert_eq(rc_pubsub_inbox_depth(ps, 0), 0);
  cr_assert_eq(rc_pubsub_inbox_depth(ps, 1), 0);

  /* Accepted on shard 0 at t = 2 ms: forwarded to the home's inbox. */
  rc_pubsub_set_clock_ns(sh[0], 2000000);
  static const uint8_t payload[300] = {0};
  cr_assert_eq(rc_pubsub_publish(sh[0], tp, payload, sizeof payload, NULL), 0, "forwarded");
  rc_pubsub_publish(sh[0], tp, payload, 10, NULL);
  cr_assert_eq(rc_pubsub_inbox_depth(ps, 1), 2, "two publishes wait at the home");
  cr_assert_eq(rc_pubsub_inbox_age_ns(ps, 1, 4000000), 3999000,
               "the home has not turned since 1 us: the wait is at most that long");
  cr_assert_eq(rc_pubsub_inbox_age_ns(ps, 0, 4000000), 0, "nothing waits at shard 0");

  /* The home takes them 3 ms later: their age, the size histogram. */
  turn(1, 5000000);
  cr_assert_eq(rc_pubsub_inbox_depth(ps, 1), 0);
  cr_assert_eq(rc_counter_get(&stats(1)->inbox_age_ns), 0, "the inbox was found empty after them");
  cr_assert_eq(rc_counter_get(&stats(1)->published), 2);
  struct rc_hist_snapshot h;
  memset(&h, 0, sizeof h);
  rc_hist_merge(&h, &stats(1)->message_size, &rc_hist_size_bytes);
  cr_assert_eq(h.count, 2);
  cr_assert_eq(h.sum, 310);
  cr_assert_eq(h.bucket[0], 1, "10 bytes: at most 16");
  cr_assert_eq(h.bucket[3], 1, "300 bytes: above 256, at most 1024");
  cr_assert_eq(rc_pubsub_inbox_depth(ps, 0), 1, "one fan-out batch on its way to shard 0");

  /* Shard 0 takes the batch 4 ms after it was pushed: the item's age, then the
   * messages carry the time shard 0 accepted them, not the home's. */
  rc_pubsub_set_clock(sh[0], 9);
  rc_pubsub_set_clock_ns(sh[0], 9000000);
  rc_pubsub_drain(sh[0], 1, 1 << 20); /* one unit: the batch is taken, not yet found empty */
  cr_assert_eq(rc_counter_get(&stats(0)->inbox_age_ns), 4000000, "pushed at 5 ms, taken at 9 ms");
  cr_assert_eq(rc_pubsub_inbox_age_ns(ps, 0, 9500000), 4000000, "empty now: the last wait");
  cr_assert_eq(rc_pubsub_inbox_depth(ps, 0), 0);
  turn(0, 9000000);
  cr_assert_eq(delivered, 2);
  cr_assert_eq(last_stamp, 2000000, "stamped when shard 0 accepted it");
  cr_assert_eq(last_flags & RC_HOLD_UNTIMED, 0, "a live message is timed");
  cr_assert_eq(rc_counter_get(&stats(0)->inbox_age_ns), 0, "empty again");
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_stats, replays_are_untimed, .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  rc_pubsub_set_clock_ns(sh[1], 1000);
  for (int i = 0; i < 3; i++)
    cr_assert_gt(rc_pubsub_publish(sh[1], tp, (const uint8_t *)"x", 1, NULL), 0);
  join(tp, &(struct rc_join_request){.token = 1});
  uint64_t epoch = last_join.epoch;
  rc_pubsub_unsubscribe_all(sh[0], &sub);
  for (int k = 0; k < 2; k++) {
    turn(0, 2000);
    turn(1, 2000);
  }
  delivered = 0;
  join(tp, &(struct rc_join_request){
               .token = 1, .has_since = true, .since_epoch = epoch, .since_seq = 1});
  cr_assert_eq(last_join.outcome, RC_JOIN_RECOVERED);
  cr_assert_eq(delivered, 2, "seq 2 and 3 from history");
  cr_assert_eq(last_flags & RC_HOLD_UNTIMED, RC_HOLD_UNTIMED,
               "a replay says nothing of today's latency");
  rc_topic_release(rc_pubsub_topics(ps), tp);
}
