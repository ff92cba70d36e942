/* SPDX-License-Identifier: MIT */
/* Per-stream sequence checking: each subscriber's view of one topic must be
 * 1, 2, 3, ... from wherever it started. Counts gaps (messages skipped),
 * duplicates (the same number again) and reorderings (an older number late). */
#ifndef RINGCAST_BENCH_SEQCHECK_H
#define RINGCAST_BENCH_SEQCHECK_H

#include <stdint.h>

struct rc_seq_stream {
  uint64_t last;       /* 0: nothing seen yet */
  uint64_t first;
  uint64_t received;
};

struct rc_seq_totals {
  uint64_t gaps;       /* messages missing between consecutive numbers */
  uint64_t duplicates;
  uint64_t reorders;
};

enum rc_seq_result { RC_SEQ_FIRST, RC_SEQ_NEXT, RC_SEQ_GAP, RC_SEQ_DUPLICATE, RC_SEQ_REORDER };

enum rc_seq_result rc_seq_observe(struct rc_seq_stream *s, struct rc_seq_totals *t, uint64_t seq);
/* Messages the stream lacks of first_expected..last_published: the shortfall
 * counts as loss even at the end, where no later message reveals it as a gap. */
uint64_t rc_seq_missing(const struct rc_seq_stream *s, uint64_t first_expected,
                        uint64_t last_published);

#endif
