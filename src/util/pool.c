/* SPDX-License-Identifier: MIT */
/* Slabs aligned to their power-of-two size, carved into objects after a header.
 * A slab sits on the pool's avail list while it has a free object; when its last
 * object comes back it becomes the spare, and a second empty slab is freed. */
#include "ringcast/util/pool.h"

#include <stdint.h>
#include <stdlib.h>

struct rc_pool_slab {
  struct rc_pool_slab *next, *prev;  /* on avail */
  void *free_list;
  size_t in_use;
  int on_avail;
};

/* Objects start after a header rounded to 64 bytes so they keep cache alignment. */
#define SLAB_HDR 64
_Static_assert(sizeof(struct rc_pool_slab) <= SLAB_HDR, "slab header fits its 64 bytes");

void rc_pool_init(struct rc_pool *p, size_t obj_size, size_t per_slab) {
  p->avail = p->spare = NULL;
  p->obj_size = obj_size < sizeof(void *) ? sizeof(void *) : obj_size;
  size_t want = SLAB_HDR + p->obj_size * (per_slab ? per_slab : 64);
  p->slab_bytes = 4096;
  while (p->slab_bytes < want) p->slab_bytes *= 2;
  p->per_slab = (p->slab_bytes - SLAB_HDR) / p->obj_size;
  p->slabs = 0;
}

static void avail_remove(struct rc_pool *p, struct rc_pool_slab *s) {
  if (s->prev) s->prev->next = s->next;
  else p->avail = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->on_avail = 0;
}

static void avail_push(struct rc_pool *p, struct rc_pool_slab *s) {
  s->prev = NULL;
  s->next = p->avail;
  if (p->avail) p->avail->prev = s;
  p->avail = s;
  s->on_avail = 1;
}

void rc_pool_fini(struct rc_pool *p) {
  while (p->avail) {
    struct rc_pool_slab *s = p->avail;
    avail_remove(p, s);
    free(s);
  }
  free(p->spare);
  p->spare = NULL;
  p->slabs = 0;
}

static struct rc_pool_slab *slab_new(struct rc_pool *p) {
  struct rc_pool_slab *s = aligned_alloc(p->slab_bytes, p->slab_bytes);
  if (!s) return NULL;
  s->free_list = NULL;
  s->in_use = 0;
  s->on_avail = 0;
  char *base = (char *)s + SLAB_HDR;
  for (size_t i = p->per_slab; i-- > 0;) {
    void **obj = (void **)(base + i * p->obj_size);
    *obj = s->free_list;
    s->free_list = obj;
  }
  p->slabs++;
  return s;
}

void *rc_pool_get(struct rc_pool *p) {
  struct rc_pool_slab *s = p->avail;
  if (!s) {
    s = p->spare;
    p->spare = NULL;
    if (!s && !(s = slab_new(p))) return NULL;
    avail_push(p, s);
  }
  void **obj = s->free_list;
  s->free_list = *obj;
  s->in_use++;
  if (!s->free_list) avail_remove(p, s);
  return obj;
}

void rc_pool_put(struct rc_pool *p, void *obj) {
  struct rc_pool_slab *s = (struct rc_pool_slab *)((uintptr_t)obj & ~(uintptr_t)(p->slab_bytes - 1));
  *(void **)obj = s->free_list;
  s->free_list = obj;
  s->in_use--;
  if (s->in_use == 0) {
    if (s->on_avail) avail_remove(p, s);
    if (p->spare) {
      free(s);
      p->slabs--;
    } else {
      p->spare = s;
    }
  } else if (!s->on_avail) {
    avail_push(p, s);
  }
}

size_t rc_pool_free_bytes(const struct rc_pool *p) {
  size_t objs = p->spare ? p->per_slab : 0;
  for (const struct rc_pool_slab *s = p->avail; s; s = s->next)
    objs += p->per_slab - s->in_use;
  return objs * p->obj_size;
}
