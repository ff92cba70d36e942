/* SPDX-License-Identifier: MIT */
/* ringcast-bench's TLS client: wolfSSL client objects whose I/O callbacks read
 * the ciphertext the caller's ring received and gather what they write in a
 * buffer the caller sends (tls_client.h says how), and the publisher's
 * blocking connection. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first pending buffer: a ClientHello, or a request, fits. */
#define PENDING_MIN 4096u

struct rc_tls_client_ctx {
  WOLFSSL_CTX *ctx;
  char host[256];
  bool sni;    /* host is a name: RFC 6066 3 sends no IP literal as a server name */
  bool verify;
  bool resume;
};

/* ---- wolfSSL's I/O, from and to memory ---- */

static int recv_cb(WOLFSSL *ssl, char *buf, int sz, void *arg) {
  (void)ssl;
  struct rc_tls_client *t = arg;
  if (!t->in_len) return WOLFSSL_CBIO_ERR_WANT_READ;
  size_t n = (size_t)sz < t->in_len ? (size_t)sz : t->in_len;
  memcpy(buf, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

static int reserve_pending(struct rc_tls_client *t, size_t need) {
  if (need <= t->pending_cap) return 0;
  size_t cap = t->pending_cap ? t->pending_cap : PENDING_MIN;
  while (cap < need) cap *= 2;
  if (cap > UINT32_MAX) return -ENOMEM;
  uint8_t *p = realloc(t->pending, cap);
  if (!p) return -ENOMEM;
  t->pending = p;
  t->pending_cap = (uint32_t)cap;
  return 0;
}

/* Everything wolfSSL writes is taken at once, so it never sees WANT_WRITE. */
static int send_cb(WOLFSSL *ssl, char *buf, int sz, void *arg) {
  (void)ssl;
  struct rc_tls_client *t = arg;
  if (reserve_pending(t, (size_t)t->pending_len + (size_t)sz) < 0) return WOLFSSL_CBIO_ERR_GENERAL;
  memcpy(t->pending + t->pending_len, buf, (size_t)sz);
  t->pending_len += (uint32_t)sz;
  return sz;
}

/* ---- the context ---- */

static bool is_ip_literal(const char *host) {
  uint8_t addr[16];
  return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static int configure(struct rc_tls_client_ctx *c, const struct rc_tls_client_config *cfg, char *err,
                     size_t err_size) {
  if (wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
    snprintf(err, err_size, "wolfSSL refused TLS 1.2 as the lowest version");
    return -EINVAL;
  }
  if (cfg->ca_file) {
    if (wolfSSL_CTX_load_verify_locations(c->ctx, cfg->ca_file, NULL) != WOLFSSL_SUCCESS) {
      snprintf(err, err_size, "cannot load CA certificates from %s", cfg->ca_file);
      return -EINVAL;
    }
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
  } else {
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
  }
  if (cfg->ciphers && wolfSSL_CTX_set_cipher_list(c->ctx, cfg->ciphers) != WOLFSSL_SUCCESS) {
    snprintf(err, err_size, "wolfSSL refused the cipher list %s", cfg->ciphers);
    return -EINVAL;
  }
  /* TLS 1.3 resumes from the tickets the server sends after the handshake; TLS
   * 1.2 only when the ClientHello asks for one. */
  if (cfg->resume && wolfSSL_CTX_UseSessionTicket(c->ctx) != WOLFSSL_SUCCESS) {
    snprintf(err, err_size, "wolfSSL refused session tickets");
    return -EINVAL;
  }
  if (cfg->memory_io) {
    wolfSSL_CTX_SetIORecv(c->ctx, recv_cb);
    wolfSSL_CTX_SetIOSend(c->ctx, send_cb);
  }
  return 0;
}

int rc_tls_client_ctx_create(const struct rc_tls_client_config *cfg, struct rc_tls_client_ctx **out,
                             char *err, size_t err_size) {
  int ret = -ENOMEM;
  if (strlen(cfg->host) >= sizeof ((struct rc_tls_client_ctx *)0)->host) {
    snprintf(err, err_size, "host name too long");
    return -EINVAL;
  }
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
    snprintf(err, err_size, "wolfSSL_Init failed");
    return -EINVAL;
  }
  struct rc_tls_client_ctx *c = calloc(1, sizeof *c);
  if (!c) goto fail_alloc;
  c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  if (!c->ctx) goto fail_ctx;
  if ((ret = configure(c, cfg, err, err_size)) < 0) goto fail_config;
  snprintf(c->host, sizeof c->host, "%s", cfg->host);
  c->sni = !is_ip_literal(cfg->host);
  c->verify = cfg->ca_file != NULL;
  c->resume = cfg->resume;
  *out = c;
  return 0;
fail_config:
  wolfSSL_CTX_free(c->ctx);
  free(c);
  return ret;
fail_ctx:
  free(c);
fail_alloc:
  snprintf(err, err_size, "out of memory");
  return ret;
}

void rc_tls_client_ctx_destroy(struct rc_tls_client_ctx *ctx) {
  if (!ctx) return;
  wolfSSL_CTX_free(ctx->ctx);
  free(ctx);
}

/* The server name sent and, with a CA, checked against the certificate. */
static int name_server(struct rc_tls_client_ctx *ctx, WOLFSSL *ssl) {
  if (ctx->sni &&
      wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, ctx->host, (unsigned short)strlen(ctx->host)) != WOLFSSL_SUCCESS)
    return -EPROTO;
  if (ctx->verify && wolfSSL_check_domain_name(ssl, ctx->host) != WOLFSSL_SUCCESS) return -EPROTO;
  return 0;
}

/* ---- ring-driven connections ---- */

int rc_tls_client_start(struct rc_tls_client_ctx *ctx, struct rc_tls_client *t) {
  WOLFSSL *ssl = wolfSSL_new(ctx->ctx);
  if (!ssl) return -ENOMEM;
  t->ssl = ssl;
  t->connected = t->resumed = false;
  wolfSSL_SetIOReadCtx(ssl, t);
  wolfSSL_SetIOWriteCtx(ssl, t);
  if (name_server(ctx, ssl) < 0) return -EPROTO;
  /* A session the server no longer takes (an expired ticket) costs a full
   * handshake, not the connection: the result is deliberately ignored. */
  if (ctx->resume && t->session) (void)wolfSSL_set_session(ssl, t->session);
  int r = wolfSSL_connect(ssl);
  if (r != WOLFSSL_SUCCESS && wolfSSL_get_error(ssl, r) != WOLFSSL_ERROR_WANT_READ) return -EPROTO;
  return 0;
}

void rc_tls_client_feed(struct rc_tls_client *t, const uint8_t *p, size_t n) {
  t->in = p;
  t->in_len = n;
}

static int step_handshake(struct rc_tls_client *t) {
  int r = wolfSSL_connect(t->ssl);
  if (r == WOLFSSL_SUCCESS) {
    t->connected = true;
    t->resumed = wolfSSL_session_reused(t->ssl) == 1;
    return RC_TLS_CLIENT_CONNECTED;
  }
  if (wolfSSL_get_error(t->ssl, r) == WOLFSSL_ERROR_WANT_READ) return RC_TLS_CLIENT_NEED_INPUT;
  return -EPROTO;
}

int rc_tls_client_advance(struct rc_tls_client *t, uint8_t *plain, size_t cap, size_t *got) {
  *got = 0;
  int ev;
  if (!t->connected) {
    ev = step_handshake(t);
  } else {
    int n = wolfSSL_read(t->ssl, plain, cap > INT_MAX ? INT_MAX : (int)cap);
    int e = n > 0 ? 0 : wolfSSL_get_error(t->ssl, n);
    if (n > 0) *got = (size_t)n;
    ev = n > 0                             ? RC_TLS_CLIENT_DATA
         : e == WOLFSSL_ERROR_WANT_READ   ? RC_TLS_CLIENT_NEED_INPUT
         : e == WOLFSSL_ERROR_ZERO_RETURN ? RC_TLS_CLIENT_CLOSED
                                           : -EPROTO;
  }
  /* The caller's receive buffer goes back to the ring after this. */
  if (ev == RC_TLS_CLIENT_NEED_INPUT) t->in = NULL;
  return ev;
}

int rc_tls_client_write(struct rc_tls_client *t, const void *p, size_t n) {
  if (!t->connected || n > INT_MAX) return -EPROTO;
  return wolfSSL_write(t->ssl, p, (int)n) == (int)n ? 0 : -EPROTO;
}

bool rc_tls_client_take_send(struct rc_tls_client *t, const uint8_t **p, size_t *n) {
  if (t->in_flight || t->orphaned) return false;
  if (!t->sending) {
    if (!t->pending_len) return false;
    t->sending = t->pending;
    t->sending_len = t->pending_len;
    t->sending_done = 0;
    t->pending = NULL;
    t->pending_len = t->pending_cap = 0;
  }
  *p = t->sending + t->sending_done;
  *n = t->sending_len - t->sending_done;
  t->in_flight = true;
  return true;
}

static void free_sending(struct rc_tls_client *t) {
  free(t->sending);
  t->sending = NULL;
  t->sending_len = t->sending_done = 0;
  t->orphaned = false;
}

int rc_tls_client_sent(struct rc_tls_client *t, int res) {
  t->in_flight = false;
  if (t->orphaned) {
    /* An ended connection's send: what it did not write goes nowhere. */
    free_sending(t);
    return 0;
  }
  if (res == 0 && t->sending_done < t->sending_len) res = -EPIPE;
  if (res < 0) {
    free_sending(t);
    return res;
  }
  t->sending_done += (uint32_t)res;
  if (t->sending_done >= t->sending_len) free_sending(t);
  return 0;
}

void rc_tls_client_why(const struct rc_tls_client *t, char *out, size_t size) {
  if (!t->ssl) {
    snprintf(out, size, "TLS: no wolfSSL object (out of memory)");
    return;
  }
  int e = wolfSSL_get_error(t->ssl, -1);
  char text[WOLFSSL_MAX_ERROR_SZ];
  wolfSSL_ERR_error_string_n((unsigned long)(long)e, text, sizeof text);
  snprintf(out, size, "TLS: %s (%d)", text, e);
}

void rc_tls_client_end(struct rc_tls_client_ctx *ctx, struct rc_tls_client *t) {
  if (t->ssl) {
    if (ctx->resume && t->connected) {
      WOLFSSL_SESSION *s = wolfSSL_get1_session(t->ssl);
      if (s) {
        wolfSSL_SESSION_free(t->session);
        t->session = s;
      }
    }
    wolfSSL_free(t->ssl);
    t->ssl = NULL;
  }
  free(t->pending);
  t->pending = NULL;
  t->pending_len = t->pending_cap = 0;
  t->in = NULL;
  t->in_len = 0;
  t->connected = t->resumed = false;
  if (t->in_flight) t->orphaned = true; /* freed by rc_tls_client_sent */
  else if (t->sending) free_sending(t);
}

void rc_tls_client_fini(struct rc_tls_client *t) {
  if (t->ssl) wolfSSL_free(t->ssl);
  wolfSSL_SESSION_free(t->session);
  free(t->pending);
  free(t->sending);
  memset(t, 0, sizeof *t);
}

/* ---- the publisher's blocking connection ---- */

WOLFSSL *rc_tls_client_connect_fd(struct rc_tls_client_ctx *ctx, int fd, char *err, size_t err_size) {
  WOLFSSL *ssl = wolfSSL_new(ctx->ctx);
  if (!ssl) {
    snprintf(err, err_size, "out of memory");
    return NULL;
  }
  int r = WOLFSSL_FATAL_ERROR;
  if (wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS && name_server(ctx, ssl) == 0) r = wolfSSL_connect(ssl);
  if (r != WOLFSSL_SUCCESS) {
    char text[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)(long)wolfSSL_get_error(ssl, r), text, sizeof text);
    snprintf(err, err_size, "TLS handshake failed: %s", text);
    wolfSSL_free(ssl);
    return NULL;
  }
  return ssl;
}

int rc_tls_client_write_fd(WOLFSSL *ssl, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len) {
    int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
    int n = wolfSSL_write(ssl, p, chunk);
    if (n <= 0) return -EPIPE;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

long rc_tls_client_read_fd(WOLFSSL *ssl, void *buf, size_t len) {
  for (;;) {
    int n = wolfSSL_read(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0) return n;
    int e = wolfSSL_get_error(ssl, n);
    if (e == WOLFSSL_ERROR_ZERO_RETURN) return 0;
    /* A blocking socket interrupted by a signal: read again. */
    if (e != WOLFSSL_ERROR_WANT_READ) return -EPIPE;
  }
}

bool rc_tls_client_has_buffered(WOLFSSL *ssl) {
  return wolfSSL_pending(ssl) > 0;
}

void rc_tls_client_close_fd(WOLFSSL *ssl) {
  if (!ssl) return;
  /* Our close_notify only; the server's is not waited for. */
  (void)wolfSSL_shutdown(ssl);
  wolfSSL_free(ssl);
}

void rc_tls_client_thread_exit(void) { wc_ecc_fp_free(); }
