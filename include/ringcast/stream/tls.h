/* SPDX-License-Identifier: MIT */
/* The TLS stream (wss://, https://): wolfSSL driven through its I/O callbacks,
 * so the ring still does every socket operation. Ciphertext arrives through the
 * connection's multishot recv and is handed to wolfSSL from memory; what wolfSSL
 * writes is appended to a private frame that joins the connection's outbound
 * queue. The session's frames wait here as plaintext references (shared, not
 * copied) and are encrypted only when the connection's send is free, as records
 * of up to 16 KiB each made of as many queued frames as fit: a broadcast to a
 * wss subscriber costs one encryption per batch of messages, not per message.
 * Past the handshake a ChaCha20-Poly1305 connection seals its records itself
 * (src/stream/tls_records.c) and its wolfSSL object is freed.
 * Shard thread only, except rc_tls_create/destroy (main thread). */
#ifndef RINGCAST_STREAM_TLS_H
#define RINGCAST_STREAM_TLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/io/loop.h"
#include "ringcast/stream/stream.h"
#include "ringcast/util/budget.h"

/* What the server holds for TLS: wolfSSL's context with the certificate chain,
 * the key, the protocol settings and the session-ticket keys, shared by every
 * shard so a ticket issued on one shard resumes on any other. */
struct rc_tls;
/* One shard's part: scratch buffers, pools and counters. */
struct rc_tls_shard;

/* Why a TLS connection ended outside the usual close, for /metrics. */
enum rc_tls_fail {
  RC_TLS_FAIL_PLAINTEXT_HTTP, /* an HTTP request on a TLS port (answered 400 in cleartext) */
  RC_TLS_FAIL_NOT_TLS,        /* its first bytes were not a TLS handshake record */
  RC_TLS_FAIL_VERSION,        /* it offered no version this server speaks (TLS 1.2 and 1.3) */
  RC_TLS_FAIL_CIPHER,         /* no cipher suite or key-exchange group in common */
  RC_TLS_FAIL_PROTOCOL,       /* malformed, oversized or unexpected records or messages */
  RC_TLS_FAIL_ALERT,          /* the peer sent a fatal alert */
  RC_TLS_FAIL_TIMEOUT,        /* the handshake did not finish within --handshake-timeout */
  RC_TLS_FAIL_INCOMPLETE,     /* the peer left during the handshake */
  RC_TLS_FAIL_TRUNCATED,      /* the peer closed in the middle of a record */
  RC_TLS_FAIL_MEMORY,         /* --max-memory or an allocation refused its state */
  RC_TLS_FAIL_UNREAD,         /* wolfSSL's answers (KeyUpdate) piled up unread past --max-queue */
  RC_TLS_FAIL_POST_HANDSHAKE, /* a KeyUpdate once the records are sealed here (cannot be followed) */
  RC_TLS_FAIL_COUNT
};

/* Label values of ringcast_tls_failures_total{reason=...}. */
extern const char *const rc_tls_fail_names[RC_TLS_FAIL_COUNT];

/* Counters of one shard's TLS connections (written by its thread, read by any). */
struct rc_tls_stats {
  _Atomic uint64_t handshakes;       /* completed with a full handshake */
  _Atomic uint64_t resumed;          /* completed by resuming a session (a ticket) */
  _Atomic uint64_t open;             /* TLS connections open now (handshake done) */
  _Atomic uint64_t own_records;      /* of them, sealing records here, wolfSSL freed */
  _Atomic uint64_t records_out;      /* application-data records written */
  _Atomic uint64_t plaintext_out;    /* bytes encrypted into them */
  _Atomic uint64_t failures[RC_TLS_FAIL_COUNT];
};

/* What a connection's TLS state is counted as against --max-memory from its first
 * byte until wolfSSL is freed: wolfSSL's object as Debian builds it keeps about
 * 54 KB per connection once its handshake is done, more during it
 * (docs/architecture.md, "TLS"). */
#define RC_TLS_CONN_COST (64u << 10)

/* Main thread, before the shards start: loads the PEM chain and key and checks
 * that they match. 0, or -EINVAL with a message naming the file in err. */
int rc_tls_create(const char *cert_file, const char *key_file, struct rc_tls **out, char *err,
                  size_t size);
/* After every shard is gone. */
void rc_tls_destroy(struct rc_tls *t);
/* "TLSv1.2, TLSv1.3; ECDSA P-256 certificate" and the like, for the start-up log. */
void rc_tls_describe(const struct rc_tls *t, char *out, size_t size);

/* One shard's context (its loop, the --max-memory budget); NULL on ENOMEM. */
struct rc_tls_shard *rc_tls_shard_create(struct rc_tls *t, struct rc_loop *l, struct rc_budget *b);
/* In the shard's thread as it exits: wolfSSL keeps a per-thread cache of
 * precomputed ECC points (its fixed-point cache), freed only by the thread that
 * made it. */
void rc_tls_shard_thread_exit(struct rc_tls_shard *sh);
/* After the shard's loop has discarded its connections. */
void rc_tls_shard_destroy(struct rc_tls_shard *sh);
const struct rc_tls_stats *rc_tls_shard_stats(const struct rc_tls_shard *sh);
/* The shard's thread: bytes free in its pools (connection states, plaintext queue chunks). */
uint64_t rc_tls_shard_pool_free_bytes(const struct rc_tls_shard *sh);

/* attach() takes the shard's struct rc_tls_shard. */
extern const struct rc_stream_type rc_stream_tls;

#endif
