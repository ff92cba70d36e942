/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ringcast/util/bytebuf.h"

Test(bytebuf, grows_to_the_cap_and_no_further) {
  struct rc_bytebuf b = {0};
  cr_assert_eq(rc_bytebuf_append(&b, "", 0, 10), 0, "an empty append needs no memory");
  cr_assert_null(b.p);
  cr_assert_eq(rc_bytebuf_append(&b, "hello", 5, 10), 0);
  cr_assert_eq(rc_bytebuf_append(&b, "world!", 6, 10), -EMSGSIZE);
  cr_assert_eq(b.len, 5, "nothing appended past the cap");
  cr_assert_eq(rc_bytebuf_append(&b, "world", 5, 10), 0);
  cr_assert_leq(b.cap, 10);
  cr_assert_eq(memcmp(b.p, "helloworld", 10), 0);
  rc_bytebuf_consume(&b, 3);
  cr_assert_eq(memcmp(b.p, "loworld", 7), 0);
  rc_bytebuf_consume(&b, 100);
  cr_assert_null(b.p, "consuming everything frees the memory");
  cr_assert_eq(b.len, 0);
  rc_bytebuf_free(&b);
}
