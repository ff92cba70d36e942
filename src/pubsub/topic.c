/* SPDX-License-Identifier: MIT */
/* The global topic table: open addressing with linear probing over atomic
 * pointers. Insert is a CAS into an empty slot; nothing is ever removed, so a
 * reader that found a topic may keep using it without any reference count. */
#include "ringcast/pubsub/topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rc_topic_table {
  uint32_t mask;
  uint32_t max_topics;
  unsigned nshards;
  _Atomic uint32_t count;
  _Atomic(struct rc_topic *) *slots;
};

uint64_t rc_topic_hash(const char *name, size_t len) {
  /* FNV-1a, then a final mix so the low bits (slot and home shard) spread well. */
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)name[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

struct rc_topic_table *rc_topic_table_create(uint32_t max_topics, unsigned nshards) {
  struct rc_topic_table *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  uint32_t cap = 16;
  while (cap < max_topics * 2u) cap <<= 1; /* load factor at most 1/2 */
  t->slots = calloc(cap, sizeof *t->slots);
  if (!t->slots) {
    free(t);
    return NULL;
  }
  t->mask = cap - 1;
  t->max_topics = max_topics;
  t->nshards = nshards;
  return t;
}

void rc_topic_table_destroy(struct rc_topic_table *t) {
  if (!t) return;
  for (uint32_t i = 0; i <= t->mask; i++) {
    struct rc_topic *tp = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
    if (!tp) continue;
    for (unsigned s = 0; s < t->nshards; s++) free(tp->local[s].v);
    free(tp);
  }
  free(t->slots);
  free(t);
}

static bool same_name(const struct rc_topic *tp, uint64_t h, const char *name, size_t len) {
  return tp->hash == h && tp->name_len == len && memcmp(tp->name, name, len) == 0;
}

struct rc_topic *rc_topic_find(struct rc_topic_table *t, const char *name, size_t len) {
  if (!rc_topic_name_is_valid(name, len)) return NULL;
  uint64_t h = rc_topic_hash(name, len);
  for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
    /* Acquire pairs with the inserting CAS so the topic's fields are visible. */
    struct rc_topic *tp = atomic_load_explicit(&t->slots[i], memory_order_acquire);
    if (!tp) return NULL;
    if (same_name(tp, h, name, len)) return tp;
  }
}

int rc_topic_get(struct rc_topic_table *t, const char *name, size_t len,
                 struct rc_topic **out) {
  if (!rc_topic_name_is_valid(name, len)) return -EINVAL;
  uint64_t h = rc_topic_hash(name, len);
  struct rc_topic *fresh = NULL;
  for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
    struct rc_topic *tp = atomic_load_explicit(&t->slots[i], memory_order_acquire);
    if (tp) {
      if (same_name(tp, h, name, len)) {
        free(fresh);
        *out = tp;
        return 0;
      }
      continue;
    }
    if (!fresh) {
      /* Reserve a place in the count first so the table never passes half full. */
      uint32_t n = atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
      if (n >= t->max_topics) {
        atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
        return -ENOSPC;
      }
      fresh = aligned_alloc(64, (sizeof *fresh + t->nshards * sizeof(struct rc_sublist) + 63) &
                                    ~(size_t)63);
      if (!fresh) {
        atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
        return -ENOMEM;
      }
      memset(fresh, 0, sizeof *fresh + t->nshards * sizeof(struct rc_sublist));
      fresh->hash = h;
      fresh->home = (uint16_t)(h % t->nshards);
      fresh->name_len = (uint16_t)len;
      memcpy(fresh->name, name, len);
      fresh->name[len] = '\0';
    }
    struct rc_topic *expected = NULL;
    /* Release publishes the initialised topic to readers' acquire loads. */
    if (atomic_compare_exchange_strong_explicit(&t->slots[i], &expected, fresh,
                                                memory_order_acq_rel, memory_order_acquire)) {
      *out = fresh;
      return 0;
    }
    if (same_name(expected, h, name, len)) { /* another shard created it first */
      free(fresh);
      atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
      *out = expected;
      return 0;
    }
  }
}

uint32_t rc_topic_count(const struct rc_topic_table *t) {
  return atomic_load_explicit(&((struct rc_topic_table *)t)->count, memory_order_relaxed);
}
