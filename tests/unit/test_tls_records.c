/* SPDX-License-Identifier: MIT */
/* The record layer against wolfSSL itself: a client and a server wolfSSL finish
 * a handshake in memory, the server's keys and sequence numbers are taken over
 * (as the TLS stream does), and records sealed here must be read by the client's
 * wolfSSL and the client's records opened here, in TLS 1.2 and 1.3; a record
 * altered in flight must not open. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "../../src/stream/tls_records.h"

struct pipe {
  unsigned char b[1 << 17];
  int n;
};
static struct pipe s2c, c2s;

static int rd(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  (void)ssl;
  struct pipe *p = ctx;
  if (!p->n) return WOLFSSL_CBIO_ERR_WANT_READ;
  if (sz > p->n) sz = p->n;
  memcpy(buf, p->b, (size_t)sz);
  memmove(p->b, p->b + sz, (size_t)(p->n - sz));
  p->n -= sz;
  return sz;
}

static int wr(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  (void)ssl;
  struct pipe *p = ctx;
  memcpy(p->b + p->n, buf, (size_t)sz);
  p->n += sz;
  return sz;
}

struct pair {
  WOLFSSL_CTX *sctx, *cctx;
  WOLFSSL *s, *c;
};

static void handshake(struct pair *p, bool tls13) {
  s2c.n = c2s.n = 0;
  p->sctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
  cr_assert(p->sctx);
  cr_assert_eq(wolfSSL_CTX_use_certificate_chain_file(p->sctx, RC_TEST_KEYS "/ec256.cert.pem"), WOLFSSL_SUCCESS);
  cr_assert_eq(wolfSSL_CTX_use_PrivateKey_file(p->sctx, RC_TEST_KEYS "/ec256.key", WOLFSSL_FILETYPE_PEM),
               WOLFSSL_SUCCESS);
  wolfSSL_CTX_set_cipher_list(p->sctx, "TLS13-CHACHA20-POLY1305-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  p->cctx = wolfSSL_CTX_new(tls13 ? wolfTLSv1_3_client_method() : wolfTLSv1_2_client_method());
  wolfSSL_CTX_set_verify(p->cctx, WOLFSSL_VERIFY_NONE, NULL);
  for (WOLFSSL_CTX *x = p->sctx; x; x = x == p->sctx ? p->cctx : NULL) {
    wolfSSL_CTX_SetIORecv(x, rd);
    wolfSSL_CTX_SetIOSend(x, wr);
  }
  p->s = wolfSSL_new(p->sctx);
  p->c = wolfSSL_new(p->cctx);
  wolfSSL_SetIOReadCtx(p->s, &c2s);
  wolfSSL_SetIOWriteCtx(p->s, &s2c);
  wolfSSL_SetIOReadCtx(p->c, &s2c);
  wolfSSL_SetIOWriteCtx(p->c, &c2s);
  int done = 0;
  for (int i = 0; i < 20 && done != 2; i++) {
    done = (wolfSSL_connect(p->c) == WOLFSSL_SUCCESS) + (wolfSSL_accept(p->s) == WOLFSSL_SUCCESS);
  }
  cr_assert_eq(done, 2, "handshake did not finish");
  cr_assert_eq(wolfSSL_GetBulkCipher(p->s), wolfssl_chacha);
  /* The client takes what the server sent after its Finished (tickets). */
  char sink[64];
  cr_assert_lt(wolfSSL_read(p->c, sink, sizeof sink), 0);
}

static void take_over(struct pair *p, struct rc_tls_records *r) {
  memset(r, 0, sizeof *r);
  memcpy(r->key_tx, wolfSSL_GetServerWriteKey(p->s), 32);
  memcpy(r->key_rx, wolfSSL_GetClientWriteKey(p->s), 32);
  memcpy(r->iv_tx, wolfSSL_GetServerWriteIV(p->s), 12);
  memcpy(r->iv_rx, wolfSSL_GetClientWriteIV(p->s), 12);
  word64 tx, rx;
  wolfSSL_GetSequenceNumber(p->s, &tx);
  wolfSSL_GetPeerSequenceNumber(p->s, &rx);
  r->seq_tx = tx;
  r->seq_rx = rx;
  r->v13 = wolfSSL_version(p->s) == TLS1_3_VERSION;
}

static void done(struct pair *p) {
  wolfSSL_free(p->s);
  wolfSSL_free(p->c);
  wolfSSL_CTX_free(p->sctx);
  wolfSSL_CTX_free(p->cctx);
}

static void both_ways(bool tls13) {
  struct pair p;
  handshake(&p, tls13);
  struct rc_tls_records r;
  take_over(&p, &r);
  cr_assert_eq(r.v13, tls13);
  static uint8_t rec[5 + RC_TLS_RECORD_MAX + RC_TLS_SEAL_ROOM];
  static uint8_t got[RC_TLS_OPEN_MAX];
  /* Several records, the last a full 16 KiB one, read by wolfSSL in order. */
  for (int i = 0; i < 3; i++) {
    size_t n = i == 2 ? RC_TLS_RECORD_MAX : 100 + (size_t)i;
    memset(rec + 5, 'a' + i, n);
    size_t len = rc_tls_seal(&r, RC_TLS_CT_APPLICATION, rec, n);
    cr_assert_eq(len, 5 + n + (tls13 ? 1 : 0) + 16);
    memcpy(s2c.b + s2c.n, rec, len);
    s2c.n += (int)len;
    size_t have = 0;
    while (have < n) {
      int k = wolfSSL_read(p.c, got + have, (int)(sizeof got - have));
      cr_assert_gt(k, 0, "wolfSSL could not read record %d (%d)", i, wolfSSL_get_error(p.c, k));
      have += (size_t)k;
    }
    cr_assert_eq(have, n);
    for (size_t j = 0; j < n; j++) cr_assert_eq(got[j], 'a' + i);
  }
  /* The client's records open here. */
  for (int i = 0; i < 3; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "client record %d", i);
    cr_assert_eq(wolfSSL_write(p.c, msg, n), n);
    uint8_t type;
    size_t out;
    cr_assert_eq(rc_tls_open(&r, c2s.b, c2s.b + 5, (size_t)c2s.n - 5, got, &type, &out), 0);
    cr_assert_eq(type, RC_TLS_CT_APPLICATION);
    cr_assert_eq(out, (size_t)n);
    cr_assert_eq(memcmp(got, msg, out), 0);
    c2s.n = 0;
  }
  /* An altered record does not open, and its sequence number is not spent. */
  cr_assert_eq(wolfSSL_write(p.c, "x", 1), 1);
  c2s.b[7] ^= 1;
  uint8_t type;
  size_t out;
  uint64_t seq = r.seq_rx;
  cr_assert_eq(rc_tls_open(&r, c2s.b, c2s.b + 5, (size_t)c2s.n - 5, got, &type, &out), -EBADMSG);
  cr_assert_eq(r.seq_rx, seq);
  /* Our close_notify is read by wolfSSL as the end. */
  c2s.n = 0;
  rec[5] = 1;
  rec[6] = 0;
  size_t len = rc_tls_seal(&r, RC_TLS_CT_ALERT, rec, 2);
  memcpy(s2c.b + s2c.n, rec, len);
  s2c.n += (int)len;
  int k = wolfSSL_read(p.c, got, sizeof got);
  cr_assert_leq(k, 0);
  cr_assert_eq(wolfSSL_get_error(p.c, k), WOLFSSL_ERROR_ZERO_RETURN);
  done(&p);
}

Test(tls_records, tls13_both_ways) { both_ways(true); }
Test(tls_records, tls12_both_ways) { both_ways(false); }

Test(tls_records, framing_is_checked) {
  struct rc_tls_records r = {.v13 = true};
  uint8_t hdr[5] = {23, 3, 3, 0, 10}, body[32] = {0}, out[32], type;
  size_t n;
  cr_assert_eq(rc_tls_open(&r, hdr, body, 10, out, &type, &n), -EMSGSIZE, "shorter than a tag");
  cr_assert_eq(rc_tls_open(&r, hdr, body, RC_TLS_OPEN_MAX + 1, out, &type, &n), -EMSGSIZE);
  hdr[0] = 22;
  cr_assert_eq(rc_tls_open(&r, hdr, body, 20, out, &type, &n), -EPROTO, "1.3 protects only type 23");
  hdr[0] = 23;
  hdr[2] = 1;
  cr_assert_eq(rc_tls_open(&r, hdr, body, 20, out, &type, &n), -EPROTO, "version 3.3 only");
}
