/* SPDX-License-Identifier: MIT */
#include "ringcast/proto/redis_glob.h"

#include <stdlib.h>
#include <string.h>

#define HEAD "rc:{"
#define HEAD_LEN 4

void rc_redis_glob_of(const char *p, size_t len, struct rc_redis_glob *g) {
  memcpy(g->text, HEAD, HEAD_LEN);
  size_t n = HEAD_LEN;
  /* Up to the first wildcard segment: a '*' or '>' only ever stands alone
   * between dots, so the first one ends the literal part. */
  for (size_t i = 0; i < len && i < RC_TOPIC_PATTERN_MAX && p[i] != '*' && p[i] != '>'; i++)
    g->text[n++] = p[i];
  g->len = (uint8_t)n;
}

int rc_redis_glob_cmp(const struct rc_redis_glob *x, const struct rc_redis_glob *y) {
  int c = memcmp(x->text, y->text, x->len < y->len ? x->len : y->len);
  return c ? c : (int)x->len - (int)y->len;
}

static int cmp(const void *a, const void *b) { return rc_redis_glob_cmp(a, b); }

static bool has_prefix(const struct rc_redis_glob *s, const struct rc_redis_glob *p) {
  return s->len >= p->len && memcmp(s->text, p->text, p->len) == 0;
}

/* How many would be left with every prefix cut to HEAD_LEN + cut bytes: sorted
 * input stays sorted when cut, and a prefix sorts right before what it covers,
 * so one pass against the last kept one is enough. */
static size_t count_cut(const struct rc_redis_glob *v, size_t n, size_t cut) {
  size_t kept = 0;
  struct rc_redis_glob last;
  for (size_t i = 0; i < n; i++) {
    struct rc_redis_glob g = v[i];
    if (g.len > HEAD_LEN + cut) g.len = (uint8_t)(HEAD_LEN + cut);
    if (kept && has_prefix(&g, &last)) continue;
    last = g;
    kept++;
  }
  return kept;
}

static size_t apply_cut(struct rc_redis_glob *v, size_t n, size_t cut) {
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    struct rc_redis_glob g = v[i];
    if (g.len > HEAD_LEN + cut) g.len = (uint8_t)(HEAD_LEN + cut);
    if (kept && has_prefix(&g, &v[kept - 1])) continue;
    v[kept++] = g;
  }
  return kept;
}

size_t rc_redis_glob_reduce(struct rc_redis_glob *v, size_t n, size_t max, size_t *cut_to) {
  *cut_to = SIZE_MAX;
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp);
  n = apply_cut(v, n, RC_TOPIC_PATTERN_MAX);
  if (n <= max) return n;
  /* The longest cut that fits: fewer are left the shorter the cut. */
  size_t lo = 0, hi = RC_TOPIC_PATTERN_MAX;
  while (lo < hi) {
    size_t mid = (lo + hi + 1) / 2;
    if (count_cut(v, n, mid) <= max) lo = mid;
    else hi = mid - 1;
  }
  *cut_to = lo;
  return apply_cut(v, n, lo);
}

bool rc_redis_glob_matches(const struct rc_redis_glob *g, const char *c, size_t len) {
  return len >= g->len && memcmp(c, g->text, g->len) == 0;
}
