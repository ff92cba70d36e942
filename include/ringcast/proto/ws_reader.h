/* SPDX-License-Identifier: MIT */
/* An incremental reader of client WebSocket frames (RFC 6455 section 5): bytes go
 * in as they arrive, in pieces of any size; out come frame headers and pieces of
 * unmasked payload, so a receiver can check each piece (UTF-8, limits) the moment
 * it arrives instead of once the whole frame is in. Pure: no I/O, no allocation;
 * a header split across receives is kept in the reader itself. */
#ifndef RINGCAST_PROTO_WS_READER_H
#define RINGCAST_PROTO_WS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringcast/proto/ws.h"

struct rc_ws_reader {
  uint64_t left;           /* payload bytes of the current frame still to come */
  uint8_t mask[4];
  uint8_t opcode;
  bool fin;
  bool in_payload;         /* a header was returned; its payload is being read */
  uint8_t mask_off;        /* payload bytes already unmasked, modulo 4 */
  uint8_t hlen;            /* bytes of a split header kept in hbuf */
  uint8_t hbuf[RC_WS_MAX_HEADER];
};

enum rc_ws_event_kind {
  RC_WS_EVENT_NONE = 0,    /* every byte given was consumed; feed more */
  RC_WS_EVENT_HEADER,      /* a frame header: h is filled; its payload follows */
  RC_WS_EVENT_PAYLOAD,     /* p[0..n) of the current payload, unmasked in place */
};

struct rc_ws_event {
  enum rc_ws_event_kind kind;
  struct rc_ws_header h;   /* HEADER */
  uint8_t *p;              /* PAYLOAD: points into the caller's bytes */
  size_t n;
  bool last;               /* PAYLOAD: it ends the frame (also set on the HEADER of an empty one) */
};

void rc_ws_reader_init(struct rc_ws_reader *r);
/* Reads from buf[0..len) (unmasking payload in place) up to the next event.
 * Returns the bytes consumed, or -EPROTO for a header RFC 6455 forbids (see
 * rc_ws_parse_header; ev->h then holds the fields read before the fault). A HEADER event with payload_len 0 has last set and no
 * PAYLOAD event follows. */
ssize_t rc_ws_reader_next(struct rc_ws_reader *r, uint8_t *buf, size_t len, struct rc_ws_event *ev);

#endif
