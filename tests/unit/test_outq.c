/* SPDX-License-Identifier: MIT */
/* The outbound queue: FIFO order across chunks, partial writes that resume at
 * the right byte, truncation that keeps what a send in flight covers, and every
 * reference released exactly once. */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/io/outq.h"

static struct rc_frame_arena arena;
static struct rc_frame_arena *const arenas[1] = {&arena};
static struct rc_pool chunks;

static void setup(void) {
  rc_frame_arena_init(&arena, 0, arenas);
  rc_outq_pool_init(&chunks);
}
static void teardown(void) {
  rc_pool_fini(&chunks);
  rc_frame_arena_fini(&arena);
}

/* A frame holding `len` copies of byte b, and a hold on it. */
static struct rc_hold *make(uint8_t b, size_t len) {
  struct rc_frame *f = rc_frame_create(0, len);
  memset(f->data, b, len);
  return rc_hold_create(&arena, f);
}

/* Everything gather describes from the first unwritten byte, flattened. */
static size_t flatten(const struct rc_outq *q, uint8_t *out, size_t max, uint32_t *entries) {
  struct iovec iov[64];
  size_t bytes;
  int n = rc_outq_gather(q, iov, 64, max, entries, &bytes, NULL);
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  cr_assert_eq(off, bytes);
  return off;
}

Test(outq, fifo_across_chunks_and_release, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  struct rc_hold *h[100];
  for (int i = 0; i < 100; i++) {
    h[i] = make((uint8_t)i, 3);
    cr_assert_eq(rc_outq_push(&q, &chunks, h[i], RC_FRAME_VIEW_MAIN), 0);
    cr_assert_eq(h[i]->refs, 2, "the queue takes its own reference");
    rc_hold_unref(&arena, h[i]);
  }
  cr_assert_eq(q.count, 100);
  cr_assert_eq(q.bytes, 300);
  uint8_t buf[400];
  uint32_t entries;
  size_t n = flatten(&q, buf, 1 << 20, &entries);
  cr_assert_eq(entries, 64, "64 iovecs, one per entry");
  cr_assert_eq(n, 192);
  for (int i = 0; i < 64; i++) cr_assert_eq(buf[i * 3], i, "in order across chunks");
  cr_assert_eq(rc_outq_consume(&q, &chunks, &arena, 300), 100, "every entry completes");
  cr_assert_eq(q.count, 0);
  cr_assert_eq(q.bytes, 0);
  cr_assert_null(q.head, "an empty queue owns no chunk");
}

Test(outq, partial_writes_resume_at_the_right_byte, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  for (int i = 0; i < 5; i++) {
    struct rc_hold *h = make((uint8_t)('a' + i), 10);
    rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
    rc_hold_unref(&arena, h);
  }
  /* The kernel took 13 bytes: one entry and 3 bytes of the next. */
  cr_assert_eq(rc_outq_consume(&q, &chunks, &arena, 13), 1);
  cr_assert_eq(q.off, 3);
  cr_assert_eq(q.bytes, 37);
  uint8_t buf[64];
  uint32_t entries;
  size_t n = flatten(&q, buf, 1 << 20, &entries);
  cr_assert_eq(n, 37);
  cr_assert_eq(entries, 4);
  cr_assert_eq(memcmp(buf, "bbbbbbbccccccccccdddddddddd", 27), 0, "resumes inside the second entry");
  /* Another short write that ends exactly at an entry boundary. */
  cr_assert_eq(rc_outq_consume(&q, &chunks, &arena, 7), 1);
  cr_assert_eq(q.off, 0);
  n = flatten(&q, buf, 1 << 20, &entries);
  cr_assert_eq(n, 30);
  cr_assert_eq(buf[0], 'c');
  cr_assert_eq(rc_outq_consume(&q, &chunks, &arena, 30), 3);
  cr_assert_eq(q.count, 0);
}

Test(outq, each_entry_is_its_view, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  struct rc_frame *f = rc_frame_create(0, 12);
  memcpy(f->data, "ENVELOPEraw!", 12);
  f->len = 8;
  f->alt_off = 8;
  f->alt_len = 4;
  struct rc_hold *h = rc_hold_create(&arena, f);
  rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_ALT);
  rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
  rc_hold_unref(&arena, h);
  cr_assert_eq(q.bytes, 4 + 8);
  rc_outq_consume(&q, &chunks, &arena, 2);
  uint8_t buf[32];
  uint32_t entries;
  struct iovec iov[4];
  size_t bytes;
  cr_assert_eq(rc_outq_gather(&q, iov, 4, 1 << 20, &entries, &bytes, NULL), 2,
               "one iovec per entry");
  size_t n = flatten(&q, buf, 1 << 20, &entries);
  cr_assert_eq(n, 10);
  cr_assert_eq(memcmp(buf, "w!ENVELOPE", 10), 0);
  rc_outq_truncate(&q, &chunks, &arena, 0);
}

Test(outq, truncate_keeps_what_a_send_covers, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  struct rc_hold *h = make('x', 10);
  for (int i = 0; i < 70; i++) rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
  cr_assert_eq(h->refs, 71);
  rc_outq_consume(&q, &chunks, &arena, 4); /* a send in flight covers entries 0..1 */
  rc_outq_truncate(&q, &chunks, &arena, 2);
  cr_assert_eq(q.count, 2);
  cr_assert_eq(q.bytes, 16, "6 left of the first entry, 10 of the second");
  cr_assert_eq(h->refs, 3, "68 references released");
  /* The queue still works after truncation, across a new chunk. */
  for (int i = 0; i < 40; i++) rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
  cr_assert_eq(rc_outq_consume(&q, &chunks, &arena, q.bytes), 42);
  rc_outq_truncate(&q, &chunks, &arena, 0);
  cr_assert_eq(h->refs, 1);
  rc_hold_unref(&arena, h);
}

Test(outq, truncate_to_nothing_drops_a_partial_head, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  struct rc_hold *h = make('y', 10);
  for (int i = 0; i < 3; i++) rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
  rc_outq_consume(&q, &chunks, &arena, 5);
  rc_outq_truncate(&q, &chunks, &arena, 0);
  cr_assert_eq(q.count, 0);
  cr_assert_eq(q.bytes, 0);
  cr_assert_eq(q.off, 0);
  cr_assert_null(q.head);
  cr_assert_eq(h->refs, 1);
  rc_hold_unref(&arena, h);
}

Test(outq, gather_caps_bytes_at_entry_boundaries, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  for (int i = 0; i < 10; i++) {
    struct rc_hold *h = make((uint8_t)i, 1000);
    rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
    rc_hold_unref(&arena, h);
  }
  uint8_t buf[16000];
  uint32_t entries;
  size_t n = flatten(&q, buf, 2500, &entries);
  cr_assert_eq(entries, 3, "stops once the cap is reached, never mid-entry");
  cr_assert_eq(n, 3000);
  rc_outq_truncate(&q, &chunks, &arena, 0);
}

/* Send latency is sampled from the oldest publish stamp a send covers: frames
 * without a stamp (replies) and holds marked untimed (replays) say nothing. */
Test(outq, gather_reports_the_oldest_timed_stamp, .init = setup, .fini = teardown) {
  struct rc_outq q = {0};
  static const struct {
    uint64_t stamp;
    bool untimed;
  } e[] = {{0, false}, {500, true}, {900, false}, {700, false}, {0, false}, {800, false}};
  for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
    struct rc_hold *h = make((uint8_t)i, 10);
    h->frame->stamp_ns = e[i].stamp;
    if (e[i].untimed) h->flags |= RC_HOLD_UNTIMED;
    rc_outq_push(&q, &chunks, h, RC_FRAME_VIEW_MAIN);
    rc_hold_unref(&arena, h);
  }
  struct iovec iov[8];
  uint32_t entries;
  size_t bytes;
  uint64_t oldest = 1;
  rc_outq_gather(&q, iov, 8, 1 << 20, &entries, &bytes, &oldest);
  cr_assert_eq(oldest, 700, "the smallest stamp of a timed hold, got %llu",
               (unsigned long long)oldest);
  rc_outq_gather(&q, iov, 3, 1 << 20, &entries, &bytes, &oldest);
  cr_assert_eq(oldest, 900, "only the entries the gather covers count");
  rc_outq_gather(&q, iov, 2, 1 << 20, &entries, &bytes, &oldest);
  cr_assert_eq(oldest, 0, "no timed stamp among them: 0");
  rc_outq_truncate(&q, &chunks, &arena, 0);
}
