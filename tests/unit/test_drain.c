/* SPDX-License-Identifier: MIT */
/* The drain's pacing: when each connection closes within the window. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "drain.h"

Test(drain, offsets_stay_inside_the_window_and_rise) {
  const uint32_t counts[] = {1, 2, 3, 7, 30, 1000, 100000};
  const uint32_t windows[] = {1, 1000, 30000, 3600000};
  for (unsigned c = 0; c < sizeof counts / sizeof *counts; c++)
    for (unsigned w = 0; w < sizeof windows / sizeof *windows; w++)
      for (uint32_t den = 2; den <= 128; den *= 4)
        for (uint32_t num = 1; num < den; num += den / 2) {
          uint32_t prev = 0;
          for (uint32_t k = 0; k < counts[c]; k++) {
            uint32_t at = rc_drain_offset_ms(k, counts[c], windows[w], num, den);
            cr_assert_lt(at, windows[w], "k %u of %u, window %u: %u", k, counts[c], windows[w], at);
            cr_assert_geq(at, prev, "closes come in order");
            prev = at;
          }
        }
}

Test(drain, evenly_spaced) {
  /* 30 connections over 3 s, phase one half: every 100 ms, from 50 ms. */
  for (uint32_t k = 0; k < 30; k++)
    cr_assert_eq(rc_drain_offset_ms(k, 30, 3000, 1, 2), 100 * k + 50);
  /* Each tenth of the window gets a tenth of the closes. */
  unsigned per_tenth[10] = {0};
  for (uint32_t k = 0; k < 1000; k++)
    per_tenth[rc_drain_offset_ms(k, 1000, 30000, 3, 8) / 3000]++;
  for (unsigned i = 0; i < 10; i++)
    cr_assert_eq(per_tenth[i], 100);
}

Test(drain, shards_out_of_step) {
  /* Two shards of 10 each, phases 1/4 and 3/4: their closes interleave. */
  for (uint32_t k = 0; k < 10; k++) {
    uint32_t a = rc_drain_offset_ms(k, 10, 1000, 1, 4), b = rc_drain_offset_ms(k, 10, 1000, 3, 4);
    cr_assert_eq(a, 100 * k + 25);
    cr_assert_eq(b, 100 * k + 75);
  }
}

Test(drain, degenerate) {
  cr_assert_eq(rc_drain_offset_ms(0, 0, 1000, 1, 2), 0);
  cr_assert_eq(rc_drain_offset_ms(0, 1, 0, 1, 2), 0);
  cr_assert_eq(rc_drain_offset_ms(0, 1, 1000, 1, 0), 0);
  cr_assert_eq(rc_drain_offset_ms(5, 5, 1000, 1, 2), 0, "past the last: nothing to wait for");
  /* No overflow at the extremes. */
  cr_assert_lt(rc_drain_offset_ms(UINT32_MAX - 1, UINT32_MAX, UINT32_MAX, 127, 128), UINT32_MAX);
}
