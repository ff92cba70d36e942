/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/utf8.h"

static bool valid(const char *s, size_t n) {
  struct guarded g;
  uint8_t *p = guard_copy(&g, s, n);
  bool v = rc_utf8_is_valid(p, n);
  guard_free(&g);
  return v;
}
#define V(s) valid(s, sizeof(s) - 1)

Test(utf8, accepts_valid) {
  cr_assert(V(""));
  cr_assert(V("plain ascii that is longer than eight bytes"));
  cr_assert(V("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));
  cr_assert(V("κόσμε"));
}

Test(utf8, rejects_invalid) {
  cr_assert_not(V("\x80"), "lone continuation");
  cr_assert_not(V("\xc0\xaf"), "overlong 2-byte");
  cr_assert_not(V("\xc1\xbf"), "overlong 2-byte");
  cr_assert_not(V("\xe0\x9f\xbf"), "overlong 3-byte");
  cr_assert_not(V("\xed\xa0\x80"), "surrogate");
  cr_assert_not(V("\xf0\x8f\xbf\xbf"), "overlong 4-byte");
  cr_assert_not(V("\xf4\x90\x80\x80"), "above U+10FFFF");
  cr_assert_not(V("\xf5\x80\x80\x80"), "invalid lead");
  cr_assert_not(V("\xff"), "invalid byte");
  cr_assert_not(V("abc\xe2\x82"), "truncated");
  cr_assert_not(V("\xe2\x28\xa1"), "bad continuation");
}

Test(utf8, incremental_matches_one_shot_at_every_split) {
  const char *s = "a\xe2\x82\xac b \xf0\x9f\x98\x80 c \xc3\xa9";
  size_t n = strlen(s);
  for (size_t cut = 0; cut <= n; cut++) {
    struct rc_utf8_state st;
    rc_utf8_init(&st);
    cr_assert(rc_utf8_feed(&st, (const uint8_t *)s, cut));
    cr_assert(rc_utf8_feed(&st, (const uint8_t *)s + cut, n - cut));
    cr_assert(rc_utf8_is_complete(&st));
  }
}

Test(utf8, fails_fast_on_first_bad_fragment) {
  struct rc_utf8_state st;
  rc_utf8_init(&st);
  cr_assert(rc_utf8_feed(&st, (const uint8_t *)"ok \xf0\x9f", 5));
  cr_assert_not(rc_utf8_is_complete(&st));
  cr_assert_not(rc_utf8_feed(&st, (const uint8_t *)"\x28", 1), "split code point broken");
}
