/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the pattern index against rc_topic_pattern_match. The input
 * is a script of adds, removes and matches over small alphabets (so that
 * patterns are mostly valid and matches frequent); every match is checked
 * against every pattern held, and an emptied index must be back to its first
 * size. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/pubsub/pattern_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HELD 32

struct held {
  char p[RC_TOPIC_PATTERN_MAX];
  size_t len;
  bool live;
};

struct check {
  struct held *hv;
  bool seen[MAX_HELD];
  size_t calls;
};

static size_t find(const struct held *hv, const char *p, size_t len) {
  for (size_t i = 0; i < MAX_HELD; i++)
    if (hv[i].live && hv[i].len == len && memcmp(hv[i].p, p, len) == 0) return i;
  return MAX_HELD;
}

/* Each reported pattern is held, reported once, with its own value. */
static void on_match(void *ctx, const char *p, size_t plen, void *value) {
  struct check *c = ctx;
  size_t at = find(c->hv, p, plen);
  if (at == MAX_HELD || c->seen[at] || value != &c->hv[at]) abort();
  c->seen[at] = true;
  c->calls++;
}

/* The next string of the script: a length byte, then that many bytes, each
 * taken modulo the alphabet. */
static size_t next_string(const uint8_t **in, const uint8_t *end, const char *alphabet, char *out) {
  if (*in == end) return 0;
  size_t want = 1 + (size_t)(*(*in)++ % RC_TOPIC_PATTERN_MAX), k = strlen(alphabet), n = 0;
  while (n < want && *in < end)
    out[n++] = alphabet[*(*in)++ % k];
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct rc_pattern_index *ix = rc_pattern_index_create();
  if (!ix) return 0;
  size_t empty = rc_pattern_index_bytes(ix), live = 0;
  struct held hv[MAX_HELD];
  memset(hv, 0, sizeof hv);
  const uint8_t *in = data, *end = data + size;
  while (in < end) {
    uint8_t op = *in++ % 4;
    char s[RC_TOPIC_PATTERN_MAX];
    if (op <= 1) {
      size_t n = next_string(&in, end, "$ab.*>", s);
      if (!n || !rc_topic_pattern_is_valid(s, n)) continue;
      size_t at = find(hv, s, n);
      void **slot = rc_pattern_index_slot(ix, s, n, false);
      if ((slot != NULL) != (at < MAX_HELD) || (slot && *slot != &hv[at])) abort();
      size_t free_at = 0;
      while (free_at < MAX_HELD && hv[free_at].live)
        free_at++;
      if (slot || free_at == MAX_HELD) continue;
      slot = rc_pattern_index_slot(ix, s, n, true);
      /* Out of memory is no finding; the index must just be as it was. */
      if (!slot) continue;
      if (*slot) abort();
      *slot = &hv[free_at];
      memcpy(hv[free_at].p, s, n);
      hv[free_at].len = n;
      hv[free_at].live = true;
      live++;
    } else if (op == 2) {
      size_t n = next_string(&in, end, "$ab.*>", s);
      if (!n || !rc_topic_pattern_is_valid(s, n)) continue;
      size_t at = find(hv, s, n);
      void *v = rc_pattern_index_remove(ix, s, n);
      if (at == MAX_HELD ? v != NULL : v != &hv[at]) abort();
      if (at < MAX_HELD) {
        hv[at].live = false;
        live--;
      }
    } else {
      /* '$' leads reserved names, which no leading wildcard may match. */
      size_t n = next_string(&in, end, "$ab.", s);
      if (!n || !rc_topic_name_is_valid(s, n)) continue;
      struct check c = {.hv = hv};
      size_t got = rc_pattern_index_match(ix, s, n, on_match, &c);
      if (got != c.calls) abort();
      for (size_t i = 0; i < MAX_HELD; i++)
        if (hv[i].live && rc_topic_pattern_match(hv[i].p, hv[i].len, s, n) != c.seen[i]) abort();
    }
    if (rc_pattern_index_count(ix) != live) abort();
  }
  for (size_t i = 0; i < MAX_HELD; i++)
    if (hv[i].live && rc_pattern_index_remove(ix, hv[i].p, hv[i].len) != &hv[i]) abort();
  if (rc_pattern_index_count(ix) != 0 || rc_pattern_index_bytes(ix) != empty) abort();
  rc_pattern_index_destroy(ix);
  return 0;
}
