/* SPDX-License-Identifier: MIT */
/* ChaCha20-Poly1305 TLS records (tls_records.h): the nonce, the additional data
 * and TLS 1.3's inner content type; the cipher is wolfCrypt's. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include <errno.h>
#include <string.h>

#include "tls_records.h"

#define TAG 16

/* The per-record nonce: the static IV with the sequence number, big-endian,
 * XORed into its last 8 bytes (RFC 8446 5.3, RFC 7905 2). */
static void nonce(const uint8_t iv[12], uint64_t seq, uint8_t out[12]) {
  memcpy(out, iv, 12);
  for (int i = 0; i < 8; i++) out[4 + i] ^= (uint8_t)(seq >> (56 - 8 * i));
}

/* TLS 1.2's additional data: seq, type, version, plaintext length (RFC 5246 6.2.3.3). */
static void aad12(uint64_t seq, uint8_t type, size_t n, uint8_t out[13]) {
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(seq >> (56 - 8 * i));
  out[8] = type;
  out[9] = 3;
  out[10] = 3;
  out[11] = (uint8_t)(n >> 8);
  out[12] = (uint8_t)n;
}

size_t rc_tls_seal(struct rc_tls_records *r, uint8_t type, uint8_t *rec, size_t n) {
  uint8_t *body = rec + 5;
  size_t inner = n;
  if (r->v13) body[inner++] = type; /* TLSInnerPlaintext, no padding */
  size_t len = inner + TAG;
  rec[0] = r->v13 ? RC_TLS_CT_APPLICATION : type;
  rec[1] = 3;
  rec[2] = 3;
  rec[3] = (uint8_t)(len >> 8);
  rec[4] = (uint8_t)len;
  uint8_t iv[12], aad[13];
  nonce(r->iv_tx, r->seq_tx, iv);
  const uint8_t *ad = rec;
  word32 ad_len = 5;
  if (!r->v13) {
    aad12(r->seq_tx, type, n, aad);
    ad = aad;
    ad_len = sizeof aad;
  }
  if (wc_ChaCha20Poly1305_Encrypt(r->key_tx, iv, ad, ad_len, body, (word32)inner, body, body + inner))
    return 0;
  r->seq_tx++;
  return 5 + len;
}

int rc_tls_open(struct rc_tls_records *r, const uint8_t hdr[5], const uint8_t *body, size_t len,
                uint8_t *out, uint8_t *type, size_t *out_len) {
  if (len > RC_TLS_OPEN_MAX || len < TAG + (r->v13 ? 1 : 0)) return -EMSGSIZE;
  if (hdr[1] != 3 || hdr[2] != 3) return -EPROTO;
  if (r->v13 ? hdr[0] != RC_TLS_CT_APPLICATION
             : hdr[0] != RC_TLS_CT_APPLICATION && hdr[0] != RC_TLS_CT_ALERT && hdr[0] != RC_TLS_CT_HANDSHAKE)
    return -EPROTO;
  size_t n = len - TAG;
  uint8_t iv[12], aad[13];
  nonce(r->iv_rx, r->seq_rx, iv);
  const uint8_t *ad = hdr;
  word32 ad_len = 5;
  if (!r->v13) {
    aad12(r->seq_rx, hdr[0], n, aad);
    ad = aad;
    ad_len = sizeof aad;
  }
  if (wc_ChaCha20Poly1305_Decrypt(r->key_rx, iv, ad, ad_len, body, (word32)n, body + n, out))
    return -EBADMSG;
  r->seq_rx++;
  if (!r->v13) {
    *type = hdr[0];
    *out_len = n;
    return 0;
  }
  /* The content type is the last non-zero byte; zeros after it are padding. */
  while (n && out[n - 1] == 0) n--;
  if (!n) return -EPROTO;
  *type = out[--n];
  *out_len = n;
  return 0;
}
