/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/util/json_out.h"

Test(json_out, escapes) {
  const char *in = "a\"b\\c\n\x01";
  char out[64];
  size_t n = rc_json_escape(out, (const uint8_t *)in, strlen(in));
  cr_assert_eq(n, rc_json_escaped_len((const uint8_t *)in, strlen(in)));
  out[n] = '\0';
  cr_assert_str_eq(out, "a\\\"b\\\\c\\n\\u0001");
}

Test(json_out, base64) {
  char out[16];
  size_t n = rc_base64_encode(out, (const uint8_t *)"foobar", 6);
  cr_assert_eq(n, 8);
  cr_assert_eq(memcmp(out, "Zm9vYmFy", 8), 0);
  n = rc_base64_encode(out, (const uint8_t *)"fo", 2);
  cr_assert_eq(n, rc_base64_len(2));
  cr_assert_eq(memcmp(out, "Zm8=", 4), 0);
}
