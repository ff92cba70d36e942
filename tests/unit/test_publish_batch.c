/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/publish_batch.h"

Test(publish_batch, parses_records_binary_safe) {
  static const char body[] = "a 3\nabc\nb.c 5\nx\ny\0z\nempty 0\n\n";
  struct guarded g;
  const uint8_t *p = guard_copy(&g, body, sizeof body - 1);
  struct rc_batch_record r;
  char err[256];
  size_t pos = 0;
  ssize_t n = rc_publish_batch_next(p, sizeof body - 1, pos, 100, &r, err, sizeof err);
  cr_assert_eq(n, 8);
  cr_assert_eq(r.topic_len, 1);
  cr_assert_eq(memcmp(r.payload, "abc", 3), 0);
  pos += (size_t)n;
  n = rc_publish_batch_next(p, sizeof body - 1, pos, 100, &r, err, sizeof err);
  cr_assert_gt(n, 0);
  cr_assert_eq(r.payload_len, 5);
  cr_assert_eq(memcmp(r.payload, "x\ny\0z", 5), 0);
  pos += (size_t)n;
  n = rc_publish_batch_next(p, sizeof body - 1, pos, 100, &r, err, sizeof err);
  cr_assert_gt(n, 0);
  cr_assert_eq(r.payload_len, 0);
  pos += (size_t)n;
  cr_assert_eq(rc_publish_batch_next(p, sizeof body - 1, pos, 100, &r, err, sizeof err), 0);
  guard_free(&g);
}

Test(publish_batch, rejects_bad_records) {
  static const char *bad[] = {
      "noseparator", "bad topic 3\nabc\n", "t x\nabc\n", "t 3abc\n", "t 5\nabc\n",
      "t 3\nabcX", "t 3\nabc", "t 99999999999\n", "t 200\n",
  };
  struct rc_batch_record r;
  char err[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct guarded g;
    const uint8_t *p = guard_copy(&g, bad[i], strlen(bad[i]));
    cr_assert_eq(rc_publish_batch_next(p, strlen(bad[i]), 0, 100, &r, err, sizeof err), -EINVAL,
                 "%s", bad[i]);
    cr_assert(strlen(err) > 10);
    guard_free(&g);
  }
}
