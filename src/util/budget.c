/* SPDX-License-Identifier: MIT */
/* One atomic total. A charge is one fetch_add on a line every shard shares; it is
 * taken per message or per buffer growth, never per subscriber. */
#include "ringcast/util/budget.h"

void rc_budget_init(struct rc_budget *b, uint64_t limit) {
  atomic_init(&b->used, 0);
  atomic_init(&b->refused, 0);
  atomic_init(&b->peak, 0);
  b->limit = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
}

static void note_peak(struct rc_budget *b, int64_t now) {
  int64_t p = atomic_load_explicit(&b->peak, memory_order_relaxed);
  while (now > p &&
         !atomic_compare_exchange_weak_explicit(&b->peak, &p, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

bool rc_budget_try(struct rc_budget *b, size_t n) {
  if (!b) return true;
  int64_t add = (int64_t)n;
  int64_t after = atomic_fetch_add_explicit(&b->used, add, memory_order_relaxed) + add;
  if (after > b->limit) {
    atomic_fetch_sub_explicit(&b->used, add, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
    return false;
  }
  note_peak(b, after);
  return true;
}

void rc_budget_force(struct rc_budget *b, size_t n) {
  if (!b) return;
  int64_t after = atomic_fetch_add_explicit(&b->used, (int64_t)n, memory_order_relaxed) + (int64_t)n;
  note_peak(b, after);
}

void rc_budget_release(struct rc_budget *b, size_t n) {
  if (b) atomic_fetch_sub_explicit(&b->used, (int64_t)n, memory_order_relaxed);
}

bool rc_budget_over(const struct rc_budget *b) {
  return b && atomic_load_explicit(&b->used, memory_order_relaxed) >= b->limit;
}

int64_t rc_budget_used(const struct rc_budget *b) {
  return b ? atomic_load_explicit(&b->used, memory_order_relaxed) : 0;
}
