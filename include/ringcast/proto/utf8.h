/* SPDX-License-Identifier: MIT */
/* UTF-8 validation (RFC 3629): one-shot, and incremental across fragments so an
 * invalid text message fails as soon as its first bad byte arrives. */
#ifndef RINGCAST_UTF8_H
#define RINGCAST_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rc_utf8_state {
  uint8_t need;          /* continuation bytes still expected */
  uint8_t lo, hi;        /* allowed range of the next continuation byte */
};

void rc_utf8_init(struct rc_utf8_state *s);
/* Feeds bytes; returns false on the first invalid sequence. */
bool rc_utf8_feed(struct rc_utf8_state *s, const uint8_t *p, size_t n);
/* Whether the input fed so far ends on a character boundary. */
bool rc_utf8_is_complete(const struct rc_utf8_state *s);
bool rc_utf8_is_valid(const uint8_t *p, size_t n);

#endif
