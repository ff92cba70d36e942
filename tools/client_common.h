/* SPDX-License-Identifier: MIT */
/* What ringcast's own clients (ringcast-cli, ringcast-bench) share: URL parsing,
 * connecting, and the client side of the WebSocket handshake. */
#ifndef RINGCAST_CLIENT_COMMON_H
#define RINGCAST_CLIENT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rc_url {
  bool tls;
  char host[256];
  unsigned port;
  char path[2048];       /* path and query, starting with '/' */
};

/* Parses ws://, http://, wss:// and https:// (the last two set tls; a client
 * that cannot speak TLS must refuse them). 0 or -EINVAL. */
int rc_url_parse(const char *s, struct rc_url *u);
/* Resolves host:port into addr; 0 or -errno. */
int rc_url_resolve(const struct rc_url *u, struct sockaddr_storage *addr, socklen_t *len);
/* Connects a blocking TCP socket; returns the fd or -errno. */
int rc_client_connect(const struct rc_url *u);
/* Writes the upgrade request for u into out; stores the key's expected accept
 * value in accept_out (29 bytes). Returns the request length. */
size_t rc_client_upgrade_request(const struct rc_url *u, char *out, size_t size,
                                 char accept_out[29]);
/* Checks a complete response head: 0 if it is a valid 101 with the right accept
 * value, otherwise -EPROTO with the status line copied to why. */
int rc_client_check_upgrade(const char *head, size_t len, const char *accept, char *why,
                            size_t why_size);
/* Writes a masked client frame header + masked payload into out; returns length. */
size_t rc_client_frame(uint8_t *out, uint8_t opcode, const void *payload, size_t len);
/* Writes all of buf; 0 or -errno. */
int rc_write_all(int fd, const void *buf, size_t len);

#endif
