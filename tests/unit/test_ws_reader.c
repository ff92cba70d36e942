/* SPDX-License-Identifier: MIT */
/* The incremental frame reader: whatever the split of the input (byte by byte,
 * random pieces, headers cut anywhere), it yields the same headers and the same
 * unmasked payloads; a forbidden header fails wherever it is cut. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/ws_reader.h"

/* Appends a masked client frame to out; returns its length. */
static size_t client_frame(uint8_t *out, uint8_t opcode, bool fin, const uint8_t *payload,
                           size_t len, uint32_t seed) {
  size_t n = rc_ws_encode_header(out, opcode, fin, len);
  out[1] |= 0x80;
  uint8_t mask[4] = {(uint8_t)seed, (uint8_t)(seed >> 8), (uint8_t)(seed >> 16), 0x5a};
  memcpy(out + n, mask, 4);
  n += 4;
  for (size_t i = 0; i < len; i++) out[n + i] = payload[i] ^ mask[i & 3];
  return n + len;
}

struct seen {
  int frames;
  uint8_t op[16];
  bool fin[16];
  size_t len[16];
  uint8_t data[16][70000];
  size_t got[16];
};

/* Feeds buf in pieces given by `cut` and records what comes out. */
static void read_all(uint8_t *buf, size_t len, size_t (*cut)(size_t), struct seen *s) {
  struct rc_ws_reader r;
  rc_ws_reader_init(&r);
  memset(s, 0, sizeof *s);
  int cur = -1;
  size_t pos = 0;
  while (pos < len) {
    size_t piece = cut(len - pos);
    struct guarded g;
    uint8_t *p = guard_copy(&g, buf + pos, piece);
    size_t at = 0;
    while (at < piece) {
      struct rc_ws_event ev;
      ssize_t used = rc_ws_reader_next(&r, p + at, piece - at, &ev);
      cr_assert_geq(used, 0);
      at += (size_t)used;
      if (ev.kind == RC_WS_EVENT_HEADER) {
        cur = s->frames++;
        s->op[cur] = ev.h.opcode;
        s->fin[cur] = ev.h.fin;
        s->len[cur] = (size_t)ev.h.payload_len;
        cr_assert_eq(ev.last, ev.h.payload_len == 0);
      } else if (ev.kind == RC_WS_EVENT_PAYLOAD) {
        cr_assert_geq(cur, 0);
        memcpy(s->data[cur] + s->got[cur], ev.p, ev.n);
        s->got[cur] += ev.n;
        cr_assert_eq(ev.last, s->got[cur] == s->len[cur]);
      }
    }
    memcpy(buf + pos, p, piece); /* unmasking happened in the copy */
    guard_free(&g);
    pos += piece;
  }
}

static size_t whole(size_t left) { return left; }
static size_t one(size_t left) { (void)left; return 1; }
static size_t random_cut(size_t left) { return 1 + (size_t)rand() % (left < 3000 ? left : 3000); }

static uint8_t input[200000];
static uint8_t big[66000];
static struct seen seen;

static size_t build(void) {
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
  size_t n = 0;
  n += client_frame(input + n, RC_WS_OP_TEXT, true, (const uint8_t *)"Hello", 5, 1);
  n += client_frame(input + n, RC_WS_OP_BINARY, false, big, 126, 2);
  n += client_frame(input + n, RC_WS_OP_PING, true, (const uint8_t *)"p", 1, 3);
  n += client_frame(input + n, RC_WS_OP_CONT, true, big, 65536, 4);
  n += client_frame(input + n, RC_WS_OP_TEXT, true, NULL, 0, 5);
  n += client_frame(input + n, RC_WS_OP_CLOSE, true, (const uint8_t *)"\x03\xe8", 2, 6);
  return n;
}

static void check(void) {
  cr_assert_eq(seen.frames, 6);
  const uint8_t ops[] = {RC_WS_OP_TEXT, RC_WS_OP_BINARY, RC_WS_OP_PING, RC_WS_OP_CONT,
                         RC_WS_OP_TEXT, RC_WS_OP_CLOSE};
  const size_t lens[] = {5, 126, 1, 65536, 0, 2};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(seen.op[i], ops[i], "frame %d", i);
    cr_assert_eq(seen.len[i], lens[i]);
    cr_assert_eq(seen.got[i], lens[i], "frame %d payload complete", i);
  }
  cr_assert_not(seen.fin[1]);
  cr_assert_eq(memcmp(seen.data[0], "Hello", 5), 0);
  cr_assert_eq(memcmp(seen.data[1], big, 126), 0);
  cr_assert_eq(memcmp(seen.data[3], big, 65536), 0, "unmasked with the right offset throughout");
}

Test(ws_reader, whole_input) {
  size_t n = build();
  read_all(input, n, whole, &seen);
  check();
}

Test(ws_reader, byte_by_byte) {
  size_t n = build();
  read_all(input, n, one, &seen);
  check();
}

Test(ws_reader, random_pieces) {
  srand(11);
  for (int round = 0; round < 20; round++) {
    size_t n = build();
    read_all(input, n, random_cut, &seen);
    check();
  }
}

Test(ws_reader, forbidden_headers_fail_however_cut) {
  const uint8_t unmasked[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
  const uint8_t rsv[] = {0xc1, 0x80, 0, 0, 0, 0};
  const uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0};
  const uint8_t *cases[] = {unmasked, rsv, long_ping};
  const size_t lens[] = {sizeof unmasked, sizeof rsv, sizeof long_ping};
  for (int c = 0; c < 3; c++) {
    for (size_t split = 1; split <= lens[c]; split++) {
      struct rc_ws_reader r;
      rc_ws_reader_init(&r);
      uint8_t b[16];
      memcpy(b, cases[c], lens[c]);
      struct rc_ws_event ev;
      ssize_t used = rc_ws_reader_next(&r, b, split, &ev);
      if (used >= 0) {
        cr_assert_eq(ev.kind, RC_WS_EVENT_NONE, "case %d split %zu: no event from a partial header", c, split);
        used = rc_ws_reader_next(&r, b + split, lens[c] - split, &ev);
      }
      cr_assert_eq(used, -EPROTO, "case %d split %zu", c, split);
    }
  }
}
