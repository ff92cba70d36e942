/* SPDX-License-Identifier: MIT */
/* Pub/sub with a sequencer elsewhere (the scale-out's Redis, pubsub.h remote_*),
 * two shards driven in turn from one thread and a fake sequencer: publishes
 * become tickets, subscriptions wait for the topic's position, messages are
 * stamped with the sequencer's seqs (duplicates dropped, holes and new epochs
 * refused until a sync fills or announces them), and a topic no subscriber
 * follows any more is let go. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ringcast/pubsub/message.h"
#include "ringcast/pubsub/pubsub.h"
#include "ringcast/util/counter.h"

#define SHARDS 2
#define EPOCH 0x1234abcd5678ef01ull

static struct rc_frame_arena ar[SHARDS];
static struct rc_frame_arena *const all[SHARDS] = {&ar[0], &ar[1]};
static struct rc_pubsub *ps;
static struct rc_pubsub_shard *sh[SHARDS];
static struct rc_subscriber sub;
static struct rc_join_result last_join;
static unsigned njoined;
/* What the subscriber got, in order: seq of a message, or 1000000 + `to` of a gap. */
static uint64_t got[64];
static char last_gap[256];
static unsigned ngot;
static struct rc_publish_result last_result;
static unsigned nresults;
static int64_t result_sum; /* seqs and errors of every result, added */
/* The fake sequencer. */
static uint64_t tickets[16];
static unsigned ntickets;
static int interest_calls[2]; /* [on] */
static int refuse_publish;

static struct rc_subscriber *resolve(void *ctx, uint64_t token) {
  (void)ctx;
  return token == 1 ? &sub : NULL;
}
static bool joined(void *ctx, struct rc_subscriber *s, const struct rc_join_result *r) {
  (void)ctx, (void)s;
  last_join = *r;
  njoined++;
  return true;
}
static void deliver(void *ctx, struct rc_subscriber *s, struct rc_topic *tp, struct rc_hold *h) {
  (void)ctx, (void)s, (void)tp;
  if (ngot >= 64) return;
  if (rc_message_is_heartbeat(h->frame)) {
    size_t n = h->frame->len < sizeof last_gap ? h->frame->len : sizeof last_gap - 1;
    memcpy(last_gap, h->frame->data, n);
    last_gap[n] = 0;
    got[ngot++] = 1000000 + rc_message_seq(h->frame);
  } else {
    got[ngot++] = rc_message_seq(h->frame);
  }
}
static void published(void *ctx, const struct rc_publish_result *r) {
  (void)ctx;
  last_result = *r;
  nresults++;
  result_sum += r->err ? r->err : (int64_t)r->seq;
}
static void wake(void *ctx, uint64_t mask) { (void)ctx, (void)mask; }
static int remote_publish(void *ctx, struct rc_topic *tp, const uint8_t *p, size_t len,
                          uint64_t ticket) {
  (void)ctx, (void)tp, (void)p, (void)len;
  if (refuse_publish) return -ENOTCONN;
  tickets[ntickets++] = ticket;
  return 0;
}
static void remote_interest(void *ctx, struct rc_topic *tp, bool on) {
  (void)ctx, (void)tp;
  interest_calls[on]++;
}

static void setup(void) {
  struct rc_pubsub_limits lim = {.history = {.msgs = 10}};
  ps = rc_pubsub_create(SHARDS, 64, &lim);
  cr_assert_not_null(ps);
  static const struct rc_pubsub_callbacks cb = {.resolve = resolve, .joined = joined,
                                                .deliver = deliver, .published = published,
                                                .wake = wake, .remote_publish = remote_publish,
                                                .remote_interest = remote_interest};
  for (unsigned i = 0; i < SHARDS; i++) {
    rc_frame_arena_init(&ar[i], i, all);
    cr_assert_eq(rc_pubsub_shard_create(ps, i, &ar[i], &cb, &sh[i]), 0);
  }
  memset(&sub, 0, sizeof sub);
  ngot = njoined = nresults = ntickets = 0;
  result_sum = 0;
  interest_calls[0] = interest_calls[1] = 0;
  refuse_publish = 0;
}

static void turn(unsigned s) {
  rc_pubsub_drain(sh[s], 1024, 1 << 20);
  rc_pubsub_flush(sh[s]);
}

static void turns(void) {
  for (int k = 0; k < 3; k++)
    for (unsigned i = 0; i < SHARDS; i++) turn(i);
}

static void teardown(void) {
  rc_pubsub_unsubscribe_all(sh[0], &sub);
  turns();
  for (unsigned i = 0; i < SHARDS; i++) rc_pubsub_shard_destroy(sh[i]);
  rc_pubsub_destroy(ps);
  for (unsigned i = 0; i < SHARDS; i++) rc_frame_arena_fini(&ar[i]);
}

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

static const struct rc_pubsub_stats *stats(unsigned s) { return rc_pubsub_shard_stats(ps, s); }

static struct rc_remote_entry entry(uint64_t seq) {
  return (struct rc_remote_entry){seq, (const uint8_t *)"{}", 2};
}

/* Subscribes on shard 0 and syncs the topic at (EPOCH, seq) with entries
 * first..seq. */
static void follow(struct rc_topic *tp, const struct rc_join_request *req, uint64_t first,
                   uint64_t seq) {
  cr_assert_eq(rc_pubsub_subscribe(sh[0], &sub, tp, 8, req), 0);
  turns();
  cr_assert_eq(njoined, 0, "the subscription waits for the sequencer");
  cr_assert_eq(interest_calls[1], 1, "the home told the sequencer once");
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_SYNCING);
  struct rc_remote_entry e[16];
  size_t n = 0;
  for (uint64_t q = first; first && q <= seq; q++) e[n++] = entry(q);
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, seq, e, n, 0);
  turns();
  cr_assert_eq(njoined, 1);
  cr_assert(last_join.live);
}

Test(pubsub_remote, publishes_are_tickets_answered_by_the_sequencer, .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  struct rc_publish_origin o = {.token = 9};
  /* Even on the home shard a publish waits for the sequencer. */
  cr_assert_eq(rc_pubsub_publish(sh[1], tp, (const uint8_t *)"a", 1, &o), 0);
  cr_assert_eq(rc_pubsub_publish(sh[0], tp, (const uint8_t *)"b", 1, &o), 0);
  turns();
  cr_assert_eq(ntickets, 2);
  cr_assert_gt(rc_pubsub_backlog(ps, 1), 0, "what waits for Redis holds the home's backlog");
  cr_assert_eq(rc_counter_get(&stats(1)->published), 0, "nothing stamped before Redis says");
  rc_pubsub_remote_done(sh[1], tickets[0], 41);
  rc_pubsub_remote_done(sh[1], tickets[1], -ECONNRESET);
  turns();
  cr_assert_eq(nresults, 2);
  cr_assert_eq(result_sum, 41 - ECONNRESET, "seq 41 to one, the error to the other");
  cr_assert_eq(rc_pubsub_backlog(ps, 1), 0, "the backlog comes back with the answers");
  cr_assert_eq(rc_counter_get(&stats(1)->publish_failed), 1);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, a_refused_publish_fails_at_once, .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  refuse_publish = 1;
  struct rc_publish_origin o = {.token = 9};
  cr_assert_eq(rc_pubsub_publish(sh[0], tp, (const uint8_t *)"a", 1, &o), 0);
  turns();
  cr_assert_eq(nresults, 1);
  cr_assert_eq(last_result.err, -ENOTCONN);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, a_join_starts_at_the_sequencers_position_and_resumes_from_its_history,
     .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  follow(tp, &(struct rc_join_request){.token = 1, .has_since = true, .since_epoch = EPOCH,
                                       .since_seq = 3},
         2, 6);
  cr_assert_eq(last_join.seq, 6);
  cr_assert_eq(last_join.epoch, EPOCH);
  cr_assert_eq(last_join.outcome, RC_JOIN_RECOVERED, "4..6 came with the sync");
  cr_assert_eq(ngot, 3);
  cr_assert_eq(got[0], 4);
  cr_assert_eq(got[2], 6);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, live_messages_duplicates_holes_and_epochs, .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  follow(tp, &(struct rc_join_request){.token = 1}, 0, 6);
  cr_assert_eq(last_join.seq, 6);
  const uint8_t *p = (const uint8_t *)"1";
  cr_assert_eq(rc_pubsub_remote_message(sh[1], tp, EPOCH, 7, p, 1), 0);
  cr_assert_eq(rc_pubsub_remote_message(sh[1], tp, EPOCH, 7, p, 1), 1, "a duplicate");
  cr_assert_eq(rc_pubsub_remote_message(sh[1], tp, EPOCH, 9, p, 1), -ERANGE, "8 is missing");
  cr_assert_eq(rc_pubsub_remote_message(sh[1], tp, EPOCH + 2, 8, p, 1), -ESTALE);
  turns();
  cr_assert_eq(ngot, 1);
  cr_assert_eq(got[0], 7);
  cr_assert_eq(rc_counter_get(&stats(1)->remote_duplicates), 1);

  /* The sync after the hole: 8 is in Redis' history, so is 10; 9 is not. */
  struct rc_remote_entry e[] = {entry(8), entry(10)};
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, 10, e, 2, 0);
  turns();
  cr_assert_eq(ngot, 4);
  cr_assert_eq(got[1], 8, "filled");
  cr_assert_eq(got[2], 1000000 + 9, "9 announced as a gap, in order");
  cr_assert(strstr(last_gap, "\"from\":9,\"to\":9") && strstr(last_gap, "\"reason\":\"redis\""), "%s", last_gap);
  cr_assert_eq(got[3], 10);
  cr_assert_eq(rc_counter_get(&stats(1)->remote_refilled), 2);
  cr_assert_eq(rc_counter_get(&stats(1)->remote_gaps), 1);

  /* Redis lost its data: a new epoch, told before its first message. */
  struct rc_remote_entry e2[] = {entry(1), entry(2)};
  rc_pubsub_remote_synced(sh[1], tp, EPOCH + 2, 2, e2, 2, 0);
  turns();
  cr_assert_eq(ngot, 7);
  cr_assert_eq(got[4], 1000000 + 0, "the epoch notice comes first");
  cr_assert(strstr(last_gap, "\"reason\":\"epoch\""), "%s", last_gap);
  cr_assert_eq(got[5], 1);
  cr_assert_eq(got[6], 2);
  cr_assert_eq(tp->epoch, EPOCH + 2);
  cr_assert_eq(rc_counter_get(&stats(1)->remote_epochs), 1);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, a_topic_nobody_follows_is_let_go, .init = setup, .fini = teardown) {
  struct rc_topic *tp = topic_homed_on_1();
  follow(tp, &(struct rc_join_request){.token = 1}, 1, 3);
  cr_assert_eq(rc_pubsub_unsubscribe(sh[0], &sub, tp), 0);
  turns();
  rc_pubsub_tick(sh[1]);
  cr_assert_eq(interest_calls[0], 1, "the sequencer is told");
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_NONE);
  cr_assert_null(tp->history, "what it kept would go stale");
  cr_assert_eq(rc_pubsub_remote_message(sh[1], tp, EPOCH, 4, (const uint8_t *)"x", 1), -ENOENT);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, the_servers_own_topics_stay_local, .init = setup, .fini = teardown) {
  struct rc_topic *tp;
  cr_assert_eq(rc_topic_acquire(rc_pubsub_topics(ps), "$sys.x", 6, true, &tp), 0);
  unsigned home = tp->home;
  cr_assert_gt(rc_pubsub_publish(sh[home], tp, (const uint8_t *)"a", 1, NULL), 0,
               "stamped at once, not sent to Redis");
  cr_assert_eq(ntickets, 0);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

/* ---- wildcards through the sequencer ---- */

static unsigned pattern_calls, pattern_shard;
static char patterns_told[8][32];
static size_t npatterns_told;
static struct rc_topic *arrived_tp;
static unsigned arrived_shard;
static uint64_t arrived_seq;
static unsigned narrived, nlost;
static unsigned shard_ids[SHARDS] = {0, 1};

static void remote_patterns(void *ctx, const char *const *p, const size_t *len, size_t n) {
  pattern_calls++;
  pattern_shard = *(unsigned *)ctx;
  npatterns_told = n < 8 ? n : 8;
  for (size_t i = 0; i < npatterns_told; i++) snprintf(patterns_told[i], 32, "%.*s", (int)len[i], p[i]);
}
static void remote_arrived(void *ctx, struct rc_topic *tp, uint64_t epoch, uint64_t seq,
                           const uint8_t *p, size_t len) {
  (void)epoch, (void)p, (void)len;
  arrived_shard = *(unsigned *)ctx;
  arrived_tp = tp;
  arrived_seq = seq;
  narrived++;
}
static uint64_t lost_from;
static void remote_lost(void *ctx, struct rc_topic *tp, uint64_t from) {
  (void)ctx, (void)tp;
  lost_from = from;
  nlost++;
}
static unsigned nvia;
static bool remote_via_patterns(void *ctx, struct rc_topic *tp) {
  (void)ctx, (void)tp;
  nvia++;
  return true;
}

static void setup_wild(void) {
  struct rc_pubsub_limits lim = {.history = {.msgs = 10}, .max_patterns = 16, .max_backlog = 1};
  ps = rc_pubsub_create(SHARDS, 64, &lim);
  cr_assert_not_null(ps);
  for (unsigned i = 0; i < SHARDS; i++) {
    struct rc_pubsub_callbacks cb = {.ctx = &shard_ids[i], .resolve = resolve, .joined = joined,
                                     .deliver = deliver, .published = published, .wake = wake,
                                     .remote_publish = remote_publish,
                                     .remote_interest = remote_interest,
                                     .remote_patterns = remote_patterns,
                                     .remote_arrived = remote_arrived, .remote_lost = remote_lost,
                                     .remote_via_patterns = remote_via_patterns};
    rc_frame_arena_init(&ar[i], i, all);
    cr_assert_eq(rc_pubsub_shard_create(ps, i, &ar[i], &cb, &sh[i]), 0);
  }
  memset(&sub, 0, sizeof sub);
  ngot = njoined = nresults = ntickets = 0;
  interest_calls[0] = interest_calls[1] = 0;
  pattern_calls = narrived = nlost = nvia = 0;
  npatterns_told = 0;
}

static void teardown_wild(void) {
  rc_pubsub_unsubscribe_all(sh[1], &sub);
  turns();
  for (unsigned i = 0; i < SHARDS; i++) rc_pubsub_shard_destroy(sh[i]);
  rc_pubsub_destroy(ps);
  for (unsigned i = 0; i < SHARDS; i++) rc_frame_arena_fini(&ar[i]);
}

/* A name under "w." whose home is shard `home`. */
static void name_homed_on(unsigned home, char *name, size_t cap) {
  for (int i = 0;; i++) {
    snprintf(name, cap, "w.n%d", i);
    if (rc_topic_hash(rc_pubsub_topics(ps), name, strlen(name)) % SHARDS == home) return;
  }
}

Test(pubsub_remote, wildcards_are_told_to_shard_0_and_their_messages_go_home,
     .init = setup_wild, .fini = teardown_wild) {
  cr_assert_eq(rc_pubsub_subscribe_pattern(sh[1], &sub, "w.*", 3, 8, 8), 0);
  cr_assert_eq(rc_pubsub_subscribe_pattern(sh[1], &sub, "$sys.>", 6, 8, 8), 0);
  turns();
  cr_assert_geq(pattern_calls, 1);
  cr_assert_eq(pattern_shard, 0, "one shard holds the node's pattern subscriptions");
  cr_assert_eq(npatterns_told, 1, "'$' patterns stay local");
  cr_assert_str_eq(patterns_told[0], "w.*");

  /* Routed from shard 0 to the topic's home, shard 1. */
  char name[16];
  name_homed_on(1, name, sizeof name);
  const uint8_t *m = (const uint8_t *)"{}";
  cr_assert_eq(rc_pubsub_remote_route(sh[0], "x.y", 3, EPOCH, 1, m, 2), -ENOENT, "no wildcard of ours");
  cr_assert_eq(rc_pubsub_remote_route(sh[0], "w.a.b", 5, EPOCH, 1, m, 2), -ENOENT,
               "the glob is broader than the pattern");
  cr_assert_eq(rc_pubsub_remote_route(sh[0], "$sys.x", 6, EPOCH, 1, m, 2), -ENOENT);
  cr_assert_eq(rc_pubsub_remote_route(sh[0], name, strlen(name), EPOCH, 5, m, 2), 0);
  cr_assert_eq(narrived, 0, "not on the routing shard");
  turns();
  cr_assert_eq(narrived, 1);
  cr_assert_eq(arrived_shard, 1);
  cr_assert_eq(arrived_seq, 5);
  struct rc_topic *tp = arrived_tp;
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_SYNCING);
  cr_assert(tp->remote_pattern, "followed for its wildcards, not its own channel");
  cr_assert_eq(interest_calls[1], 0, "no SUBSCRIBE of its own");

  /* The sync keeps 1..4 as history; the wildcard subscriber gets 5 on. */
  struct rc_remote_entry e[6];
  for (uint64_t q = 1; q <= 6; q++) e[q - 1] = entry(q);
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, 6, e, 6, 5);
  turns();
  cr_assert_eq(ngot, 2, "got %u", ngot);
  cr_assert_eq(got[0], 5);
  cr_assert_eq(got[1], 6);
  cr_assert_eq(rc_pubsub_remote_message(sh[1], tp, EPOCH, 7, m, 2), 0);
  turns();
  cr_assert_eq(ngot, 3);
  cr_assert_eq(got[2], 7);

  /* The wildcard goes: the patterns are told again, and the topic is let go. */
  rc_topic_ref(rc_pubsub_topics(ps), tp);
  cr_assert_eq(rc_pubsub_unsubscribe_pattern(sh[1], &sub, "w.*", 3), 0);
  turns();
  cr_assert_eq(npatterns_told, 0);
  for (int k = 0; k < 2; k++) {
    rc_pubsub_tick(sh[1]);
    turns();
  }
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_NONE);
  cr_assert_not(tp->remote_pattern);
  cr_assert_eq(interest_calls[0], 1, "the remote lets go of it");
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, a_routed_message_dropped_on_the_way_is_refilled,
     .init = setup_wild, .fini = teardown_wild) {
  cr_assert_eq(rc_pubsub_subscribe_pattern(sh[1], &sub, "w.*", 3, 8, 8), 0);
  turns();
  char name[16];
  name_homed_on(1, name, sizeof name);
  const uint8_t *m = (const uint8_t *)"{}";
  cr_assert_eq(rc_pubsub_remote_route(sh[0], name, strlen(name), EPOCH, 1, m, 2), 0);
  turns();
  struct rc_topic *tp = arrived_tp;
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, 1, NULL, 0, 1);
  turns();
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_LIVE);
  /* --max-backlog of 1 byte: the first waits in the inbox, the second is refused. */
  cr_assert_eq(rc_pubsub_remote_route(sh[0], name, strlen(name), EPOCH, 2, m, 2), 0);
  cr_assert_eq(rc_pubsub_remote_route(sh[0], name, strlen(name), EPOCH, 4, m, 2), -EAGAIN);
  cr_assert_eq(rc_pubsub_remote_route(sh[0], name, strlen(name), EPOCH, 3, m, 2), -EAGAIN);
  cr_assert_eq(nlost, 0);
  turns();
  cr_assert_eq(nlost, 1, "a marker tells the home");
  cr_assert_eq(lost_from, 3, "from the lowest dropped");
  rc_pubsub_tick(sh[1]);
  cr_assert_eq(nlost, 1, "once");
}

Test(pubsub_remote, a_first_message_dropped_still_gets_the_topic_followed,
     .init = setup_wild, .fini = teardown_wild) {
  cr_assert_eq(rc_pubsub_subscribe_pattern(sh[1], &sub, "w.*", 3, 8, 8), 0);
  turns();
  char name[16];
  name_homed_on(1, name, sizeof name);
  const uint8_t *m = (const uint8_t *)"{}";
  /* Fill the home's backlog with one routed message of another topic. */
  char other[16];
  for (int i = 100;; i++) {
    snprintf(other, sizeof other, "w.n%d", i);
    if (strcmp(other, name) && rc_topic_hash(rc_pubsub_topics(ps), other, strlen(other)) % SHARDS == 1) break;
  }
  cr_assert_eq(rc_pubsub_remote_route(sh[0], other, strlen(other), EPOCH, 1, m, 2), 0);
  cr_assert_eq(rc_pubsub_remote_route(sh[0], name, strlen(name), EPOCH, 7, m, 2), -EAGAIN);
  turns();
  cr_assert_eq(nlost, 1);
  cr_assert_eq(lost_from, 7);
  struct rc_topic *tp;
  cr_assert_eq(rc_topic_acquire(rc_pubsub_topics(ps), name, strlen(name), false, &tp), 0);
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_SYNCING, "followed for its wildcards from 7");
  cr_assert(tp->remote_pattern);
  struct rc_remote_entry e[8];
  for (uint64_t q = 1; q <= 8; q++) e[q - 1] = entry(q);
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, 8, e, 8, 7);
  turns();
  cr_assert_eq(ngot, 2, "7 and 8: nothing lost in silence (got %u)", ngot);
  cr_assert_eq(got[0], 7);
  cr_assert_eq(got[1], 8);
  rc_topic_release(rc_pubsub_topics(ps), tp);
}

Test(pubsub_remote, exact_subscribers_keep_a_topic_its_wildcards_leave,
     .init = setup_wild, .fini = teardown_wild) {
  cr_assert_eq(rc_pubsub_subscribe_pattern(sh[1], &sub, "w.*", 3, 8, 8), 0);
  turns();
  char name[16];
  name_homed_on(1, name, sizeof name);
  const uint8_t *m = (const uint8_t *)"{}";
  cr_assert_eq(rc_pubsub_remote_route(sh[1], name, strlen(name), EPOCH, 1, m, 2), 0);
  struct rc_topic *tp = arrived_tp;
  cr_assert_eq(narrived, 1, "its own home: at once");
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, 1, NULL, 0, 1);
  turns();
  static struct rc_subscriber exact;
  memset(&exact, 0, sizeof exact);
  cr_assert_eq(rc_pubsub_subscribe(sh[1], &exact, tp, 8, &(struct rc_join_request){.token = 2}), 0);
  turns();
  cr_assert_eq(interest_calls[1], 1, "an exact subscriber gets the topic's own channel at once");
  cr_assert_not(tp->remote_pattern);
  cr_assert_eq(rc_pubsub_unsubscribe_pattern(sh[1], &sub, "w.*", 3), 0);
  turns();
  rc_pubsub_tick(sh[1]);
  turns();
  rc_pubsub_tick(sh[1]);
  cr_assert_eq(interest_calls[1], 1, "nothing to switch when the wildcard goes");
  cr_assert_eq(interest_calls[0], 0, "not let go");
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_LIVE);
  cr_assert_not(tp->remote_pattern);
  rc_pubsub_unsubscribe_all(sh[1], &exact);
  turns();
}

Test(pubsub_remote, a_topic_only_wildcards_want_leaves_its_own_channel,
     .init = setup_wild, .fini = teardown_wild) {
  char name[16];
  name_homed_on(1, name, sizeof name);
  struct rc_topic *tp;
  cr_assert_eq(rc_topic_acquire(rc_pubsub_topics(ps), name, strlen(name), true, &tp), 0);
  static struct rc_subscriber exact;
  memset(&exact, 0, sizeof exact);
  cr_assert_eq(rc_pubsub_subscribe(sh[0], &exact, tp, 8, &(struct rc_join_request){.token = 2}), 0);
  turns();
  cr_assert_eq(interest_calls[1], 1, "followed through its own channel");
  rc_pubsub_remote_synced(sh[1], tp, EPOCH, 0, NULL, 0, 0);
  turns();
  cr_assert_eq(rc_pubsub_subscribe_pattern(sh[1], &sub, "w.*", 3, 8, 8), 0);
  turns();
  rc_pubsub_tick(sh[1]);
  cr_assert_eq(nvia, 0, "exact subscribers still want it");
  rc_pubsub_unsubscribe_all(sh[0], &exact);
  turns();
  rc_pubsub_tick(sh[1]);
  cr_assert_eq(nvia, 1);
  cr_assert(tp->remote_pattern);
  cr_assert_eq(tp->remote, RC_TOPIC_REMOTE_LIVE, "still followed, for its wildcards");
  cr_assert_eq(interest_calls[0], 0);
  rc_pubsub_tick(sh[1]);
  cr_assert_eq(nvia, 1, "once");
  rc_topic_release(rc_pubsub_topics(ps), tp);
}
