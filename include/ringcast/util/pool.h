/* SPDX-License-Identifier: MIT */
/* Fixed-size object pool for one shard's hot-path objects (queue chunks, frame
 * holders): aligned slabs, each with its own free list, so an object finds its
 * slab by masking its address and a slab whose objects are all back is given
 * back to the allocator (one empty slab is kept against churn). Memory taken by
 * a burst of load returns when the load goes. Not thread-safe: each pool
 * belongs to one shard and only its thread calls these. */
#ifndef RINGCAST_POOL_H
#define RINGCAST_POOL_H

#include <stddef.h>

struct rc_pool_slab;

struct rc_pool {
  struct rc_pool_slab *avail;   /* slabs with a free object, most recently used first */
  struct rc_pool_slab *spare;   /* the one empty slab kept */
  size_t obj_size;
  size_t per_slab;
  size_t slab_bytes;            /* a power of two: slabs are aligned to it */
  size_t slabs;                 /* slabs allocated now, spare included */
};

/* Objects of obj_size bytes, about per_slab of them in each slab. */
void rc_pool_init(struct rc_pool *p, size_t obj_size, size_t per_slab);
/* Frees every slab; every object must have been put back. */
void rc_pool_fini(struct rc_pool *p);
/* Returns an uninitialised object, or NULL when memory is exhausted. */
void *rc_pool_get(struct rc_pool *p);
void rc_pool_put(struct rc_pool *p, void *obj);
/* Bytes of objects the pool holds free (in its slabs' free lists, the spare
 * slab included): memory taken from the allocator and not in use. Walks the
 * slabs with a free object, so it is for a periodic census, not a hot path. */
size_t rc_pool_free_bytes(const struct rc_pool *p);

#endif
