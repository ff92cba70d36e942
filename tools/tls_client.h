/* SPDX-License-Identifier: MIT */
/* The TLS client of ringcast's own tools. ringcast-bench's subscribers' wolfSSL
 * objects do no I/O of their own: the caller's ring receives the ciphertext and hands it in
 * (rc_tls_client_feed), and what wolfSSL writes gathers in the connection's
 * pending buffer until the caller sends it, one send at a time, the buffer
 * freed when written. So wss:// is measured with the same receive path as ws://.
 * The bench's publisher and ringcast-cli use a plain blocking socket handed to
 * wolfSSL (rc_tls_client_connect_fd). */
#ifndef RINGCAST_TOOLS_TLS_CLIENT_H
#define RINGCAST_TOOLS_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct WOLFSSL;
struct WOLFSSL_SESSION;

/* Settings shared by every connection: wolfSSL's context, the server name to
 * send and check, whether sessions are kept for resumption. Created and
 * destroyed by the main thread; any thread may start connections from it. */
struct rc_tls_client_ctx;

struct rc_tls_client_config {
  const char *ca_file; /* verify the server against it; NULL: no verification */
  const char *host;    /* SNI (unless an IP literal) and the name checked with ca_file */
  const char *ciphers; /* wolfSSL cipher list, in order of preference; NULL: wolfSSL's */
  bool resume;         /* offer the last connection's session on a reconnect */
  bool memory_io;      /* ring-driven connections; false: rc_tls_client_connect_fd */
};

/* 0, or -EINVAL/-ENOMEM with the reason in err. *out is owned by the caller. */
int rc_tls_client_ctx_create(const struct rc_tls_client_config *cfg, struct rc_tls_client_ctx **out,
                             char *err, size_t err_size);
void rc_tls_client_ctx_destroy(struct rc_tls_client_ctx *ctx);

/* One subscriber slot's TLS state, in the caller's storage (zeroed to start).
 * Touched only by the thread that owns the slot's ring. The session outlives
 * each connection so that the slot's next connection can resume it. */
struct rc_tls_client {
  struct WOLFSSL *ssl;             /* NULL between connections */
  struct WOLFSSL_SESSION *session; /* the last connection's, when resuming */
  const uint8_t *in;               /* ciphertext being handed in, during a feed */
  size_t in_len;
  uint8_t *pending; /* what wolfSSL wrote since the last send started */
  uint32_t pending_len, pending_cap;
  uint8_t *sending; /* the send in flight (or cut short): the kernel may read it */
  uint32_t sending_len, sending_done;
  bool in_flight;
  bool orphaned;  /* the send in flight belongs to an ended connection */
  bool connected; /* the handshake finished */
  bool resumed;   /* ... with the session offered */
};

enum rc_tls_client_event {
  RC_TLS_CLIENT_NEED_INPUT, /* everything handed in is used up */
  RC_TLS_CLIENT_CONNECTED,  /* the handshake just finished */
  RC_TLS_CLIENT_DATA,       /* plaintext was decrypted */
  RC_TLS_CLIENT_CLOSED,     /* the server sent close_notify */
};

/* Starts a connection on a connected socket: the ClientHello goes to pending.
 * 0 or -ENOMEM/-EPROTO. */
int rc_tls_client_start(struct rc_tls_client_ctx *ctx, struct rc_tls_client *t);
/* Hands in received ciphertext; it must stay valid until rc_tls_client_advance
 * returns RC_TLS_CLIENT_NEED_INPUT (or an error). */
void rc_tls_client_feed(struct rc_tls_client *t, const uint8_t *p, size_t n);
/* Takes one step: the handshake, or one read of up to cap plaintext bytes into
 * plain (*got). Returns an enum rc_tls_client_event, or -EPROTO (see
 * rc_tls_client_why). Call again until RC_TLS_CLIENT_NEED_INPUT. */
int rc_tls_client_advance(struct rc_tls_client *t, uint8_t *plain, size_t cap, size_t *got);
/* Encrypts n bytes into pending (after the handshake). 0 or -EPROTO. */
int rc_tls_client_write(struct rc_tls_client *t, const void *p, size_t n);
/* When no send is in flight and bytes wait, marks a send in flight and says
 * what to send; false otherwise. */
bool rc_tls_client_take_send(struct rc_tls_client *t, const uint8_t **p, size_t *n);
/* The send in flight completed with res (bytes or -errno). Whatever it cut
 * short is offered again by rc_tls_client_take_send; a failed or finished send
 * frees its buffer. Returns res when negative, else 0. Call it even after the
 * connection ended: the buffer is freed here and nowhere else while in flight. */
int rc_tls_client_sent(struct rc_tls_client *t, int res);
/* Why the last step failed, in words. */
void rc_tls_client_why(const struct rc_tls_client *t, char *out, size_t size);
/* Ends the connection: the session is kept when the context resumes (and the
 * handshake finished), the wolfSSL object and pending bytes are freed; a send
 * in flight keeps its buffer until rc_tls_client_sent. */
void rc_tls_client_end(struct rc_tls_client_ctx *ctx, struct rc_tls_client *t);
/* Frees everything, the kept session and a send's buffer too: only once no
 * send can be in flight (the ring is gone). */
void rc_tls_client_fini(struct rc_tls_client *t);
/* A thread that made TLS connections, as it exits: wolfCrypt keeps a per-thread
 * cache of ECC points (P-256 handshakes) that only that thread can free. */
void rc_tls_client_thread_exit(void);

/* The publisher's blocking connection: a handshake on fd (verified as the
 * context says). Returns the wolfSSL object, owned by the caller (free it with
 * rc_tls_client_close_fd, which leaves fd open), or NULL with err set. */
struct WOLFSSL *rc_tls_client_connect_fd(struct rc_tls_client_ctx *ctx, int fd, char *err, size_t err_size);
/* Writes all of buf; 0 or -EPIPE. */
int rc_tls_client_write_fd(struct WOLFSSL *ssl, const void *buf, size_t len);
/* Reads up to len bytes; blocks only when nothing is buffered. Bytes read, 0
 * at the end of the stream, -EPIPE on an error. */
long rc_tls_client_read_fd(struct WOLFSSL *ssl, void *buf, size_t len);
/* Decrypted bytes waiting in wolfSSL, readable without blocking. */
bool rc_tls_client_has_buffered(struct WOLFSSL *ssl);
void rc_tls_client_close_fd(struct WOLFSSL *ssl);

#endif
