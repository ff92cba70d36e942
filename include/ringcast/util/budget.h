/* SPDX-License-Identifier: MIT */
/* The memory budget (--max-memory): one process-wide count of the bytes clients
 * have made the server hold (publishes waiting for their home shard, encoded
 * messages, queued replies, partial requests and messages), shared by every
 * shard. Work is admitted with rc_budget_try, which refuses past the limit, so
 * new work is refused rather than queued; what was already accepted and must go
 * on (a message on its way to subscribers) is charged with rc_budget_force,
 * which may pass the limit and so makes the next admission fail. */
#ifndef RINGCAST_UTIL_BUDGET_H
#define RINGCAST_UTIL_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rc_budget {
  _Atomic int64_t used;
  int64_t limit;
  _Atomic uint64_t refused;   /* admissions refused */
  _Atomic int64_t peak;       /* highest `used` seen by an admission */
};

void rc_budget_init(struct rc_budget *b, uint64_t limit);
/* Any thread: charges n bytes if that keeps the total within the limit. A NULL
 * budget admits everything. */
bool rc_budget_try(struct rc_budget *b, size_t n);
/* Any thread: charges n bytes whatever the total. */
void rc_budget_force(struct rc_budget *b, size_t n);
void rc_budget_release(struct rc_budget *b, size_t n);
/* Whether the total has reached the limit (new work would be refused). */
bool rc_budget_over(const struct rc_budget *b);
int64_t rc_budget_used(const struct rc_budget *b);

#endif
