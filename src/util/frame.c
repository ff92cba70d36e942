/* SPDX-License-Identifier: MIT */
/* Frame buffers in single allocations, the shard-level (atomic) half of the split
 * reference count, per-shard holds, and the return of frames to their owner. */
#include "ringcast/util/frame.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/ws.h"

/* A hold's flags live in what was its padding: holds stay 16 bytes. */
static_assert(sizeof(struct rc_hold) == 16, "a hold is a pointer and two 32-bit words");

struct rc_frame *rc_frame_create(uint16_t owner, size_t len) {
  if (len > UINT32_MAX - 64) return NULL;
  struct rc_frame *f = malloc(sizeof *f + len);
  if (!f) return NULL;
  atomic_init(&f->shard_refs, 1);
  f->owner = owner;
  f->flags = 0;
  f->len = (uint32_t)len;
  f->cap = (uint32_t)len;
  f->alt_off = 0;
  f->alt_len = 0;
  f->charge = 0;
  f->budget = NULL;
  f->tag = 0;
  f->stamp_ns = 0;
  return f;
}

struct rc_frame *rc_frame_create_ws(uint16_t owner, uint8_t opcode, const void *payload,
                                    size_t len) {
  uint8_t hdr[10];
  size_t hl = rc_ws_encode_header(hdr, opcode, true, len);
  struct rc_frame *f = rc_frame_create(owner, hl + len);
  if (!f) return NULL;
  memcpy(f->data, hdr, hl);
  if (len) memcpy(f->data + hl, payload, len);
  return f;
}

struct rc_frame *rc_frame_create_close(uint16_t owner, unsigned code, const char *reason) {
  uint8_t body[RC_WS_MAX_CONTROL_PAYLOAD];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > sizeof body - 2) rl = sizeof body - 2;
  body[0] = (uint8_t)(code >> 8);
  body[1] = (uint8_t)code;
  if (rl) memcpy(body + 2, reason, rl);
  return rc_frame_create_ws(owner, RC_WS_OP_CLOSE, body, 2 + rl);
}

bool rc_frame_charge(struct rc_frame *f, struct rc_budget *b, bool force) {
  if (f->budget || !b) return true;
  /* The allocation, rounded as the allocator does for small sizes. */
  size_t n = (sizeof *f + f->cap + 15) & ~(size_t)15;
  if (force) rc_budget_force(b, n);
  else if (!rc_budget_try(b, n)) return false;
  f->budget = b;
  f->charge = (uint32_t)n;
  return true;
}

int rc_frame_append(struct rc_frame **fp, const void *p, size_t n, size_t max) {
  struct rc_frame *f = *fp;
  if (f->len + n > max) return -EMSGSIZE;
  if (f->len + n > f->cap) {
    size_t cap = (size_t)f->cap * 2;
    if (cap < f->len + n) cap = f->len + n;
    if (cap < 256) cap = 256;
    if (cap > max) cap = max;
    struct rc_frame *g = realloc(f, sizeof *f + cap);
    if (!g) return -ENOMEM;
    f = *fp = g;
    f->cap = (uint32_t)cap;
    if (f->budget) {
      struct rc_budget *b = f->budget;
      rc_budget_release(b, f->charge);
      f->budget = NULL;
      rc_frame_charge(f, b, true);
    }
  }
  memcpy(f->data + f->len, p, n);
  f->len += (uint32_t)n;
  return 0;
}

void rc_frame_destroy(struct rc_frame *f) {
  if (f->budget) rc_budget_release(f->budget, f->charge);
  free(f);
}

bool rc_frame_shard_unref(struct rc_frame *f) {
  /* acq_rel: the release half orders this shard's reads of the frame before its
   * decrement; the acquire half, in whichever shard takes the count to zero,
   * orders every other shard's reads before the free. (Rather than release plus
   * an acquire fence on the last one: ThreadSanitizer does not model fences, and
   * on x86 the locked decrement is a full barrier either way.) */
  return atomic_fetch_sub_explicit(&f->shard_refs, 1, memory_order_acq_rel) == 1;
}

void rc_frame_arena_init(struct rc_frame_arena *a, unsigned id, struct rc_frame_arena *const *all) {
  a->id = id;
  a->all = all;
  rc_pool_init(&a->holds, sizeof(struct rc_hold), 256);
  rc_mpsc_init(&a->returns);
}

unsigned rc_frame_arena_reclaim(struct rc_frame_arena *a) {
  unsigned n = 0;
  struct rc_mpsc_node *node;
  while ((node = rc_mpsc_try_pop(&a->returns))) {
    rc_frame_destroy((struct rc_frame *)node);
    n++;
  }
  return n;
}

void rc_frame_arena_fini(struct rc_frame_arena *a) {
  rc_frame_arena_reclaim(a);
  rc_pool_fini(&a->holds);
}

void rc_frame_release(struct rc_frame_arena *a, struct rc_frame *f) {
  if (!rc_frame_shard_unref(f)) return;
  if (f->owner == a->id) {
    rc_frame_destroy(f);
    return;
  }
  /* Not rung: the owner reclaims on its next loop turn. The memory is as good
   * as free now, so the budget gets it back at once, not when the owner wakes. */
  if (f->budget) {
    rc_budget_release(f->budget, f->charge);
    f->budget = NULL;
  }
  rc_mpsc_push(&a->all[f->owner]->returns, &f->node);
}

struct rc_hold *rc_hold_create(struct rc_frame_arena *a, struct rc_frame *f) {
  struct rc_hold *h = rc_pool_get(&a->holds);
  if (!h) return NULL;
  h->frame = f;
  h->refs = 1;
  h->flags = 0;
  return h;
}

void rc_hold_unref(struct rc_frame_arena *a, struct rc_hold *h) {
  if (--h->refs) return;
  struct rc_frame *f = h->frame;
  rc_pool_put(&a->holds, h);
  rc_frame_release(a, f);
}
