/* SPDX-License-Identifier: MIT */
#include "seqcheck.h"

enum rc_seq_result rc_seq_observe(struct rc_seq_stream *s, struct rc_seq_totals *t, uint64_t seq) {
  if (s->last == 0) {
    s->first = s->last = seq;
    s->received = 1;
    return RC_SEQ_FIRST;
  }
  if (seq == s->last + 1) {
    s->last = seq;
    s->received++;
    return RC_SEQ_NEXT;
  }
  if (seq > s->last + 1) {
    t->gaps += seq - s->last - 1;
    s->last = seq;
    s->received++;
    return RC_SEQ_GAP;
  }
  if (seq == s->last) {
    t->duplicates++;
    return RC_SEQ_DUPLICATE;
  }
  t->reorders++;
  return RC_SEQ_REORDER;
}

uint64_t rc_seq_missing(const struct rc_seq_stream *s, uint64_t first_expected,
                        uint64_t last_published) {
  if (last_published < first_expected) return 0;
  uint64_t expected = last_published - first_expected + 1;
  /* Only numbers inside the expected range count as received. */
  uint64_t got = s->received;
  if (s->last && s->first < first_expected) {
    uint64_t before = first_expected - s->first;
    got = got > before ? got - before : 0;
  }
  return expected > got ? expected - got : 0;
}
