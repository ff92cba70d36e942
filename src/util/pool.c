/* SPDX-License-Identifier: MIT */
/* Per-shard fixed-size object pools: slabs carved into a free list. */
#include "ringcast/util/pool.h"

#include <stdlib.h>

struct slab_head {
  struct slab_head *next;
};

/* Objects start after a header rounded to 64 bytes so they keep cache alignment. */
#define SLAB_HDR 64

void rc_pool_init(struct rc_pool *p, size_t obj_size, size_t per_slab) {
  p->free_list = NULL;
  p->slabs = NULL;
  p->obj_size = obj_size < sizeof(void *) ? sizeof(void *) : obj_size;
  p->per_slab = per_slab ? per_slab : 64;
}

void rc_pool_fini(struct rc_pool *p) {
  struct slab_head *s = p->slabs;
  while (s) {
    struct slab_head *next = s->next;
    free(s);
    s = next;
  }
  p->slabs = NULL;
  p->free_list = NULL;
}

static int pool_grow(struct rc_pool *p) {
  struct slab_head *s = malloc(SLAB_HDR + p->obj_size * p->per_slab);
  if (!s) return -1;
  s->next = p->slabs;
  p->slabs = s;
  char *base = (char *)s + SLAB_HDR;
  for (size_t i = p->per_slab; i-- > 0;) {
    void **obj = (void **)(base + i * p->obj_size);
    *obj = p->free_list;
    p->free_list = obj;
  }
  return 0;
}

void *rc_pool_get(struct rc_pool *p) {
  if (!p->free_list && pool_grow(p) < 0) return NULL;
  void **obj = p->free_list;
  p->free_list = *obj;
  return obj;
}

void rc_pool_put(struct rc_pool *p, void *obj) {
  *(void **)obj = p->free_list;
  p->free_list = obj;
}
