/* SPDX-License-Identifier: MIT */
#include "ringcast/proto/redis_glob.h"

#include <stdint.h>
#include <string.h>

size_t rc_redis_glob_of(const char *p, size_t len, char *out) {
  memcpy(out, "rc:{", 4);
  size_t n = 4;
  for (size_t i = 0; i < len && i < RC_TOPIC_PATTERN_MAX; i++) out[n++] = p[i] == '>' ? '*' : p[i];
  out[n++] = '}';
  return n;
}

/* g matches h's text when each '*' of h may be taken only by a '*' of g: a
 * '*' of h stands for any string, and only a '*' is sure to take any. That
 * test is exact: h with each '*' as a character g never spells is a channel
 * h matches, and g matches it only that way. */
bool rc_redis_glob_covers(const char *g, size_t gn, const char *h, size_t hn) {
  size_t i = 0, j = 0, star = SIZE_MAX, mark = 0;
  while (j < hn) {
    if (i < gn && g[i] == '*') {
      star = i++;
      mark = j;
    } else if (i < gn && g[i] == h[j] && h[j] != '*') {
      i++;
      j++;
    } else if (star != SIZE_MAX) {
      i = star + 1;
      j = ++mark;
    } else {
      return false;
    }
  }
  while (i < gn && g[i] == '*') i++;
  return i == gn;
}
