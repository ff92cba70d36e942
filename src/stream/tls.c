/* SPDX-License-Identifier: MIT */
/* The TLS stream: a connection's wolfSSL object fed from the ring's receives and
 * writing into the connection's queue (include/ringcast/stream/tls.h says how).
 *
 * A connection goes NEW (no byte yet: no wolfSSL object, so a client that
 * connects and says nothing costs nothing here) -> HANDSHAKE -> OPEN, and ends
 * CLOSED (our close_notify is queued) or FAILED (an alert or a cleartext answer
 * is queued, or the connection was cut). */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/io/outq.h"
#include "ringcast/stream/tls.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "ringcast/util/pool.h"
#include "tls_records.h"

/* The largest plaintext of one record (RFC 8446 5.1, RFC 5246 6.2.1). */
#define RECORD_MAX 16384
/* Plaintext encrypted per send: what one send carries in the io layer. */
#define BATCH_BYTES (256u << 10)
/* Room for a record's header, tag and padding beyond its plaintext. */
#define RECORD_OVERHEAD 64
/* The most ciphertext one frame may grow to: a close encrypts all that is queued
 * (at most --max-queue and the close frame). */
#define OUT_MAX (1u << 30)
#define GATHER_IOV 64

/* Modern AEAD suites only: TLS 1.3's three, and ECDHE with GCM or ChaCha20 for
 * TLS 1.2 (forward secrecy, no CBC, no static RSA key exchange). ChaCha20-Poly1305
 * first, in the server's order (wolfSSL picks by it): Debian's wolfSSL has no
 * AES-NI code, and there ChaCha20-Poly1305 seals a record about twice as fast as
 * AES-GCM (ringcast-cipher-speed, bench/cipher_speed.c), which is most of what a
 * wss delivery costs beyond cleartext. */
static const char SUITES[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

const char *const rc_tls_fail_names[RC_TLS_FAIL_COUNT] = {
    [RC_TLS_FAIL_PLAINTEXT_HTTP] = "plaintext_http",
    [RC_TLS_FAIL_NOT_TLS] = "not_tls",
    [RC_TLS_FAIL_VERSION] = "version",
    [RC_TLS_FAIL_CIPHER] = "cipher",
    [RC_TLS_FAIL_PROTOCOL] = "protocol",
    [RC_TLS_FAIL_ALERT] = "peer_alert",
    [RC_TLS_FAIL_TIMEOUT] = "handshake_timeout",
    [RC_TLS_FAIL_INCOMPLETE] = "handshake_incomplete",
    [RC_TLS_FAIL_TRUNCATED] = "truncated_record",
    [RC_TLS_FAIL_MEMORY] = "memory",
    [RC_TLS_FAIL_UNREAD] = "unread_answers",
    [RC_TLS_FAIL_POST_HANDSHAKE] = "post_handshake_message",
};

struct rc_tls {
  WOLFSSL_CTX *ctx;
  char describe[96];
};

struct rc_tls_shard {
  struct rc_tls *tls;
  struct rc_loop *loop;
  struct rc_frame_arena *arena;
  struct rc_budget *budget;
  uint16_t owner;
  struct rc_pool conns;       /* struct tls_conn */
  struct rc_pool chunks;      /* plaintext queue chunks */
  struct rc_tls_stats stats;
  /* Decrypted bytes on their way to the session, and a record being sealed
   * (its plaintext at rec_buf + 5): two buffers, because the session may close
   * (and so encrypt) while it reads what it was handed. */
  uint8_t in_plain[RC_TLS_OPEN_MAX];
  uint8_t rec_buf[5 + RECORD_MAX + RC_TLS_SEAL_ROOM];
};

enum tls_phase { PHASE_NEW = 0, PHASE_HANDSHAKE, PHASE_OPEN, PHASE_CLOSED, PHASE_FAILED };

struct tls_conn {
  WOLFSSL *ssl;
  struct rc_tls_shard *sh;
  struct rc_conn *c;
  const struct rc_conn_ops *upper;
  struct rc_outq plain;       /* the session's frames, not yet encrypted */
  struct rc_frame *out;       /* ciphertext wolfSSL wrote since the last push */
  const uint8_t *in;          /* ciphertext being handed to wolfSSL */
  size_t in_len;
  uint32_t rec_left;          /* bytes of the current inbound record still to come */
  uint8_t hdr_have;           /* bytes of the next record header seen so far */
  uint8_t hdr[5];
  uint8_t phase;              /* enum tls_phase */
  bool charged;               /* RC_TLS_CONN_COST is charged to the budget */
  bool own_records;           /* past the handshake, records are sealed here, not by wolfSSL */
  uint32_t rx_have;           /* own_records: bytes of a record cut across receives, in rx */
  uint8_t *rx;                /* (only while one is) */
  struct rc_tls_records rec;  /* own_records: keys and sequence numbers */
};

/* What an idle wss subscriber keeps once its records are its own (docs/architecture.md). */
static_assert(sizeof(struct tls_conn) <= 256, "a TLS connection's state grew past 256 bytes");

static bool seal_one(struct tls_conn *t, uint8_t type, size_t n, int *err);
static void send_close_notify(struct tls_conn *t);

/* ---- wolfSSL's I/O, from and to memory ---- */

static int recv_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  (void)ssl;
  struct tls_conn *t = ctx;
  if (!t->in_len) return WOLFSSL_CBIO_ERR_WANT_READ;
  size_t n = (size_t)sz < t->in_len ? (size_t)sz : t->in_len;
  memcpy(buf, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

static bool reserve_out(struct tls_conn *t, size_t cap) {
  if (t->out) return true;
  t->out = rc_frame_create(t->sh->owner, cap);
  if (!t->out) return false;
  t->out->len = 0;
  rc_frame_charge(t->out, t->sh->budget, true);
  return true;
}

static int send_cb(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
  (void)ssl;
  struct tls_conn *t = ctx;
  if (!reserve_out(t, (size_t)sz < 4096 ? 4096 : (size_t)sz)) return WOLFSSL_CBIO_ERR_GENERAL;
  if (rc_frame_append(&t->out, buf, (size_t)sz, OUT_MAX) < 0) return WOLFSSL_CBIO_ERR_GENERAL;
  return sz;
}

static struct rc_frame *take_out(struct tls_conn *t) {
  struct rc_frame *f = t->out;
  t->out = NULL;
  return f;
}

/* What wolfSSL wrote joins the connection's queue, in the order it was written. */
static void push_out(struct rc_loop *l, struct tls_conn *t) {
  struct rc_frame *f = take_out(t);
  if (f) rc_conn_push_frame(l, t->c, f);
}

/* ---- the end of a connection ---- */

static void peer_text(const struct tls_conn *t, char *out, size_t size) {
  rc_conn_peer_text(t->c, out, size);
}

static enum rc_tls_fail classify(int e) {
  switch (e) {
  case VERSION_ERROR: return RC_TLS_FAIL_VERSION;
  case MATCH_SUITE_ERROR: return RC_TLS_FAIL_CIPHER;
  case FATAL_ERROR: return RC_TLS_FAIL_ALERT;
  case MEMORY_E: return RC_TLS_FAIL_MEMORY;
  default: return RC_TLS_FAIL_PROTOCOL;
  }
}

static void count_fail(struct tls_conn *t, enum rc_tls_fail why) {
  rc_counter_add(&t->sh->stats.failures[why], 1);
  rc_conn_mark_end(t->c, why == RC_TLS_FAIL_MEMORY ? RC_CONN_END_NOMEM : RC_CONN_END_PROTOCOL);
}

/* What wolfSSL answered on its own while reading (KeyUpdate responses, alerts)
 * was never counted against --max-queue as plaintext: a peer that keeps asking
 * for answers and reads none would grow the queue without bound, so past the
 * limit it is cut. */
static void push_answer(struct rc_loop *l, struct tls_conn *t) {
  if (t->out && rc_conn_over_limit(l, t->c, t->plain.bytes, t->plain.count, t->out->len)) {
    char peer[64];
    peer_text(t, peer, sizeof peer);
    rc_info("%s: TLS answers piling up unread past --max-queue; closing", peer);
    count_fail(t, RC_TLS_FAIL_UNREAD);
    t->phase = PHASE_FAILED;
    rc_frame_destroy(take_out(t));
    rc_conn_abort(l, t->c);
    return;
  }
  push_out(l, t);
}

/* wolfSSL refused what the peer sent: its alert (when it wrote one) goes out,
 * then the connection closes. */
static void fail(struct rc_loop *l, struct tls_conn *t, int e, const char *during) {
  char peer[64], why[96];
  peer_text(t, peer, sizeof peer);
  wolfSSL_ERR_error_string_n((unsigned long)(long)e, why, sizeof why);
  enum rc_tls_fail kind = classify(e);
  rc_info("%s: TLS %s failed (%s: %s); closing", peer, during, rc_tls_fail_names[kind], why);
  count_fail(t, kind);
  t->phase = PHASE_FAILED;
  rc_conn_close(l, t->c, take_out(t), false);
}

/* An HTTP request sent to a TLS port gets its answer the only way the client can
 * read it, as nginx does: in cleartext. */
static void answer_cleartext(struct rc_loop *l, struct tls_conn *t) {
  static const char body[] = "{\"error\":\"this port speaks TLS: use https:// or wss://\"}\n";
  char head[160];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    sizeof body - 1);
  struct rc_frame *f = rc_frame_create(t->sh->owner, (size_t)hn + sizeof body - 1);
  char peer[64];
  peer_text(t, peer, sizeof peer);
  rc_info("%s: cleartext HTTP on a TLS port; answering 400", peer);
  count_fail(t, RC_TLS_FAIL_PLAINTEXT_HTTP);
  t->phase = PHASE_FAILED;
  if (!f) {
    rc_conn_abort(l, t->c);
    return;
  }
  memcpy(f->data, head, (size_t)hn);
  memcpy(f->data + hn, body, sizeof body - 1);
  rc_conn_close(l, t->c, f, true);
}

/* ---- receiving ---- */

/* Follows the record framing of the inbound bytes, so a close in the middle of a
 * record is told from a clean one without asking wolfSSL. */
static void track_records(struct tls_conn *t, const uint8_t *p, size_t n) {
  while (n) {
    if (t->rec_left) {
      size_t k = n < t->rec_left ? n : t->rec_left;
      t->rec_left -= (uint32_t)k;
      p += k;
      n -= k;
      continue;
    }
    t->hdr[t->hdr_have++] = *p++;
    n--;
    if (t->hdr_have == sizeof t->hdr) {
      t->rec_left = (uint32_t)t->hdr[3] << 8 | t->hdr[4];
      t->hdr_have = 0;
    }
  }
}

/* The first byte decides: a TLS handshake record, an HTTP request, or noise. */
static bool start(struct rc_loop *l, struct tls_conn *t, const uint8_t *p) {
  struct rc_tls_shard *sh = t->sh;
  if (p[0] != 0x16) {
    if (p[0] >= 'A' && p[0] <= 'Z') {
      answer_cleartext(l, t);
    } else {
      char peer[64];
      peer_text(t, peer, sizeof peer);
      rc_info("%s: first byte 0x%02x is not a TLS handshake record; closing", peer, p[0]);
      count_fail(t, RC_TLS_FAIL_NOT_TLS);
      t->phase = PHASE_FAILED;
      rc_conn_close(l, t->c, NULL, true);
    }
    return false;
  }
  if (!rc_budget_try(sh->budget, RC_TLS_CONN_COST)) {
    char peer[64];
    peer_text(t, peer, sizeof peer);
    rc_info("%s: TLS handshake refused: the server is over --max-memory", peer);
    count_fail(t, RC_TLS_FAIL_MEMORY);
    t->phase = PHASE_FAILED;
    rc_conn_abort(l, t->c);
    return false;
  }
  t->charged = true;
  t->ssl = wolfSSL_new(sh->tls->ctx);
  if (!t->ssl) {
    rc_warn("out of memory for a TLS connection");
    count_fail(t, RC_TLS_FAIL_MEMORY);
    t->phase = PHASE_FAILED;
    rc_conn_abort(l, t->c);
    return false;
  }
  wolfSSL_SetIOReadCtx(t->ssl, t);
  wolfSSL_SetIOWriteCtx(t->ssl, t);
  t->phase = PHASE_HANDSHAKE;
  return true;
}

static bool handshake(struct rc_loop *l, struct tls_conn *t) {
  int r = wolfSSL_accept(t->ssl);
  if (r != WOLFSSL_SUCCESS) {
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
      push_out(l, t); /* this flight of the handshake */
      return false;
    }
    fail(l, t, e, "handshake");
    return false;
  }
  t->phase = PHASE_OPEN;
  /* The handshake's secrets and suite lists are done with (the traffic keys and
   * any ticket are made): about 5.5 KB of the connection's 60 KB. */
  wolfSSL_FreeArrays(t->ssl);
  struct rc_tls_stats *st = &t->sh->stats;
  rc_counter_add(wolfSSL_session_reused(t->ssl) ? &st->resumed : &st->handshakes, 1);
  rc_counter_add(&st->open, 1);
  push_out(l, t);
  /* The session may have queued before the handshake was done. */
  if (t->plain.count) rc_conn_want_write(l, t->c);
  return true;
}

/* The peer's close_notify: answer with ours and close; what is still queued is
 * not wanted any more. */
static void peer_closed(struct rc_loop *l, struct tls_conn *t) {
  rc_outq_truncate(&t->plain, &t->sh->chunks, t->sh->arena, 0);
  rc_conn_mark_end(t->c, RC_CONN_END_EOF);
  send_close_notify(t);
  t->phase = PHASE_CLOSED;
  rc_conn_close(l, t->c, take_out(t), false);
}

/* ---- records of our own, once the handshake is done ---- */

/* A ChaCha20-Poly1305 connection whose handshake is over and whose every
 * received byte wolfSSL has taken (a record boundary, nothing to answer) takes
 * over its record layer: wolfSSL hands over the traffic keys and sequence numbers
 * and is freed, and the connection keeps at most 256 bytes instead of 54 KB. What
 * is given up: a TLS 1.3 KeyUpdate from the peer cannot be followed (this build
 * exports keys, not the traffic secret the next key derives from), so one ends
 * the connection; clients send one only after vast amounts of data, if ever.
 * AES-GCM connections (clients that offer no ChaCha20) keep wolfSSL. */
static void take_over(struct tls_conn *t) {
  WOLFSSL *ssl = t->ssl;
  if (t->phase != PHASE_OPEN || !ssl || t->rec_left || t->hdr_have || t->out) return;
  if (wolfSSL_GetBulkCipher(ssl) != wolfssl_chacha || wolfSSL_GetKeySize(ssl) != 32 ||
      wolfSSL_GetIVSize(ssl) != 12 || wolfSSL_GetSide(ssl) != WOLFSSL_SERVER_END)
    return;
  int v = wolfSSL_version(ssl);
  if (v != TLS1_3_VERSION && v != TLS1_2_VERSION) return;
  word64 tx, rx;
  if (wolfSSL_GetSequenceNumber(ssl, &tx) < 0 || wolfSSL_GetPeerSequenceNumber(ssl, &rx) < 0) return;
  const unsigned char *ktx = wolfSSL_GetServerWriteKey(ssl), *krx = wolfSSL_GetClientWriteKey(ssl);
  const unsigned char *itx = wolfSSL_GetServerWriteIV(ssl), *irx = wolfSSL_GetClientWriteIV(ssl);
  if (!ktx || !krx || !itx || !irx) return;
  memcpy(t->rec.key_tx, ktx, 32);
  memcpy(t->rec.key_rx, krx, 32);
  memcpy(t->rec.iv_tx, itx, 12);
  memcpy(t->rec.iv_rx, irx, 12);
  t->rec.seq_tx = tx;
  t->rec.seq_rx = rx;
  t->rec.v13 = v == TLS1_3_VERSION;
  wolfSSL_free(ssl);
  t->ssl = NULL;
  t->own_records = true;
  if (t->charged) rc_budget_release(t->sh->budget, RC_TLS_CONN_COST);
  t->charged = false;
  rc_counter_add(&t->sh->stats.own_records, 1);
}

static void rx_drop(struct tls_conn *t) {
  if (!t->rx) return;
  free(t->rx);
  t->rx = NULL;
  t->rx_have = 0;
  rc_budget_release(t->sh->budget, 5 + RC_TLS_OPEN_MAX);
}

/* What we cannot take: a fatal alert (RFC 8446 6.2), then the close. */
static void own_fail(struct rc_loop *l, struct tls_conn *t, uint8_t alert, enum rc_tls_fail kind,
                     const char *what) {
  char peer[64];
  int err;
  peer_text(t, peer, sizeof peer);
  rc_info("%s: TLS record refused (%s: %s); closing", peer, rc_tls_fail_names[kind], what);
  count_fail(t, kind);
  t->phase = PHASE_FAILED;
  rx_drop(t);
  t->sh->rec_buf[5] = 2; /* fatal */
  t->sh->rec_buf[6] = alert;
  seal_one(t, RC_TLS_CT_ALERT, 2, &err);
  rc_conn_close(l, t->c, take_out(t), false);
}

static void own_record(struct rc_loop *l, struct tls_conn *t, const uint8_t *hdr, const uint8_t *body,
                       size_t len) {
  struct rc_tls_shard *sh = t->sh;
  uint8_t type;
  size_t n;
  int r = rc_tls_open(&t->rec, hdr, body, len, sh->in_plain, &type, &n);
  if (r == -EBADMSG) return own_fail(l, t, 20, RC_TLS_FAIL_PROTOCOL, "a record that does not authenticate");
  if (r == -EMSGSIZE) return own_fail(l, t, 22, RC_TLS_FAIL_PROTOCOL, "a record of the wrong size");
  if (r < 0) return own_fail(l, t, 10, RC_TLS_FAIL_PROTOCOL, "a record of a type not allowed here");
  if (type == RC_TLS_CT_APPLICATION) {
    if (n) t->upper->on_data(l, t->c, sh->in_plain, n);
  } else if (type == RC_TLS_CT_ALERT && n == 2 && sh->in_plain[1] == 0) {
    peer_closed(l, t);
  } else if (type == RC_TLS_CT_ALERT) {
    char peer[64];
    peer_text(t, peer, sizeof peer);
    rc_info("%s: TLS alert %u from the peer; closing", peer, n == 2 ? sh->in_plain[1] : 0);
    count_fail(t, RC_TLS_FAIL_ALERT);
    t->phase = PHASE_FAILED;
    rc_conn_abort(l, t->c);
  } else if (!t->rec.v13) {
    own_fail(l, t, 10, RC_TLS_FAIL_PROTOCOL, "a renegotiation, which is refused");
  } else {
    own_fail(l, t, 10, RC_TLS_FAIL_POST_HANDSHAKE,
             "a post-handshake message (a KeyUpdate), which cannot be followed once the record "
             "layer runs here");
  }
}

/* Received ciphertext of a connection whose records are its own: whole records
 * are opened where they lie; one cut across receives is gathered first, in a
 * buffer held only until it is complete. */
static void own_on_data(struct rc_loop *l, struct tls_conn *t, const uint8_t *p, size_t n) {
  while (n && rc_conn_is_open(t->c) && t->phase == PHASE_OPEN) {
    if (!t->rx && n >= 5) {
      size_t len = (size_t)p[3] << 8 | p[4];
      if (len <= RC_TLS_OPEN_MAX && 5 + len <= n) {
        own_record(l, t, p, p + 5, len);
        p += 5 + len;
        n -= 5 + len;
        continue;
      }
    }
    if (!t->rx) {
      rc_budget_force(t->sh->budget, 5 + RC_TLS_OPEN_MAX);
      t->rx = malloc(5 + RC_TLS_OPEN_MAX);
      if (!t->rx) {
        rc_budget_release(t->sh->budget, 5 + RC_TLS_OPEN_MAX);
        count_fail(t, RC_TLS_FAIL_MEMORY);
        rc_conn_abort(l, t->c);
        return;
      }
    }
    size_t need = 5;
    if (t->rx_have >= 5) {
      need = 5 + ((size_t)t->rx[3] << 8 | t->rx[4]);
      if (need - 5 > RC_TLS_OPEN_MAX)
        return own_fail(l, t, 22, RC_TLS_FAIL_PROTOCOL, "a record longer than TLS allows");
    }
    size_t k = n < need - t->rx_have ? n : need - t->rx_have;
    memcpy(t->rx + t->rx_have, p, k);
    t->rx_have += (uint32_t)k;
    p += k;
    n -= k;
    if (t->rx_have >= 5 && t->rx_have == 5 + ((size_t)t->rx[3] << 8 | t->rx[4])) {
      uint8_t *rec = t->rx;
      t->rx = NULL; /* handed to own_record, which may close and free */
      size_t len = t->rx_have - 5;
      t->rx_have = 0;
      own_record(l, t, rec, rec + 5, len);
      free(rec);
      rc_budget_release(t->sh->budget, 5 + RC_TLS_OPEN_MAX);
    }
  }
}

static void tls_on_data(struct rc_loop *l, struct rc_conn *c, uint8_t *p, size_t n) {
  struct tls_conn *t = c->layer;
  track_records(t, p, n);
  if (t->own_records) {
    own_on_data(l, t, p, n);
    return;
  }
  if (t->phase == PHASE_NEW && !start(l, t, p)) return;
  if (t->phase != PHASE_HANDSHAKE && t->phase != PHASE_OPEN) return;
  t->in = p;
  t->in_len = n;
  if (t->phase == PHASE_HANDSHAKE && !handshake(l, t)) goto out;
  /* Every byte handed over is consumed before this returns (wolfSSL asks for
   * more until the callback has none), as the receive buffer goes back to the
   * ring. */
  while (rc_conn_is_open(c)) {
    int r = wolfSSL_read(t->ssl, t->sh->in_plain, sizeof t->sh->in_plain);
    if (r > 0) {
      t->upper->on_data(l, c, t->sh->in_plain, (size_t)r);
      continue;
    }
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) break;
    if (e == WOLFSSL_ERROR_ZERO_RETURN) peer_closed(l, t);
    else fail(l, t, e, "record");
    break;
  }
out:
  t->in = NULL;
  t->in_len = 0;
  /* What wolfSSL answered while reading (a KeyUpdate, an alert). */
  if (rc_conn_is_open(c)) {
    push_answer(l, t);
    take_over(t);
  } else if (t->out) {
    rc_frame_destroy(take_out(t));
  }
}

static void tls_on_timer(struct rc_loop *l, struct rc_conn *c) {
  struct tls_conn *t = c->layer;
  bool early = t->phase == PHASE_NEW || t->phase == PHASE_HANDSHAKE;
  t->upper->on_timer(l, c);
  if (early && !rc_conn_is_open(c)) {
    /* The session's --handshake-timeout ended it before TLS was set up. */
    count_fail(t, RC_TLS_FAIL_TIMEOUT);
    t->phase = PHASE_FAILED;
  }
}

static void conn_free(struct tls_conn *t) {
  struct rc_tls_shard *sh = t->sh;
  rc_outq_truncate(&t->plain, &sh->chunks, sh->arena, 0);
  if (t->out) rc_frame_destroy(t->out);
  if (t->ssl) wolfSSL_free(t->ssl);
  if (t->charged) rc_budget_release(sh->budget, RC_TLS_CONN_COST);
  rx_drop(t);
  if (t->own_records) rc_counter_sub(&sh->stats.own_records, 1);
  if (t->phase == PHASE_OPEN || t->phase == PHASE_CLOSED) rc_counter_sub(&sh->stats.open, 1);
  t->c->layer = NULL;
  rc_pool_put(&sh->conns, t);
}

static void tls_on_close(struct rc_loop *l, struct rc_conn *c) {
  struct tls_conn *t = c->layer;
  char peer[64];
  if (t->phase == PHASE_HANDSHAKE) {
    peer_text(t, peer, sizeof peer);
    rc_info("%s: left during the TLS handshake", peer);
    count_fail(t, RC_TLS_FAIL_INCOMPLETE);
  } else if (t->phase == PHASE_OPEN && (t->rec_left || t->hdr_have)) {
    peer_text(t, peer, sizeof peer);
    rc_info("%s: TLS connection ended in the middle of a record", peer);
    count_fail(t, RC_TLS_FAIL_TRUNCATED);
  }
  t->upper->on_close(l, c);
  conn_free(t);
}

/* ---- sending ---- */

/* Seals n bytes of plaintext at sh->rec_buf + 5 as one record of `type`: by
 * wolfSSL, or here once the connection's records are its own. false when it
 * failed (*err: wolfSSL's code). */
static bool seal_one(struct tls_conn *t, uint8_t type, size_t n, int *err) {
  struct rc_tls_shard *sh = t->sh;
  if (!t->own_records) {
    int r = wolfSSL_write(t->ssl, sh->rec_buf + 5, (int)n);
    if (r == (int)n) return true;
    *err = wolfSSL_get_error(t->ssl, r);
    return false;
  }
  size_t len = rc_tls_seal(&t->rec, type, sh->rec_buf, n);
  *err = MEMORY_E;
  if (!len || !reserve_out(t, len)) return false;
  return rc_frame_append(&t->out, sh->rec_buf, len, OUT_MAX) == 0;
}

/* Encrypts queued plaintext, up to `limit` bytes, as records filled with as many
 * frames as fit. false when it failed (the caller ends the connection). */
static bool encrypt_queued(struct tls_conn *t, size_t limit, int *err) {
  struct rc_tls_shard *sh = t->sh;
  size_t done = 0;
  uint64_t records = 0;
  size_t want = t->plain.bytes < limit ? (size_t)t->plain.bytes : limit;
  if (want && !reserve_out(t, want + (want / RECORD_MAX + 1) * RECORD_OVERHEAD)) {
    *err = MEMORY_E;
    return false;
  }
  uint8_t *plain = sh->rec_buf + 5;
  uint64_t oldest_ns = 0;
  while (t->plain.count && done < limit) {
    size_t n = 0;
    while (n < RECORD_MAX && t->plain.count) {
      struct iovec iov[GATHER_IOV];
      uint32_t entries;
      size_t bytes;
      uint64_t stamp;
      int niov =
          rc_outq_gather(&t->plain, iov, GATHER_IOV, RECORD_MAX - n, &entries, &bytes, &stamp);
      if (stamp - 1 < oldest_ns - 1) oldest_ns = stamp; /* 0 stays "none" */
      size_t copied = 0;
      for (int i = 0; i < niov && n < RECORD_MAX; i++) {
        size_t k = iov[i].iov_len < RECORD_MAX - n ? iov[i].iov_len : RECORD_MAX - n;
        memcpy(plain + n, iov[i].iov_base, k);
        n += k;
        copied += k;
      }
      rc_outq_consume(&t->plain, &sh->chunks, sh->arena, copied);
    }
    if (!seal_one(t, RC_TLS_CT_APPLICATION, n, err)) return false;
    done += n;
    records++;
  }
  rc_counter_add(&sh->stats.records_out, records);
  rc_counter_add(&sh->stats.plaintext_out, done);
  /* The records carry their oldest message's publish stamp down to the io
   * layer, which measures send latency on what it sends: the ciphertext. */
  if (oldest_ns && t->out && (t->out->stamp_ns == 0 || oldest_ns < t->out->stamp_ns))
    t->out->stamp_ns = oldest_ns;
  return true;
}

/* Our close_notify after what is queued: wolfSSL's, or sealed here. */
static void send_close_notify(struct tls_conn *t) {
  int err;
  if (!t->own_records) {
    wolfSSL_shutdown(t->ssl);
    return;
  }
  t->sh->rec_buf[5] = 1; /* warning */
  t->sh->rec_buf[6] = 0; /* close_notify */
  seal_one(t, RC_TLS_CT_ALERT, 2, &err);
}

static bool tls_on_writable(struct rc_loop *l, struct rc_conn *c) {
  struct tls_conn *t = c->layer;
  if (t->phase != PHASE_OPEN) return t->phase < PHASE_OPEN && t->plain.count;
  int e = 0;
  if (!encrypt_queued(t, BATCH_BYTES, &e)) {
    fail(l, t, e, "write");
    return false;
  }
  push_out(l, t);
  return t->plain.count > 0;
}

static bool over_limit(struct rc_loop *l, const struct tls_conn *t, size_t len) {
  return rc_conn_over_limit(l, t->c, t->plain.bytes, t->plain.count, len);
}

static int tls_send(struct rc_loop *l, struct rc_conn *c, struct rc_hold *h, enum rc_frame_view v) {
  struct tls_conn *t = c->layer;
  if (!rc_conn_is_open(c) || t->phase > PHASE_OPEN) return -EPIPE;
  if (over_limit(l, t, rc_frame_view_len(h->frame, v))) return -ENOBUFS;
  if (rc_outq_push(&t->plain, &t->sh->chunks, h, v) < 0) {
    rc_warn("out of memory queueing to a TLS connection; closing it");
    rc_conn_abort(l, c);
    return -ENOMEM;
  }
  rc_conn_want_write(l, c);
  return 0;
}

/* A frame of the connection's own, in the plaintext queue (joined to the last
 * one when it can be, as the io layer does for cleartext). */
static int push_private(struct rc_loop *l, struct tls_conn *t, struct rc_frame *f) {
  if (rc_outq_coalesce(&t->plain, 0, f)) return 0;
  if (rc_outq_push_frame(&t->plain, &t->sh->chunks, t->sh->arena, f) < 0) {
    rc_conn_abort(l, t->c);
    return -ENOMEM;
  }
  return 0;
}

static int tls_send_frame(struct rc_loop *l, struct rc_conn *c, struct rc_frame *f) {
  struct tls_conn *t = c->layer;
  if (!rc_conn_is_open(c) || t->phase > PHASE_OPEN) {
    rc_frame_destroy(f);
    return -EPIPE;
  }
  f->flags |= RC_FRAME_PRIVATE;
  if (over_limit(l, t, f->len)) {
    rc_frame_destroy(f);
    return -ENOBUFS;
  }
  int ret = push_private(l, t, f);
  if (ret < 0) return ret;
  rc_conn_want_write(l, c);
  return 0;
}

static void tls_close(struct rc_loop *l, struct rc_conn *c, struct rc_frame *last, bool drop_queued) {
  struct tls_conn *t = c->layer;
  if (!rc_conn_is_open(c)) {
    if (last) rc_frame_destroy(last);
    return;
  }
  if (t->phase != PHASE_OPEN) {
    /* Before the handshake is done nothing can be said (an answer would first
     * need a handshake, which is what a flood of refused connections wants). */
    if (last) rc_frame_destroy(last);
    if (t->phase < PHASE_OPEN) t->phase = PHASE_FAILED;
    rc_conn_abort(l, c);
    return;
  }
  if (drop_queued) rc_outq_truncate(&t->plain, &t->sh->chunks, t->sh->arena, 0);
  if (last) {
    last->flags |= RC_FRAME_PRIVATE;
    if (push_private(l, t, last) < 0) return;
  }
  int e = 0;
  if (!encrypt_queued(t, SIZE_MAX, &e)) {
    fail(l, t, e, "write");
    return;
  }
  send_close_notify(t);
  t->phase = PHASE_CLOSED;
  rc_conn_close(l, c, take_out(t), false);
}

static uint64_t tls_queued(const struct rc_conn *c) {
  const struct tls_conn *t = c->layer;
  return rc_conn_waiting_bytes(c) + (t ? t->plain.bytes : 0);
}

static const struct rc_conn_ops tls_ops = {
    .on_data = tls_on_data,
    .on_timer = tls_on_timer,
    .on_close = tls_on_close,
    .on_writable = tls_on_writable,
};

static int tls_attach(void *shard, struct rc_loop *l, struct rc_conn *c,
                      const struct rc_conn_ops *upper) {
  (void)l;
  struct rc_tls_shard *sh = shard;
  struct tls_conn *t = rc_pool_get(&sh->conns);
  if (!t) {
    c->ops = upper; /* the caller aborts: the session hears of it */
    return -ENOMEM;
  }
  memset(t, 0, sizeof *t);
  t->sh = sh;
  t->c = c;
  t->upper = upper;
  c->layer = t;
  c->ops = &tls_ops;
  return 0;
}

const struct rc_stream_type rc_stream_tls = {
    .name = "tls",
    .attach = tls_attach,
    .send = tls_send,
    .send_frame = tls_send_frame,
    .close = tls_close,
    .queued = tls_queued,
};

/* ---- the server's context ---- */

/* http/1.1, the only protocol spoken here (WebSocket upgrades and the HTTP
 * routes). A client offering ALPN without it (h2 alone) gets no ALPN answer,
 * which RFC 7301 3.2 allows and every HTTP client reads as HTTP/1.1. */
static int select_alpn(WOLFSSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  static const char want[] = "http/1.1";
  for (unsigned i = 0; i < inlen;) {
    unsigned n = in[i];
    if (i + 1 + n > inlen) break;
    if (n == sizeof want - 1 && memcmp(in + i + 1, want, n) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)n;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

static void setup_error(char *err, size_t size, const char *flag, const char *file, const char *what) {
  snprintf(err, size, "%s%s%s: %s", flag, *flag ? " " : "", file, what);
}

int rc_tls_create(const char *cert_file, const char *key_file, struct rc_tls **out, char *err,
                  size_t size) {
  static bool initialised;
  if (!initialised) {
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
      setup_error(err, size, "", "wolfSSL", "initialisation failed");
      return -EINVAL;
    }
    initialised = true;
  }
  struct rc_tls *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  int ret = -EINVAL;
  t->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
  if (!t->ctx) {
    ret = -ENOMEM;
    goto fail;
  }
  if (wolfSSL_CTX_SetMinVersion(t->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set_cipher_list(t->ctx, SUITES) != WOLFSSL_SUCCESS) {
    setup_error(err, size, "", "wolfSSL", "refused the protocol settings (TLS 1.2+, AEAD suites)");
    goto fail;
  }
  if (wolfSSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != WOLFSSL_SUCCESS) {
    setup_error(err, size, "--tls-cert", cert_file, "not a readable PEM certificate chain");
    goto fail;
  }
  if (wolfSSL_CTX_use_PrivateKey_file(t->ctx, key_file, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
    setup_error(err, size, "--tls-key", key_file, "not a readable, unencrypted PEM private key");
    goto fail;
  }
  if (wolfSSL_CTX_check_private_key(t->ctx) != WOLFSSL_SUCCESS) {
    setup_error(err, size, "--tls-key", key_file, "does not match the certificate of --tls-cert");
    goto fail;
  }
  /* Resumption is by session ticket only (RFC 8446 4.6.1, RFC 5077): the
   * ticket carries the state, so the server keeps no cache per client, and one
   * context's ticket key serves every shard. */
  wolfSSL_CTX_set_session_cache_mode(t->ctx, WOLFSSL_SESS_CACHE_OFF);
  wolfSSL_CTX_set_alpn_select_cb(t->ctx, select_alpn, NULL);
  wolfSSL_CTX_SetIORecv(t->ctx, recv_cb);
  wolfSSL_CTX_SetIOSend(t->ctx, send_cb);
  snprintf(t->describe, sizeof t->describe, "TLS 1.2 and 1.3, AEAD suites, ALPN http/1.1, tickets");
  *out = t;
  return 0;
fail:
  rc_tls_destroy(t);
  return ret;
}

void rc_tls_destroy(struct rc_tls *t) {
  if (!t) return;
  if (t->ctx) wolfSSL_CTX_free(t->ctx);
  free(t);
}

void rc_tls_describe(const struct rc_tls *t, char *out, size_t size) {
  snprintf(out, size, "%s", t->describe);
}

struct rc_tls_shard *rc_tls_shard_create(struct rc_tls *t, struct rc_loop *l, struct rc_budget *b) {
  struct rc_tls_shard *sh = calloc(1, sizeof *sh);
  if (!sh) return NULL;
  sh->tls = t;
  sh->loop = l;
  sh->arena = rc_loop_arena(l);
  sh->budget = b;
  sh->owner = (uint16_t)rc_loop_id(l);
  rc_pool_init(&sh->conns, sizeof(struct tls_conn), 256);
  rc_outq_pool_init(&sh->chunks);
  return sh;
}

void rc_tls_shard_thread_exit(struct rc_tls_shard *sh) {
  (void)sh;
  wc_ecc_fp_free();
}

void rc_tls_shard_destroy(struct rc_tls_shard *sh) {
  if (!sh) return;
  rc_pool_fini(&sh->conns);
  rc_pool_fini(&sh->chunks);
  free(sh);
}

const struct rc_tls_stats *rc_tls_shard_stats(const struct rc_tls_shard *sh) { return &sh->stats; }

uint64_t rc_tls_shard_pool_free_bytes(const struct rc_tls_shard *sh) {
  return rc_pool_free_bytes(&sh->conns) + rc_pool_free_bytes(&sh->chunks);
}
