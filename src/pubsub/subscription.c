/* SPDX-License-Identifier: MIT */
/* Two-sided subscription index: removal swaps the last entry into the hole on both
 * sides and fixes the moved entry's back-index, so nothing is ever searched but a
 * subscriber's own array (at most its limit, usually a few entries). */
#include "ringcast/pubsub/subscription.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/pubsub/topic.h"

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
  if (array_reserve(s) < 0) return -ENOMEM;
  if (g->n == g->cap) {
    uint32_t cap = g->cap ? g->cap * 2 : 4;
    struct rc_subref *v = realloc(g->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    g->v = v;
    g->cap = cap;
  }
  uint32_t idx = g->n++;
  g->v[idx] = (struct rc_subref){.sub = s, .sub_idx = s->n};
  s->v[s->n++] = (struct rc_subscription){.group = g, .list_idx = idx, .pattern = true};
  s->npatterns++;
  return idx == 0;
}

/* Room in the list for one more subscriber, current or pending. */
static int list_reserve(struct rc_sublist *l) {
  if (l->n + l->pending + l->parked < l->cap) return 0;
  uint32_t cap = l->cap ? l->cap * 2 : 1; /* most topics of a big universe have one or two */
  struct rc_subref *v = realloc(l->v, cap * sizeof *v);
  if (!v) return -ENOMEM;
  l->v = v;
  l->cap = cap;
  return 0;
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
  if (join) {
    l->pending++;
  } else {
    idx = l->n++;
    l->v[idx] = (struct rc_subref){.sub = s, .sub_idx = s->n};
  }
  if (first) interest_gained(tp, shard);
  s->v[s->n++] = (struct rc_subscription){.topic = tp, .list_idx = idx, .join = join, .pattern = false};
  return first;
}

bool rc_subscription_activate(unsigned shard, struct rc_subscriber *s, struct rc_topic *tp,
                              uint32_t join) {
  int i = rc_subscription_find(s, tp);
  if (i < 0 || s->v[i].join != join || join == 0) return false;
  struct rc_sublist *l = &tp->local[shard];
  l->pending--;
  uint32_t idx = l->n++; /* within cap: the place was reserved */
  l->v[idx] = (struct rc_subref){.sub = s, .sub_idx = (uint32_t)i};
  s->v[i].list_idx = idx;
  s->v[i].join = 0;
  return true;
}

static bool remove_from_topic(unsigned shard, const struct rc_subscription *gone);

/* Takes entry idx out of a topic's list: the list's last entry fills the hole. */
static void list_cut(struct rc_sublist *l, uint32_t idx) {
  l->n--;
  if (idx != l->n) {
    l->v[idx] = l->v[l->n];
    struct rc_subref moved = l->v[idx];
    moved.sub->v[moved.sub_idx].list_idx = idx;
  }
}

/* Returns whether the topic (or group) has no subscriber here any more. */
static bool remove_at(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription gone = s->v[i];
  bool emptied;
  if (gone.pattern) {
    struct rc_pattern_group *g = gone.group;
    g->n--;
    if (gone.list_idx != g->n) {
      g->v[gone.list_idx] = g->v[g->n];
      struct rc_subref moved = g->v[gone.list_idx];
      moved.sub->v[moved.sub_idx].list_idx = gone.list_idx;
    }
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
  if (gone.join) {
    l->pending--;
  } else if (gone.parked) {
    l->parked--;
  } else {
    list_cut(l, gone.list_idx);
  }
  return list_emptied(gone.topic, shard);
}

void rc_subscription_park(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription *e = &s->v[i];
  struct rc_sublist *l = &e->topic->local[shard];
  list_cut(l, e->list_idx);
  l->parked++;
  e->parked = true;
}

void rc_subscription_unpark(unsigned shard, struct rc_subscriber *s, uint16_t i) {
  struct rc_subscription *e = &s->v[i];
  struct rc_sublist *l = &e->topic->local[shard];
  l->parked--;
  uint32_t idx = l->n++; /* within cap: the place was kept */
  l->v[idx] = (struct rc_subref){.sub = s, .sub_idx = i};
  e->list_idx = idx;
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
