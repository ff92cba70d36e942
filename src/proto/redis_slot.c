/* SPDX-License-Identifier: MIT */
/* Redis Cluster's key slots: CRC16 XMODEM and the hash-tag rule, bit-exact
 * with the cluster specification (its reference table is what Redis uses). */
#include "ringcast/proto/redis_slot.h"

#include <string.h>

uint16_t rc_redis_crc16(const void *p, size_t len) {
  /* Bitwise rather than the spec's 512-byte table: one topic name per
   * followed topic or publish is short, and this keeps the module tiny. */
  const unsigned char *b = p;
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint16_t)(b[i] << 8);
    for (int k = 0; k < 8; k++)
      crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

unsigned rc_redis_key_slot(const char *key, size_t len) {
  const char *open = memchr(key, '{', len);
  if (open) {
    size_t start = (size_t)(open - key) + 1;
    const char *close = memchr(key + start, '}', len - start);
    /* "{}" is no tag: the whole key is hashed, as Redis does. */
    if (close && close > key + start) return rc_redis_crc16(key + start, (size_t)(close - key) - start) % RC_REDIS_SLOTS;
  }
  return rc_redis_crc16(key, len) % RC_REDIS_SLOTS;
}
