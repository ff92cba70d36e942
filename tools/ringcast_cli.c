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

static void usage(FILE *out) {
  fprintf(out,
          "Usage:\n"
          "  ringcast-cli sub URL [--count N]     print each message on its own line\n"
          "  ringcast-cli pub URL TOPIC MESSAGE   publish MESSAGE ('-' reads stdin)\n\n"
          "Examples:\n"
          "  ringcast-cli sub 'ws://localhost:8080/ws?topics=quotes.AAPL,trades.AAPL'\n"
          "  ringcast-cli pub http://localhost:8080 alerts '{\"level\":\"warn\"}'\n");
}

static int read_head(int fd, char *buf, size_t size, size_t *head_len, size_t *got) {
  size_t n = 0;
  for (;;) {
    if (n == size) return -E2BIG;
    ssize_t r = read(fd, buf + n, size - n);
    if (r <= 0) return r == 0 ? -ECONNRESET : -errno;
    n += (size_t)r;
    char *e = memmem(buf, n, "\r\n\r\n", 4);
    if (e) {
      *head_len = (size_t)(e + 4 - buf);
      *got = n;
      return 0;
    }
  }
}

static int cmd_sub(const char *url_s, long count) {
  struct rc_url u;
  if (rc_url_parse(url_s, &u) < 0 || u.tls) {
    fprintf(stderr, "ringcast-cli: bad URL '%s': expected ws://HOST:PORT/ws?topics=a,b (no wss:// yet)\n",
            url_s);
    return 2;
  }
  int fd = rc_client_connect(&u);
  if (fd < 0) {
    fprintf(stderr, "ringcast-cli: connecting to %s:%u: %s\n", u.host, u.port, strerror(-fd));
    return 1;
  }
  char req[4096], accept[29], why[256];
  size_t rl = rc_client_upgrade_request(&u, req, sizeof req, accept);
  size_t cap = 1 << 20, head_len = 0, len = 0;
  uint8_t *buf = malloc(cap);
  if (!buf || rc_write_all(fd, req, rl) < 0 || read_head(fd, (char *)buf, 16384, &head_len, &len) < 0) {
    fprintf(stderr, "ringcast-cli: handshake with %s:%u failed\n", u.host, u.port);
    return 1;
  }
  if (rc_client_check_upgrade((char *)buf, head_len, accept, why, sizeof why) < 0) {
    fprintf(stderr, "ringcast-cli: %s\n", why);
    const char *body = (char *)buf + head_len;
    if (len > head_len) fprintf(stderr, "%.*s", (int)(len - head_len), body);
    return 1;
  }
  memmove(buf, buf + head_len, len - head_len);
  len -= head_len;
  uint8_t *msg = NULL;
  size_t msg_len = 0;
  long seen = 0;
  for (;;) {
    struct rc_ws_header h;
    ssize_t hl = rc_ws_parse_header(buf, len, false, &h);
    if (hl >= 0 && len - (size_t)hl >= h.payload_len) {
      uint8_t *p = buf + hl;
      size_t n = (size_t)h.payload_len;
      if (h.opcode == RC_WS_OP_PING) {
        uint8_t out[RC_WS_MAX_CONTROL_PAYLOAD + 14];
        (void)rc_write_all(fd, out, rc_client_frame(out, RC_WS_OP_PONG, p, n));
      } else if (h.opcode == RC_WS_OP_CLOSE) {
        unsigned code = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
        fprintf(stderr, "ringcast-cli: server closed: %u %.*s\n", code, (int)(n >= 2 ? n - 2 : 0),
                (char *)p + 2);
        uint8_t out[16];
        uint8_t cb[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        (void)rc_write_all(fd, out, rc_client_frame(out, RC_WS_OP_CLOSE, cb, code == 1005 ? 0 : 2));
        return code == 1000 || code == 1001 ? 0 : 1;
      } else if (h.opcode != RC_WS_OP_PONG) {
        uint8_t *nm = realloc(msg, msg_len + n + 1);
        if (!nm) return 1;
        msg = nm;
        memcpy(msg + msg_len, p, n);
        msg_len += n;
        if (h.fin) {
          fwrite(msg, 1, msg_len, stdout);
          fputc('\n', stdout);
          fflush(stdout);
          msg_len = 0;
          if (count > 0 && ++seen >= count) return 0;
        }
      }
      size_t used = (size_t)hl + n;
      memmove(buf, buf + used, len - used);
      len -= used;
      continue;
    }
    if (hl < 0 && hl != -EAGAIN) {
      fprintf(stderr, "ringcast-cli: malformed frame from the server\n");
      return 1;
    }
    if (len == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) return 1;
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r <= 0) {
      fprintf(stderr, "ringcast-cli: connection closed\n");
      return 1;
    }
    len += (size_t)r;
  }
}

static int cmd_pub(const char *url_s, const char *topic, const char *message) {
  struct rc_url u;
  if (rc_url_parse(url_s, &u) < 0 || u.tls) {
    fprintf(stderr, "ringcast-cli: bad URL '%s': expected http://HOST:PORT (no https:// yet)\n", url_s);
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
  int fd = rc_client_connect(&u);
  if (fd < 0) {
    fprintf(stderr, "ringcast-cli: connecting to %s:%u: %s\n", u.host, u.port, strerror(-fd));
    return 1;
  }
  char head[1024];
  int hl = snprintf(head, sizeof head,
                    "POST /publish/%s HTTP/1.1\r\nHost: %s:%u\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    topic, u.host, u.port, blen);
  if (rc_write_all(fd, head, (size_t)hl) < 0 || rc_write_all(fd, body, blen) < 0) {
    fprintf(stderr, "ringcast-cli: sending the request failed\n");
    return 1;
  }
  char resp[8192];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof resp - 1 && (r = read(fd, resp + n, sizeof resp - 1 - n)) > 0) n += (size_t)r;
  resp[n] = '\0';
  char *b = strstr(resp, "\r\n\r\n");
  int ok = n >= 12 && memcmp(resp + 9, "200", 3) == 0;
  fprintf(ok ? stdout : stderr, "%s", b ? b + 4 : resp);
  free(body);
  close(fd);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "sub") == 0) {
    long count = 0;
    if (argc == 5 && strcmp(argv[3], "--count") == 0) count = atol(argv[4]);
    else if (argc != 3) {
      usage(stderr);
      return 2;
    }
    return cmd_sub(argv[2], count);
  }
  if (argc == 5 && strcmp(argv[1], "pub") == 0) return cmd_pub(argv[2], argv[3], argv[4]);
  usage(stderr);
  return 2;
}
