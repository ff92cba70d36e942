/* SPDX-License-Identifier: MIT */
/* --redis URLs: the forms Redis' own clients take, and a reason for each refusal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ringcast/proto/redis_url.h"

static struct rc_redis_url u;
static const char *why;

Test(redis_url, host_port_db_and_defaults) {
  cr_assert_eq(rc_redis_url_parse("redis://127.0.0.1:6380/2", &u, &why), 0);
  cr_assert_str_eq(u.host, "127.0.0.1");
  cr_assert_eq(u.port, 6380);
  cr_assert_eq(u.db, 2);
  cr_assert_str_eq(u.password, "");
  cr_assert_eq(rc_redis_url_parse("redis://cache.internal", &u, &why), 0);
  cr_assert_str_eq(u.host, "cache.internal");
  cr_assert_eq(u.port, 6379);
  cr_assert_eq(u.db, 0);
  cr_assert_eq(rc_redis_url_parse("redis://[::1]:7000/", &u, &why), 0);
  cr_assert_str_eq(u.host, "::1");
  cr_assert_eq(u.port, 7000);
}

Test(redis_url, credentials_with_escapes) {
  cr_assert_eq(rc_redis_url_parse("redis://:s%40cret%3A1@h:1", &u, &why), 0);
  cr_assert_str_eq(u.user, "");
  cr_assert_str_eq(u.password, "s@cret:1");
  cr_assert_eq(rc_redis_url_parse("redis://app:pw@h", &u, &why), 0);
  cr_assert_str_eq(u.user, "app");
  cr_assert_str_eq(u.password, "pw");
}

Test(redis_url, refusals_say_why) {
  static const char *const bad[] = {
      "http://h:1",  "rediss://h:1", "redis://",      "redis://h:0",   "redis://h:65536",
      "redis://h:x", "redis://h/a",  "redis://h/-1",  "redis://u@h",   "redis://:@h",
      "redis://[::1", "redis://[::1]x", "redis://h?db=1", "redis://:%4@h", "redis://:%00@h",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    cr_assert_eq(rc_redis_url_parse(bad[i], &u, &why), -EINVAL, "%s", bad[i]);
    cr_assert(why && *why, "%s has a reason", bad[i]);
  }
  rc_redis_url_parse("rediss://h", &u, &why);
  cr_assert(strstr(why, "TLS"), "%s", why);
}

Test(redis_url, overlong_parts_are_refused) {
  char s[600] = "redis://";
  memset(s + 8, 'h', 300);
  cr_assert_eq(rc_redis_url_parse(s, &u, &why), -EINVAL);
  strcpy(s, "redis://:");
  memset(s + 9, 'p', 300);
  strcpy(s + 309, "@h");
  cr_assert_eq(rc_redis_url_parse(s, &u, &why), -EINVAL);
}
