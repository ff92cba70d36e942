/* SPDX-License-Identifier: MIT */
/* A hashed timing wheel: slot = due tick modulo the slot count, doubly linked
 * through pprev so a timer unlinks itself without knowing its neighbours. */
#include "ringcast/io/timer.h"

#include <assert.h>
#include <string.h>

#define MASK (RC_TIMER_SLOTS - 1u)
static_assert((RC_TIMER_SLOTS & MASK) == 0 && RC_TIMER_SLOTS % 64 == 0,
              "the slot count is a power of two and a multiple of 64");

void rc_timer_wheel_init(struct rc_timer_wheel *w, uint64_t now_tick) {
  memset(w, 0, sizeof *w);
  w->now = now_tick;
}

static void unlink_timer(struct rc_timer_wheel *w, struct rc_timer *t) {
  *t->pprev = t->next;
  if (t->next) t->next->pprev = t->pprev;
  unsigned s = (unsigned)(t->due & MASK);
  if (!w->slot[s]) w->bits[s / 64] &= ~(1ull << (s % 64));
  t->next = NULL;
  t->pprev = NULL;
  w->count--;
}

void rc_timer_cancel(struct rc_timer_wheel *w, struct rc_timer *t) {
  if (rc_timer_is_armed(t)) unlink_timer(w, t);
}

void rc_timer_arm(struct rc_timer_wheel *w, struct rc_timer *t, uint64_t due) {
  if (rc_timer_is_armed(t)) unlink_timer(w, t);
  /* Never into the present or the past: the slot being drained would hand it
   * straight back, and a callback that re-arms for "now" would spin. */
  if (due <= w->now) due = w->now + 1;
  unsigned s = (unsigned)(due & MASK);
  t->due = due;
  t->next = w->slot[s];
  if (t->next) t->next->pprev = &t->next;
  t->pprev = &w->slot[s];
  w->slot[s] = t;
  w->bits[s / 64] |= 1ull << (s % 64);
  w->count++;
}

struct rc_timer *rc_timer_wheel_pop(struct rc_timer_wheel *w, uint64_t now_tick) {
  for (;;) {
    if (w->scan) {
      for (struct rc_timer *t = w->slot[(w->scan - 1) & MASK]; t; t = t->next) {
        if (t->due <= now_tick) {
          unlink_timer(w, t);
          return t;
        }
      }
      w->scan = 0;
    }
    if (w->now >= now_tick) return NULL;
    /* After a stall of more than a revolution each slot needs one visit only. */
    if (now_tick - w->now > RC_TIMER_SLOTS) w->now = now_tick - RC_TIMER_SLOTS;
    w->now++;
    if (w->count == 0) {
      w->now = now_tick;
      continue;
    }
    w->scan = w->now + 1;
  }
}

uint64_t rc_timer_wheel_next(const struct rc_timer_wheel *w) {
  if (w->count == 0) return UINT64_MAX;
  unsigned start = (unsigned)((w->now + 1) & MASK);
  for (unsigned d = 0; d < RC_TIMER_SLOTS;) {
    unsigned s = (start + d) & MASK;
    uint64_t word = w->bits[s / 64] >> (s % 64);
    if (word) return w->now + 1 + d + (unsigned)__builtin_ctzll(word);
    d += 64 - s % 64;
  }
  return UINT64_MAX; /* unreachable while count > 0 */
}
