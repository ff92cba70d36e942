/* SPDX-License-Identifier: MIT */
/* Positions as text. */
#include "ringcast/proto/position.h"

#include <errno.h>
#include <string.h>

void rc_epoch_format(uint64_t epoch, char out[RC_EPOCH_TEXT_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = RC_EPOCH_TEXT_LEN - 1; i >= 0; i--, epoch >>= 4) out[i] = hex[epoch & 15];
  out[RC_EPOCH_TEXT_LEN] = '\0';
}

bool rc_epoch_parse(const char *p, size_t n, uint64_t *out) {
  if (n != RC_EPOCH_TEXT_LEN) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return false;
    v = v << 4 | d;
  }
  *out = v;
  return true;
}

bool rc_seq_parse(const char *p, size_t n, uint64_t *out) {
  if (n == 0 || n > 19) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return false;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  if (v > INT64_MAX) return false;
  *out = v;
  return true;
}

int rc_position_parse(const char *p, size_t n, const char **topic, size_t *topic_len,
                      uint64_t *epoch, uint64_t *seq) {
  const char *c2 = memrchr(p, ':', n);
  if (!c2) return -EINVAL;
  const char *c1 = memrchr(p, ':', (size_t)(c2 - p));
  if (!c1 || c1 == p) return -EINVAL;
  if (!rc_epoch_parse(c1 + 1, (size_t)(c2 - c1 - 1), epoch)) return -EINVAL;
  if (!rc_seq_parse(c2 + 1, (size_t)(p + n - c2 - 1), seq)) return -EINVAL;
  *topic = p;
  *topic_len = (size_t)(c1 - p);
  return 0;
}
