/* SPDX-License-Identifier: MIT */
/* Two-sided subscription index: removal swaps the last entry into the hole on both
 * sides and fixes the moved entry's back-index, so nothing is ever searched but a
 * subscriber's own array (at most its limit, usually a few entries). */
#include "ringcast/pubsub/subscription.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/pubsub/topic.h"

/* A topic's list and a pattern group are the same kind of array of subscriber
 * references with back-indexes; these three keep both. */

/* Room for `need` entries, growing by doubling from `first`. */
static int refs_reserve(struct rc_subref **v, uint32_t *cap, uint32_t need, uint32_t first) {
  if (need <= *cap) return 0;
  uint32_t c = *cap ? *cap * 2 : first;
  struct rc_subref *g = realloc(*v, c * sizeof *g);
  if (!g) return -ENOMEM;
  *v = g;
  *cap = c;
  return 0;
}

/* Appends s's entry i (room reserved); returns its index in the array. */
static uint32_t refs_put(struct rc_subref *v, uint32_t *n, struct rc_subscriber *s, uint32_t i) {
  uint32_t idx = (*n)++;
  v[idx] = (struct rc_subref){.sub = s, .sub_idx = i};
  return idx;
}

/* Takes entry idx out: the last entry fills the hole, its subscriber's
 * back-index following it. */
static void refs_cut(struct rc_subref *v, uint32_t *n, uint32_t idx) {
  (*n)--;
  if (idx != *n) {
    v[idx] = v[*n];
    v[idx].sub->v[v[idx].sub_idx].list_idx = idx;
  }
}

int rc_subscription_find(const struct rc_subscriber *s, const struct rc_topic *tp) {
  for (uint16_t i = 0; i < s->n; i++)
    if (!s->v[i].pattern && s->v[i].topic == tp) return i;
  return -ENOENT;
}

int rc_subscription_find_pattern(const struct rc_subscriber *s, const char *p, size_t len) {
  for (uint16_t i = 0; i < s->n; i++)
    if (s->v[i].pattern && s->v[i].group->len == len && memcmp(s->v[i].group->pattern, p, len) == 0)
      return i;
  return -ENOENT;
}

const char *rc_subscription_name(const struct rc_subscription *e) {
  return e->pattern ? e->group->pattern : e->topic->name;
}

int rc_subscription_overlap(const struct rc_subscriber *s, const char *x, size_t len, bool pattern) {
  for (uint16_t i = 0; i < s->n; i++) {
    const struct rc_subscription *e = &s->v[i];
    if (e->pattern) {
      const struct rc_pattern_group *g = e->group;
      if (pattern ? (g->len != len || memcmp(g->pattern, x, len) != 0) &&
                        rc_topic_pattern_overlap(g->pattern, g->len, x, len)
                  : rc_topic_pattern_match(g->pattern, g->len, x, len))
        return i;
    } else if (pattern && rc_topic_pattern_match(x, len, e->topic->name, e->topic->name_len)) {
      return i;
    }
  }
  return -ENOENT;
}

/* Room in s's array for one more entry. */
static int array_reserve(struct rc_subscriber *s) {
  if (s->n < s->cap) return 0;
  uint16_t cap = s->cap ? (uint16_t)(s->cap * 2) : 1;
  struct rc_subscription *v = realloc(s->v, cap * sizeof *v);
  if (!v) return -ENOMEM;
  s->v = v;
  s->cap = cap;
  return 0;
}

int rc_subscription_add_pattern(struct rc_subscriber *s, struct rc_pattern_group *g,
                                unsigned limit, unsigned pattern_limit) {
  if (s->n >= limit || s->npatterns >= pattern_limit) return -EMLINK;
  if (array_reserve(s) < 0 || refs_reserve(&g->v, &g->cap, g->n + 1, 4) < 0) return -ENOMEM;
  uint32_t idx = refs_put(g->v, &g->n, s, s->n);
  s->v[s->n++] = (struct rc_subscription){.group = g, .list_idx = idx, .pattern = true};
  s->npatterns++;
  return idx == 0;
}

/* Room in the list for one more subscriber, current, pending or parked (most
 * topics of a big universe have one or two: it starts at one). */
static int list_reserve(struct rc_sublist *l) {
  return refs_reserve(&l->v, &l->cap, l->n + l->pending + l->parked + 1, 1);
}

/* The topic's interest bit follows "has a subscriber here, current or pending". */
static void interest_gained(struct rc_topic *tp, unsigned shard) {
  /* seq_cst so that a publish the home shard handles after this subscription
   * was acknowledged sees the bit. */
  atomic_fetch_or_explicit(&tp->interest, 1ull << shard, memory_order_seq_cst);
}

static bool list_emptied(struct rc_topic *tp, unsigned shard) {
  struct rc_sublist *l = &tp->local[shard];
  if (l->n + l->pending + l->parked) return false;
  atomic_fetch_and_explicit(&tp->interest, ~(1ull << shard), memory_order_seq_cst);
  free(l->v);
  l->v = NULL;
  l->cap = 0;
  return true;
}

int rc_subscription_add(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp,
                        unsigned limit, uint32_t join) {
  if (rc_subscription_find(s, tp) >= 0) return -EEXIST;
  if (s->n >= limit) return -EMLINK;
  if (array_reserve(s) < 0) return -ENOMEM;
  struct rc_sublist *l = &tp->local[shard];
  if (list_reserve(l) < 0) return -ENOMEM;
  bool first = l->n + l->pending + l->parked == 0;
  uint32_t idx = 0;
  if (join) l->pending++;
  else idx = refs_put(l->v, &l->n, s, s->n);
  if (first) interest_gained(tp, shard);
  atomic_fetch_add_explicit(&tp->nsubs, 1, memory_order_relaxed);
  s->v[s->n++] = (struct rc_subscription){.topic = tp, .list_idx = idx, .join = join, .pattern = false};
  return first;
}

bool rc_subscription_activate(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp,
                              uint32_t join) {
  int i = rc_subscription_find(s, tp);
  if (i < 0 || s->v[i].join != join || join == 0) return false;
  struct rc_sublist *l = &tp->local[shard];
  l->pending--;
  s->v[i].list_idx = refs_put(l->v, &l->n, s, (uint32_t)i); /* the place was reserved */
  s->v[i].join = 0;
  return true;
}

static bool remove_from_topic(unsigned shard, const struct rc_subscription *gone);

/* Returns whether the topic (or group) has no subscriber here any more. */
static bool remove_at(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription gone = s->v[i];
  bool emptied;
  if (gone.pattern) {
    struct rc_pattern_group *g = gone.group;
    refs_cut(g->v, &g->n, gone.list_idx);
    emptied = g->n == 0;
    s->npatterns--;
  } else {
    emptied = remove_from_topic(shard, &gone);
  }
  /* The subscriber side, likewise. */
  uint16_t last = (uint16_t)(s->n - 1);
  if (i != last) {
    s->v[i] = s->v[last];
    struct rc_subscription *m = &s->v[i];
    if (m->pattern) m->group->v[m->list_idx].sub_idx = i;
    else if (!m->join && !m->parked) m->topic->local[shard].v[m->list_idx].sub_idx = i;
  }
  s->n--;
  return emptied;
}

bool rc_subscription_remove_pattern(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  return remove_at(shard, s, i);
}

/* The topic side of removing entry gone: whether the topic has no subscriber
 * here any more. */
static bool remove_from_topic(unsigned shard, const struct rc_subscription *g0) {
  struct rc_subscription gone = *g0;
  struct rc_sublist *l = &gone.topic->local[shard];
  atomic_fetch_sub_explicit(&gone.topic->nsubs, 1, memory_order_relaxed);
  if (gone.join) {
    l->pending--;
  } else if (gone.parked) {
    l->parked--;
  } else {
    refs_cut(l->v, &l->n, gone.list_idx);
  }
  return list_emptied(gone.topic, shard);
}

void rc_subscription_park(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription *e = &s->v[i];
  struct rc_sublist *l = &e->topic->local[shard];
  refs_cut(l->v, &l->n, e->list_idx);
  l->parked++;
  e->parked = true;
}

void rc_subscription_unpark(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription *e = &s->v[i];
  struct rc_sublist *l = &e->topic->local[shard];
  l->parked--;
  e->list_idx = refs_put(l->v, &l->n, s, i); /* the place was kept */
  e->parked = false;
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
