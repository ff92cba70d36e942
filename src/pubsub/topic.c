/* SPDX-License-Identifier: MIT */
/* The topic table: RC_TOPIC_PARTITIONS chained hashes, each under a mutex, with
 * bucket arrays that double past one topic per bucket and halve below one per
 * eight. A topic is created outside the lock and inserted under it (or dropped
 * when another thread inserted the same name first); it is removed and freed
 * under the lock that saw its last reference go. */
#include "ringcast/pubsub/topic.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/util/siphash.h"

#define RC_TOPIC_PARTITIONS 64
#define MIN_BUCKETS 16

struct partition {
  pthread_mutex_t lock;
  struct rc_topic **buckets;
  uint32_t nbuckets;         /* a power of two */
  uint32_t n;
} __attribute__((aligned(64)));

struct rc_topic_table {
  uint8_t key[16];
  uint32_t max_topics;
  unsigned nshards;
  struct rc_budget *budget;
  uint64_t (*on_create)(void *ctx, const struct rc_topic *tp);
  void *hook_ctx;
  _Atomic uint32_t count;
  _Atomic uint64_t epochs;   /* epochs drawn so far */
  struct partition part[RC_TOPIC_PARTITIONS];
};

uint64_t rc_topic_hash(const struct rc_topic_table *t, const char *name, size_t len) {
  return rc_siphash24(t->key, name, len);
}

static struct partition *partition_of(struct rc_topic_table *t, uint64_t h) {
  return &t->part[(h >> 32) % RC_TOPIC_PARTITIONS];
}

static size_t topic_size(const struct rc_topic_table *t, size_t name_len) {
  return sizeof(struct rc_topic) + t->nshards * sizeof(struct rc_sublist) + name_len + 1;
}


struct rc_topic_table *rc_topic_table_create(uint32_t max_topics, unsigned nshards,
                                             struct rc_budget *budget) {
  struct rc_topic_table *t = aligned_alloc(64, sizeof *t);
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  rc_siphash_random_key(t->key);
  t->max_topics = max_topics;
  t->nshards = nshards;
  t->budget = budget;
  for (unsigned i = 0; i < RC_TOPIC_PARTITIONS; i++) {
    struct partition *p = &t->part[i];
    pthread_mutex_init(&p->lock, NULL);
    p->buckets = calloc(MIN_BUCKETS, sizeof *p->buckets);
    if (!p->buckets) {
      rc_topic_table_destroy(t);
      return NULL;
    }
    p->nbuckets = MIN_BUCKETS;
  }
  return t;
}

static void topic_free(struct rc_topic_table *t, struct rc_topic *tp) {
  for (unsigned s = 0; s < t->nshards; s++) {
    free(tp->local[s].v);
    free(tp->local[s].pg);
  }
  rc_budget_release(t->budget, topic_size(t, tp->name_len));
  free(tp);
}

void rc_topic_table_destroy(struct rc_topic_table *t) {
  if (!t) return;
  for (unsigned i = 0; i < RC_TOPIC_PARTITIONS; i++) {
    struct partition *p = &t->part[i];
    for (uint32_t b = 0; p->buckets && b < p->nbuckets; b++) {
      struct rc_topic *tp = p->buckets[b];
      while (tp) {
        struct rc_topic *next = tp->next;
        topic_free(t, tp);
        tp = next;
      }
    }
    free(p->buckets);
    pthread_mutex_destroy(&p->lock);
  }
  free(t);
}

/* Rebuilds the partition's buckets at n (a power of two); on ENOMEM it keeps the
 * old ones, which still work, only longer. */
static void resize(struct partition *p, uint32_t n) {
  struct rc_topic **nb = calloc(n, sizeof *nb);
  if (!nb) return;
  for (uint32_t b = 0; b < p->nbuckets; b++) {
    struct rc_topic *tp = p->buckets[b];
    while (tp) {
      struct rc_topic *next = tp->next;
      uint32_t i = (uint32_t)tp->hash & (n - 1);
      tp->next = nb[i];
      nb[i] = tp;
      tp = next;
    }
  }
  free(p->buckets);
  p->buckets = nb;
  p->nbuckets = n;
}

static struct rc_topic *lookup(struct partition *p, uint64_t h, const char *name, size_t len) {
  for (struct rc_topic *tp = p->buckets[(uint32_t)h & (p->nbuckets - 1)]; tp; tp = tp->next)
    if (tp->hash == h && tp->name_len == len && memcmp(tp->name, name, len) == 0) return tp;
  return NULL;
}

/* A new topic, counted against max_topics and the budget; not yet in the table. */
static int topic_new(struct rc_topic_table *t, uint64_t h, const char *name, size_t len,
                     struct rc_topic **out) {
  if (atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed) >= t->max_topics) {
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    return -ENOSPC;
  }
  size_t size = topic_size(t, len);
  if (!rc_budget_try(t->budget, size)) {
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    return -ENOBUFS;
  }
  struct rc_topic *tp = calloc(1, size);
  if (!tp) {
    rc_budget_release(t->budget, size);
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    return -ENOMEM;
  }
  tp->hash = h;
  tp->home = (uint16_t)(h % t->nshards);
  /* Keyed hash of a counter: unique for this process and not guessable, so no
   * client can forge a resume position of an epoch it never saw. */
  uint64_t n = atomic_fetch_add_explicit(&t->epochs, 1, memory_order_relaxed);
  tp->epoch = rc_siphash24(t->key, &n, sizeof n) | 1;
  tp->name_len = (uint16_t)len;
  char *copy = (char *)&tp->local[t->nshards];
  memcpy(copy, name, len);
  copy[len] = '\0';
  tp->name = copy;
  *out = tp;
  return 0;
}

static void topic_discard(struct rc_topic_table *t, struct rc_topic *tp) {
  atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
  topic_free(t, tp);
}

int rc_topic_acquire(struct rc_topic_table *t, const char *name, size_t len, bool create,
                     struct rc_topic **out) {
  if (!rc_topic_name_is_valid(name, len)) return -EINVAL;
  uint64_t h = rc_topic_hash(t, name, len);
  struct partition *p = partition_of(t, h);
  pthread_mutex_lock(&p->lock);
  struct rc_topic *tp = lookup(p, h, name, len);
  if (tp) tp->refs++;
  pthread_mutex_unlock(&p->lock);
  if (tp || !create) {
    *out = tp;
    return tp ? 0 : -ENOENT;
  }
  struct rc_topic *fresh;
  int ret = topic_new(t, h, name, len, &fresh);
  if (ret < 0) return ret;
  pthread_mutex_lock(&p->lock);
  tp = lookup(p, h, name, len);
  if (tp) {
    tp->refs++; /* another thread created it meanwhile */
  } else {
    tp = fresh;
    fresh = NULL;
    tp->refs = 1;
    if (t->on_create) {
      /* Under the lock, before the topic is visible: a wildcard subscription
       * that registered its pattern before this either is seen here or scans
       * this partition after it (rc_topic_foreach) and pins the topic there. */
      uint64_t mask = t->on_create(t->hook_ctx, tp);
      atomic_store_explicit(&tp->pattern_interest, mask, memory_order_relaxed);
      tp->refs += (uint32_t)__builtin_popcountll(mask);
    }
    uint32_t i = (uint32_t)h & (p->nbuckets - 1);
    tp->next = p->buckets[i];
    p->buckets[i] = tp;
    if (++p->n > p->nbuckets) resize(p, p->nbuckets * 2);
  }
  pthread_mutex_unlock(&p->lock);
  if (fresh) topic_discard(t, fresh);
  *out = tp;
  return 0;
}

void rc_topic_table_set_hook(struct rc_topic_table *t,
                             uint64_t (*on_create)(void *ctx, const struct rc_topic *tp),
                             void *ctx) {
  t->on_create = on_create;
  t->hook_ctx = ctx;
}

void rc_topic_foreach(struct rc_topic_table *t, unsigned (*fn)(void *ctx, struct rc_topic *tp),
                      void *ctx) {
  for (unsigned i = 0; i < RC_TOPIC_PARTITIONS; i++) {
    struct partition *p = &t->part[i];
    pthread_mutex_lock(&p->lock);
    for (uint32_t b = 0; b < p->nbuckets; b++)
      for (struct rc_topic *tp = p->buckets[b]; tp; tp = tp->next) tp->refs += fn(ctx, tp);
    pthread_mutex_unlock(&p->lock);
  }
}

void rc_topic_ref(struct rc_topic_table *t, struct rc_topic *tp) {
  struct partition *p = partition_of(t, tp->hash);
  pthread_mutex_lock(&p->lock);
  tp->refs++;
  pthread_mutex_unlock(&p->lock);
}

void rc_topic_release(struct rc_topic_table *t, struct rc_topic *tp) {
  struct partition *p = partition_of(t, tp->hash);
  pthread_mutex_lock(&p->lock);
  bool last = --tp->refs == 0;
  if (last) {
    struct rc_topic **pp = &p->buckets[(uint32_t)tp->hash & (p->nbuckets - 1)];
    while (*pp != tp) pp = &(*pp)->next;
    *pp = tp->next;
    if (--p->n < p->nbuckets / 8 && p->nbuckets > MIN_BUCKETS) resize(p, p->nbuckets / 2);
  }
  pthread_mutex_unlock(&p->lock);
  if (last) topic_discard(t, tp);
}

uint32_t rc_topic_count(const struct rc_topic_table *t) {
  return atomic_load_explicit(&((struct rc_topic_table *)t)->count, memory_order_relaxed);
}
