/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <stdint.h>

#include "ringcast/util/siphash.h"

Test(siphash, reference_vector) {
  /* SipHash paper, appendix A: key 00..0f, message 00..0e. */
  uint8_t key[16], msg[64];
  for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
  for (int i = 0; i < 64; i++) msg[i] = (uint8_t)i;
  cr_assert_eq(rc_siphash24(key, msg, 15), 0xa129ca6149be45e5ull);
  /* The reference implementation's vectors.h: lengths 0, 7, 8 and 63. */
  cr_assert_eq(rc_siphash24(key, msg, 0), 0x726fdb47dd0e0e31ull);
  cr_assert_eq(rc_siphash24(key, msg, 8), 0x93f5f5799a932462ull);
}
