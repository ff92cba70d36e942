/* SPDX-License-Identifier: MIT */
/* Test helper: places input right before an unreadable page, so a parser that
 * reads one byte too far crashes instead of passing. */
#ifndef RINGCAST_TEST_GUARD_H
#define RINGCAST_TEST_GUARD_H

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guarded {
  uint8_t *map;
  size_t map_len;
  uint8_t *p;
};

static inline uint8_t *guard_copy(struct guarded *g, const void *data, size_t len) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  size_t pages = (len + pg - 1) / pg + 1;
  g->map_len = pages * pg;
  g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g->map == MAP_FAILED) return NULL;
  mprotect(g->map + (pages - 1) * pg, pg, PROT_NONE);
  g->p = g->map + (pages - 1) * pg - len;
  if (len) memcpy(g->p, data, len);
  return g->p;
}

static inline void guard_free(struct guarded *g) { munmap(g->map, g->map_len); }

#endif
