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
  /* pprev points into the slot array only for a slot's first timer; the slot
   * is empty now if that first timer was the only one. */
  if (t->pprev >= w->slot && t->pprev < w->slot + RC_TIMER_SLOTS && !*t->pprev) {
    unsigned s = (unsigned)(t->pprev - w->slot);
    w->bits[s / 64] &= ~(1ull << (s % 64));
  }
  t->next = NULL;
  t->pprev = NULL;
  w->count--;
}

void rc_timer_cancel(struct rc_timer_wheel *w, struct rc_timer *t) {
  if (rc_timer_is_armed(t)) unlink_timer(w, t);
}

uint64_t rc_timer_arm(struct rc_timer_wheel *w, struct rc_timer *t, uint64_t due) {
  if (rc_timer_is_armed(t)) unlink_timer(w, t);
  /* Never into the present or the past: the slot being drained would hand it
   * straight back, and a callback that re-arms for "now" would spin. Never past
   * one revolution, so the slot's next visit is its deadline. */
  if (due <= w->now) due = w->now + 1;
  if (due > w->now + RC_TIMER_SLOTS - 1) due = w->now + RC_TIMER_SLOTS - 1;
  unsigned s = (unsigned)(due & MASK);
  t->next = w->slot[s];
  if (t->next) t->next->pprev = &t->next;
  t->pprev = &w->slot[s];
  w->slot[s] = t;
  w->bits[s / 64] |= 1ull << (s % 64);
  w->count++;
  return due;
}

struct rc_timer *rc_timer_wheel_pop(struct rc_timer_wheel *w, uint64_t now_tick) {
  for (;;) {
    if (w->scanning) {
      /* Everything in the present's slot is due (see the header). */
      struct rc_timer *t = w->slot[w->now & MASK];
      if (t) {
        unlink_timer(w, t);
        return t;
      }
      w->scanning = false;
    }
    if (w->now >= now_tick) return NULL;
    if (w->count == 0) {
      w->now = now_tick;
      return NULL;
    }
    /* After a stall of more than a revolution each slot needs one visit only:
     * every timer in it is due by then. */
    if (now_tick - w->now > RC_TIMER_SLOTS) w->now = now_tick - RC_TIMER_SLOTS;
    w->now++;
    w->scanning = true;
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
