/* SPDX-License-Identifier: MIT */
/* SO_REUSEPORT listeners. Options that accepted connections need are set here,
 * because Linux copies the listener's socket options into each accepted socket
 * and a direct descriptor offers no fd for setsockopt. */
#include "ringcast/io/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int rc_listener_open(const struct rc_listen_addr *a, char *err, size_t err_size) {
  int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    snprintf(err, err_size, "socket for %s: %s", a->text, strerror(e));
    return -e;
  }
  int one = 1;
  /* Frames are pre-coalesced per connection; Nagle would only add latency. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
    goto fail_opt;
  if (a->addr.ss_family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
    goto fail_opt;
  if (bind(fd, (const struct sockaddr *)&a->addr, a->addr_len) < 0) {
    int e = errno;
    snprintf(err, err_size, "bind %s: %s%s", a->text, strerror(e),
             e == EADDRINUSE ? " (another process holds the port; pick another with --listen)" : "");
    close(fd);
    return -e;
  }
  if (listen(fd, 4096) < 0) {
    int e = errno;
    snprintf(err, err_size, "listen %s: %s", a->text, strerror(e));
    close(fd);
    return -e;
  }
  return fd;

fail_opt: {
  int e = errno;
  snprintf(err, err_size, "setsockopt on %s: %s", a->text, strerror(e));
  close(fd);
  return -e;
}
}

bool rc_listener_error_is_transient(int err) {
  /* accept(2): "Linux accept() passes already-pending network errors on the new
   * socket as an error code from accept()"; those end one connection only. */
  switch (err) {
  case ECONNABORTED: case EPROTO: case EPERM: case EINTR: case EAGAIN:
  case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
  case EOPNOTSUPP: case ENETUNREACH: case ETIMEDOUT: case ECONNRESET:
    return true;
  default:
    return false;
  }
}

unsigned rc_listener_backoff_ms(unsigned prev) {
  if (prev == 0) return 100;
  return prev >= 1000 ? 2000 : prev * 2;
}
