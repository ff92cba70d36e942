/* SPDX-License-Identifier: MIT */
/* One entry per client address in a keyed hash (SipHash, so addresses cannot be
 * chosen to collide), split into partitions under their own mutexes: an accept
 * or a close takes one lock for a few instructions. Entries go when their
 * address has no connection and a full bucket, at its close or at the sweep. */
#include "admission.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "ringcast/util/siphash.h"

#define PARTITIONS 16
#define MIN_BUCKETS 64

struct entry {
  struct entry *next;
  uint64_t hash;
  uint8_t key[8];            /* IPv4 address, or an IPv6 /64 */
  uint8_t key_len;
  uint32_t conns, handshakes;
  double tokens;             /* the rate bucket */
  uint64_t refill_ms;        /* when tokens were last topped up */
};

struct partition {
  pthread_mutex_t lock;
  struct entry **buckets;
  uint32_t nbuckets, n;
} __attribute__((aligned(64)));

struct rc_admission {
  struct rc_admission_limits lim;
  struct rc_budget *budget;
  uint8_t hkey[16];
  _Atomic uint32_t count;
  struct rc_admission_stats stats;
  struct partition part[PARTITIONS];
};

struct rc_admission *rc_admission_create(const struct rc_admission_limits *lim,
                                         struct rc_budget *budget) {
  struct rc_admission *a = aligned_alloc(64, (sizeof *a + 63) & ~(size_t)63);
  if (!a) return NULL;
  memset(a, 0, sizeof *a);
  a->lim = *lim;
  a->budget = budget;
  if (getrandom(a->hkey, sizeof a->hkey, GRND_NONBLOCK) != sizeof a->hkey) {
    uint64_t x = (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ull;
    memcpy(a->hkey, &x, 8);
  }
  for (unsigned i = 0; i < PARTITIONS; i++) {
    pthread_mutex_init(&a->part[i].lock, NULL);
    a->part[i].buckets = calloc(MIN_BUCKETS, sizeof(struct entry *));
    if (!a->part[i].buckets) {
      rc_admission_destroy(a);
      return NULL;
    }
    a->part[i].nbuckets = MIN_BUCKETS;
  }
  return a;
}

void rc_admission_destroy(struct rc_admission *a) {
  if (!a) return;
  for (unsigned i = 0; i < PARTITIONS; i++) {
    struct partition *p = &a->part[i];
    for (uint32_t b = 0; p->buckets && b < p->nbuckets; b++) {
      for (struct entry *e = p->buckets[b], *next; e; e = next) {
        next = e->next;
        rc_budget_release(a->budget, sizeof *e);
        free(e);
      }
    }
    free(p->buckets);
    pthread_mutex_destroy(&p->lock);
  }
  free(a);
}

bool rc_admission_enabled(const struct rc_admission *a) {
  return a->lim.max_conns || a->lim.max_handshakes || a->lim.rate;
}

/* The address a connection counts under: IPv4 (also when mapped into IPv6) by
 * itself, IPv6 by its /64. */
static uint8_t key_of(const struct rc_conn *c, uint8_t key[8]) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (c->peer_family == AF_INET6 && memcmp(c->peer_addr, mapped, 12) != 0) {
    memcpy(key, c->peer_addr, 8);
    return 8;
  }
  memcpy(key, c->peer_family == AF_INET6 ? c->peer_addr + 12 : c->peer_addr, 4);
  return 4;
}

static void resize(struct partition *p, uint32_t n) {
  struct entry **nb = calloc(n, sizeof *nb);
  if (!nb) return; /* the old buckets still work, only longer */
  for (uint32_t b = 0; b < p->nbuckets; b++) {
    for (struct entry *e = p->buckets[b], *next; e; e = next) {
      next = e->next;
      e->next = nb[(uint32_t)e->hash & (n - 1)];
      nb[(uint32_t)e->hash & (n - 1)] = e;
    }
  }
  free(p->buckets);
  p->buckets = nb;
  p->nbuckets = n;
}

/* The entry for key, with its link, or NULL; partition locked. */
static struct entry **find(struct partition *p, uint64_t h, const uint8_t *key, uint8_t len) {
  struct entry **pe = &p->buckets[(uint32_t)h & (p->nbuckets - 1)];
  for (; *pe; pe = &(*pe)->next)
    if ((*pe)->hash == h && (*pe)->key_len == len && memcmp((*pe)->key, key, len) == 0) return pe;
  return NULL;
}

static void refill(const struct rc_admission *a, struct entry *e, uint64_t now_ms) {
  if (!a->lim.rate) return;
  if (now_ms > e->refill_ms) {
    e->tokens += (double)(now_ms - e->refill_ms) * a->lim.rate / 1000.0;
    if (e->tokens > a->lim.rate) e->tokens = a->lim.rate;
  }
  e->refill_ms = now_ms;
}

static bool idle(const struct rc_admission *a, const struct entry *e) {
  return e->conns == 0 && (!a->lim.rate || e->tokens >= a->lim.rate);
}

static void unlink_entry(struct rc_admission *a, struct partition *p, struct entry **pe) {
  struct entry *e = *pe;
  *pe = e->next;
  p->n--;
  atomic_fetch_sub_explicit(&a->count, 1, memory_order_relaxed);
  rc_budget_release(a->budget, sizeof *e);
  free(e);
  if (p->nbuckets > MIN_BUCKETS && p->n < p->nbuckets / 8) resize(p, p->nbuckets / 2);
}

int rc_admission_open(struct rc_admission *a, const struct rc_conn *c, uint64_t now_ms,
                      unsigned *retry_s) {
  uint8_t key[8];
  uint8_t len = key_of(c, key);
  uint64_t h = rc_siphash24(a->hkey, key, len);
  struct partition *p = &a->part[h % PARTITIONS];
  int ret = 0;
  pthread_mutex_lock(&p->lock);
  struct entry **pe = find(p, h, key, len);
  struct entry *e = pe ? *pe : NULL;
  if (!e) {
    if (!rc_budget_try(a->budget, sizeof *e)) {
      pthread_mutex_unlock(&p->lock);
      return -ENOBUFS;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
      rc_budget_release(a->budget, sizeof *e);
      pthread_mutex_unlock(&p->lock);
      return -ENOBUFS;
    }
    e->hash = h;
    memcpy(e->key, key, len);
    e->key_len = len;
    e->tokens = a->lim.rate;
    e->refill_ms = now_ms;
    uint32_t b = (uint32_t)h & (p->nbuckets - 1);
    e->next = p->buckets[b];
    p->buckets[b] = e;
    atomic_fetch_add_explicit(&a->count, 1, memory_order_relaxed);
    if (++p->n > p->nbuckets) resize(p, p->nbuckets * 2);
  }
  refill(a, e, now_ms);
  if (a->lim.max_conns && e->conns >= a->lim.max_conns) {
    ret = -EMFILE;
    atomic_fetch_add_explicit(&a->stats.refused_conns, 1, memory_order_relaxed);
  } else if (a->lim.max_handshakes && e->handshakes >= a->lim.max_handshakes) {
    ret = -EBUSY;
    atomic_fetch_add_explicit(&a->stats.refused_handshakes, 1, memory_order_relaxed);
  } else if (a->lim.rate && e->tokens < 1.0) {
    ret = -EAGAIN;
    atomic_fetch_add_explicit(&a->stats.refused_rate, 1, memory_order_relaxed);
    *retry_s = 1;
  } else {
    if (a->lim.rate) e->tokens -= 1.0;
    e->conns++;
    e->handshakes++;
  }
  pthread_mutex_unlock(&p->lock);
  return ret;
}

static void update(struct rc_admission *a, const struct rc_conn *c, bool closing, bool handshaking,
                   uint64_t now_ms) {
  uint8_t key[8];
  uint8_t len = key_of(c, key);
  uint64_t h = rc_siphash24(a->hkey, key, len);
  struct partition *p = &a->part[h % PARTITIONS];
  pthread_mutex_lock(&p->lock);
  struct entry **pe = find(p, h, key, len);
  if (pe) {
    struct entry *e = *pe;
    if (handshaking && e->handshakes) e->handshakes--;
    if (closing) {
      if (e->conns) e->conns--;
      refill(a, e, now_ms);
      if (idle(a, e)) unlink_entry(a, p, pe);
    }
  }
  pthread_mutex_unlock(&p->lock);
}

void rc_admission_handshake_done(struct rc_admission *a, const struct rc_conn *c) {
  update(a, c, false, true, 0);
}

void rc_admission_close(struct rc_admission *a, const struct rc_conn *c, bool handshaking,
                        uint64_t now_ms) {
  update(a, c, true, handshaking, now_ms);
}

void rc_admission_sweep(struct rc_admission *a, uint64_t now_ms) {
  for (unsigned i = 0; i < PARTITIONS; i++) {
    struct partition *p = &a->part[i];
    pthread_mutex_lock(&p->lock);
    for (uint32_t b = 0; b < p->nbuckets; b++) {
      struct entry **pe = &p->buckets[b];
      while (*pe) {
        if ((*pe)->conns == 0) refill(a, *pe, now_ms);
        if (idle(a, *pe)) {
          uint32_t nb = p->nbuckets;
          unlink_entry(a, p, pe);
          if (p->nbuckets != nb) break; /* resized: the rest waits for the next sweep */
        } else {
          pe = &(*pe)->next;
        }
      }
      if (b >= p->nbuckets) break;
    }
    pthread_mutex_unlock(&p->lock);
  }
}

const struct rc_admission_stats *rc_admission_stats(const struct rc_admission *a) { return &a->stats; }

uint32_t rc_admission_count(const struct rc_admission *a) {
  return atomic_load_explicit(&((struct rc_admission *)a)->count, memory_order_relaxed);
}

const char *rc_admission_refusal(int err) {
  switch (err) {
  case -EMFILE: return "this address holds --max-conns-per-ip connections already";
  case -EBUSY: return "this address has --max-handshakes-per-ip connections still in their handshake";
  case -EAGAIN: return "this address opens connections faster than --connect-rate-per-ip";
  default: return "the server is over its memory budget (--max-memory)";
  }
}
