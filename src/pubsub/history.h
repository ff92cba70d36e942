/* SPDX-License-Identifier: MIT */
/* A topic's history on its home shard: the newest messages as references to
 * their encoded frames (no copy), oldest first, with consecutive sequence
 * numbers. A ring that grows by doubling up to its message limit and is
 * trimmed from the old end by count, bytes and age. Home shard only. */
#ifndef RINGCAST_PUBSUB_HISTORY_H
#define RINGCAST_PUBSUB_HISTORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/util/budget.h"
#include "ringcast/util/frame.h"

struct rc_history_slot {
  struct rc_frame *frame;  /* one shard reference of the home shard */
  uint32_t t;              /* when it was published, home's clock (s) */
};

struct rc_history {
  uint32_t cap, head, n;   /* cap a power of two */
  uint64_t bytes;          /* envelope bytes of the frames held (--history-bytes) */
  struct rc_history_slot v[];
};

/* Why a message left a history. */
enum rc_history_cut { RC_HISTORY_CUT_COUNT, RC_HISTORY_CUT_BYTES, RC_HISTORY_CUT_AGE,
                      RC_HISTORY_CUT_MEMORY, RC_HISTORY_CUT_NR };

struct rc_history_limits {
  uint32_t max_msgs;       /* 0: no history */
  uint64_t max_bytes;      /* 0: no bound */
  uint32_t ttl_s;          /* 0: no bound */
};

/* What trimming does with a frame it drops, and what it counts. */
struct rc_history_ctx {
  struct rc_frame_arena *arena;
  struct rc_budget *budget;     /* charged for the ring arrays */
  _Atomic uint64_t *bytes_total; /* memory the shard's histories hold: the messages'
                                 * allocations and the rings (a counter) */
  _Atomic uint64_t *msgs_total;  /* and of messages held */
  _Atomic uint64_t *cut;         /* [RC_HISTORY_CUT_NR] messages dropped, by reason */
};

/* Appends f, whose sequence number follows the newest's, taking over one shard
 * reference to it, then trims by the limits (the newest always stays). When the
 * ring cannot grow, the oldest message makes room: history is shorter, never
 * holed. Returns false when nothing could be kept (no ring at all): the
 * reference is released. */
bool rc_history_append(struct rc_history **hp, struct rc_frame *f, uint32_t now_s,
                       const struct rc_history_limits *lim, const struct rc_history_ctx *cx);
/* Drops messages older than ttl_s, the newest too: a topic silent for longer
 * than its history lasts has none. Frees the ring when it empties. */
void rc_history_expire(struct rc_history **hp, uint32_t now_s, const struct rc_history_limits *lim,
                       const struct rc_history_ctx *cx);
/* Drops the oldest message, for memory; frees the ring when it empties. */
void rc_history_drop_oldest(struct rc_history **hp, enum rc_history_cut why,
                            const struct rc_history_ctx *cx);
/* Drops every message and the ring. */
void rc_history_clear(struct rc_history **hp, const struct rc_history_ctx *cx);
/* Sequence numbers held: [first, last]; false when empty. */
bool rc_history_span(const struct rc_history *h, uint64_t *first, uint64_t *last);
/* The frame of message seq, which must be within the span. */
struct rc_frame *rc_history_get(const struct rc_history *h, uint64_t seq);

#endif
