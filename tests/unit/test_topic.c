/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/topic.h"

Test(topic, names) {
  cr_assert(rc_topic_name_is_valid("quotes.AAPL", 11));
  cr_assert(rc_topic_name_is_valid("a/b:c@d-e_f", 11));
  cr_assert_not(rc_topic_name_is_valid("", 0));
  cr_assert_not(rc_topic_name_is_valid("has space", 9));
  cr_assert_not(rc_topic_name_is_valid("quo\"te", 6));
  char long_name[RC_TOPIC_NAME_MAX + 2];
  memset(long_name, 'a', sizeof long_name);
  cr_assert(rc_topic_name_is_valid(long_name, RC_TOPIC_NAME_MAX));
  cr_assert_not(rc_topic_name_is_valid(long_name, RC_TOPIC_NAME_MAX + 1));
}

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

Test(topic, local_lists_and_interest_bits) {
  struct rc_topic_table *t = rc_topic_table_create(4, 3);
  struct rc_topic *tp;
  rc_topic_get(t, "x", 1, &tp);
  struct rc_conn *c1 = (struct rc_conn *)0x1000, *c2 = (struct rc_conn *)0x2000,
                 *c3 = (struct rc_conn *)0x3000;
  cr_assert_eq(rc_topic_local_add(tp, 2, c1, 0), 0);
  cr_assert_eq(atomic_load(&tp->interest), 1u << 2);
  cr_assert_eq(rc_topic_local_add(tp, 2, c2, 5), 1);
  cr_assert_eq(rc_topic_local_add(tp, 2, c3, 7), 2);
  struct rc_subref moved = rc_topic_local_remove(tp, 2, 0);
  cr_assert_eq(moved.conn, c3, "the last entry moves into the hole");
  cr_assert_eq(moved.sub_idx, 7);
  cr_assert_eq(tp->local[2].n, 2);
  moved = rc_topic_local_remove(tp, 2, 1);
  cr_assert_null(moved.conn, "removing the last entry moves nothing");
  moved = rc_topic_local_remove(tp, 2, 0);
  cr_assert_eq(atomic_load(&tp->interest), 0, "bit clears with the last subscriber");
  rc_topic_table_destroy(t);
}
