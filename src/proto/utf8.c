/* SPDX-License-Identifier: MIT */
/* Incremental UTF-8 validation (RFC 3629, Table 3-7 of Unicode): rejects overlong
 * forms, surrogates and code points above U+10FFFF, with an 8-byte ASCII fast
 * path. */
#include "ringcast/proto/utf8.h"

#include <string.h>

void rc_utf8_init(struct rc_utf8_state *s) {
  s->need = 0;
  s->lo = 0x80;
  s->hi = 0xbf;
}

bool rc_utf8_feed(struct rc_utf8_state *s, const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s->need == 0) {
      while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i >= n) break;
      uint8_t b = p[i++];
      if (b < 0x80) continue;
      s->lo = 0x80;
      s->hi = 0xbf;
      if (b >= 0xc2 && b <= 0xdf) {
        s->need = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        s->need = 2;
        if (b == 0xe0) s->lo = 0xa0;      /* overlong */
        else if (b == 0xed) s->hi = 0x9f; /* surrogates */
      } else if (b >= 0xf0 && b <= 0xf4) {
        s->need = 3;
        if (b == 0xf0) s->lo = 0x90;      /* overlong */
        else if (b == 0xf4) s->hi = 0x8f; /* above U+10FFFF */
      } else {
        return false;
      }
    } else {
      uint8_t b = p[i++];
      if (b < s->lo || b > s->hi) return false;
      s->lo = 0x80;
      s->hi = 0xbf;
      s->need--;
    }
  }
  return true;
}

bool rc_utf8_is_complete(const struct rc_utf8_state *s) { return s->need == 0; }

bool rc_utf8_is_valid(const uint8_t *p, size_t n) {
  struct rc_utf8_state s;
  rc_utf8_init(&s);
  return rc_utf8_feed(&s, p, n) && rc_utf8_is_complete(&s);
}
