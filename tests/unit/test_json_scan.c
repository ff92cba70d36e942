/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ringcast/proto/json_scan.h"

static int check(const char *s) {
  const char *why;
  size_t at;
  return rc_json_check((const uint8_t *)s, strlen(s), &why, &at);
}

Test(json_scan, accepts_rfc8259) {
  static const char *const ok[] = {
      "0", "-0", "1.5", "-12.5e+3", "1E9", "12345678901234567890", "true", "false", "null",
      "\"\"", "\"a\\u0000b\"", "\"\\ud83d\\ude00\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
      "[]", "{}", " [1, {\"a\": [null]}] ", "{\"a\":1,\"a\":2}", "\"\xc3\xa9\"",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) cr_assert_eq(check(ok[i]), 0, "%s", ok[i]);
}

Test(json_scan, refuses_what_lenient_parsers_take) {
  static const struct {
    const char *in, *why;
  } bad[] = {
      {"01", "leading zero"},
      {"-01", "leading zero"},
      {"1.", "decimal point"},
      {".5", "not a JSON value"},
      {"1e", "exponent"},
      {"+1", "not a JSON value"},
      {"\"a\tb\"", "control character"},
      {"\"a\x01\"", "control character"},
      {"\"\\x41\"", "unknown escape"},
      {"\"\\u12\"", "four hex digits"},
      {"\"abc", "unterminated string"},
      {"[1,]", "not a JSON value"},
      {"{\"a\":1,}", "string name"},
      {"{\"a\" 1}", "':'"},
      {"[1 2]", "','"},
      {"[1", "unterminated array"},
      {"tru", "unknown literal"},
      {"NaN", "not a JSON value"},
      {"1 2", "follows the value"},
      {"", "missing"},
      {"   ", "missing"},
      {"{'a':1}", "string name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *why = NULL;
    size_t at = 99;
    cr_assert_eq(rc_json_check((const uint8_t *)bad[i].in, strlen(bad[i].in), &why, &at), -EINVAL,
                 "%s", bad[i].in);
    cr_assert_not_null(strstr(why, bad[i].why), "%s -> %s", bad[i].in, why);
    cr_assert_leq(at, strlen(bad[i].in));
  }
}

Test(json_scan, depth_is_bounded) {
  char deep[2 * RC_JSON_MAX_DEPTH + 4];
  size_t n = 0;
  for (int i = 0; i < RC_JSON_MAX_DEPTH; i++) deep[n++] = '[';
  for (int i = 0; i < RC_JSON_MAX_DEPTH; i++) deep[n++] = ']';
  deep[n] = 0;
  cr_assert_eq(check(deep), 0, "exactly the maximum depth is accepted");
  memmove(deep + 1, deep, n + 1);
  deep[0] = '[';
  deep[n + 1] = ']';
  deep[n + 2] = 0;
  const char *why;
  size_t at;
  cr_assert_eq(rc_json_check((const uint8_t *)deep, n + 2, &why, &at), -EINVAL);
  cr_assert_str_eq(why, "nested too deeply");
}

Test(json_scan, members_and_duplicates) {
  const char *t = "{ \"op\" : \"publish\", \"data\": {\"op\": 1}, \"n\": 12345678901234567890 }";
  struct rc_json_span sp;
  cr_assert_eq(rc_json_member((const uint8_t *)t, strlen(t), "op", &sp), 0, "nested names do not count");
  cr_assert_eq(sp.type, RC_JSON_STRING);
  cr_assert_eq(strncmp(t + sp.off, "\"publish\"", sp.len), 0);
  cr_assert_eq(rc_json_member((const uint8_t *)t, strlen(t), "data", &sp), 0);
  cr_assert_eq(sp.type, RC_JSON_OBJECT);
  cr_assert_eq(sp.len, strlen("{\"op\": 1}"));
  cr_assert_eq(rc_json_member((const uint8_t *)t, strlen(t), "n", &sp), 0);
  cr_assert_eq(sp.type, RC_JSON_NUMBER);
  cr_assert_eq(strncmp(t + sp.off, "12345678901234567890", sp.len), 0);
  cr_assert_eq(rc_json_member((const uint8_t *)t, strlen(t), "nope", &sp), -ENOENT);
  const char *dup = "{\"a\":1,\"b\":2,\"a\":3}";
  cr_assert_eq(rc_json_member((const uint8_t *)dup, strlen(dup), "a", &sp), -EEXIST);
  cr_assert_eq(rc_json_member((const uint8_t *)"[1]", 3, "a", &sp), -EINVAL);
  /* Names are compared as decoded: an escaped spelling is the same member. */
  const char *esc = "{\"\\u0065xp\":5}";
  cr_assert_eq(rc_json_member((const uint8_t *)esc, strlen(esc), "exp", &sp), 0);
  cr_assert_eq(strncmp(esc + sp.off, "5", sp.len), 0);
  const char *esc_dup = "{\"exp\":9,\"\\u0065xp\":5}";
  cr_assert_eq(rc_json_member((const uint8_t *)esc_dup, strlen(esc_dup), "exp", &sp), -EEXIST);
  const char *other = "{\"e\\\"xp\":5}";
  cr_assert_eq(rc_json_member((const uint8_t *)other, strlen(other), "exp", &sp), -ENOENT);
}

Test(json_scan, array_elements) {
  const char *t = "[ \"a\" , [1,2], {\"x\":[]} ,3 ]";
  struct rc_json_span arr = {.off = 0, .len = strlen(t), .type = RC_JSON_ARRAY}, el;
  size_t pos = 0;
  const char *want[] = {"\"a\"", "[1,2]", "{\"x\":[]}", "3"};
  int n = 0;
  while (rc_json_array_next((const uint8_t *)t, &arr, &pos, &el)) {
    cr_assert_lt(n, 4);
    cr_assert_eq(el.len, strlen(want[n]));
    cr_assert_eq(memcmp(t + el.off, want[n], el.len), 0);
    n++;
  }
  cr_assert_eq(n, 4);
  struct rc_json_span empty = {.off = 0, .len = 3, .type = RC_JSON_ARRAY};
  pos = 0;
  cr_assert_eq(rc_json_array_next((const uint8_t *)"[ ]", &empty, &pos, &el), 0);
}

Test(json_scan, string_decoding) {
  const char *t = "\"a\\u0000b\\n\\u00e9\\ud83d\\ude00\\\"\\/\\ud800x\"";
  struct rc_json_span sp = {.off = 0, .len = strlen(t), .type = RC_JSON_STRING};
  uint8_t out[64];
  size_t n = rc_json_string_decode((const uint8_t *)t, &sp, out);
  const uint8_t want[] = {'a', 0, 'b', '\n', 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, '"', '/',
                          0xed, 0xa0, 0x80, 'x'};
  cr_assert_eq(n, sizeof want);
  cr_assert_eq(memcmp(out, want, n), 0, "NUL kept, pairs joined, a lone surrogate kept as is");
  cr_assert_leq(n, sp.len);
}
