/* SPDX-License-Identifier: MIT */
/* Frame buffers: private frames, views, the shard-level reference count, holds,
 * and frames handed back to the arena that allocated them. The multi-threaded
 * release race is in tests/tsan/stress_threads.c. */
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/proto/ws.h"
#include "ringcast/util/frame.h"

Test(frame, close_frames) {
  struct rc_frame *f = rc_frame_create_close(3, 1008, "slow consumer");
  struct rc_ws_header h;
  cr_assert_eq(rc_ws_parse_header(f->data, f->len, false, &h), 2);
  cr_assert_eq(h.opcode, RC_WS_OP_CLOSE);
  cr_assert_eq(f->data[2] << 8 | f->data[3], 1008);
  cr_assert_eq(memcmp(f->data + 4, "slow consumer", 13), 0);
  cr_assert_eq(rc_frame_view_len(f, RC_FRAME_VIEW_ALT), f->len, "private frames have one view");
  cr_assert_eq(f->owner, 3);
  rc_frame_destroy(f);
  char reason[300];
  memset(reason, 'r', sizeof reason - 1);
  reason[sizeof reason - 1] = '\0';
  f = rc_frame_create_close(3, 1000, reason);
  cr_assert_eq(f->len, 2 + 125, "close payload capped at 125 bytes");
  rc_frame_destroy(f);
}

Test(frame, shard_refs_single_thread) {
  struct rc_frame *f = rc_frame_create(0, 8);
  atomic_store(&f->shard_refs, 3);
  cr_assert_not(rc_frame_shard_unref(f));
  cr_assert_not(rc_frame_shard_unref(f));
  cr_assert(rc_frame_shard_unref(f));
  rc_frame_destroy(f);
}

/* Two arenas standing for two shards. */
static struct rc_frame_arena a0, a1;
static struct rc_frame_arena *const arenas[2] = {&a0, &a1};

static void arenas_init(void) {
  rc_frame_arena_init(&a0, 0, arenas);
  rc_frame_arena_init(&a1, 1, arenas);
}
static void arenas_fini(void) {
  rc_frame_arena_fini(&a0);
  rc_frame_arena_fini(&a1);
}

Test(frame, holds_count_plainly_and_release_once, .init = arenas_init, .fini = arenas_fini) {
  struct rc_frame *f = rc_frame_create(0, 4);
  struct rc_hold *h = rc_hold_create(&a0, f);
  cr_assert_not_null(h);
  rc_hold_ref(h);
  rc_hold_ref(h);
  cr_assert_eq(h->refs, 3);
  rc_hold_unref(&a0, h);
  rc_hold_unref(&a0, h);
  cr_assert_eq(atomic_load(&f->shard_refs), 1, "the shard reference stays while a hold remains");
  rc_hold_unref(&a0, h); /* the owner's last reference frees the frame at once */
  cr_assert_eq(rc_frame_arena_reclaim(&a0), 0, "nothing was handed back");
}

Test(frame, last_reference_elsewhere_goes_home, .init = arenas_init, .fini = arenas_fini) {
  struct rc_frame *f = rc_frame_create(0, 4);
  atomic_store(&f->shard_refs, 2);
  rc_frame_release(&a0, f);
  cr_assert_eq(rc_frame_arena_reclaim(&a0), 0, "not the last reference");
  rc_frame_release(&a1, f); /* shard 1 drops the last one: back to shard 0 */
  cr_assert_eq(rc_frame_arena_reclaim(&a1), 0);
  cr_assert_eq(rc_frame_arena_reclaim(&a0), 1, "the owner frees it");
}

Test(frame, views) {
  struct rc_frame *f = rc_frame_create(0, 10);
  memcpy(f->data, "0123456789", 10);
  size_t len;
  const uint8_t *p = rc_frame_view(f, RC_FRAME_VIEW_ALT, &len);
  cr_assert_eq(p, f->data, "without an alternate view, view 1 is view 0");
  cr_assert_eq(len, 10);
  f->len = 6;
  f->alt_off = 6;
  f->alt_len = 4;
  p = rc_frame_view(f, RC_FRAME_VIEW_MAIN, &len);
  cr_assert_eq(len, 6);
  p = rc_frame_view(f, RC_FRAME_VIEW_ALT, &len);
  cr_assert_eq(len, 4);
  cr_assert_eq(memcmp(p, "6789", 4), 0);
  cr_assert_eq(rc_frame_view_len(f, RC_FRAME_VIEW_ALT), 4);
  rc_frame_destroy(f);
}
