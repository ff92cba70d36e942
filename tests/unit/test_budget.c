/* SPDX-License-Identifier: MIT */
/* The memory budget: admission within the limit, forced charges past it, and
 * exact accounting under concurrent charges from several threads. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "ringcast/util/budget.h"

Test(budget, try_refuses_past_the_limit_and_force_does_not) {
  struct rc_budget b;
  rc_budget_init(&b, 1000);
  cr_assert(rc_budget_try(&b, 600));
  cr_assert(!rc_budget_try(&b, 401), "would pass the limit");
  cr_assert_eq(rc_budget_used(&b), 600, "a refusal charges nothing");
  cr_assert(rc_budget_try(&b, 400), "exactly the limit is allowed");
  cr_assert(rc_budget_over(&b));
  rc_budget_force(&b, 500);
  cr_assert_eq(rc_budget_used(&b), 1500);
  cr_assert(!rc_budget_try(&b, 1), "over the limit nothing is admitted");
  rc_budget_release(&b, 1500);
  cr_assert_eq(rc_budget_used(&b), 0);
  cr_assert(!rc_budget_over(&b));
  cr_assert_eq(atomic_load(&b.refused), 2);
  cr_assert(rc_budget_try(NULL, 1u << 30), "no budget admits everything");
}

static struct rc_budget shared;

static void *churn(void *arg) {
  (void)arg;
  for (int i = 0; i < 100000; i++) {
    if (rc_budget_try(&shared, 64)) rc_budget_release(&shared, 64);
    rc_budget_force(&shared, 8);
    rc_budget_release(&shared, 8);
  }
  return NULL;
}

Test(budget, concurrent_charges_balance) {
  rc_budget_init(&shared, 256);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, churn, NULL);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  cr_assert_eq(rc_budget_used(&shared), 0);
  cr_assert_leq(atomic_load(&shared.peak), 256 + 4 * 8, "admissions never pass the limit");
}
