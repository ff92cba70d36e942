/* SPDX-License-Identifier: MIT */
/* Topic pattern grammar and matching: one pass over pattern and name, segment by
 * segment. "*" and ">" consume whole segments only, so no segment boundary is
 * ever in doubt and nothing needs backtracking. */
#include "ringcast/proto/topic_pattern.h"

#include <string.h>

/* The segment of s[0..len) starting at pos ends at the next '.' or at len. */
static size_t seg_end(const char *s, size_t len, size_t pos) {
  const char *dot = memchr(s + pos, '.', len - pos);
  return dot ? (size_t)(dot - s) : len;
}

/* A wildcard as the whole first segment: it never stands for a reserved
 * ('$') first segment (topic_name.h). */
static bool leads_with_wildcard(const char *s, size_t len) {
  return len > 0 && (s[0] == '*' || s[0] == '>');
}

/* Whether a wildcard first segment on one side faces a reserved literal one on
 * the other: then nothing matches both. */
static bool reserved_apart(const char *p, size_t plen, const char *q, size_t qlen) {
  return (leads_with_wildcard(p, plen) && rc_topic_name_is_reserved(q, qlen)) ||
         (leads_with_wildcard(q, qlen) && rc_topic_name_is_reserved(p, plen));
}

static bool is_name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':' || c == '/' || c == '@';
}

bool rc_topic_pattern_is_valid(const char *p, size_t len) {
  if (len == 0 || len > RC_TOPIC_PATTERN_MAX) return false;
  /* Segments start at 0 and after each '.'; a string ending in '.' has an
   * empty last segment, so the walk goes up to and including pos == len. */
  for (size_t pos = 0; pos <= len;) {
    size_t end = seg_end(p, len, pos);
    size_t n = end - pos;
    for (size_t i = pos; i < end; i++) {
      unsigned char c = (unsigned char)p[i];
      if (c == '*' || c == '>') {
        if (n != 1) return false;
        if (c == '>' && end != len) return false;
      } else if (!is_name_char(c) && !(c == RC_TOPIC_RESERVED_CHAR && i == 0)) {
        return false;
      }
    }
    pos = end + 1;
  }
  return true;
}

/* What ">" takes: the rest of the name, one or more segments, none empty. */
static bool is_tail(const char *s, size_t len) {
  if (len == 0 || s[0] == '.' || s[len - 1] == '.') return false;
  for (size_t i = 1; i < len; i++)
    if (s[i] == '.' && s[i - 1] == '.') return false;
  return true;
}

bool rc_topic_pattern_match(const char *p, size_t plen, const char *name, size_t nlen) {
  /* pp and np are the starts of the current segments; a position past the end
   * (len + 1) means that side has no segments left. */
  size_t pp = 0, np = 0;
  if (reserved_apart(p, plen, name, nlen)) return false;
  while (pp <= plen) {
    size_t pe = seg_end(p, plen, pp);
    if (pe - pp == 1 && p[pp] == '>' && pe == plen)
      return np <= nlen && is_tail(name + np, nlen - np);
    if (np > nlen) return false;
    size_t ne = seg_end(name, nlen, np);
    if (pe - pp == 1 && p[pp] == '*') {
      if (ne == np) return false;
    } else if (pe - pp != ne - np || memcmp(p + pp, name + np, pe - pp) != 0) {
      return false;
    }
    pp = pe + 1;
    np = ne + 1;
  }
  return np > nlen;
}

bool rc_topic_pattern_has_wildcard(const char *s, size_t len) {
  return memchr(s, '*', len) || memchr(s, '>', len);
}

/* The segments of a pattern as a cursor: [pos, end) is the current one, and
 * pos > len means none is left. */
struct seg {
  const char *s;
  size_t len, pos, end;
};

static void seg_first(struct seg *g, const char *s, size_t len) {
  *g = (struct seg){.s = s, .len = len, .pos = 0, .end = seg_end(s, len, 0)};
}

static bool seg_done(const struct seg *g) { return g->pos > g->len; }

static void seg_next(struct seg *g) {
  g->pos = g->end + 1;
  if (g->pos <= g->len) g->end = seg_end(g->s, g->len, g->pos);
}

static bool seg_is(const struct seg *g, char c) {
  return g->end - g->pos == 1 && g->s[g->pos] == c;
}

static bool seg_empty(const struct seg *g) { return g->end == g->pos; }

/* Whether the segments left in g can all be non-empty, so that ">" can take
 * them: at least one, and no empty literal among them. */
static bool rest_fits_tail(struct seg g) {
  if (seg_done(&g)) return false;
  for (; !seg_done(&g); seg_next(&g))
    if (seg_empty(&g)) return false;
  return true;
}

bool rc_topic_pattern_overlap(const char *p, size_t plen, const char *q, size_t qlen) {
  if (reserved_apart(p, plen, q, qlen)) return false;
  struct seg a, b;
  seg_first(&a, p, plen);
  seg_first(&b, q, qlen);
  for (;;) {
    if (seg_done(&a) || seg_done(&b)) return seg_done(&a) && seg_done(&b);
    /* ">" takes one or more non-empty segments: the other side's rest must
     * be able to spell that ("*" and ">" can, an empty literal cannot). */
    if (seg_is(&a, '>')) return rest_fits_tail(b);
    if (seg_is(&b, '>')) return rest_fits_tail(a);
    bool wa = seg_is(&a, '*'), wb = seg_is(&b, '*');
    if (wa && wb) {
      /* any non-empty segment */
    } else if (wa || wb) {
      if (seg_empty(wa ? &b : &a)) return false; /* "*" matches no empty segment */
    } else if (a.end - a.pos != b.end - b.pos || memcmp(p + a.pos, q + b.pos, a.end - a.pos) != 0) {
      return false;
    }
    seg_next(&a);
    seg_next(&b);
  }
}

bool rc_topic_pattern_covers(const char *g, size_t glen, const char *p, size_t plen) {
  if (leads_with_wildcard(g, glen) && rc_topic_name_is_reserved(p, plen)) return false;
  struct seg a, b; /* a walks the grant, b the pattern */
  seg_first(&a, g, glen);
  seg_first(&b, p, plen);
  for (;;) {
    if (seg_done(&a) || seg_done(&b)) return seg_done(&a) && seg_done(&b);
    if (seg_is(&a, '>')) return rest_fits_tail(b);
    if (seg_is(&b, '>')) return false; /* p takes any tail, g here only one segment */
    if (seg_is(&a, '*')) {
      /* p's segment must be non-empty whatever it is: "*" or a literal. */
      if (seg_empty(&b)) return false;
    } else if (seg_is(&b, '*') || a.end - a.pos != b.end - b.pos ||
               memcmp(g + a.pos, p + b.pos, a.end - a.pos) != 0) {
      return false;
    }
    seg_next(&a);
    seg_next(&b);
  }
}
