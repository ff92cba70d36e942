/* SPDX-License-Identifier: MIT */
/* Redis Cluster's key slots: CRC16 XMODEM against the specification's check
 * value, and slots confirmed with redis-cli CLUSTER KEYSLOT (Redis 7.0.15). */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/proto/redis_slot.h"

static unsigned slot(const char *k) { return rc_redis_key_slot(k, strlen(k)); }

Test(redis_slot, crc16_check_value) {
  cr_assert_eq(rc_redis_crc16("123456789", 9), 0x31C3);
  cr_assert_eq(rc_redis_crc16("", 0), 0);
}

Test(redis_slot, keys_as_redis_hashes_them) {
  cr_assert_eq(slot("foo"), 12182);
  cr_assert_eq(slot("bar"), 5061);
  cr_assert_eq(slot("rc:{quotes.AAPL}:meta"), 4773);
  cr_assert_eq(slot("rc:{t7}"), 553);
  cr_assert_eq(slot("{user1000}.following"), 3443);
  cr_assert_eq(slot("a{b}c"), 3300);
}

Test(redis_slot, hash_tag_rule) {
  /* "{}" is no tag: the whole key; the first '{' and first '}' after it. */
  cr_assert_eq(slot("foo{}{bar}"), 8363);
  cr_assert_eq(slot("foo{{bar}}zap"), 4015);
  cr_assert_eq(slot("rc:{quotes.AAPL}:log"), slot("rc:{quotes.AAPL}"));
  cr_assert_eq(slot("rc:{quotes.AAPL}"), slot("quotes.AAPL"));
  cr_assert_eq(slot("{"), rc_redis_crc16("{", 1) % RC_REDIS_SLOTS, "an unclosed tag hashes the key");
}
