/* SPDX-License-Identifier: MIT */
/* RFC 6455 frame headers (section 5.2), masking (5.3), close codes (7.4) and the
 * handshake accept key (4.2.2), with SHA-1 and base64 from wolfSSL. */
#include "ringcast/proto/ws.h"

#include <errno.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha.h>

static bool opcode_is_known(uint8_t op) {
  return op == RC_WS_OP_CONT || op == RC_WS_OP_TEXT || op == RC_WS_OP_BINARY ||
         op == RC_WS_OP_CLOSE || op == RC_WS_OP_PING || op == RC_WS_OP_PONG;
}

ssize_t rc_ws_parse_header(const uint8_t *buf, size_t len, bool require_mask,
                           struct rc_ws_header *h) {
  if (len < 2) return -EAGAIN;
  h->fin = buf[0] & 0x80;
  h->rsv = (uint8_t)((buf[0] >> 4) & 0x7);
  h->opcode = buf[0] & 0x0f;
  h->masked = buf[1] & 0x80;
  /* No extension is negotiated, so any reserved bit is an error (5.2). */
  if (h->rsv) return -EPROTO;
  if (!opcode_is_known(h->opcode)) return -EPROTO;
  if (require_mask && !h->masked) return -EPROTO;
  uint8_t len7 = buf[1] & 0x7f;
  size_t need = 2;
  if (len7 == 126) need += 2;
  else if (len7 == 127) need += 8;
  if (h->masked) need += 4;
  if (len < need) return -EAGAIN;
  uint64_t plen;
  const uint8_t *p = buf + 2;
  if (len7 == 126) {
    plen = (uint64_t)p[0] << 8 | p[1];
    if (plen < 126) return -EPROTO; /* lengths must use the minimal form */
    p += 2;
  } else if (len7 == 127) {
    plen = 0;
    for (int i = 0; i < 8; i++) plen = plen << 8 | p[i];
    if (plen >> 63) return -EPROTO;
    if (plen <= 0xffff) return -EPROTO;
    p += 8;
  } else {
    plen = len7;
  }
  if (h->opcode & 0x8) {
    /* Control frames: at most 125 bytes and never fragmented (5.5). */
    if (plen > RC_WS_MAX_CONTROL_PAYLOAD || !h->fin) return -EPROTO;
  }
  if (h->masked) memcpy(h->mask, p, 4);
  else memset(h->mask, 0, 4);
  h->payload_len = plen;
  h->header_len = (uint8_t)need;
  return (ssize_t)need;
}

size_t rc_ws_encode_header(uint8_t out[10], uint8_t opcode, bool fin, uint64_t payload_len) {
  out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
  if (payload_len < 126) {
    out[1] = (uint8_t)payload_len;
    return 2;
  }
  if (payload_len <= 0xffff) {
    out[1] = 126;
    out[2] = (uint8_t)(payload_len >> 8);
    out[3] = (uint8_t)payload_len;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
  return 10;
}

void rc_ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset) {
  uint8_t m[4];
  for (int i = 0; i < 4; i++) m[i] = mask[(offset + (size_t)i) & 3];
  size_t i = 0;
  /* Eight bytes at a time with the mask rotated to the current offset;
   * unaligned access goes through memcpy. */
  uint32_t m32;
  memcpy(&m32, m, 4);
  uint64_t m64 = (uint64_t)m32 << 32 | m32;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= m64;
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++) p[i] ^= m[i & 3];
}

bool rc_ws_close_code_is_valid(unsigned code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
  case 1000: case 1001: case 1002: case 1003: case 1007: case 1008: case 1009:
  case 1010: case 1011: case 1012: case 1013: case 1014:
    return true;
  default:
    return false;
  }
}

int rc_ws_accept_key(const char *key, size_t key_len, char out[RC_WS_ACCEPT_LEN + 1]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  if (key_len != RC_WS_KEY_LEN) return -EINVAL;
  byte raw[18];
  word32 raw_len = sizeof raw;
  if (Base64_Decode((const byte *)key, (word32)key_len, raw, &raw_len) != 0 || raw_len != 16)
    return -EINVAL;
  byte input[RC_WS_KEY_LEN + sizeof guid - 1];
  memcpy(input, key, RC_WS_KEY_LEN);
  memcpy(input + RC_WS_KEY_LEN, guid, sizeof guid - 1);
  byte digest[WC_SHA_DIGEST_SIZE];
  if (wc_ShaHash(input, (word32)sizeof input, digest) != 0) return -EINVAL;
  word32 out_len = RC_WS_ACCEPT_LEN + 1;
  if (Base64_Encode_NoNl(digest, sizeof digest, (byte *)out, &out_len) != 0 ||
      out_len != RC_WS_ACCEPT_LEN)
    return -EINVAL;
  out[RC_WS_ACCEPT_LEN] = '\0';
  return 0;
}
