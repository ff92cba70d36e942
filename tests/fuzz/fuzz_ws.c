/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the WebSocket frame-header parser walked over a stream of
 * frames, unmasking, and UTF-8 validation, checking the incremental validator
 * against the one-shot one at a split point the input chooses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/utf8.h"
#include "ringcast/proto/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
  return 0;
}
