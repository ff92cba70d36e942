/* SPDX-License-Identifier: MIT */
/* History rings: one unbroken run of sequence numbers, trimmed from the old end
 * by count, bytes and age, the newest kept; every frame it lets go goes back to
 * its arena; budget and counters back to zero when it empties. */
#include <criterion/criterion.h>

#include "history.h"
#include "ringcast/pubsub/message.h"

static struct rc_frame_arena arena;
static struct rc_frame_arena *const arenas[1] = {&arena};
static struct rc_budget budget;
static _Atomic uint64_t bytes_total, msgs_total, cut[RC_HISTORY_CUT_NR];
static struct rc_history_ctx cx = {.arena = &arena, .budget = &budget, .bytes_total = &bytes_total,
                                   .msgs_total = &msgs_total, .cut = cut};

static void setup(void) {
  rc_frame_arena_init(&arena, 0, arenas);
  rc_budget_init(&budget, 1ull << 30);
  bytes_total = msgs_total = 0;
  for (int i = 0; i < RC_HISTORY_CUT_NR; i++) cut[i] = 0;
}

static void teardown(void) {
  cr_assert_eq(rc_budget_used(&budget), 0, "everything charged came back");
  cr_assert_eq(bytes_total, 0);
  cr_assert_eq(msgs_total, 0);
  rc_frame_arena_fini(&arena);
}

static struct rc_frame *message(uint64_t seq, size_t len) {
  static uint8_t payload[4096];
  struct rc_frame *f = rc_message_encode(0, "t", 1, seq, payload, len, RC_PAYLOAD_BINARY);
  cr_assert_not_null(f);
  return f;
}

static void span_is(const struct rc_history *h, uint64_t first, uint64_t last) {
  uint64_t a, b;
  cr_assert(rc_history_span(h, &a, &b));
  cr_assert_eq(a, first);
  cr_assert_eq(b, last);
  for (uint64_t q = first; q <= last; q++) cr_assert_eq(rc_message_seq(rc_history_get(h, q)), q);
}

TestSuite(history, .init = setup, .fini = teardown);

Test(history, count_bound_keeps_the_newest_run) {
  struct rc_history *h = NULL;
  struct rc_history_limits lim = {.max_msgs = 10};
  for (uint64_t q = 1; q <= 25; q++) cr_assert(rc_history_append(&h, message(q, 8), 100, &lim, &cx));
  span_is(h, 16, 25);
  cr_assert_eq(msgs_total, 10);
  cr_assert_eq(cut[RC_HISTORY_CUT_COUNT], 15);
  cr_assert_leq(h->cap, 16, "no bigger than the limit needs");
  rc_history_clear(&h, &cx);
  cr_assert_null(h);
}

Test(history, byte_bound_keeps_at_least_the_newest) {
  struct rc_history *h = NULL;
  struct rc_history_limits lim = {.max_msgs = 1000, .max_bytes = 1000};
  for (uint64_t q = 1; q <= 20; q++) rc_history_append(&h, message(q, 200), 0, &lim, &cx);
  uint64_t a, b;
  rc_history_span(h, &a, &b);
  cr_assert_eq(b, 20);
  cr_assert_leq(h->bytes, 1000);
  cr_assert_gt(cut[RC_HISTORY_CUT_BYTES], 0);
  rc_history_append(&h, message(21, 4000), 0, &lim, &cx);
  span_is(h, 21, 21); /* larger than the bound alone: kept, alone */
  rc_history_clear(&h, &cx);
}

Test(history, age_bound_empties_it_whole) {
  struct rc_history *h = NULL;
  struct rc_history_limits lim = {.max_msgs = 100, .ttl_s = 5};
  rc_history_append(&h, message(1, 8), 10, &lim, &cx);
  rc_history_append(&h, message(2, 8), 12, &lim, &cx);
  rc_history_append(&h, message(3, 8), 16, &lim, &cx); /* 1 is 6 s old */
  span_is(h, 2, 3);
  rc_history_expire(&h, 16, &lim, &cx);
  span_is(h, 2, 3);
  rc_history_expire(&h, 20, &lim, &cx); /* 2 is 8 s old, 3 is 4 s */
  span_is(h, 3, 3);
  rc_history_expire(&h, 30, &lim, &cx);
  cr_assert_null(h, "a topic silent past its ttl keeps nothing");
  cr_assert_eq(cut[RC_HISTORY_CUT_AGE], 3);
}

Test(history, dropping_for_memory_is_from_the_old_end) {
  struct rc_history *h = NULL;
  struct rc_history_limits lim = {.max_msgs = 100};
  for (uint64_t q = 1; q <= 5; q++) rc_history_append(&h, message(q, 8), 0, &lim, &cx);
  rc_history_drop_oldest(&h, RC_HISTORY_CUT_MEMORY, &cx);
  span_is(h, 2, 5);
  cr_assert_eq(cut[RC_HISTORY_CUT_MEMORY], 1);
  rc_history_clear(&h, &cx);
}

Test(history, wraps_and_grows_in_order) {
  struct rc_history *h = NULL;
  struct rc_history_limits lim = {.max_msgs = 6};
  for (uint64_t q = 1; q <= 100; q++) {
    rc_history_append(&h, message(q, 8), 0, &lim, &cx);
    span_is(h, q > 6 ? q - 5 : 1, q);
  }
  rc_history_clear(&h, &cx);
}

Test(history, frames_go_back_when_the_last_reference_goes) {
  struct rc_history *h = NULL;
  struct rc_history_limits lim = {.max_msgs = 2};
  struct rc_frame *f = message(1, 8);
  atomic_store(&f->shard_refs, 2); /* one for history, one held elsewhere */
  rc_history_append(&h, f, 0, &lim, &cx);
  rc_history_append(&h, message(2, 8), 0, &lim, &cx);
  rc_history_append(&h, message(3, 8), 0, &lim, &cx); /* 1 leaves history */
  cr_assert_eq(atomic_load(&f->shard_refs), 1, "history let go of its own reference only");
  rc_frame_release(&arena, f);
  rc_history_clear(&h, &cx);
}
