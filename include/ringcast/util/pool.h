/* SPDX-License-Identifier: MIT */
/* Fixed-size object pool with a free list, for one shard's hot-path objects
 * (queue chunks, frame holders, send descriptors). Not thread-safe: each pool
 * belongs to one shard and only its thread calls these. */
#ifndef RINGCAST_POOL_H
#define RINGCAST_POOL_H

#include <stddef.h>

struct rc_pool {
  void *free_list;
  void *slabs;          /* singly linked list of slabs, freed by fini */
  size_t obj_size;
  size_t per_slab;
};

void rc_pool_init(struct rc_pool *p, size_t obj_size, size_t per_slab);
void rc_pool_fini(struct rc_pool *p);
/* Returns an uninitialised object, or NULL when memory is exhausted. */
void *rc_pool_get(struct rc_pool *p);
void rc_pool_put(struct rc_pool *p, void *obj);

#endif
