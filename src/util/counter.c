/* SPDX-License-Identifier: MIT */
/* Summing one counter across the per-shard statistics structs. */
#include "ringcast/util/counter.h"

uint64_t rc_counter_sum(const void *const *structs, size_t n, size_t offset) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += rc_counter_get((const _Atomic uint64_t *)((const char *)structs[i] + offset));
  return total;
}
