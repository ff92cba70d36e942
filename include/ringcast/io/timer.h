/* SPDX-License-Identifier: MIT */
/* The shard's one timer facility: a hashed timing wheel of intrusive timers.
 * Arming, re-arming and cancelling are O(1); finding the next due slot is a scan
 * of a bitmap (64 words), so an idle shard sleeps until its next deadline instead
 * of sweeping every connection. Ticks are RC_TIMER_TICK_MS long. A timer is at
 * most one revolution (RC_TIMER_SLOTS ticks, 40.96 s) ahead: a later deadline
 * fires at the end of the revolution and its owner re-arms for the rest (the
 * session re-checks its deadlines whenever its timer fires anyway). So every
 * timer in the slot being visited is due, and a timer is two pointers: one
 * connection's costs 16 bytes. Owner thread only. */
#ifndef RINGCAST_IO_TIMER_H
#define RINGCAST_IO_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define RC_TIMER_TICK_MS 10
#define RC_TIMER_SLOTS 4096   /* a revolution: 40.96 s */

struct rc_timer {
  struct rc_timer *next;
  struct rc_timer **pprev;       /* NULL while not armed */
};

struct rc_timer_wheel {
  uint64_t now;                  /* every timer due at or before it has fired */
  bool scanning;                 /* the present's slot is being drained by rc_timer_wheel_pop */
  uint32_t count;
  uint64_t bits[RC_TIMER_SLOTS / 64];
  struct rc_timer *slot[RC_TIMER_SLOTS];
};

static inline uint64_t rc_timer_tick(uint64_t ms) { return ms / RC_TIMER_TICK_MS; }
/* The first tick at or after ms: a deadline never fires early. */
static inline uint64_t rc_timer_tick_ceil(uint64_t ms) {
  return (ms + RC_TIMER_TICK_MS - 1) / RC_TIMER_TICK_MS;
}
static inline bool rc_timer_is_armed(const struct rc_timer *t) { return t->pprev != 0; }

void rc_timer_wheel_init(struct rc_timer_wheel *w, uint64_t now_tick);
/* Arms t (re-arming it if armed) to fire at tick `due`: a tick not after the
 * wheel's present fires on the next tick, one past a revolution at the end of it.
 * Returns the tick it will fire at. */
uint64_t rc_timer_arm(struct rc_timer_wheel *w, struct rc_timer *t, uint64_t due);
void rc_timer_cancel(struct rc_timer_wheel *w, struct rc_timer *t);
/* Unlinks and returns one timer due at or before now_tick, or NULL when none is
 * left (the wheel's present is then now_tick). Callbacks may arm and cancel any
 * timer between calls. */
struct rc_timer *rc_timer_wheel_pop(struct rc_timer_wheel *w, uint64_t now_tick);
/* The earliest tick after the present with an armed timer, or UINT64_MAX when
 * none is armed. */
uint64_t rc_timer_wheel_next(const struct rc_timer_wheel *w);

#endif
