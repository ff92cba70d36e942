/* SPDX-License-Identifier: MIT */
/* Resume positions as clients write them. */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/proto/position.h"

Test(position, epochs_round_trip) {
  char t[RC_EPOCH_TEXT_LEN + 1];
  uint64_t e;
  rc_epoch_format(0x0123456789abcdefull, t);
  cr_assert_str_eq(t, "0123456789abcdef");
  cr_assert(rc_epoch_parse(t, 16, &e));
  cr_assert_eq(e, 0x0123456789abcdefull);
  cr_assert(rc_epoch_parse("FFFFFFFFFFFFFFFF", 16, &e));
  cr_assert_eq(e, UINT64_MAX);
  cr_assert_not(rc_epoch_parse("0123456789abcde", 15, &e));
  cr_assert_not(rc_epoch_parse("0123456789abcdeg", 16, &e));
}

Test(position, items_split_from_the_right) {
  const char *topic;
  size_t tl;
  uint64_t e, q;
  const char *s = "md:eu:quotes:00000000000000ff:120";
  cr_assert_eq(rc_position_parse(s, strlen(s), &topic, &tl, &e, &q), 0);
  cr_assert_eq(tl, 12);
  cr_assert_eq(memcmp(topic, "md:eu:quotes", 12), 0);
  cr_assert_eq(e, 255);
  cr_assert_eq(q, 120);
  static const char *const bad[] = {
      "a:00000000000000ff",          /* no seq */
      ":00000000000000ff:1",         /* no topic */
      "a:00000000000000ff:",         /* empty seq */
      "a:00000000000000ff:-1",       /* sign */
      "a:00000000000000ff:1x",
      "a:ff:1",                      /* short epoch */
      "a:00000000000000ff:99999999999999999999", /* past 2^63 */
      "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(rc_position_parse(bad[i], strlen(bad[i]), &topic, &tl, &e, &q), -22, "%s", bad[i]);
  cr_assert_eq(rc_position_parse("a:00000000000000ff:9223372036854775807", 38, &topic, &tl, &e, &q), 0);
}
