/* SPDX-License-Identifier: MIT */
/* A growable byte buffer with a hard cap, for the few bytes a connection must
 * keep between receives (a partial request, a fragmented message). It owns memory
 * only while it holds bytes. */
#ifndef RINGCAST_UTIL_BYTEBUF_H
#define RINGCAST_UTIL_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

struct rc_bytebuf {
  uint8_t *p;
  uint32_t len, cap;
};

/* Appends n bytes, growing to at most max bytes in all: 0, -EMSGSIZE (over max;
 * nothing appended) or -ENOMEM. */
int rc_bytebuf_append(struct rc_bytebuf *b, const void *p, size_t n, size_t max);
/* Drops the first n bytes (all of them, and the memory, when n >= len). */
void rc_bytebuf_consume(struct rc_bytebuf *b, size_t n);
void rc_bytebuf_free(struct rc_bytebuf *b);

#endif
