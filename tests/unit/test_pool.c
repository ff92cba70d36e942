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
