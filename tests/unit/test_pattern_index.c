/* SPDX-License-Identifier: MIT */
/* The pattern index: hand-picked cases for each kind of segment, memory coming
 * back, 10,000 siblings, running out of memory at every allocation (malloc and
 * calloc are wrapped at link time, see tests/CMakeLists.txt), and random
 * patterns against rc_topic_pattern_match. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "ringcast/pubsub/pattern_index.h"

/* Allocation failure on demand: the next `fail_countdown` allocations succeed,
 * the one after fails, then all succeed again (-1: never fail). */
static long fail_countdown = -1;
static bool failed;

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);

static bool should_fail(void) {
  if (fail_countdown < 0) return false;
  if (fail_countdown-- > 0) return false;
  failed = true;
  return true;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return should_fail() ? NULL : __real_calloc(k, n); }

#define MAX_HITS 256

struct hits {
  size_t n;
  char pat[MAX_HITS][RC_TOPIC_PATTERN_MAX + 1];
  void *val[MAX_HITS];
};

static void collect(void *ctx, const char *p, size_t plen, void *value) {
  struct hits *h = ctx;
  cr_assert_lt(h->n, MAX_HITS);
  cr_assert_leq(plen, RC_TOPIC_PATTERN_MAX);
  memcpy(h->pat[h->n], p, plen);
  h->pat[h->n][plen] = 0;
  h->val[h->n++] = value;
}

/* The name sits right before a guard page, so an over-read crashes. */
static size_t match(const struct rc_pattern_index *ix, const char *name, struct hits *h) {
  struct guarded g;
  size_t nl = strlen(name);
  const char *n = (const char *)guard_copy(&g, name, nl);
  h->n = 0;
  size_t found = rc_pattern_index_match(ix, n, nl, collect, h);
  guard_free(&g);
  cr_assert_eq(found, h->n, "the count is the number of calls");
  return found;
}

static bool hit(const struct hits *h, const char *p) {
  size_t times = 0;
  for (size_t i = 0; i < h->n; i++)
    times += strcmp(h->pat[i], p) == 0;
  cr_assert_leq(times, 1, "%s reported %zu times", p, times);
  return times == 1;
}

static void **slot(struct rc_pattern_index *ix, const char *p, bool create) {
  return rc_pattern_index_slot(ix, p, strlen(p), create);
}

static void add(struct rc_pattern_index *ix, const char *p, void *value) {
  cr_assert(rc_topic_pattern_is_valid(p, strlen(p)), "%s", p);
  void **s = slot(ix, p, true);
  cr_assert_not_null(s, "%s", p);
  *s = value;
}

static void *del(struct rc_pattern_index *ix, const char *p) {
  return rc_pattern_index_remove(ix, p, strlen(p));
}

static struct rc_pattern_index *make(void) {
  struct rc_pattern_index *ix = rc_pattern_index_create();
  cr_assert_not_null(ix);
  return ix;
}

Test(pattern_index, literal) {
  struct rc_pattern_index *ix = make();
  struct hits h;
  add(ix, "quotes.AAPL", (void *)1);
  cr_assert_eq(match(ix, "quotes.AAPL", &h), 1);
  cr_assert_str_eq(h.pat[0], "quotes.AAPL");
  cr_assert_eq(h.val[0], (void *)1);
  cr_assert_eq(match(ix, "quotes.AAP", &h), 0);
  cr_assert_eq(match(ix, "quotes.AAPLX", &h), 0);
  cr_assert_eq(match(ix, "quotes", &h), 0);
  cr_assert_eq(match(ix, "quotes.AAPL.bid", &h), 0);
  cr_assert_eq(match(ix, "x", &h), 0);
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, slot_finds_or_creates) {
  struct rc_pattern_index *ix = make();
  cr_assert_null(slot(ix, "a.b", false));
  void **s = slot(ix, "a.b", true);
  cr_assert_not_null(s);
  cr_assert_null(*s, "a new slot holds NULL");
  *s = (void *)7;
  cr_assert_eq(slot(ix, "a.b", true), s, "the same slot again");
  cr_assert_eq(slot(ix, "a.b", false), s);
  cr_assert_eq(rc_pattern_index_count(ix), 1);
  cr_assert_null(slot(ix, "a", false), "a prefix is not a pattern");
  cr_assert_null(slot(ix, "a.>", false));
  cr_assert_null(slot(ix, "a.*", false));
  /* The same segments with and without ">" are two patterns. */
  add(ix, "a.>", (void *)8);
  cr_assert_eq(*slot(ix, "a.b", false), (void *)7);
  cr_assert_eq(*slot(ix, "a.>", false), (void *)8);
  cr_assert_eq(rc_pattern_index_count(ix), 2);
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, star_at_each_position) {
  struct rc_pattern_index *ix = make();
  struct hits h;
  add(ix, "*.b.c", NULL);
  add(ix, "a.*.c", NULL);
  add(ix, "a.b.*", NULL);
  add(ix, "*.*.*", NULL);
  add(ix, "*", NULL);
  cr_assert_eq(match(ix, "a.b.c", &h), 4);
  cr_assert(hit(&h, "*.b.c") && hit(&h, "a.*.c") && hit(&h, "a.b.*") && hit(&h, "*.*.*"));
  cr_assert_eq(match(ix, "x.b.c", &h), 2);
  cr_assert(hit(&h, "*.b.c") && hit(&h, "*.*.*"));
  cr_assert_eq(match(ix, "a.b", &h), 0, "* is exactly one segment");
  cr_assert_eq(match(ix, "a.b.c.d", &h), 0);
  cr_assert_eq(match(ix, "a..c", &h), 0, "* needs a non-empty segment");
  cr_assert_eq(match(ix, "a.b.", &h), 0);
  cr_assert_eq(match(ix, ".b.c", &h), 0);
  cr_assert_eq(match(ix, "zzz", &h), 1);
  cr_assert(hit(&h, "*"));
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, tail_at_each_level) {
  struct rc_pattern_index *ix = make();
  struct hits h;
  add(ix, ">", NULL);
  add(ix, "a.>", NULL);
  add(ix, "a.b.>", NULL);
  add(ix, "a.b.c.>", NULL);
  add(ix, "*.>", NULL);
  add(ix, "a.b..>", NULL);
  cr_assert_eq(match(ix, "a", &h), 1, "a.> does not match a");
  cr_assert(hit(&h, ">"));
  cr_assert_eq(match(ix, "a.b", &h), 3);
  cr_assert(hit(&h, ">") && hit(&h, "a.>") && hit(&h, "*.>"));
  cr_assert_eq(match(ix, "a.b.c", &h), 4);
  cr_assert(hit(&h, ">") && hit(&h, "a.>") && hit(&h, "a.b.>") && hit(&h, "*.>"));
  cr_assert_eq(match(ix, "a.b.c.d.e", &h), 5);
  cr_assert_eq(match(ix, "a.b..d", &h), 1, "> takes non-empty segments only");
  cr_assert(hit(&h, "a.b..>"));
  cr_assert_eq(match(ix, "a.", &h), 0);
  cr_assert_eq(match(ix, ".a", &h), 0);
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, empty_segments) {
  struct rc_pattern_index *ix = make();
  struct hits h;
  add(ix, "a..b", NULL);
  add(ix, "a.", NULL);
  add(ix, ".", NULL);
  add(ix, ".>", NULL);
  add(ix, "..*", NULL);
  cr_assert_eq(match(ix, "a..b", &h), 1);
  cr_assert(hit(&h, "a..b"));
  cr_assert_eq(match(ix, "a.b", &h), 0);
  cr_assert_eq(match(ix, "a.", &h), 1);
  cr_assert(hit(&h, "a."));
  cr_assert_eq(match(ix, "a", &h), 0);
  cr_assert_eq(match(ix, ".", &h), 1);
  cr_assert(hit(&h, "."));
  cr_assert_eq(match(ix, ".x.y", &h), 1);
  cr_assert(hit(&h, ".>"));
  cr_assert_eq(match(ix, "..x", &h), 1);
  cr_assert(hit(&h, "..*"));
  cr_assert_eq(match(ix, "..", &h), 0);
  rc_pattern_index_destroy(ix);
}

/* Every pattern that could match a.b.c: each segment literal or "*", then ">"
 * after each prefix; and as many near misses that must not. */
Test(pattern_index, many_patterns_match_one_name) {
  struct rc_pattern_index *ix = make();
  static const char *const seg[3] = {"a", "b", "c"};
  size_t want = 0;
  for (unsigned len = 1; len <= 3; len++)
    for (unsigned mask = 0; mask < (1u << len); mask++) {
      char p[32] = "", miss[32] = "";
      for (unsigned i = 0; i < len; i++) {
        if (i) {
          strcat(p, ".");
          strcat(miss, ".");
        }
        strcat(p, mask & (1u << i) ? "*" : seg[i]);
        strcat(miss, mask & (1u << i) ? "*" : "z");
      }
      if (len == 3) {
        add(ix, p, NULL);
        want++;
      } else {
        strcat(p, ".>");
        add(ix, p, NULL);
        want++;
      }
      if (mask != (1u << len) - 1) add(ix, miss, NULL);
    }
  add(ix, ">", NULL);
  want++;
  struct hits h;
  cr_assert_eq(match(ix, "a.b.c", &h), want);
  for (size_t i = 0; i < h.n; i++) {
    cr_assert(rc_topic_pattern_match(h.pat[i], strlen(h.pat[i]), "a.b.c", 5), "%s", h.pat[i]);
    cr_assert(hit(&h, h.pat[i]));
  }
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, remove_restores) {
  struct rc_pattern_index *ix = make();
  size_t empty = rc_pattern_index_bytes(ix);
  struct hits h;
  add(ix, "a", (void *)1);
  size_t with_a = rc_pattern_index_bytes(ix);
  add(ix, "a.b", (void *)2);
  add(ix, "a.*", (void *)3);
  add(ix, "a.>", (void *)4);
  cr_assert_null(del(ix, "a.c"), "absent");
  cr_assert_null(del(ix, "a.b.c"));
  cr_assert_eq(del(ix, "a"), (void *)1, "a prefix pattern goes alone");
  cr_assert_null(del(ix, "a"), "and only once");
  cr_assert_eq(match(ix, "a.b", &h), 3);
  cr_assert_eq(match(ix, "a", &h), 0);
  cr_assert_eq(del(ix, "a.*"), (void *)3);
  cr_assert_eq(match(ix, "a.b", &h), 2);
  cr_assert(hit(&h, "a.b") && hit(&h, "a.>"));
  cr_assert_eq(del(ix, "a.>"), (void *)4);
  cr_assert_eq(match(ix, "a.b", &h), 1);
  add(ix, "a", (void *)1);
  cr_assert_eq(del(ix, "a.b"), (void *)2);
  cr_assert_eq(rc_pattern_index_bytes(ix), with_a, "a.b's node went with it");
  cr_assert_eq(del(ix, "a"), (void *)1);
  cr_assert_eq(rc_pattern_index_count(ix), 0);
  cr_assert_eq(rc_pattern_index_bytes(ix), empty);
  cr_assert_eq(match(ix, "a", &h), 0);
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, empty_again_after_removing_everything) {
  struct rc_pattern_index *ix = make();
  size_t empty = rc_pattern_index_bytes(ix);
  cr_assert_eq(rc_pattern_index_count(ix), 0);
  cr_assert_gt(empty, 0);
  static const char *const pats[] = {"a",     "a.b",  "a.*", "a.>",     "*",     ">",
                                     "*.*.c", "a..b", ".",   "x.y.z.w", "x.y.>", "*.y.*.w"};
  size_t n = sizeof pats / sizeof pats[0];
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < n; i++)
      add(ix, pats[i], (void *)(uintptr_t)(i + 1));
    cr_assert_eq(rc_pattern_index_count(ix), n);
    cr_assert_gt(rc_pattern_index_bytes(ix), empty);
    /* Forwards the first round, backwards the second: pruning from either end. */
    for (size_t k = 0; k < n; k++) {
      size_t i = round ? n - 1 - k : k;
      cr_assert_eq(del(ix, pats[i]), (void *)(uintptr_t)(i + 1), "%s", pats[i]);
    }
    cr_assert_eq(rc_pattern_index_count(ix), 0);
    cr_assert_eq(rc_pattern_index_bytes(ix), empty);
  }
  rc_pattern_index_destroy(ix);
}

Test(pattern_index, ten_thousand_siblings) {
  struct rc_pattern_index *ix = make();
  size_t empty = rc_pattern_index_bytes(ix);
  enum { N = 10000, KEEP = 10 };
  char p[64];
  size_t with_few = 0;
  for (int i = 0; i < N; i++) {
    snprintf(p, sizeof p, "quotes.S%d.*", i);
    add(ix, p, (void *)(uintptr_t)(i + 1));
    if (i == KEEP - 1) with_few = rc_pattern_index_bytes(ix);
  }
  add(ix, "quotes.>", NULL);
  cr_assert_eq(rc_pattern_index_count(ix), N + 1);
  struct hits h;
  for (int i = 0; i < N; i += 97) {
    snprintf(p, sizeof p, "quotes.S%d.bid", i);
    cr_assert_eq(match(ix, p, &h), 2);
    snprintf(p, sizeof p, "quotes.S%d.*", i);
    cr_assert(hit(&h, p) && hit(&h, "quotes.>"));
  }
  cr_assert_eq(match(ix, "quotes.S10000.bid", &h), 1);
  cr_assert_eq(match(ix, "quotes.S1", &h), 1);
  cr_assert_eq(del(ix, "quotes.>"), NULL);
  size_t full = rc_pattern_index_bytes(ix);
  for (int i = KEEP; i < N; i++) {
    snprintf(p, sizeof p, "quotes.S%d.*", i);
    cr_assert_eq(del(ix, p), (void *)(uintptr_t)(i + 1));
  }
  size_t after = rc_pattern_index_bytes(ix);
  cr_assert_lt(after, with_few * 2, "the child table shrank: %zu with %d, %zu after (%zu full)",
               with_few, KEEP, after, full);
  for (int i = 0; i < KEEP; i++) {
    snprintf(p, sizeof p, "quotes.S%d.*", i);
    cr_assert_eq(del(ix, p), (void *)(uintptr_t)(i + 1));
  }
  cr_assert_eq(rc_pattern_index_bytes(ix), empty);
  rc_pattern_index_destroy(ix);
}

/* The deepest patterns the name limit allows: 129 empty segments, and 64
 * one-byte ones with "*" or ">". */
Test(pattern_index, deepest_patterns) {
  struct rc_pattern_index *ix = make();
  char dots[RC_TOPIC_PATTERN_MAX + 1], p[RC_TOPIC_PATTERN_MAX], nm[RC_TOPIC_NAME_MAX];
  memset(dots, '.', RC_TOPIC_PATTERN_MAX);
  dots[RC_TOPIC_PATTERN_MAX] = 0;
  add(ix, dots, (void *)1);
  /* "*.*. ... .*" and "x.x. ... .x", 127 bytes each. */
  for (size_t i = 0; i < sizeof p - 1; i++) {
    p[i] = (i % 2) ? '.' : '*';
    nm[i] = (i % 2) ? '.' : 'x';
  }
  p[sizeof p - 1] = nm[sizeof nm - 1] = 0;
  add(ix, p, (void *)2);
  p[sizeof p - 2] = '>';
  add(ix, p, (void *)3);
  struct hits h;
  cr_assert_eq(match(ix, nm, &h), 2);
  cr_assert(hit(&h, p));
  cr_assert_eq(match(ix, dots, &h), 1);
  cr_assert_eq(h.val[0], (void *)1);
  cr_assert_eq(del(ix, dots), (void *)1);
  cr_assert_eq(del(ix, p), (void *)3);
  cr_assert_eq(rc_pattern_index_count(ix), 1);
  rc_pattern_index_destroy(ix);
}

/* The same answers before and after a failed call. */
static void assert_unchanged(const struct rc_pattern_index *ix, size_t count, size_t bytes) {
  struct hits h;
  cr_assert_eq(rc_pattern_index_count(ix), count);
  cr_assert_eq(rc_pattern_index_bytes(ix), bytes, "%zu now, %zu before", rc_pattern_index_bytes(ix),
               bytes);
  cr_assert_eq(match(ix, "a.b.c", &h), 3);
  cr_assert(hit(&h, "a.b.c") && hit(&h, "a.>") && hit(&h, "*.b.*"));
  cr_assert_eq(match(ix, "x.q.y.z", &h), 0);
}

Test(pattern_index, out_of_memory_changes_nothing) {
  struct rc_pattern_index *ix = make();
  /* Three literal children at the root fill its first table, so adding "x..."
   * grows it as well as building a chain of new nodes. */
  add(ix, "a.b.c", NULL);
  add(ix, "a.>", NULL);
  add(ix, "*.b.*", NULL);
  add(ix, "c", NULL);
  add(ix, "d", NULL);
  size_t count = rc_pattern_index_count(ix), bytes = rc_pattern_index_bytes(ix);
  static const char *const fresh[] = {"x.*.y.z", "x.*.y.>", "a.b.c.>", "a.b.*", "a.b"};
  for (size_t f = 0; f < sizeof fresh / sizeof fresh[0]; f++) {
    long k = 0;
    for (;; k++) {
      failed = false;
      fail_countdown = k;
      void **s = slot(ix, fresh[f], true);
      fail_countdown = -1;
      if (s) {
        cr_assert_not(failed, "%s: a failed allocation and a slot", fresh[f]);
        break;
      }
      cr_assert(failed, "%s: NULL without a failed allocation", fresh[f]);
      assert_unchanged(ix, count, bytes);
      cr_assert_null(slot(ix, fresh[f], false));
    }
    cr_assert_geq(k, 1, "%s: every allocation was tried", fresh[f]);
    cr_assert_eq(del(ix, fresh[f]), NULL);
    /* A table that grew for the pattern may stay grown (it shrinks only at 1/8
     * full), so the next pattern's baseline is taken afresh. */
    bytes = rc_pattern_index_bytes(ix);
    assert_unchanged(ix, count, bytes);
  }
  rc_pattern_index_destroy(ix);
}

/* Removing cannot fail: when the smaller child table cannot be had, the larger
 * one stays. */
Test(pattern_index, remove_when_shrinking_fails) {
  struct rc_pattern_index *ix = make();
  char p[16];
  for (int i = 0; i < 40; i++) {
    snprintf(p, sizeof p, "k%d", i);
    add(ix, p, (void *)(uintptr_t)(i + 1));
  }
  for (int i = 39; i >= 0; i--) {
    snprintf(p, sizeof p, "k%d", i);
    fail_countdown = 0;
    cr_assert_eq(del(ix, p), (void *)(uintptr_t)(i + 1));
    fail_countdown = -1;
    struct hits h;
    for (int j = 0; j < i; j++) {
      snprintf(p, sizeof p, "k%d", j);
      cr_assert_eq(match(ix, p, &h), 1, "%s after removing k%d", p, i);
    }
  }
  cr_assert_eq(rc_pattern_index_count(ix), 0);
  rc_pattern_index_destroy(ix);
}

/* The differential test: random patterns and names over a small alphabet, so
 * that matches are frequent, and every pattern held checked by
 * rc_topic_pattern_match against what the index reports. */
#define MAX_HELD 200
struct held {
  char p[16];
  size_t len;
  bool live;
};

static size_t random_string(char *out, const char *alphabet, size_t max) {
  size_t n = 1 + (size_t)rand() % max, k = strlen(alphabet);
  for (size_t i = 0; i < n; i++)
    out[i] = alphabet[(size_t)rand() % k];
  out[n] = 0;
  return n;
}

static size_t find_held(const struct held *hv, const char *p, size_t len) {
  for (size_t i = 0; i < MAX_HELD; i++)
    if (hv[i].live && hv[i].len == len && memcmp(hv[i].p, p, len) == 0) return i;
  return MAX_HELD;
}

Test(pattern_index, agrees_with_rc_topic_pattern_match) {
  srand(11);
  struct rc_pattern_index *ix = make();
  size_t empty = rc_pattern_index_bytes(ix);
  static struct held hv[MAX_HELD];
  size_t live = 0, matched = 0;
  static struct hits h;
  for (int iter = 0; iter < 60000; iter++) {
    int op = rand() % 10;
    if (op < 5) {
      char p[16];
      size_t pl = random_string(p, "ab.*>", 9);
      if (!rc_topic_pattern_is_valid(p, pl)) continue;
      size_t at = find_held(hv, p, pl);
      void **s = rc_pattern_index_slot(ix, p, pl, false);
      cr_assert_eq(s != NULL, at < MAX_HELD, "%s", p);
      if (at < MAX_HELD) {
        cr_assert_eq(*s, &hv[at]);
        continue;
      }
      size_t free_at = 0;
      while (free_at < MAX_HELD && hv[free_at].live)
        free_at++;
      if (free_at == MAX_HELD) continue;
      s = rc_pattern_index_slot(ix, p, pl, true);
      cr_assert_not_null(s);
      cr_assert_null(*s);
      *s = &hv[free_at];
      memcpy(hv[free_at].p, p, pl + 1);
      hv[free_at].len = pl;
      hv[free_at].live = true;
      live++;
    } else if (op < 7) {
      size_t i = (size_t)rand() % MAX_HELD;
      if (hv[i].live) {
        cr_assert_eq(rc_pattern_index_remove(ix, hv[i].p, hv[i].len), &hv[i], "%s", hv[i].p);
        hv[i].live = false;
        live--;
      }
      /* Unless it was added again since, in another entry. */
      if (hv[i].len && find_held(hv, hv[i].p, hv[i].len) == MAX_HELD)
        cr_assert_null(rc_pattern_index_remove(ix, hv[i].p, hv[i].len), "%s gone", hv[i].p);
    } else {
      char nm[16];
      size_t nl = random_string(nm, "ab.", 9);
      size_t got = match(ix, nm, &h);
      bool seen[MAX_HELD] = {false};
      for (size_t k = 0; k < h.n; k++) {
        size_t at = find_held(hv, h.pat[k], strlen(h.pat[k]));
        cr_assert_lt(at, MAX_HELD, "%s reported for %s but not held", h.pat[k], nm);
        cr_assert_not(seen[at], "%s reported twice for %s", h.pat[k], nm);
        seen[at] = true;
        cr_assert_eq(h.val[k], &hv[at]);
      }
      size_t want = 0;
      for (size_t i = 0; i < MAX_HELD; i++) {
        if (!hv[i].live) continue;
        bool m = rc_topic_pattern_match(hv[i].p, hv[i].len, nm, nl);
        cr_assert_eq(m, seen[i], "%s vs %s: index %d, match %d", hv[i].p, nm, seen[i], m);
        want += m;
      }
      cr_assert_eq(got, want);
      matched += got;
    }
    cr_assert_eq(rc_pattern_index_count(ix), live);
  }
  cr_assert_gt(matched, 10000, "the random cases include many matches");
  for (size_t i = 0; i < MAX_HELD; i++)
    if (hv[i].live) cr_assert_eq(rc_pattern_index_remove(ix, hv[i].p, hv[i].len), &hv[i]);
  cr_assert_eq(rc_pattern_index_count(ix), 0);
  cr_assert_eq(rc_pattern_index_bytes(ix), empty);
  rc_pattern_index_destroy(ix);
}

/* The index follows rc_topic_pattern_match for reserved names: a wildcard
 * first segment does not take "$sys". */
Test(pattern_index, reserved_names) {
  struct rc_pattern_index *ix = make();
  struct hits h;
  add(ix, ">", (void *)1);
  add(ix, "*.stats", (void *)2);
  add(ix, "$sys.>", (void *)3);
  add(ix, "$sys.*", (void *)4);
  cr_assert_eq(match(ix, "$sys.stats", &h), 2);
  cr_assert(hit(&h, "$sys.>"));
  cr_assert(hit(&h, "$sys.*"));
  cr_assert_eq(match(ix, "sys.stats", &h), 2);
  cr_assert(hit(&h, ">"));
  cr_assert(hit(&h, "*.stats"));
  rc_pattern_index_destroy(ix);
}
