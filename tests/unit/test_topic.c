/* SPDX-License-Identifier: MIT */
/* The topic table: references, reclamation, --max-topics, growth to many
 * topics and back, the memory budget, and the keyed hash. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/pubsub/topic.h"

static int get(struct rc_topic_table *t, const char *name, struct rc_topic **tp) {
  return rc_topic_acquire(t, name, strlen(name), true, tp);
}

Test(topic, acquire_is_idempotent_and_the_last_release_reclaims) {
  struct rc_topic_table *t = rc_topic_table_create(16, 4, NULL);
  struct rc_topic *a, *b, *c;
  cr_assert_eq(get(t, "alpha", &a), 0);
  cr_assert_eq(get(t, "alpha", &b), 0);
  cr_assert_eq(a, b);
  cr_assert_eq(a->refs, 2);
  cr_assert_eq(get(t, "beta", &c), 0);
  cr_assert_neq(a, c);
  cr_assert_eq(a->home, rc_topic_hash(t, "alpha", 5) % 4);
  cr_assert_str_eq(a->name, "alpha");
  cr_assert_eq(rc_topic_acquire(t, "gamma", 5, false, &b), -ENOENT, "found, not created");
  cr_assert_eq(get(t, "bad name", &b), -EINVAL);
  cr_assert_eq(get(t, "a\0b", &b), 0, "the name ends at its length");
  rc_topic_release(t, b);
  cr_assert_eq(rc_topic_count(t), 2);
  rc_topic_release(t, a);
  cr_assert_eq(rc_topic_acquire(t, "alpha", 5, false, &b), 0, "one reference left");
  rc_topic_release(t, b);
  rc_topic_release(t, a);
  cr_assert_eq(rc_topic_acquire(t, "alpha", 5, false, &b), -ENOENT, "reclaimed with its last reference");
  cr_assert_eq(rc_topic_count(t), 1);
  rc_topic_release(t, c);
  cr_assert_eq(rc_topic_count(t), 0);
  rc_topic_table_destroy(t);
}

Test(topic, max_topics_counts_live_topics) {
  struct rc_topic_table *t = rc_topic_table_create(8, 1, NULL);
  struct rc_topic *tp[8], *x;
  char name[16];
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof name, "t%d", i);
    cr_assert_eq(get(t, name, &tp[i]), 0);
  }
  cr_assert_eq(get(t, "one-more", &x), -ENOSPC);
  cr_assert_eq(get(t, "t3", &x), 0, "existing topics still resolve");
  rc_topic_release(t, x);
  rc_topic_release(t, tp[5]);
  cr_assert_eq(get(t, "one-more", &x), 0, "a reclaimed topic frees its place");
  rc_topic_release(t, x);
  for (int i = 0; i < 8; i++)
    if (i != 5) rc_topic_release(t, tp[i]);
  cr_assert_eq(rc_topic_count(t), 0);
  rc_topic_table_destroy(t);
}

Test(topic, grows_to_many_topics_and_back) {
  enum { N = 200000 };
  struct rc_topic_table *t = rc_topic_table_create(N, 2, NULL);
  struct rc_topic **tp = malloc(N * sizeof *tp);
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "opt.%d.C", i);
    cr_assert_eq(get(t, name, &tp[i]), 0);
  }
  cr_assert_eq(rc_topic_count(t), N);
  for (int i = 0; i < N; i += 997) {
    struct rc_topic *again;
    snprintf(name, sizeof name, "opt.%d.C", i);
    cr_assert_eq(rc_topic_acquire(t, name, strlen(name), false, &again), 0);
    cr_assert_eq(again, tp[i]);
    rc_topic_release(t, again);
  }
  for (int i = 0; i < N; i++) rc_topic_release(t, tp[i]);
  cr_assert_eq(rc_topic_count(t), 0);
  free(tp);
  rc_topic_table_destroy(t);
}

Test(topic, memory_budget_bounds_topics) {
  struct rc_budget b;
  rc_budget_init(&b, 64 * 1024);
  struct rc_topic_table *t = rc_topic_table_create(1000000, 4, &b);
  struct rc_topic *tp[4096];
  char name[32];
  int n = 0, ret;
  do {
    snprintf(name, sizeof name, "mem.%d", n);
    ret = get(t, name, &tp[n]);
  } while (ret == 0 && ++n < 4096);
  cr_assert_eq(ret, -ENOBUFS, "refused when the budget is spent");
  cr_assert_gt(n, 100);
  cr_assert_leq(rc_budget_used(&b), 64 * 1024);
  for (int i = 0; i < n; i++) rc_topic_release(t, tp[i]);
  cr_assert_eq(rc_budget_used(&b), 0, "the charge comes back with the topics");
  rc_topic_table_destroy(t);
}

Test(topic, hash_is_keyed_per_table) {
  struct rc_topic_table *a = rc_topic_table_create(4, 1, NULL), *b = rc_topic_table_create(4, 1, NULL);
  int same = 0;
  char name[32];
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof name, "name.%d", i);
    same += rc_topic_hash(a, name, strlen(name)) == rc_topic_hash(b, name, strlen(name));
  }
  cr_assert_lt(same, 8, "two tables, two keys: names cannot be crafted to collide in advance");
  rc_topic_table_destroy(a);
  rc_topic_table_destroy(b);
}
