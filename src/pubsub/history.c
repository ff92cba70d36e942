/* SPDX-License-Identifier: MIT */
/* History rings. Trimming is from the old end only, so the sequence numbers held
 * are always one unbroken run and a lookup is an index, not a search. */
#include "history.h"

#include <stdlib.h>
#include <string.h>

#include "ringcast/pubsub/message.h"
#include "ringcast/util/counter.h"

#define MIN_CAP 4

static size_t ring_size(uint32_t cap) {
  return sizeof(struct rc_history) + (size_t)cap * sizeof(struct rc_history_slot);
}

/* What a message kept costs in memory: its allocation, as charged to the budget. */
static size_t frame_cost(const struct rc_frame *f) {
  return f->charge ? f->charge : sizeof *f + f->cap;
}

static struct rc_history_slot *slot(struct rc_history *h, uint32_t i) {
  return &h->v[(h->head + i) & (h->cap - 1)];
}

static void ring_free(struct rc_history **hp, const struct rc_history_ctx *cx) {
  rc_budget_release(cx->budget, ring_size((*hp)->cap));
  rc_counter_sub(cx->bytes_total, ring_size((*hp)->cap));
  free(*hp);
  *hp = NULL;
}

static void pop(struct rc_history **hp, enum rc_history_cut why, const struct rc_history_ctx *cx) {
  struct rc_history *h = *hp;
  struct rc_history_slot *s = slot(h, 0);
  h->bytes -= s->frame->len;
  rc_counter_sub(cx->bytes_total, frame_cost(s->frame));
  rc_counter_sub(cx->msgs_total, 1);
  rc_counter_add(&cx->cut[why], 1);
  rc_frame_release(cx->arena, s->frame);
  h->head = (h->head + 1) & (h->cap - 1);
  if (--h->n == 0) ring_free(hp, cx);
}

/* A ring of twice the capacity (at most max), or NULL. */
static struct rc_history *grow(struct rc_history *h, uint32_t max, const struct rc_history_ctx *cx) {
  uint32_t cap = h ? h->cap * 2 : MIN_CAP;
  while (cap / 2 >= max && cap > MIN_CAP) cap /= 2; /* no bigger than the limit needs */
  if (h && cap <= h->cap) return NULL;
  struct rc_history *g = malloc(ring_size(cap));
  if (!g) return NULL;
  rc_budget_force(cx->budget, ring_size(cap));
  rc_counter_add(cx->bytes_total, ring_size(cap));
  g->cap = cap;
  g->head = 0;
  g->n = 0;
  g->bytes = 0;
  if (h) {
    for (uint32_t i = 0; i < h->n; i++) g->v[i] = *slot(h, i);
    g->n = h->n;
    g->bytes = h->bytes;
    rc_budget_release(cx->budget, ring_size(h->cap));
    rc_counter_sub(cx->bytes_total, ring_size(h->cap));
    free(h);
  }
  return g;
}

bool rc_history_append(struct rc_history **hp, struct rc_frame *f, uint32_t now_s,
                       const struct rc_history_limits *lim, const struct rc_history_ctx *cx) {
  struct rc_history *h = *hp;
  if (h && h->n == lim->max_msgs) pop(hp, RC_HISTORY_CUT_COUNT, cx);
  h = *hp;
  if (!h || h->n == h->cap) {
    struct rc_history *g = grow(h, lim->max_msgs, cx);
    if (g) {
      h = *hp = g;
    } else if (h) {
      pop(hp, RC_HISTORY_CUT_MEMORY, cx); /* shorter, never holed */
      h = *hp;
      if (!h && !(h = *hp = grow(NULL, lim->max_msgs, cx))) goto none;
    } else {
      goto none;
    }
  }
  *slot(h, h->n) = (struct rc_history_slot){.frame = f, .t = now_s};
  h->n++;
  h->bytes += f->len;
  rc_counter_add(cx->bytes_total, frame_cost(f));
  rc_counter_add(cx->msgs_total, 1);
  while (lim->max_bytes && h->n > 1 && h->bytes > lim->max_bytes) pop(hp, RC_HISTORY_CUT_BYTES, cx);
  rc_history_expire(hp, now_s, lim, cx);
  return true;
none:
  rc_frame_release(cx->arena, f);
  return false;
}

void rc_history_expire(struct rc_history **hp, uint32_t now_s, const struct rc_history_limits *lim,
                       const struct rc_history_ctx *cx) {
  if (!lim->ttl_s) return;
  while (*hp && now_s - slot(*hp, 0)->t >= lim->ttl_s) pop(hp, RC_HISTORY_CUT_AGE, cx);
}

void rc_history_drop_oldest(struct rc_history **hp, enum rc_history_cut why,
                            const struct rc_history_ctx *cx) {
  if (*hp) pop(hp, why, cx);
}

void rc_history_clear(struct rc_history **hp, const struct rc_history_ctx *cx) {
  while (*hp) pop(hp, RC_HISTORY_CUT_MEMORY, cx);
}

bool rc_history_span(const struct rc_history *h, uint64_t *first, uint64_t *last) {
  if (!h || !h->n) return false;
  struct rc_history *m = (struct rc_history *)h;
  *first = rc_message_seq(slot(m, 0)->frame);
  *last = *first + h->n - 1;
  return true;
}

struct rc_frame *rc_history_get(const struct rc_history *h, uint64_t seq) {
  struct rc_history *m = (struct rc_history *)h;
  uint64_t first = rc_message_seq(slot(m, 0)->frame);
  return slot(m, (uint32_t)(seq - first))->frame;
}
