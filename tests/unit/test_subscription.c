/* SPDX-License-Identifier: MIT */
/* The two-sided subscription index under churn: after every random subscribe or
 * unsubscribe, both sides agree, every back-index is right, and each topic's
 * interest bit says whether this shard has subscribers, checked against a model. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/pubsub/subscription.h"
#include "ringcast/pubsub/topic.h"

#define NSUBS 40
#define NTOPICS 25
#define SHARD 2

static struct rc_topic_table *table;
static struct rc_topic *topics[NTOPICS];
static struct rc_subscriber subs[NSUBS];
static bool model[NSUBS][NTOPICS];

static void setup(void) {
  table = rc_topic_table_create(64, 4, NULL);
  char name[16];
  for (int t = 0; t < NTOPICS; t++) {
    snprintf(name, sizeof name, "t%d", t);
    cr_assert_eq(rc_topic_acquire(table, name, strlen(name), true, &topics[t]), 0);
  }
  memset(subs, 0, sizeof subs);
  memset(model, 0, sizeof model);
}

static void ignore(void *ctx, struct rc_topic *tp) {
  (void)ctx;
  (void)tp;
}

static void teardown(void) {
  for (int s = 0; s < NSUBS; s++) rc_subscription_remove_all(SHARD, &subs[s], ignore, NULL);
  for (int t = 0; t < NTOPICS; t++) {
    cr_assert_eq(topics[t]->local[SHARD].n, 0);
    cr_assert_eq(atomic_load(&topics[t]->interest), 0);
  }
  rc_topic_table_destroy(table);
}

static int topic_index(const struct rc_topic *tp) {
  for (int t = 0; t < NTOPICS; t++)
    if (topics[t] == tp) return t;
  return -1;
}

static void check_all(void) {
  for (int t = 0; t < NTOPICS; t++) {
    const struct rc_sublist *l = &topics[t]->local[SHARD];
    unsigned expect = 0;
    for (int s = 0; s < NSUBS; s++) expect += model[s][t];
    cr_assert_eq(l->n, expect, "topic %d has %u subscribers, the model %u", t, l->n, expect);
    cr_assert_eq(!!(atomic_load(&topics[t]->interest) & (1u << SHARD)), expect > 0,
                 "interest bit of topic %d", t);
    for (uint32_t i = 0; i < l->n; i++) {
      const struct rc_subscriber *sub = l->v[i].sub;
      cr_assert_lt(l->v[i].sub_idx, sub->n);
      cr_assert_eq(sub->v[l->v[i].sub_idx].topic, topics[t], "back-index from the topic side");
      cr_assert_eq(sub->v[l->v[i].sub_idx].list_idx, i, "back-index from the subscriber side");
    }
  }
  for (int s = 0; s < NSUBS; s++) {
    unsigned expect = 0;
    for (int t = 0; t < NTOPICS; t++) expect += model[s][t];
    cr_assert_eq(subs[s].n, expect);
    for (uint16_t i = 0; i < subs[s].n; i++) {
      int t = topic_index(subs[s].v[i].topic);
      cr_assert(t >= 0 && model[s][t]);
      cr_assert_eq(topics[t]->local[SHARD].v[subs[s].v[i].list_idx].sub, &subs[s]);
    }
  }
}

Test(subscription, churn_keeps_both_sides_consistent, .init = setup, .fini = teardown) {
  srand(7);
  for (int step = 0; step < 20000; step++) {
    int s = rand() % NSUBS, t = rand() % NTOPICS;
    int op = rand() % 10;
    if (op < 5) {
      int before = topics[t]->local[SHARD].n;
      int ret = rc_subscription_add(SHARD, &subs[s], topics[t], 1024, 0);
      cr_assert_eq(ret, model[s][t] ? -EEXIST : before == 0, "1 exactly when the list was empty");
      model[s][t] = true;
    } else if (op < 9) {
      int ret = rc_subscription_remove(SHARD, &subs[s], topics[t]);
      cr_assert_eq(ret, model[s][t] ? topics[t]->local[SHARD].n == 0 : -ENOENT,
                   "1 exactly when the list emptied");
      model[s][t] = false;
    } else {
      rc_subscription_remove_all(SHARD, &subs[s], ignore, NULL);
      memset(model[s], 0, sizeof model[s]);
      cr_assert_null(subs[s].v, "remove_all frees the array");
    }
    if (step % 97 == 0) check_all();
  }
  check_all();
}

Test(subscription, limit_per_subscriber, .init = setup, .fini = teardown) {
  for (int t = 0; t < 3; t++) {
    cr_assert_eq(rc_subscription_add(SHARD, &subs[0], topics[t], 3, 0), 1);
    model[0][t] = true;
  }
  cr_assert_eq(rc_subscription_add(SHARD, &subs[0], topics[3], 3, 0), -EMLINK);
  cr_assert_eq(rc_subscription_find(&subs[0], topics[3]), -ENOENT);
  check_all();
}

/* Pattern entries sit in the same array as topics: removing either kind moves
 * the last entry, and both kinds' back-indexes must follow it. */
Test(subscription, patterns_beside_topics, .init = setup, .fini = teardown) {
  static struct rc_pattern_group g1, g2;
  memset(&g1, 0, sizeof g1);
  memset(&g2, 0, sizeof g2);
  strcpy(g1.pattern, "t*"), g1.len = 2; /* the text is only compared here */
  strcpy(g2.pattern, "x.>"), g2.len = 3;
  struct rc_subscriber *a = &subs[0], *b = &subs[1];
  cr_assert_eq(rc_subscription_add(SHARD, a, topics[0], 1024, 0), 1);
  cr_assert_eq(rc_subscription_add_pattern(a, &g1, 1024, 2), 1);
  cr_assert_eq(rc_subscription_add_pattern(b, &g1, 1024, 2), 0, "g1 had a subscriber");
  cr_assert_eq(rc_subscription_add(SHARD, a, topics[1], 1024, 0), 1);
  cr_assert_eq(rc_subscription_add_pattern(a, &g2, 1024, 2), 1);
  cr_assert_eq(rc_subscription_add_pattern(a, &g2, 1024, 2), -EMLINK, "two patterns at most");
  cr_assert_eq(a->npatterns, 2);
  cr_assert_eq(rc_subscription_find_pattern(a, "x.>", 3), 3);
  cr_assert_eq(rc_subscription_find(a, topics[1]), 2);
  /* Entry 1 (g1) goes; the last (g2) fills its place. */
  cr_assert_not(rc_subscription_remove_pattern(SHARD, a, 1), "b still holds g1");
  cr_assert_eq(rc_subscription_find_pattern(a, "x.>", 3), 1);
  cr_assert_eq(g2.v[0].sub_idx, 1, "the moved pattern's back-index follows");
  cr_assert_eq(g1.n, 1);
  cr_assert_eq(g1.v[0].sub, b);
  /* A topic entry goes; the last (a topic) fills its place. */
  cr_assert_eq(rc_subscription_remove(SHARD, a, topics[0]), 1);
  cr_assert_eq(a->v[g2.v[0].sub_idx].group, &g2);
  cr_assert_eq(topics[1]->local[SHARD].v[a->v[rc_subscription_find(a, topics[1])].list_idx].sub, a);
  cr_assert(rc_subscription_remove_pattern(SHARD, a, (uint16_t)rc_subscription_find_pattern(a, "x.>", 3)),
            "g2 emptied");
  cr_assert(rc_subscription_remove_pattern(SHARD, b, 0), "g1 emptied");
  cr_assert_eq(a->npatterns + b->npatterns, 0);
  free(g1.v);
  free(g2.v);
}

Test(subscription, overlap_names_the_other_subscription, .init = setup, .fini = teardown) {
  static struct rc_pattern_group g;
  memset(&g, 0, sizeof g);
  strcpy(g.pattern, "q.*"), g.len = 3;
  struct rc_subscriber *a = &subs[0];
  cr_assert_eq(rc_subscription_add(SHARD, a, topics[3], 1024, 0), 1); /* "t3" */
  cr_assert_eq(rc_subscription_add_pattern(a, &g, 1024, 8), 1);
  cr_assert_eq(rc_subscription_overlap(a, "q.a", 3, false), 1, "a name the pattern matches");
  cr_assert_eq(rc_subscription_overlap(a, "q.>", 3, true), 1, "an overlapping pattern");
  cr_assert_eq(rc_subscription_overlap(a, "q.*", 3, true), -ENOENT, "the same pattern is -EEXIST's");
  cr_assert_eq(rc_subscription_overlap(a, "*", 1, true), 0, "a pattern matching a held topic");
  cr_assert_eq(rc_subscription_overlap(a, "r.*", 3, true), -ENOENT);
  cr_assert_eq(rc_subscription_overlap(a, "q", 1, false), -ENOENT);
  cr_assert_str_eq(rc_subscription_name(&a->v[1]), "q.*");
  cr_assert(rc_subscription_remove_pattern(SHARD, a, 1));
  free(g.v);
}
