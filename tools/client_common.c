/* SPDX-License-Identifier: MIT */
/* Client-side helpers shared by ringcast-cli and ringcast-probe. */
#include "client_common.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ringcast/util/json_out.h"
#include "ringcast/proto/ws.h"

int rc_url_parse(const char *s, struct rc_url *u) {
  memset(u, 0, sizeof *u);
  const char *p;
  if (strncmp(s, "ws://", 5) == 0) p = s + 5, u->port = 80;
  else if (strncmp(s, "http://", 7) == 0) p = s + 7, u->port = 80;
  else if (strncmp(s, "wss://", 6) == 0) p = s + 6, u->port = 443, u->tls = true;
  else if (strncmp(s, "https://", 8) == 0) p = s + 8, u->port = 443, u->tls = true;
  else return -EINVAL;
  const char *slash = strchr(p, '/');
  const char *hend = slash ? slash : p + strlen(p);
  const char *colon = NULL;
  if (*p == '[') {
    const char *close = memchr(p, ']', (size_t)(hend - p));
    if (!close) return -EINVAL;
    if ((size_t)(close - p - 1) >= sizeof u->host) return -EINVAL;
    memcpy(u->host, p + 1, (size_t)(close - p - 1));
    if (close + 1 < hend && close[1] == ':') colon = close + 1;
  } else {
    colon = memchr(p, ':', (size_t)(hend - p));
    const char *he = colon ? colon : hend;
    if (he == p || (size_t)(he - p) >= sizeof u->host) return -EINVAL;
    memcpy(u->host, p, (size_t)(he - p));
  }
  if (colon) {
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != hend || port <= 0 || port > 65535) return -EINVAL;
    u->port = (unsigned)port;
  }
  snprintf(u->path, sizeof u->path, "%s", slash ? slash : "/");
  return 0;
}

int rc_url_resolve(const struct rc_url *u, struct sockaddr_storage *addr, socklen_t *len) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  char port[8];
  snprintf(port, sizeof port, "%u", u->port);
  int ret = getaddrinfo(u->host, port, &hints, &res);
  if (ret) return ret == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

int rc_client_connect(const struct rc_url *u) {
  struct sockaddr_storage a;
  socklen_t alen = 0;
  int ret = rc_url_resolve(u, &a, &alen);
  if (ret < 0) return ret;
  int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&a, alen) < 0) {
    ret = -errno;
    close(fd);
    return ret;
  }
  return fd;
}

size_t rc_client_upgrade_request(const struct rc_url *u, char *out, size_t size,
                                 char accept_out[29]) {
  uint8_t raw[16];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw)
    for (int i = 0; i < 16; i++) raw[i] = (uint8_t)rand();
  char key[32];
  size_t kl = rc_base64_encode(key, raw, sizeof raw);
  key[kl] = '\0';
  rc_ws_accept_key(key, kl, accept_out);
  int n = snprintf(out, size,
                   "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   u->path, u->host, u->port, key);
  return n < 0 ? 0 : (size_t)n;
}

int rc_client_check_upgrade(const char *head, size_t len, const char *accept, char *why,
                            size_t why_size) {
  const char *eol = memchr(head, '\r', len);
  size_t sl = eol ? (size_t)(eol - head) : len;
  if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
    snprintf(why, why_size, "server answered: %.*s", (int)(sl > 200 ? 200 : sl), head);
    return -EPROTO;
  }
  char want[64];
  snprintf(want, sizeof want, "Sec-WebSocket-Accept: %s\r\n", accept);
  if (!memmem(head, len, want, strlen(want))) {
    snprintf(why, why_size, "bad Sec-WebSocket-Accept in the 101 response");
    return -EPROTO;
  }
  return 0;
}

size_t rc_client_frame(uint8_t *out, uint8_t opcode, const void *payload, size_t len) {
  size_t hl = rc_ws_encode_header(out, opcode, true, len);
  out[1] |= 0x80;
  uint8_t mask[4];
  if (getrandom(mask, 4, 0) != 4) memset(mask, 0x5a, 4);
  memcpy(out + hl, mask, 4);
  memcpy(out + hl + 4, payload, len);
  rc_ws_unmask(out + hl + 4, len, mask, 0);
  return hl + 4 + len;
}

int rc_write_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}
