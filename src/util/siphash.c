/* SPDX-License-Identifier: MIT */
/* SipHash-2-4 as specified in "SipHash: a fast short-input PRF", with its
 * little-endian loads; checked against the paper's test vector in
 * tests/unit/test_siphash.c. */
#include "ringcast/util/siphash.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t load_le64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

#define SIPROUND                                                                                  \
  do {                                                                                            \
    v0 += v1;                                                                                     \
    v1 = rotl(v1, 13);                                                                            \
    v1 ^= v0;                                                                                     \
    v0 = rotl(v0, 32);                                                                            \
    v2 += v3;                                                                                     \
    v3 = rotl(v3, 16);                                                                            \
    v3 ^= v2;                                                                                     \
    v0 += v3;                                                                                     \
    v3 = rotl(v3, 21);                                                                            \
    v3 ^= v0;                                                                                     \
    v2 += v1;                                                                                     \
    v1 = rotl(v1, 17);                                                                            \
    v1 ^= v2;                                                                                     \
    v2 = rotl(v2, 32);                                                                            \
  } while (0)

uint64_t rc_siphash24(const uint8_t key[16], const void *data, size_t len) {
  const uint8_t *in = data;
  uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  const uint8_t *end = in + (len & ~(size_t)7);
  for (; in != end; in += 8) {
    uint64_t m = load_le64(in);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)len << 56;
  for (size_t i = len & 7; i-- > 0;) b |= (uint64_t)in[i] << (8 * i); /* the tail, little-endian */
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

void rc_siphash_random_key(uint8_t key[16]) {
  if (getrandom(key, 16, GRND_NONBLOCK) == 16) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32), b = (uint64_t)(uintptr_t)key;
  memcpy(key, &a, 8);
  memcpy(key + 8, &b, 8);
}
