/* SPDX-License-Identifier: MIT */
/* RFC 6455 framing: pure header parser and encoder, unmasking, close codes and the
 * opening-handshake accept key. No I/O, no allocation. */
#ifndef RINGCAST_WS_H
#define RINGCAST_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
  RC_WS_OP_CONT = 0x0,
  RC_WS_OP_TEXT = 0x1,
  RC_WS_OP_BINARY = 0x2,
  RC_WS_OP_CLOSE = 0x8,
  RC_WS_OP_PING = 0x9,
  RC_WS_OP_PONG = 0xA,
};

enum {
  RC_WS_CLOSE_NORMAL = 1000,
  RC_WS_CLOSE_GOING_AWAY = 1001,
  RC_WS_CLOSE_PROTOCOL = 1002,
  RC_WS_CLOSE_UNSUPPORTED = 1003,
  RC_WS_CLOSE_NO_STATUS = 1005,
  RC_WS_CLOSE_INVALID_DATA = 1007,
  RC_WS_CLOSE_POLICY = 1008,
  RC_WS_CLOSE_TOO_BIG = 1009,
  RC_WS_CLOSE_INTERNAL = 1011,
  RC_WS_CLOSE_TRY_LATER = 1013,
};

#define RC_WS_MAX_HEADER 14
#define RC_WS_MAX_CONTROL_PAYLOAD 125
#define RC_WS_KEY_LEN 24
#define RC_WS_ACCEPT_LEN 28

struct rc_ws_header {
  bool fin;
  bool masked;
  uint8_t rsv;           /* RSV1..3 as bits 2..0 */
  uint8_t opcode;
  uint8_t header_len;
  uint8_t mask[4];
  uint64_t payload_len;
};

/* Parses one frame header from a client (require_mask) or a server. Returns the
 * header length, -EAGAIN if more bytes are needed, or -EPROTO for a header RFC 6455
 * forbids: reserved bits, unknown opcode, a fragmented or over-long control frame,
 * a non-minimal or top-bit-set length, or a missing mask. */
ssize_t rc_ws_parse_header(const uint8_t *buf, size_t len, bool require_mask,
                           struct rc_ws_header *h);
/* Writes a server (unmasked) frame header; returns its length (2, 4 or 10). */
size_t rc_ws_encode_header(uint8_t out[10], uint8_t opcode, bool fin, uint64_t payload_len);
/* XORs n bytes with the mask, starting at mask offset `offset` (for a payload
 * unmasked in pieces). */
void rc_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset);
/* Whether a close code may appear on the wire (RFC 6455 7.4). */
bool rc_ws_close_code_is_valid(unsigned code);
/* Computes Sec-WebSocket-Accept for a 24-character key into out (NUL-terminated).
 * Returns 0, or -EINVAL if the key is not 16 bytes of base64. */
int rc_ws_accept_key(const char *key, size_t key_len, char out[RC_WS_ACCEPT_LEN + 1]);

#endif
