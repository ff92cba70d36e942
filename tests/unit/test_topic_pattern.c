/* SPDX-License-Identifier: MIT */
/* Topic patterns: the grammar, matching by hand-picked cases, and matching
 * against a plain reference (split into segment arrays) on random input. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/topic_pattern.h"

static bool valid(const char *s) {
  struct guarded g;
  size_t n = strlen(s);
  const char *p = (const char *)guard_copy(&g, s, n);
  bool v = rc_topic_pattern_is_valid(p, n);
  guard_free(&g);
  return v;
}

/* Both inputs right before a guard page, so an over-read crashes. */
static bool match(const char *pat, const char *name) {
  struct guarded gp, gn;
  size_t pl = strlen(pat), nl = strlen(name);
  const char *p = (const char *)guard_copy(&gp, pat, pl);
  const char *n = (const char *)guard_copy(&gn, name, nl);
  bool m = rc_topic_pattern_match(p, pl, n, nl);
  guard_free(&gp);
  guard_free(&gn);
  return m;
}

Test(topic_pattern, grammar) {
  cr_assert(valid("quotes.AAPL"));
  cr_assert(valid("quotes.*"));
  cr_assert(valid("*"));
  cr_assert(valid(">"));
  cr_assert(valid("quotes.>"));
  cr_assert(valid("*.*.>"));
  cr_assert(valid("a/b:c@d-e_f.*"));
  cr_assert(valid("a..b"), "empty literal segments, as names may have");
  cr_assert(valid("a."));
  cr_assert_not(valid(""));
  cr_assert_not(valid("quo*"), "wildcard inside a segment");
  cr_assert_not(valid("quotes.*x"));
  cr_assert_not(valid("**"));
  cr_assert_not(valid("a.>.b"), "> not last");
  cr_assert_not(valid(">.a"));
  cr_assert_not(valid("a.>>"));
  cr_assert_not(valid("a>"));
  cr_assert_not(valid("has space"));
  cr_assert_not(valid("quo\"te"));
  char p[RC_TOPIC_PATTERN_MAX + 2];
  memset(p, 'a', sizeof p);
  p[RC_TOPIC_PATTERN_MAX] = 0;
  cr_assert(valid(p));
  p[RC_TOPIC_PATTERN_MAX] = 'a';
  p[RC_TOPIC_PATTERN_MAX + 1] = 0;
  cr_assert_not(valid(p));
  cr_assert_not(rc_topic_pattern_is_valid("a\0b", 3), "NUL is no name character");
}

Test(topic_pattern, literal) {
  cr_assert(match("quotes.AAPL", "quotes.AAPL"));
  cr_assert_not(match("quotes.AAPL", "quotes.AAP"));
  cr_assert_not(match("quotes.AAPL", "quotes.AAPLX"));
  cr_assert_not(match("quotes", "quotes.AAPL"));
  cr_assert_not(match("quotes.AAPL", "quotes"));
  cr_assert(match("a..b", "a..b"));
  cr_assert_not(match("a.b", "a..b"));
}

Test(topic_pattern, star) {
  cr_assert(match("quotes.*", "quotes.AAPL"));
  cr_assert(match("*.AAPL", "quotes.AAPL"));
  cr_assert(match("*", "quotes"));
  cr_assert(match("a.*.c", "a.bbb.c"));
  cr_assert_not(match("quotes.*", "quotes"));
  cr_assert_not(match("quotes.*", "quotes."), "* needs a non-empty segment");
  cr_assert_not(match("quotes.*", "quotes.a.b"), "* is one segment");
  cr_assert_not(match("*", "a.b"));
  cr_assert_not(match("a.*.c", "a..c"));
  cr_assert_not(match("quotes.*", "quotesX.AAPL"));
}

Test(topic_pattern, tail) {
  cr_assert(match("quotes.>", "quotes.AAPL"));
  cr_assert(match("quotes.>", "quotes.AAPL.bid.x"));
  cr_assert(match(">", "anything"));
  cr_assert(match(">", "any.thing"));
  cr_assert(match("*.>", "a.b"));
  cr_assert_not(match("*.>", "a"));
  cr_assert_not(match("quotes.>", "quotes"), "> needs at least one segment");
  cr_assert_not(match("quotes.>", "quotes."));
  cr_assert_not(match("quotes.>", "quotes.a..b"), "> segments are non-empty");
  cr_assert_not(match("quotes.>", "quotes.a."));
  cr_assert_not(match(">", ".a"));
  cr_assert_not(match("quotes.>", "quotesX.a"));
}

/* The reference: split both into segments, then compare them pairwise. */
#define REF_MAX 130
static size_t split(const char *s, size_t len, const char **seg, size_t *seglen) {
  size_t n = 0, start = 0;
  for (size_t i = 0; i <= len; i++)
    if (i == len || s[i] == '.') {
      seg[n] = s + start;
      seglen[n++] = i - start;
      start = i + 1;
    }
  return n;
}

static bool ref_match(const char *p, size_t pl, const char *nm, size_t nl) {
  const char *ps[REF_MAX], *ns[REF_MAX];
  size_t pn[REF_MAX], nn[REF_MAX];
  size_t pc = split(p, pl, ps, pn), nc = split(nm, nl, ns, nn);
  for (size_t i = 0; i < pc; i++) {
    if (pn[i] == 1 && ps[i][0] == '>') {
      if (nc <= i) return false;
      for (size_t j = i; j < nc; j++)
        if (nn[j] == 0) return false;
      return true;
    }
    if (i >= nc) return false;
    if (pn[i] == 1 && ps[i][0] == '*') {
      if (nn[i] == 0) return false;
    } else if (pn[i] != nn[i] || memcmp(ps[i], ns[i], pn[i]) != 0) {
      return false;
    }
  }
  return pc == nc;
}

static size_t random_string(char *out, const char *alphabet, size_t max) {
  size_t n = 1 + (size_t)rand() % max, k = strlen(alphabet);
  for (size_t i = 0; i < n; i++)
    out[i] = alphabet[(size_t)rand() % k];
  return n;
}

Test(topic_pattern, agrees_with_reference) {
  srand(7);
  char p[16], nm[16];
  size_t matched = 0;
  for (int iter = 0; iter < 200000; iter++) {
    size_t pl = random_string(p, "ab.*>", 8);
    size_t nl = random_string(nm, "ab.", 8);
    if (!rc_topic_pattern_is_valid(p, pl)) continue;
    bool want = ref_match(p, pl, nm, nl);
    matched += want;
    cr_assert_eq(rc_topic_pattern_match(p, pl, nm, nl), want, "%.*s vs %.*s", (int)pl, p, (int)nl,
                 nm);
  }
  cr_assert_gt(matched, 1000, "the random cases include matches");
}

Test(topic_pattern, long_inputs_stay_linear) {
  /* 64 segments each side: "*.*. ... .>" against "x.x. ... .xy". */
  char p[RC_TOPIC_PATTERN_MAX - 1], nm[RC_TOPIC_NAME_MAX];
  for (size_t i = 0; i < sizeof p; i++)
    p[i] = (i % 2) ? '.' : '*';
  p[sizeof p - 1] = '>';
  for (size_t i = 0; i < sizeof nm; i++)
    nm[i] = (i % 2) ? '.' : 'x';
  nm[sizeof nm - 1] = 'y';
  cr_assert(rc_topic_pattern_is_valid(p, sizeof p));
  cr_assert(rc_topic_pattern_match(p, sizeof p, nm, sizeof nm));
  nm[sizeof nm - 1] = '.';
  cr_assert_not(rc_topic_pattern_match(p, sizeof p, nm, sizeof nm));
}

static bool overlap(const char *p, const char *q) {
  return rc_topic_pattern_overlap(p, strlen(p), q, strlen(q));
}

static bool covers(const char *g, const char *p) {
  return rc_topic_pattern_covers(g, strlen(g), p, strlen(p));
}

Test(topic_pattern, overlap_cases) {
  cr_assert(overlap("quotes.*", "quotes.>"));
  cr_assert(overlap("quotes.*", "*.AAPL"));
  cr_assert(overlap(">", "a"));
  cr_assert(overlap("a.b", "a.b"));
  cr_assert(overlap("*.>", "a.*.c"));
  cr_assert_not(overlap("quotes.*", "trades.*"));
  cr_assert_not(overlap("quotes.*", "quotes.*.bid"));
  cr_assert_not(overlap("quotes.>", "quotes"));
  cr_assert_not(overlap("a.*", "a."), "* matches no empty segment");
  cr_assert_not(overlap("a.>", "a..b"), "> matches no empty segment");
  cr_assert_not(overlap("w.*.q", "w.*.r"));
}

Test(topic_pattern, covers_cases) {
  cr_assert(covers("quotes.*", "quotes.*"));
  cr_assert(covers("quotes.*", "quotes.AAPL"));
  cr_assert(covers("quotes.>", "quotes.*"));
  cr_assert(covers("quotes.>", "quotes.*.bid"));
  cr_assert(covers(">", "quotes.>"));
  cr_assert(covers("*.*", "quotes.*"));
  cr_assert_not(covers("quotes.*", "quotes.>"));
  cr_assert_not(covers("quotes.*", ">"));
  cr_assert_not(covers("quotes.AAPL", "quotes.*"));
  cr_assert_not(covers("quotes.*", "quotes."), "names with an empty segment are outside *");
  cr_assert_not(covers(">", "a..b"));
}

/* Both answers against brute force over every short name: overlap is "some
 * name matches both", covers "every name matching p matches g". */
#define BF_NAMES 9840 /* 3 + 9 + ... + 3^8 */
#define BF_PATS 4000
static char bf_name[BF_NAMES][9];
static uint8_t bf_name_len[BF_NAMES];
static char bf_pat[BF_PATS][6];
static uint8_t bf_pat_len[BF_PATS];
static uint8_t bf_set[BF_PATS][(BF_NAMES + 7) / 8];

Test(topic_pattern, overlap_and_covers_agree_with_brute_force) {
  size_t nn = 0;
  for (size_t len = 1; len <= 8; len++) {
    size_t total = 1;
    for (size_t i = 0; i < len; i++) total *= 3;
    for (size_t k = 0; k < total; k++) {
      size_t x = k;
      for (size_t i = 0; i < len; i++, x /= 3) bf_name[nn][i] = "ab."[x % 3];
      bf_name_len[nn++] = (uint8_t)len;
    }
  }
  cr_assert_eq(nn, BF_NAMES);
  size_t np = 0;
  for (size_t len = 1; len <= 5; len++) {
    size_t total = 1;
    for (size_t i = 0; i < len; i++) total *= 5;
    for (size_t k = 0; k < total; k++) {
      char p[6];
      size_t x = k;
      for (size_t i = 0; i < len; i++, x /= 5) p[i] = "ab.*>"[x % 5];
      if (!rc_topic_pattern_is_valid(p, len)) continue;
      cr_assert_lt(np, BF_PATS);
      memcpy(bf_pat[np], p, len);
      bf_pat_len[np] = (uint8_t)len;
      memset(bf_set[np], 0, sizeof bf_set[np]);
      for (size_t n = 0; n < nn; n++)
        if (rc_topic_pattern_match(p, len, bf_name[n], bf_name_len[n]))
          bf_set[np][n / 8] |= (uint8_t)(1u << (n % 8));
      np++;
    }
  }
  srand(11);
  size_t yes_o = 0, yes_c = 0;
  for (int iter = 0; iter < 200000; iter++) {
    size_t i = (size_t)rand() % np, j = (size_t)rand() % np;
    bool both = false, sub = true;
    for (size_t b = 0; b < sizeof bf_set[0]; b++) {
      both |= (bf_set[i][b] & bf_set[j][b]) != 0;
      sub &= (bf_set[j][b] & ~bf_set[i][b]) == 0;
    }
    yes_o += both;
    yes_c += sub;
    cr_assert_eq(rc_topic_pattern_overlap(bf_pat[i], bf_pat_len[i], bf_pat[j], bf_pat_len[j]), both,
                 "overlap %.*s %.*s", bf_pat_len[i], bf_pat[i], bf_pat_len[j], bf_pat[j]);
    cr_assert_eq(rc_topic_pattern_covers(bf_pat[i], bf_pat_len[i], bf_pat[j], bf_pat_len[j]), sub,
                 "covers %.*s %.*s", bf_pat_len[i], bf_pat[i], bf_pat_len[j], bf_pat[j]);
  }
  cr_assert_gt(yes_o, 1000);
  cr_assert_gt(yes_c, 100);
}

/* A wildcard first segment never takes a reserved one ("$sys"): NATS's rule,
 * so a client asking for everything does not get the server's internals. */
Test(topic_pattern, reserved_names) {
  cr_assert(valid("$sys.>"));
  cr_assert(valid("$sys.*"));
  cr_assert_not(valid("a.$sys"));
  cr_assert_not(valid("$>"));
  cr_assert(match("$sys.>", "$sys.stats"));
  cr_assert(match("$sys.*", "$sys.stats"));
  cr_assert(match("$sys.stats", "$sys.stats"));
  cr_assert_not(match(">", "$sys.stats"));
  cr_assert_not(match("*.stats", "$sys.stats"));
  cr_assert_not(match("*.>", "$sys.stats"));
  cr_assert(match(">", "sys.stats"));
  cr_assert_not(overlap(">", "$sys.>"));
  cr_assert_not(overlap("$sys.*", "*.stats"));
  cr_assert(overlap("$sys.*", "$sys.>"));
  cr_assert(overlap("$sys.stats", "$sys.>"));
  cr_assert_not(covers(">", "$sys.>"));
  cr_assert_not(covers("*.*", "$sys.stats"));
  cr_assert(covers("$sys.>", "$sys.*"));
  cr_assert(covers(">", "*.stats"));
}

/* Overlap and covers against brute force again, now with reserved names and
 * patterns in the mix: every answer must follow from rc_topic_pattern_match. */
#define RB_NAMES 2000
#define RB_PATS 800
static char rb_name[RB_NAMES][8];
static uint8_t rb_name_len[RB_NAMES];
static char rb_pat[RB_PATS][6];
static uint8_t rb_pat_len[RB_PATS];
static uint8_t rb_set[RB_PATS][(RB_NAMES + 7) / 8];

/* Every string over alphabet of 1..max characters, each after prefix; returns
 * how many were written from out[at] on. */
static size_t spell_all(char (*out)[8], uint8_t *lens, size_t at, size_t cap, const char *prefix,
                        const char *alphabet, size_t max) {
  size_t k = strlen(alphabet), pl = strlen(prefix), n = 0;
  for (size_t len = 1; len <= max; len++) {
    size_t total = 1;
    for (size_t i = 0; i < len; i++)
      total *= k;
    for (size_t c = 0; c < total; c++, n++) {
      cr_assert_lt(at + n, cap);
      memcpy(out[at + n], prefix, pl);
      size_t x = c;
      for (size_t i = 0; i < len; i++, x /= k)
        out[at + n][pl + i] = alphabet[x % k];
      lens[at + n] = (uint8_t)(pl + len);
    }
  }
  return n;
}

Test(topic_pattern, reserved_overlap_and_covers_agree_with_brute_force) {
  size_t nn = spell_all(rb_name, rb_name_len, 0, RB_NAMES, "", "ab.", 6);
  nn += spell_all(rb_name, rb_name_len, nn, RB_NAMES, "$", "ab.", 5);
  static char pats[RB_PATS][8];
  static uint8_t plens[RB_PATS];
  size_t cand = spell_all(pats, plens, 0, RB_PATS, "", "a.*>", 4);
  cand += spell_all(pats, plens, cand, RB_PATS, "$", "a.*>", 3);
  size_t np = 0;
  for (size_t c = 0; c < cand; c++) {
    if (!rc_topic_pattern_is_valid(pats[c], plens[c])) continue;
    memcpy(rb_pat[np], pats[c], plens[c]);
    rb_pat_len[np] = plens[c];
    memset(rb_set[np], 0, sizeof rb_set[np]);
    for (size_t n = 0; n < nn; n++)
      if (rc_topic_pattern_match(pats[c], plens[c], rb_name[n], rb_name_len[n]))
        rb_set[np][n / 8] |= (uint8_t)(1u << (n % 8));
    np++;
  }
  size_t reserved_hits = 0;
  for (size_t i = 0; i < np; i++)
    for (size_t j = 0; j < np; j++) {
      bool both = false, sub = true;
      for (size_t b = 0; b < sizeof rb_set[0]; b++) {
        both |= (rb_set[i][b] & rb_set[j][b]) != 0;
        sub &= (rb_set[j][b] & ~rb_set[i][b]) == 0;
      }
      const char *p = rb_pat[i], *q = rb_pat[j];
      int pl = rb_pat_len[i], ql = rb_pat_len[j];
      /* Short names only: a pair apart here may still meet on a longer name,
       * so the brute force proves "overlap" and "not covered", not the reverse. */
      if (both)
        cr_assert(rc_topic_pattern_overlap(p, (size_t)pl, q, (size_t)ql), "%.*s %.*s", pl, p, ql,
                  q);
      if (!sub)
        cr_assert_not(rc_topic_pattern_covers(p, (size_t)pl, q, (size_t)ql), "%.*s %.*s", pl, p, ql,
                      q);
      if (rc_topic_name_is_reserved(p, (size_t)pl) != rc_topic_name_is_reserved(q, (size_t)ql) &&
          (p[0] == '*' || p[0] == '>' || q[0] == '*' || q[0] == '>')) {
        cr_assert_not(rc_topic_pattern_overlap(p, (size_t)pl, q, (size_t)ql), "%.*s %.*s", pl, p,
                      ql, q);
        reserved_hits++;
      }
    }
  cr_assert_gt(reserved_hits, 100, "the pairs include wildcards facing reserved patterns");
}
