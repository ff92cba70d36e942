/* SPDX-License-Identifier: MIT */
/* The topic name grammar. */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/proto/topic_name.h"

Test(topic_name, grammar) {
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

/* '$' opens the server's own namespace, and only there. */
Test(topic_name, reserved) {
  cr_assert(rc_topic_name_is_valid("$sys.stats", 10));
  cr_assert(rc_topic_name_is_reserved("$sys.stats", 10));
  cr_assert_not(rc_topic_name_is_valid("sys.$stats", 10));
  cr_assert_not(rc_topic_name_is_valid("$$", 2));
  cr_assert_not(rc_topic_name_is_reserved("sys.stats", 9));
  cr_assert_not(rc_topic_name_is_reserved("", 0));
}
