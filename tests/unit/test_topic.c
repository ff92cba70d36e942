/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/pubsub/topic.h"

Test(topic, get_is_idempotent_and_home_is_stable) {
  struct rc_topic_table *t = rc_topic_table_create(16, 4);
  struct rc_topic *a, *b, *c;
  cr_assert_eq(rc_topic_get(t, "alpha", 5, &a), 0);
  cr_assert_eq(rc_topic_get(t, "alpha", 5, &b), 0);
  cr_assert_eq(a, b);
  cr_assert_eq(rc_topic_get(t, "beta", 4, &c), 0);
  cr_assert_neq(a, c);
  cr_assert_eq(a->home, rc_topic_hash("alpha", 5) % 4);
  cr_assert_str_eq(a->name, "alpha");
  cr_assert_eq(rc_topic_find(t, "alpha", 5), a);
  cr_assert_null(rc_topic_find(t, "gamma", 5));
  cr_assert_eq(rc_topic_get(t, "bad name", 8, &c), -EINVAL);
  cr_assert_eq(rc_topic_count(t), 2);
  rc_topic_table_destroy(t);
}

Test(topic, table_full_is_an_error) {
  struct rc_topic_table *t = rc_topic_table_create(8, 1);
  struct rc_topic *tp;
  char name[16];
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof name, "t%d", i);
    cr_assert_eq(rc_topic_get(t, name, strlen(name), &tp), 0);
  }
  cr_assert_eq(rc_topic_get(t, "one-more", 8, &tp), -ENOSPC);
  cr_assert_eq(rc_topic_get(t, "t3", 2, &tp), 0, "existing topics still resolve");
  rc_topic_table_destroy(t);
}
