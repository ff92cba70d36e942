/* SPDX-License-Identifier: MIT */
/* The ring wrapper on a real io_uring: the SQE getter submits when the SQ is
 * full, and completions moved to the stash (what a -EBUSY submission does) come
 * back first and in order, before those still in the CQ. */
#include <criterion/criterion.h>
#include <errno.h>

#include "ringcast/io/ring.h"

static void submit_nops(struct rc_ring *r, uint64_t from, uint64_t to) {
  for (uint64_t i = from; i < to; i++) {
    struct io_uring_sqe *sqe = rc_ring_get_sqe(r);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, i);
  }
  cr_assert_geq(io_uring_submit_and_get_events(&r->ring), 0);
}

Test(ring, user_data_round_trip) {
  uint64_t ud = rc_ring_ud(RC_RING_OP_SEND, 0x123456, 0xfedcba98u);
  cr_assert_eq(rc_ring_ud_op(ud), RC_RING_OP_SEND);
  cr_assert_eq(rc_ring_ud_gen(ud), 0x123456);
  cr_assert_eq(rc_ring_ud_idx(ud), 0xfedcba98u);
  cr_assert_eq(rc_ring_ud_gen(rc_ring_ud(RC_RING_OP_RECV, 0x1123456, 0)), 0x123456, "24-bit generation");
}

Test(ring, stash_keeps_completion_order) {
  struct rc_ring r;
  char err[256];
  int ret = rc_ring_init(&r, 8, 64, err, sizeof err);
  if (ret == -ENOSYS || ret == -EPERM) cr_skip_test("io_uring unavailable: %s", err);
  cr_assert_eq(ret, 0, "%s", err);
  submit_nops(&r, 0, 20); /* more than the SQ: the getter submits on the way */
  cr_assert_eq(rc_ring_stash(&r), 20);
  cr_assert_eq(rc_ring_stash(&r), 0, "nothing left in the CQ");
  submit_nops(&r, 20, 30);
  cr_assert(rc_ring_has_cqe(&r));
  struct io_uring_cqe out[7];
  uint64_t next = 0;
  unsigned n;
  while ((n = rc_ring_reap(&r, out, 7)) > 0)
    for (unsigned i = 0; i < n; i++) cr_assert_eq(out[i].user_data, next++, "in order");
  cr_assert_eq(next, 30);
  cr_assert_not(rc_ring_has_cqe(&r));
  rc_ring_exit(&r);
}
