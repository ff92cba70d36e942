/* SPDX-License-Identifier: MIT */
/* Client frames read incrementally: headers (whole or split), then the payload
 * in whatever pieces arrive, unmasked with the right mask offset. */
#include "ringcast/proto/ws_reader.h"

#include <errno.h>
#include <string.h>

void rc_ws_reader_init(struct rc_ws_reader *r) { memset(r, 0, sizeof *r); }

static ssize_t read_header(struct rc_ws_reader *r, uint8_t *buf, size_t len,
                           struct rc_ws_event *ev) {
  struct rc_ws_header h = {0};
  ssize_t hl;
  size_t took;
  if (r->hlen == 0) {
    hl = rc_ws_parse_header(buf, len, true, &h);
    if (hl == -EAGAIN) {
      /* Keep the partial header (it is shorter than the longest one). */
      memcpy(r->hbuf, buf, len);
      r->hlen = (uint8_t)len;
      ev->kind = RC_WS_EVENT_NONE;
      return (ssize_t)len;
    }
    if (hl < 0) {
      ev->h = h; /* what was read before the fault, for the error message */
      return hl;
    }
    took = (size_t)hl;
  } else {
    size_t add = sizeof r->hbuf - r->hlen < len ? sizeof r->hbuf - r->hlen : len;
    memcpy(r->hbuf + r->hlen, buf, add);
    hl = rc_ws_parse_header(r->hbuf, r->hlen + add, true, &h);
    if (hl == -EAGAIN) {
      r->hlen = (uint8_t)(r->hlen + add);
      ev->kind = RC_WS_EVENT_NONE;
      return (ssize_t)add;
    }
    if (hl < 0) {
      ev->h = h;
      return hl;
    }
    took = (size_t)hl - r->hlen; /* the rest of what was copied is payload: not consumed */
    r->hlen = 0;
  }
  r->left = h.payload_len;
  memcpy(r->mask, h.mask, 4);
  r->opcode = h.opcode;
  r->fin = h.fin;
  r->mask_off = 0;
  r->in_payload = h.payload_len > 0;
  ev->kind = RC_WS_EVENT_HEADER;
  ev->h = h;
  ev->p = NULL;
  ev->n = 0;
  ev->last = h.payload_len == 0;
  return (ssize_t)took;
}

ssize_t rc_ws_reader_next(struct rc_ws_reader *r, uint8_t *buf, size_t len, struct rc_ws_event *ev) {
  if (len == 0) {
    ev->kind = RC_WS_EVENT_NONE;
    return 0;
  }
  if (!r->in_payload) return read_header(r, buf, len, ev);
  size_t n = r->left < len ? (size_t)r->left : len;
  rc_ws_unmask(buf, n, r->mask, r->mask_off);
  r->mask_off = (uint8_t)((r->mask_off + n) & 3);
  r->left -= n;
  r->in_payload = r->left > 0;
  ev->kind = RC_WS_EVENT_PAYLOAD;
  ev->p = buf;
  ev->n = n;
  ev->last = r->left == 0;
  return (ssize_t)n;
}
