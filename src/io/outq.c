/* SPDX-License-Identifier: MIT */
/* The outbound FIFO of frame references. Chunk indexes wrap lazily: (chunk,
 * RC_OUTQ_CHUNK_ENTRIES) means "the end of this chunk, the start of the next". */
#include "ringcast/io/outq.h"

#include <assert.h>
#include <errno.h>

static_assert(sizeof(struct rc_outq_chunk) == 256, "queue chunks are 256 bytes");

static inline uintptr_t entry_make(struct rc_hold *h, enum rc_frame_view v) {
  return (uintptr_t)h | (uintptr_t)v;
}
static inline struct rc_hold *entry_hold(uintptr_t e) { return (struct rc_hold *)(e & ~(uintptr_t)1); }
static inline enum rc_frame_view entry_view(uintptr_t e) { return (enum rc_frame_view)(e & 1); }
static inline size_t entry_len(uintptr_t e) {
  return rc_frame_view_len(entry_hold(e)->frame, entry_view(e));
}

void rc_outq_pool_init(struct rc_pool *chunks) {
  rc_pool_init(chunks, sizeof(struct rc_outq_chunk), 64);
}

int rc_outq_push(struct rc_outq *q, struct rc_pool *chunks, struct rc_hold *h,
                 enum rc_frame_view v) {
  if (!q->tail || q->tail_i == RC_OUTQ_CHUNK_ENTRIES) {
    struct rc_outq_chunk *ch = rc_pool_get(chunks);
    if (!ch) return -ENOMEM;
    ch->next = NULL;
    if (q->tail) q->tail->next = ch;
    else q->head = ch;
    q->tail = ch;
    q->tail_i = 0;
    if (q->count == 0) q->head_i = 0;
  }
  q->tail->e[q->tail_i++] = entry_make(h, v);
  rc_hold_ref(h);
  q->count++;
  q->bytes += rc_frame_view_len(h->frame, v);
  return 0;
}

bool rc_outq_coalesce(struct rc_outq *q, uint32_t in_flight, struct rc_frame *f) {
  if (q->count <= in_flight || f->len > RC_OUTQ_COALESCE_MAX / 4) return false;
  struct rc_hold *h = rc_outq_tail(q);
  if (!(h->frame->flags & RC_FRAME_PRIVATE) || h->refs != 1) return false;
  if (rc_frame_append(&h->frame, f->data, f->len, RC_OUTQ_COALESCE_MAX) < 0) return false;
  q->bytes += f->len;
  rc_frame_destroy(f);
  return true;
}

int rc_outq_push_frame(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a,
                       struct rc_frame *f) {
  struct rc_hold *h = rc_hold_create(a, f);
  if (!h) {
    rc_frame_destroy(f);
    return -ENOMEM;
  }
  int ret = rc_outq_push(q, chunks, h, RC_FRAME_VIEW_MAIN);
  rc_hold_unref(a, h); /* the queue's reference, when pushed, keeps it */
  return ret;
}

/* Removes the head entry; the caller has accounted for its bytes. */
static void pop_head(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a) {
  if (q->head_i == RC_OUTQ_CHUNK_ENTRIES) {
    struct rc_outq_chunk *next = q->head->next;
    rc_pool_put(chunks, q->head);
    q->head = next;
    q->head_i = 0;
  }
  uintptr_t e = q->head->e[q->head_i++];
  q->count--;
  q->off = 0;
  if (q->count == 0) {
    rc_pool_put(chunks, q->head);
    q->head = q->tail = NULL;
    q->head_i = q->tail_i = 0;
  }
  rc_hold_unref(a, entry_hold(e));
}

static inline uintptr_t head_entry(const struct rc_outq *q) {
  return q->head_i == RC_OUTQ_CHUNK_ENTRIES ? q->head->next->e[0] : q->head->e[q->head_i];
}

uint32_t rc_outq_consume(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a,
                         uint64_t n) {
  uint32_t done = 0;
  while (n && q->count) {
    size_t rest = entry_len(head_entry(q)) - q->off;
    if (n < rest) {
      q->off += (uint32_t)n;
      q->bytes -= n;
      break;
    }
    n -= rest;
    q->bytes -= rest;
    pop_head(q, chunks, a);
    done++;
  }
  return done;
}

void rc_outq_truncate(struct rc_outq *q, struct rc_pool *chunks, struct rc_frame_arena *a,
                      uint32_t keep) {
  if (keep >= q->count) return;
  struct rc_outq_chunk *ch = q->head;
  unsigned i = q->head_i;
  for (uint32_t k = 0; k < keep; k++) {
    if (i == RC_OUTQ_CHUNK_ENTRIES) {
      ch = ch->next;
      i = 0;
    }
    i++;
  }
  struct rc_outq_chunk *last_kept = keep ? ch : NULL;
  unsigned last_kept_i = i;
  uint32_t dropped = q->count - keep;
  for (uint32_t k = 0; k < dropped; k++) {
    if (i == RC_OUTQ_CHUNK_ENTRIES) {
      ch = ch->next;
      i = 0;
    }
    uintptr_t e = ch->e[i++];
    q->bytes -= entry_len(e) - (keep == 0 && k == 0 ? q->off : 0);
    rc_hold_unref(a, entry_hold(e));
  }
  struct rc_outq_chunk *doomed = last_kept ? last_kept->next : q->head;
  while (doomed) {
    struct rc_outq_chunk *next = doomed->next;
    rc_pool_put(chunks, doomed);
    doomed = next;
  }
  q->count = keep;
  if (last_kept) {
    last_kept->next = NULL;
    q->tail = last_kept;
    q->tail_i = (uint16_t)last_kept_i;
  } else {
    q->head = q->tail = NULL;
    q->head_i = q->tail_i = 0;
    q->off = 0;
  }
}

int rc_outq_gather(const struct rc_outq *q, struct iovec *iov, int max_iov, size_t max_bytes,
                   uint32_t *entries, size_t *bytes, uint64_t *oldest_ns) {
  const struct rc_outq_chunk *ch = q->head;
  unsigned i = q->head_i;
  int niov = 0;
  size_t total = 0;
  uint32_t k = 0;
  /* Unsigned wrap: 0 (not stamped) becomes the largest value, never the minimum. */
  uint64_t oldest = UINT64_MAX;
  for (; k < q->count && niov < max_iov && total < max_bytes; k++) {
    if (i == RC_OUTQ_CHUNK_ENTRIES) {
      ch = ch->next;
      i = 0;
    }
    uintptr_t e = ch->e[i++];
    const struct rc_hold *h = entry_hold(e);
    size_t len;
    const uint8_t *p = rc_frame_view(h->frame, entry_view(e), &len);
    if (!(h->flags & RC_HOLD_UNTIMED) && h->frame->stamp_ns - 1 < oldest - 1)
      oldest = h->frame->stamp_ns;
    size_t skip = k == 0 ? q->off : 0;
    iov[niov].iov_base = (void *)(p + skip);
    iov[niov].iov_len = len - skip;
    total += len - skip;
    niov++;
  }
  *entries = k;
  *bytes = total;
  if (oldest_ns) *oldest_ns = oldest == UINT64_MAX ? 0 : oldest;
  return niov;
}
