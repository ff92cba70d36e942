/* SPDX-License-Identifier: MIT */
/* The per-shard object pool: objects are distinct, reused after put, and every
 * slab is freed by fini (ASan's leak check runs this too). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "ringcast/util/pool.h"

Test(pool, objects_are_distinct_and_reused) {
  struct rc_pool p;
  rc_pool_init(&p, 40, 8);
  void *v[20];
  for (int i = 0; i < 20; i++) {
    v[i] = rc_pool_get(&p);
    cr_assert_not_null(v[i]);
    memset(v[i], i, 40); /* all 40 bytes are ours */
  }
  for (int i = 0; i < 20; i++)
    for (int j = i + 1; j < 20; j++) cr_assert_neq(v[i], v[j]);
  rc_pool_put(&p, v[7]);
  cr_assert_eq(rc_pool_get(&p), v[7], "the last object put is the next one got");
  for (int i = 0; i < 20; i++) rc_pool_put(&p, v[i]);
  rc_pool_fini(&p);
}

Test(pool, small_objects_hold_a_pointer) {
  struct rc_pool p;
  rc_pool_init(&p, 1, 4);
  void *a = rc_pool_get(&p), *b = rc_pool_get(&p);
  cr_assert_geq((uintptr_t)b > (uintptr_t)a ? (uintptr_t)b - (uintptr_t)a : (uintptr_t)a - (uintptr_t)b,
                sizeof(void *), "objects are at least pointer-sized");
  rc_pool_put(&p, a);
  rc_pool_put(&p, b);
  rc_pool_fini(&p);
}

Test(pool, slabs_go_back_when_their_objects_do) {
  struct rc_pool p;
  rc_pool_init(&p, 256, 64);
  enum { N = 5000 };
  static void *v[N];
  for (int i = 0; i < N; i++) cr_assert_not_null(v[i] = rc_pool_get(&p));
  size_t peak = p.slabs;
  cr_assert_geq(peak * p.per_slab, N);
  cr_assert_leq(peak, N / p.per_slab + 1, "slabs are filled before new ones are taken");
  /* Give back every other object: no slab is empty, none may go. */
  for (int i = 0; i < N; i += 2) rc_pool_put(&p, v[i]);
  cr_assert_eq(p.slabs, peak);
  for (int i = 1; i < N; i += 2) rc_pool_put(&p, v[i]);
  cr_assert_eq(p.slabs, 1, "only the spare slab is kept once everything is back (%zu)", p.slabs);
  /* Churn around the spare does not allocate. */
  for (int r = 0; r < 100; r++) {
    void *a = rc_pool_get(&p);
    rc_pool_put(&p, a);
  }
  cr_assert_eq(p.slabs, 1);
  for (int i = 0; i < N; i++) cr_assert_not_null(v[i] = rc_pool_get(&p));
  for (int i = N; i-- > 0;) rc_pool_put(&p, v[i]);
  cr_assert_eq(p.slabs, 1);
  rc_pool_fini(&p);
  cr_assert_eq(p.slabs, 0);
}

/* ringcast_pool_bytes: objects free in partly used slabs and the spare slab
 * count; objects in use and slabs given back do not. */
Test(pool, free_bytes_count_free_objects_only) {
  struct rc_pool p;
  rc_pool_init(&p, 64, 16);
  cr_assert_eq(rc_pool_free_bytes(&p), 0, "a new pool holds nothing");
  size_t per = p.per_slab;
  void *v[256];
  size_t n = per + 3; /* one full slab and three objects of a second */
  cr_assert_leq(n, sizeof v / sizeof v[0]);
  for (size_t i = 0; i < n; i++)
    v[i] = rc_pool_get(&p);
  cr_assert_eq(p.slabs, 2);
  cr_assert_eq(rc_pool_free_bytes(&p), (per - 3) * 64, "the second slab's free objects");
  rc_pool_put(&p, v[0]);
  cr_assert_eq(rc_pool_free_bytes(&p), (per - 2) * 64, "an object put back in the full slab");
  for (size_t i = per; i < n; i++)
    rc_pool_put(&p, v[i]);
  cr_assert_eq(p.slabs, 2, "the emptied slab is kept as the spare");
  cr_assert_eq(rc_pool_free_bytes(&p), (per + 1) * 64,
               "the spare whole, and the first slab's hole");
  for (size_t i = 1; i < per; i++)
    rc_pool_put(&p, v[i]);
  cr_assert_eq(p.slabs, 1, "a second empty slab goes back to the allocator");
  cr_assert_eq(rc_pool_free_bytes(&p), per * 64);
  rc_pool_fini(&p);
}
