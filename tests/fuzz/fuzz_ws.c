/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the WebSocket frame-header parser walked over a stream of
 * frames, unmasking, and UTF-8 validation, checking the incremental validator
 * against the one-shot one at a split point the input chooses; and the
 * incremental frame reader, fed the stream whole and in pieces of a size the
 * input chooses, which must see the same frames and bytes and fail at the same
 * place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/utf8.h"
#include "ringcast/proto/ws.h"
#include "ringcast/proto/ws_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the reader saw: each header's opcode, fin and length, then the payload
 * bytes, appended to log; returns the input offset of a fault, or -1. */
static long read_stream(const uint8_t *data, size_t size, size_t piece, uint8_t *log, size_t *log_len) {
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) abort();
  memcpy(copy, data, size);
  struct rc_ws_reader r;
  rc_ws_reader_init(&r);
  long fault = -1;
  *log_len = 0;
  for (size_t pos = 0; pos < size && fault < 0;) {
    size_t end = pos + piece < size ? pos + piece : size;
    while (pos < end) {
      struct rc_ws_event ev;
      ssize_t used = rc_ws_reader_next(&r, copy + pos, end - pos, &ev);
      if (used < 0) {
        fault = (long)end; /* the piece in which it was found */
        break;
      }
      if (used == 0 || (size_t)used > end - pos) abort();
      pos += (size_t)used;
      if (ev.kind == RC_WS_EVENT_HEADER) {
        log[(*log_len)++] = (uint8_t)(ev.h.opcode | (ev.h.fin ? 0x80 : 0));
        memcpy(log + *log_len, &ev.h.payload_len, 8);
        *log_len += 8;
      } else if (ev.kind == RC_WS_EVENT_PAYLOAD) {
        memcpy(log + *log_len, ev.p, ev.n);
        *log_len += ev.n;
      }
    }
  }
  free(copy);
  return fault;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  bool require_mask = data[0] & 1;
  size_t split = data[0] >> 1;
  data++;
  size--;

  /* UTF-8: incremental (split anywhere) must agree with one-shot. */
  if (split > size) split = size;
  struct rc_utf8_state st;
  rc_utf8_init(&st);
  bool a = rc_utf8_feed(&st, data, split) && rc_utf8_feed(&st, data + split, size - split) &&
           rc_utf8_is_complete(&st);
  if (a != rc_utf8_is_valid(data, size)) abort();

  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  size_t pos = 0;
  while (pos < size) {
    struct rc_ws_header h;
    ssize_t hl = rc_ws_parse_header(copy + pos, size - pos, require_mask, &h);
    if (hl < 0) break;
    if ((size_t)hl > size - pos || hl != h.header_len) abort();
    if ((h.opcode & 8) && (h.payload_len > 125 || !h.fin)) abort();
    if (h.payload_len > size - pos - (size_t)hl) break;
    uint8_t *p = copy + pos + hl;
    size_t n = (size_t)h.payload_len;
    rc_ws_unmask(p, n, h.mask, 0);
    rc_ws_unmask(p, n, h.mask, 0); /* twice is the identity */
    if (memcmp(p, data + pos + hl, n) != 0) abort();
    if (h.opcode == RC_WS_OP_CLOSE && n >= 2) (void)rc_ws_close_code_is_valid((unsigned)p[0] << 8 | p[1]);
    uint8_t hdr[10];
    size_t el = rc_ws_encode_header(hdr, h.opcode, h.fin, h.payload_len);
    struct rc_ws_header back;
    if (rc_ws_parse_header(hdr, el, false, &back) != (ssize_t)el || back.payload_len != h.payload_len)
      abort();
    pos += (size_t)hl + n;
  }
  free(copy);

  /* The reader: whole versus in pieces of split + 1 bytes. A header costs at
   * most 9 log bytes for its 2 or more input bytes, so 5 x size bounds the log. */
  uint8_t *la = malloc(5 * size + 16), *lb = malloc(5 * size + 16);
  if (!la || !lb) abort();
  size_t na, nb;
  long fa = read_stream(data, size, size ? size : 1, la, &na);
  long fb = read_stream(data, size, split + 1, lb, &nb);
  /* Both fail, or neither; either way what was read before is the same. */
  if ((fa < 0) != (fb < 0)) abort();
  if (na != nb || memcmp(la, lb, na) != 0) abort();
  free(la);
  free(lb);
  return 0;
}
