/* SPDX-License-Identifier: MIT */
/* The globs wildcards cross Redis with: what a pattern becomes, and which glob
 * makes another needless (checked against every filling of the stars). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/redis_glob.h"

static bool covers(const char *g, const char *h) {
  return rc_redis_glob_covers(g, strlen(g), h, strlen(h));
}

Test(redis_glob, pattern_to_glob) {
  char out[RC_REDIS_GLOB_MAX];
  size_t n = rc_redis_glob_of("quotes.*", 8, out);
  cr_assert_eq(n, 13);
  cr_assert_eq(memcmp(out, "rc:{quotes.*}", n), 0);
  n = rc_redis_glob_of("quotes.>", 8, out);
  cr_assert_eq(memcmp(out, "rc:{quotes.*}", n), 0, "* and > share a glob");
  n = rc_redis_glob_of("a.*.c.>", 7, out);
  cr_assert_eq(memcmp(out, "rc:{a.*.c.*}", n), 0);
  n = rc_redis_glob_of(">", 1, out);
  cr_assert_eq(memcmp(out, "rc:{*}", n), 0);
  char longp[RC_TOPIC_PATTERN_MAX];
  memset(longp, 'q', sizeof longp);
  cr_assert_eq(rc_redis_glob_of(longp, sizeof longp, out), RC_REDIS_GLOB_MAX);
}

Test(redis_glob, covers_the_obvious) {
  cr_assert(covers("rc:{quotes.*}", "rc:{quotes.*}"));
  cr_assert(covers("rc:{quotes.*}", "rc:{quotes.AAPL.*}"));
  cr_assert(covers("rc:{*}", "rc:{a.*.c}"));
  cr_assert(covers("rc:{a.*}", "rc:{a.*.c.*}"));
  cr_assert(!covers("rc:{quotes.AAPL.*}", "rc:{quotes.*}"));
  cr_assert(!covers("rc:{a.*.c}", "rc:{a.*}"));
  cr_assert(!covers("rc:{a.b}", "rc:{a.*}"), "a literal never covers a star");
  cr_assert(!covers("rc:{*ab*}", "rc:{*a*b*}"));
  cr_assert(covers("rc:{*a*b*}", "rc:{*ab*}"));
  cr_assert(covers("rc:{a*}", "rc:{a*a}"));
  cr_assert(!covers("rc:{quotes.*}", "rc:{trades.*}"));
}

/* A plain glob matcher over '*' only, as Redis' for these. */
static bool match(const char *g, const char *s) {
  if (!*g) return !*s;
  if (*g == '*') {
    for (const char *t = s;; t++) {
      if (match(g + 1, t)) return true;
      if (!*t) return false;
    }
  }
  return *s == *g && match(g + 1, s + 1);
}

/* Every way to fill h's stars from `fill` (including the character no glob
 * spells, 'x'); whether g matches them all. */
static const char *const fill[] = {"", "a", "x", "a.x", "b"};
static bool all_match(const char *g, const char *h, char *buf, size_t at) {
  if (!*h) {
    buf[at] = 0;
    return match(g, buf);
  }
  if (*h != '*') {
    buf[at] = *h;
    return all_match(g, h + 1, buf, at + 1);
  }
  for (size_t i = 0; i < sizeof fill / sizeof fill[0]; i++) {
    size_t n = strlen(fill[i]);
    memcpy(buf + at, fill[i], n);
    if (!all_match(g, h + 1, buf, at + n)) return false;
  }
  return true;
}

static void random_glob(char *out, unsigned *seed) {
  static const char alpha[] = "ab.*";
  size_t n = (size_t)(rand_r(seed) % 6);
  for (size_t i = 0; i < n; i++) out[i] = alpha[rand_r(seed) % 4];
  out[n] = 0;
}

Test(redis_glob, covers_exactly_what_every_filling_shows) {
  unsigned seed = 12345;
  char g[8], h[8], buf[64];
  unsigned yes = 0;
  for (int k = 0; k < 20000; k++) {
    random_glob(g, &seed);
    random_glob(h, &seed);
    bool c = covers(g, h);
    yes += c;
    cr_assert_eq(c, all_match(g, h, buf, 0), "covers(\"%s\", \"%s\") says %d", g, h, c);
  }
  cr_assert_gt(yes, 100, "the sample has covering pairs");
}
