/* SPDX-License-Identifier: MIT */
/* Two-sided subscription index: removal swaps the last entry into the hole on both
 * sides and fixes the moved entry's back-index, so nothing is ever searched. */
#include "ringcast/pubsub/subscription.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ringcast/pubsub/topic.h"

int rc_subscription_find(const struct rc_subscriber *s, const struct rc_topic *tp) {
  for (uint16_t i = 0; i < s->n; i++)
    if (s->v[i].topic == tp) return i;
  return -ENOENT;
}

static int list_append(struct rc_topic *tp, unsigned shard, struct rc_subscriber *s,
                       uint32_t sub_idx) {
  struct rc_sublist *l = &tp->local[shard];
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 1; /* most topics of a big universe have one or two */
    struct rc_subref *v = realloc(l->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n] = (struct rc_subref){.sub = s, .sub_idx = sub_idx};
  if (l->n++ == 0) {
    /* seq_cst so that a publish the home shard handles after this subscription
     * was acknowledged sees the bit. */
    atomic_fetch_or_explicit(&tp->interest, 1ull << shard, memory_order_seq_cst);
  }
  return (int)(l->n - 1);
}

int rc_subscription_add(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp,
                        unsigned limit) {
  if (rc_subscription_find(s, tp) >= 0) return -EEXIST;
  if (s->n >= limit) return -EMLINK;
  if (s->n == s->cap) {
    uint16_t cap = s->cap ? (uint16_t)(s->cap * 2) : 1;
    struct rc_subscription *v = realloc(s->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    s->v = v;
    s->cap = cap;
  }
  int idx = list_append(tp, shard, s, s->n);
  if (idx < 0) return idx;
  s->v[s->n++] = (struct rc_subscription){.topic = tp, .list_idx = (uint32_t)idx};
  return tp->local[shard].n == 1;
}

/* Returns whether the topic's list here became empty. */
static bool remove_at(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription gone = s->v[i];
  struct rc_sublist *l = &gone.topic->local[shard];
  /* The topic side: the list's last entry fills the hole. */
  l->n--;
  if (gone.list_idx != l->n) {
    l->v[gone.list_idx] = l->v[l->n];
    struct rc_subref moved = l->v[gone.list_idx];
    moved.sub->v[moved.sub_idx].list_idx = gone.list_idx;
  }
  bool emptied = l->n == 0;
  if (emptied) {
    atomic_fetch_and_explicit(&gone.topic->interest, ~(1ull << shard), memory_order_seq_cst);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
  }
  /* The subscriber side, likewise. */
  uint16_t last = (uint16_t)(s->n - 1);
  if (i != last) {
    s->v[i] = s->v[last];
    s->v[i].topic->local[shard].v[s->v[i].list_idx].sub_idx = i;
  }
  s->n--;
  return emptied;
}

int rc_subscription_remove(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp) {
  int i = rc_subscription_find(s, tp);
  if (i < 0) return i;
  return remove_at(shard, s, (uint16_t)i);
}

void rc_subscription_remove_all(unsigned shard, struct rc_subscriber *s,
                                void (*emptied)(void *ctx, struct rc_topic *tp), void *ctx) {
  while (s->n) {
    struct rc_topic *tp = s->v[s->n - 1].topic;
    if (remove_at(shard, s, (uint16_t)(s->n - 1))) emptied(ctx, tp);
  }
  free(s->v);
  s->v = NULL;
  s->cap = 0;
}
