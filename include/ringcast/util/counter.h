/* SPDX-License-Identifier: MIT */
/* Statistics counters: each written by one thread only (a relaxed load and store,
 * no locked instruction on the hot path) and read by any thread, merged at scrape. */
#ifndef RINGCAST_UTIL_COUNTER_H
#define RINGCAST_UTIL_COUNTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Owner thread only. */
static inline void rc_counter_add(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                        memory_order_relaxed);
}
static inline void rc_counter_sub(_Atomic uint64_t *c, uint64_t n) { rc_counter_add(c, -n); }
/* Any thread. */
static inline uint64_t rc_counter_get(const _Atomic uint64_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}
/* Any thread: the sum of the counter at byte `offset` in each of n structs. */
uint64_t rc_counter_sum(const void *const *structs, size_t n, size_t offset);

#endif
