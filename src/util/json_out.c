/* SPDX-License-Identifier: MIT */
/* JSON string escaping (RFC 8259 section 7) and base64 (RFC 4648) via wolfSSL. */
#include "ringcast/util/json_out.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

static const char hex[] = "0123456789abcdef";

size_t rc_json_escaped_len(const uint8_t *p, size_t n) {
  size_t out = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f')
      out += 2;
    else if (c < 0x20 || c == 0x7f)
      out += 6;
    else
      out += 1;
  }
  return out;
}

size_t rc_json_escape(char *out, const uint8_t *p, size_t n) {
  char *o = out;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    switch (c) {
    case '"': *o++ = '\\'; *o++ = '"'; break;
    case '\\': *o++ = '\\'; *o++ = '\\'; break;
    case '\n': *o++ = '\\'; *o++ = 'n'; break;
    case '\r': *o++ = '\\'; *o++ = 'r'; break;
    case '\t': *o++ = '\\'; *o++ = 't'; break;
    case '\b': *o++ = '\\'; *o++ = 'b'; break;
    case '\f': *o++ = '\\'; *o++ = 'f'; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
        *o++ = hex[c >> 4]; *o++ = hex[c & 15];
      } else {
        *o++ = (char)c;
      }
    }
  }
  return (size_t)(o - out);
}

size_t rc_base64_len(size_t n) { return (n + 2) / 3 * 4; }

size_t rc_base64_encode(char *out, const uint8_t *p, size_t n) {
  /* wolfSSL's encoder, as for the handshake; out has rc_base64_len(n) + 1 bytes. */
  word32 out_len = (word32)rc_base64_len(n) + 1;
  if (Base64_Encode_NoNl(p, (word32)n, (byte *)out, &out_len) != 0) return 0;
  return out_len;
}
