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
      } else if (!is_name_char(c)) {
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
