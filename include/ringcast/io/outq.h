/* SPDX-License-Identifier: MIT */
/* A connection's outbound queue: a FIFO of references to shared frames (a hold
 * and which of the frame's two views), in 256-byte chunks from the shard's pool,
 * so an idle connection owns none. It tracks how much of the head entry is
 * written, so a send that stopped part-way resumes at the right byte.
 * Owner shard only. */
#ifndef RINGCAST_IO_OUTQ_H
#define RINGCAST_IO_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ringcast/util/frame.h"
#include "ringcast/util/pool.h"

#define RC_OUTQ_CHUNK_ENTRIES 31

struct rc_outq_chunk {
  struct rc_outq_chunk *next;
  uintptr_t e[RC_OUTQ_CHUNK_ENTRIES];  /* struct rc_hold * | view in bit 0 */
};

struct rc_outq {
  struct rc_outq_chunk *head, *tail;
  uint16_t head_i, tail_i;
  uint32_t count;
  uint32_t off;          /* bytes of the head entry already written */
  uint64_t bytes;        /* bytes not yet written */
};

/* The pool every queue of a shard takes its chunks from. */
void rc_outq_pool_init(struct rc_pool *chunks);

/* Appends view v of h's frame and takes a plain reference on h. 0 or -ENOMEM. */
int rc_outq_push(struct rc_outq *q, struct rc_pool *chunks, struct rc_hold *h,
                 enum rc_frame_view v);
/* The last entry's hold, or NULL when the queue is empty. */
static inline struct rc_hold *rc_outq_tail(const struct rc_outq *q) {
  if (!q->count) return NULL;
  return (struct rc_hold *)(q->tail->e[q->tail_i - 1] & ~(uintptr_t)1);
}
/* A connection's own small frames (replies, acks, pongs) are appended to the
 * last queued entry while it is another of its own: a publisher pipelining
 * thousands of commands gets its acks in a few large writes, and a flood of tiny
 * frames costs its bytes, not an entry each. The entry grows to at most this. */
#define RC_OUTQ_COALESCE_MAX (64u << 10)

/* Appends private frame f's bytes to the last entry when that one is a private
 * frame no one else holds and not among the first `in_flight` entries (a send in
 * flight covers those), f is small and the result fits RC_OUTQ_COALESCE_MAX.
 * true: appended, f is freed; false: nothing changed. */
bool rc_outq_coalesce(struct rc_outq *q, uint32_t in_flight, struct rc_frame *f);
/* Queues private frame f (taken over whatever the result) as a new entry. 0 or
 * -ENOMEM (f is freed). */
int rc_outq_push_frame(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a,
                       struct rc_frame *f);
/* Accounts n written bytes from the head: entries written whole are dropped
 * (their references released); a partly written one keeps its offset. Returns
 * how many entries were completed. n must not exceed q->bytes. */
uint32_t rc_outq_consume(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a,
                         uint64_t n);
/* Drops every entry after the first `keep` (those a send in flight covers). */
void rc_outq_truncate(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a,
                      uint32_t keep);
/* Describes the queue from its first unwritten byte as at most max_iov iovecs,
 * one per entry, and about max_bytes (stopping after the entry that reaches it).
 * Returns the iovec count; *entries is how many queue entries they cover and
 * *bytes their total; *oldest_ns (unless NULL) the smallest publish stamp of
 * their frames (rc_frame.stamp_ns, holds marked RC_HOLD_UNTIMED left out), 0
 * when none is stamped. */
int rc_outq_gather(const struct rc_outq *q, struct iovec *iov, int max_iov, size_t max_bytes,
                   uint32_t *entries, size_t *bytes, uint64_t *oldest_ns);

#endif
