/* SPDX-License-Identifier: MIT */
/* Capped byte buffers: doubling growth, never past the cap. */
#include "ringcast/util/bytebuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int rc_bytebuf_append(struct rc_bytebuf *b, const void *p, size_t n, size_t max) {
  if ((size_t)b->len + n > max || (size_t)b->len + n > UINT32_MAX) return -EMSGSIZE;
  if (n == 0) return 0; /* an empty fragment: nothing to copy, and b->p may be NULL */
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    if (cap > max) cap = max;
    uint8_t *np = realloc(b->p, cap);
    if (!np) return -ENOMEM;
    b->p = np;
    b->cap = (uint32_t)cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += (uint32_t)n;
  return 0;
}

void rc_bytebuf_consume(struct rc_bytebuf *b, size_t n) {
  if (n >= b->len) {
    rc_bytebuf_free(b);
    return;
  }
  memmove(b->p, b->p + n, b->len - n);
  b->len -= (uint32_t)n;
}

void rc_bytebuf_free(struct rc_bytebuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}
