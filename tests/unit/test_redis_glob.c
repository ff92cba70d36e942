/* SPDX-License-Identifier: MIT */
/* The prefix globs wildcards cross Redis with: what a pattern becomes, and
 * that the reduced set, cut or not, brings every name some pattern matches
 * exactly once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/redis_glob.h"

static struct rc_redis_glob of(const char *p) {
  struct rc_redis_glob g;
  rc_redis_glob_of(p, strlen(p), &g);
  return g;
}

static bool is(const struct rc_redis_glob *g, const char *text) {
  return g->len == strlen(text) && memcmp(g->text, text, g->len) == 0;
}

Test(redis_glob, a_pattern_is_its_literal_prefix) {
  struct rc_redis_glob g = of("quotes.*");
  cr_assert(is(&g, "rc:{quotes."));
  g = of("quotes.>");
  cr_assert(is(&g, "rc:{quotes."), "* and > share a glob");
  g = of("quotes.*.bid");
  cr_assert(is(&g, "rc:{quotes."), "up to the first wildcard");
  g = of("*.AAPL");
  cr_assert(is(&g, "rc:{"), "a leading wildcard takes every channel");
  char longp[RC_TOPIC_PATTERN_MAX + 1];
  memset(longp, 'q', sizeof longp);
  longp[RC_TOPIC_PATTERN_MAX - 1] = '>';
  longp[RC_TOPIC_PATTERN_MAX - 2] = '.';
  longp[RC_TOPIC_PATTERN_MAX] = 0;
  g = of(longp);
  cr_assert_eq(g.len, 4 + RC_TOPIC_PATTERN_MAX - 1);
  cr_assert(rc_redis_glob_matches(&g, "rc:{quotes.AAPL}", 16) == false);
  g = of("quotes.>");
  cr_assert(rc_redis_glob_matches(&g, "rc:{quotes.AAPL}", 16));
  cr_assert_not(rc_redis_glob_matches(&g, "rc:{quote}", 10));
}

Test(redis_glob, repeats_and_covered_prefixes_go) {
  struct rc_redis_glob v[] = {of("quotes.AAPL.*"), of("trades.>"), of("quotes.*"), of("quotes.>"),
                              of("quotes.*.bid"), of("trades.x.*")};
  size_t cut;
  size_t n = rc_redis_glob_reduce(v, 6, 64, &cut);
  cr_assert_eq(n, 2);
  cr_assert_eq(cut, SIZE_MAX);
  cr_assert(is(&v[0], "rc:{quotes."));
  cr_assert(is(&v[1], "rc:{trades."));
  cr_assert_eq(rc_redis_glob_reduce(v, 0, 64, &cut), 0, "none, and no sort of nothing");
}

Test(redis_glob, past_the_limit_the_prefixes_are_cut) {
  struct rc_redis_glob v[300];
  char p[32];
  for (int i = 0; i < 300; i++) {
    snprintf(p, sizeof p, "sym%03d.*", i);
    v[i] = of(p);
  }
  size_t cut;
  size_t n = rc_redis_glob_reduce(v, 300, 64, &cut);
  cr_assert_leq(n, 64);
  cr_assert_eq(cut, 5, "'sym' and two digits: 30 of them");
  cr_assert_eq(n, 30);
  cr_assert(is(&v[0], "rc:{sym00"));
  n = rc_redis_glob_reduce(v, n, 1, &cut);
  cr_assert_eq(n, 1);
  cr_assert(is(&v[0], "rc:{sym"), "the common prefix is kept");
}

/* Random patterns and names: every name some pattern matches is brought by
 * exactly one kept glob (so it crosses once), whatever the limit. */
static void random_name(char *out, unsigned *seed, bool pattern) {
  static const char *const seg[] = {"a", "b", "ab", "q"};
  int n = 1 + rand_r(seed) % 3;
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    if (i) strcat(out, ".");
    int r = rand_r(seed) % 6;
    strcat(out, pattern && r == 4 ? "*" : pattern && r == 5 && i == n - 1 ? ">" : seg[r % 4]);
  }
  if (pattern && !strchr(out, '*') && !strchr(out, '>')) strcat(out, ".*");
}

Test(redis_glob, every_matched_name_is_brought_exactly_once) {
  unsigned seed = 4242;
  for (int round = 0; round < 300; round++) {
    char pats[12][48];
    struct rc_redis_glob v[12];
    size_t np = 1 + (size_t)(rand_r(&seed) % 12);
    for (size_t i = 0; i < np; i++) {
      random_name(pats[i], &seed, true);
      cr_assert(rc_topic_pattern_is_valid(pats[i], strlen(pats[i])), "%s", pats[i]);
      v[i] = of(pats[i]);
    }
    size_t cut, max = 1 + (size_t)(rand_r(&seed) % 4);
    size_t n = rc_redis_glob_reduce(v, np, max, &cut);
    cr_assert_leq(n, max);
    for (int k = 0; k < 40; k++) {
      char name[48], chan[64];
      random_name(name, &seed, false);
      int cl = snprintf(chan, sizeof chan, "rc:{%s}", name);
      bool wanted = false;
      for (size_t i = 0; i < np; i++)
        wanted |= rc_topic_pattern_match(pats[i], strlen(pats[i]), name, strlen(name));
      unsigned brought = 0;
      for (size_t i = 0; i < n; i++) brought += rc_redis_glob_matches(&v[i], chan, (size_t)cl);
      cr_assert_leq(brought, 1, "%s brought %u times", name, brought);
      if (wanted) cr_assert_eq(brought, 1, "%s is wanted but not brought", name);
    }
  }
}
