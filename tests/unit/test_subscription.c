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
