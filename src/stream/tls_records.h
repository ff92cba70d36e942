/* SPDX-License-Identifier: MIT */
/* TLS record protection with ChaCha20-Poly1305 (RFC 8446 5.2-5.3 for TLS 1.3,
 * RFC 7905 for TLS 1.2) on wolfCrypt's AEAD, for a connection whose handshake
 * wolfSSL has finished and whose traffic keys and sequence numbers it handed over
 * (its ATOMIC_USER getters): the wolfSSL object, about 54 KB, is then freed, and
 * the connection keeps these 112 bytes. Pure: no I/O. */
#ifndef RINGCAST_STREAM_TLS_RECORDS_H
#define RINGCAST_STREAM_TLS_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_TLS_RECORD_MAX 16384      /* plaintext of one record */
#define RC_TLS_OPEN_MAX (16384 + 256) /* largest record body accepted (RFC 8446 5.2) */
#define RC_TLS_SEAL_ROOM (1 + 16)    /* bytes a sealed record needs after its plaintext */

enum {
  RC_TLS_CT_ALERT = 21,
  RC_TLS_CT_HANDSHAKE = 22,
  RC_TLS_CT_APPLICATION = 23,
};

struct rc_tls_records {
  uint8_t key_tx[32], key_rx[32];
  uint8_t iv_tx[12], iv_rx[12];
  uint64_t seq_tx, seq_rx;
  bool v13;                       /* TLS 1.3 framing (inner content type) */
};

/* Seals the n bytes (at most RC_TLS_RECORD_MAX) at rec + 5 as one record of
 * content type `type`, in place: the header goes to rec[0..5), and rec must have
 * RC_TLS_SEAL_ROOM bytes after the plaintext. Returns the record's length, or 0
 * if wolfCrypt failed. */
size_t rc_tls_seal(struct rc_tls_records *r, uint8_t type, uint8_t *rec, size_t n);
/* Opens the record with header hdr and body[0..len) into out (room for len
 * bytes). 0 with its content type and plaintext length; -EMSGSIZE (longer than
 * RC_TLS_OPEN_MAX or shorter than a tag), -EPROTO (a header or inner type a
 * protected record may not have), -EBADMSG (it does not authenticate: the peer's
 * bad_record_mac). */
int rc_tls_open(struct rc_tls_records *r, const uint8_t hdr[5], const uint8_t *body, size_t len,
                uint8_t *out, uint8_t *type, size_t *out_len);

#endif
