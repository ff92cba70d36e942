/* SPDX-License-Identifier: MIT */
/* ringcast-cli: watch topics (sub) or publish a message (pub) from a terminal,
 * with nothing else to install. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_common.h"
#include "ringcast/proto/topic_name.h"
#include "ringcast/proto/ws.h"
#include "tls_client.h"

/* Where a wss:// or https:// server's certificate is checked by default. */
#define SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

static void usage(FILE *out) {
  fprintf(out,
          "Usage:\n"
          "  ringcast-cli sub URL [--count N] [OPTIONS]     print each message on its own line\n"
          "                  (acks, gaps and errors go to stderr; heartbeats are dropped)\n"
          "  ringcast-cli pub URL TOPIC MESSAGE [OPTIONS]   publish MESSAGE ('-' reads stdin)\n\n"
          "Options:\n"
          "  --token TOKEN   send Authorization: Bearer TOKEN (a JWT or a publish key)\n"
          "  --ca FILE       for wss:// and https://, trust this CA (default: %s)\n"
          "  --insecure      for wss:// and https://, do not check the certificate\n\n"
          "Examples:\n"
          "  ringcast-cli sub 'ws://localhost:8080/ws?topics=quotes.AAPL,trades.AAPL'\n"
          "  ringcast-cli pub http://localhost:8080 alerts '{\"level\":\"warn\"}'\n"
          "  ringcast-cli sub 'wss://feed.example.com/ws?topics=quotes.AAPL' --token \"$TOKEN\"\n",
          SYSTEM_CA);
}

struct options {
  long count;
  const char *token;
  const char *ca;
  bool insecure;
};

/* A connection to the server: a blocking socket, with TLS over it for wss://
 * and https://. */
struct link {
  int fd;
  struct rc_tls_client_ctx *ctx;
  struct WOLFSSL *ssl;
};

static void link_close(struct link *k);

static int link_open(const struct rc_url *u, const struct options *o, struct link *k) {
  memset(k, 0, sizeof *k);
  k->fd = -1;
  const char *ca = o->insecure ? NULL : o->ca ? o->ca : SYSTEM_CA;
  if (u->tls && ca && access(ca, R_OK) != 0) {
    fprintf(stderr, "ringcast-cli: cannot read CA file %s: give --ca FILE, or --insecure\n", ca);
    return 2;
  }
  k->fd = rc_client_connect(u);
  if (k->fd < 0) {
    fprintf(stderr, "ringcast-cli: connecting to %s:%u: %s\n", u->host, u->port, strerror(-k->fd));
    return 1;
  }
  if (!u->tls) return 0;
  char err[256];
  struct rc_tls_client_config cfg = {.ca_file = ca, .host = u->host};
  if (rc_tls_client_ctx_create(&cfg, &k->ctx, err, sizeof err) < 0 ||
      !(k->ssl = rc_tls_client_connect_fd(k->ctx, k->fd, err, sizeof err))) {
    fprintf(stderr, "ringcast-cli: %s:%u: %s\n", u->host, u->port, err);
    link_close(k);
    return 1;
  }
  return 0;
}

static long link_read(struct link *k, void *buf, size_t n) {
  if (k->ssl) return rc_tls_client_read_fd(k->ssl, buf, n);
  ssize_t r = read(k->fd, buf, n);
  return r < 0 ? -errno : r;
}

static int link_write(struct link *k, const void *p, size_t n) {
  return k->ssl ? rc_tls_client_write_fd(k->ssl, p, n) : rc_write_all(k->fd, p, n);
}

static void link_close(struct link *k) {
  rc_tls_client_close_fd(k->ssl);
  if (k->ctx) rc_tls_client_ctx_destroy(k->ctx);
  if (k->fd >= 0) close(k->fd);
}

static int read_head(struct link *k, char *buf, size_t size, size_t *head_len, size_t *got) {
  size_t n = 0;
  for (;;) {
    if (n == size) return -E2BIG;
    long r = link_read(k, buf + n, size - n);
    if (r <= 0) return r == 0 ? -ECONNRESET : (int)r;
    n += (size_t)r;
    char *e = memmem(buf, n, "\r\n\r\n", 4);
    if (e) {
      *head_len = (size_t)(e + 4 - buf);
      *got = n;
      return 0;
    }
  }
}

/* The request head ends with an empty line: a header goes before it. */
static size_t add_token(char *req, size_t rl, size_t size, const char *token) {
  if (!token || rl < 2) return rl;
  int n = snprintf(req + rl - 2, size - (rl - 2), "Authorization: Bearer %s\r\n\r\n", token);
  return n < 0 || (size_t)n >= size - (rl - 2) ? 0 : rl - 2 + (size_t)n;
}

/* Prints the messages that follow the upgrade (*bufp holds len bytes of them
 * already), answering pings, until count messages or the server's close. The
 * exit status. */
/* A format=raw connection carries bare payloads; the envelope format (the
 * default) also carries the server's own messages between them. */
static bool url_is_raw(const char *url) {
  for (const char *p = strchr(url, '?'); p; p = strchr(p + 1, '&'))
    if (strncmp(p + 1, "format=raw", 10) == 0 && (p[11] == '\0' || p[11] == '&')) return true;
  return false;
}

/* In the envelope format, whatever is not {"type":"msg",...} (a subscribe ack,
 * a gap, an error, a heartbeat) is not a message: it is neither printed on
 * stdout nor counted by --count; heartbeats are dropped, the rest go to stderr. */
static bool is_message(const uint8_t *m, size_t n, bool envelope) {
  static const char msg[] = "{\"type\":\"msg\"", hb[] = "{\"type\":\"hb\"";
  if (!envelope || (n >= sizeof msg - 1 && memcmp(m, msg, sizeof msg - 1) == 0)) return true;
  if (!(n >= sizeof hb - 1 && memcmp(m, hb, sizeof hb - 1) == 0))
    fprintf(stderr, "ringcast-cli: %.*s\n", (int)n, (const char *)m);
  return false;
}

static int follow(struct link *k, uint8_t **bufp, size_t *capp, size_t len, long count,
                  bool envelope) {
  uint8_t *buf = *bufp, *msg = NULL;
  size_t cap = *capp, msg_len = 0;
  long seen = 0;
  int ret = 1;
  for (;;) {
    struct rc_ws_header h;
    ssize_t hl = rc_ws_parse_header(buf, len, false, &h);
    if (hl >= 0 && len - (size_t)hl >= h.payload_len) {
      uint8_t *p = buf + hl;
      size_t n = (size_t)h.payload_len;
      if (h.opcode == RC_WS_OP_PING) {
        uint8_t out[RC_WS_MAX_CONTROL_PAYLOAD + 14];
        (void)link_write(k, out, rc_client_frame(out, RC_WS_OP_PONG, p, n));
      } else if (h.opcode == RC_WS_OP_CLOSE) {
        unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
        fprintf(stderr, "ringcast-cli: server closed: %u %.*s\n", code, (int)(n >= 2 ? n - 2 : 0),
                (char *)p + 2);
        uint8_t out[16];
        uint8_t cb[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        (void)link_write(k, out, rc_client_frame(out, RC_WS_OP_CLOSE, cb, code == 1005 ? 0 : 2));
        ret = code == 1000 || code == 1001 ? 0 : 1;
        break;
      } else if (h.opcode != RC_WS_OP_PONG) {
        uint8_t *nm = realloc(msg, msg_len + n + 1);
        if (!nm) break;
        msg = nm;
        memcpy(msg + msg_len, p, n);
        msg_len += n;
        if (h.fin && !is_message(msg, msg_len, envelope)) {
          msg_len = 0;
        } else if (h.fin) {
          fwrite(msg, 1, msg_len, stdout);
          fputc('\n', stdout);
          fflush(stdout);
          msg_len = 0;
          if (count > 0 && ++seen >= count) {
            ret = 0;
            break;
          }
        }
      }
      size_t used = (size_t)hl + n;
      memmove(buf, buf + used, len - used);
      len -= used;
      continue;
    }
    if (hl < 0 && hl != -EAGAIN) {
      fprintf(stderr, "ringcast-cli: malformed frame from the server\n");
      break;
    }
    if (len == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) break;
      *bufp = buf = nb;
      *capp = cap *= 2;
    }
    long r = link_read(k, buf + len, cap - len);
    if (r <= 0) {
      fprintf(stderr, "ringcast-cli: connection closed\n");
      break;
    }
    len += (size_t)r;
  }
  free(msg);
  return ret;
}

static int cmd_sub(const char *url_s, const struct options *o) {
  struct rc_url u;
  if (rc_url_parse(url_s, &u) < 0) {
    fprintf(stderr, "ringcast-cli: bad URL '%s': expected ws://HOST:PORT/ws?topics=a,b (or wss://)\n",
            url_s);
    return 2;
  }
  struct link k;
  int ret = link_open(&u, o, &k);
  if (ret) return ret;
  char req[16384], accept[29], why[256];
  size_t rl = add_token(req, rc_client_upgrade_request(&u, req, sizeof req, accept), sizeof req, o->token);
  size_t cap = 1 << 20, head_len = 0, len = 0;
  uint8_t *buf = malloc(cap);
  if (!buf || !rl || link_write(&k, req, rl) < 0 || read_head(&k, (char *)buf, 16384, &head_len, &len) < 0) {
    fprintf(stderr, "ringcast-cli: handshake with %s:%u failed\n", u.host, u.port);
    ret = 1;
  } else if (rc_client_check_upgrade((char *)buf, head_len, accept, why, sizeof why) < 0) {
    fprintf(stderr, "ringcast-cli: %s\n", why);
    const char *body = (char *)buf + head_len;
    if (len > head_len) fprintf(stderr, "%.*s", (int)(len - head_len), body);
    ret = 1;
  } else {
    memmove(buf, buf + head_len, len - head_len);
    ret = follow(&k, &buf, &cap, len - head_len, o->count, !url_is_raw(url_s));
  }
  free(buf);
  link_close(&k);
  return ret;
}

static int cmd_pub(const char *url_s, const char *topic, const char *message, const struct options *o) {
  struct rc_url u;
  if (rc_url_parse(url_s, &u) < 0) {
    fprintf(stderr, "ringcast-cli: bad URL '%s': expected http://HOST:PORT (or https://)\n", url_s);
    return 2;
  }
  if (!rc_topic_name_is_valid(topic, strlen(topic))) {
    fprintf(stderr, "ringcast-cli: invalid topic name '%s': use 1-128 of A-Z a-z 0-9 . _ - : / @\n", topic);
    return 2;
  }
  char *body = NULL;
  size_t blen = 0;
  if (strcmp(message, "-") == 0) {
    size_t cap = 0;
    for (;;) {
      if (blen == cap) {
        cap = cap ? cap * 2 : 65536;
        char *nb = realloc(body, cap);
        if (!nb) return 1;
        body = nb;
      }
      size_t r = fread(body + blen, 1, cap - blen, stdin);
      if (r == 0) break;
      blen += r;
    }
  } else {
    body = strdup(message);
    blen = strlen(message);
  }
  struct link k;
  int ret = link_open(&u, o, &k);
  if (ret) {
    free(body);
    return ret;
  }
  char head[16384];
  int hl = snprintf(head, sizeof head,
                    "POST /publish/%s HTTP/1.1\r\nHost: %s:%u\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    topic, u.host, u.port, blen);
  size_t rl = hl < 0 || (size_t)hl >= sizeof head ? 0 : add_token(head, (size_t)hl, sizeof head, o->token);
  if (!rl || link_write(&k, head, rl) < 0 || link_write(&k, body, blen) < 0) {
    fprintf(stderr, "ringcast-cli: sending the request failed\n");
    free(body);
    link_close(&k);
    return 1;
  }
  char resp[8192];
  size_t n = 0;
  long r;
  while (n < sizeof resp - 1 && (r = link_read(&k, resp + n, sizeof resp - 1 - n)) > 0) n += (size_t)r;
  resp[n] = '\0';
  char *b = strstr(resp, "\r\n\r\n");
  int ok = n >= 12 && memcmp(resp + 9, "200", 3) == 0;
  fprintf(ok ? stdout : stderr, "%s", b ? b + 4 : resp);
  free(body);
  link_close(&k);
  return ok ? 0 : 1;
}

/* Options after the positional arguments; -1 on a bad one. */
static int parse_options(int argc, char **argv, int from, bool sub, struct options *o) {
  for (int i = from; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (sub && strcmp(a, "--count") == 0 && has_value) o->count = atol(argv[++i]);
    else if (strcmp(a, "--token") == 0 && has_value) o->token = argv[++i];
    else if (strcmp(a, "--ca") == 0 && has_value) o->ca = argv[++i];
    else if (strcmp(a, "--insecure") == 0) o->insecure = true;
    else {
      fprintf(stderr, "ringcast-cli: unknown option or missing value: %s\n", a);
      return -1;
    }
  }
  if (o->token && strpbrk(o->token, "\r\n")) {
    fprintf(stderr, "ringcast-cli: --token may not hold a line break\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  struct options o = {0};
  int ret = 2;
  if (argc >= 3 && strcmp(argv[1], "sub") == 0) {
    if (parse_options(argc, argv, 3, true, &o) == 0) ret = cmd_sub(argv[2], &o);
    else usage(stderr);
  } else if (argc >= 5 && strcmp(argv[1], "pub") == 0) {
    if (parse_options(argc, argv, 5, false, &o) == 0) ret = cmd_pub(argv[2], argv[3], argv[4], &o);
    else usage(stderr);
  } else {
    usage(stderr);
  }
  rc_tls_client_thread_exit();
  return ret;
}
