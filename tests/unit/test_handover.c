/* SPDX-License-Identifier: MIT */
/* The hand-over exchange over a socket pair, the control socket's names and
 * the probe for an address already served. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringcast/session/handover.h"

static struct rc_listen_addr addr(const char *text) {
  struct rc_listen_addr a;
  cr_assert_eq(rc_config_parse_listen(text, &a), 0);
  return a;
}

Test(handover, names) {
  struct rc_handover_name n;
  struct rc_listen_addr a = addr("127.0.0.1:8080");
  cr_assert_eq(rc_handover_name_of(&a, &n), 0);
  cr_assert_str_eq(n.text, "@ringcast:127.0.0.1:8080");
  cr_assert(n.abstract);
  cr_assert_eq(n.sun.sun_path[0], '\0');
  cr_assert_eq(memcmp(n.sun.sun_path + 1, "ringcast:127.0.0.1:8080", 23), 0);
  cr_assert_eq(n.len, offsetof(struct sockaddr_un, sun_path) + 1 + 23,
               "no terminator in the length");
  a = addr("localhost:8080");
  cr_assert_eq(rc_handover_name_of(&a, &n), 0);
  cr_assert_str_eq(n.text, "@ringcast:127.0.0.1:8080", "the canonical address names it");
  a = addr("[::1]:9000");
  cr_assert_eq(rc_handover_name_of(&a, &n), 0);
  cr_assert_str_eq(n.text, "@ringcast:[::1]:9000");
  a = addr("127.0.0.1:0");
  cr_assert_eq(rc_handover_name_of(&a, &n), -EINVAL, "port 0: nothing could find it");

  struct rc_config cfg = {
      .n_listen = 1, .listen = {addr("127.0.0.1:0")}, .control_socket = "/tmp/x.sock"};
  cr_assert_eq(rc_handover_name(&cfg, &n), 0);
  cr_assert(!n.abstract);
  cr_assert_str_eq(n.sun.sun_path, "/tmp/x.sock");
}

static int listening(const char *text) {
  struct rc_listen_addr a = addr(text);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  cr_assert_eq(bind(fd, (struct sockaddr *)&a.addr, a.addr_len), 0);
  cr_assert_eq(listen(fd, 16), 0);
  return fd;
}

static unsigned port_of(int fd) {
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  getsockname(fd, (struct sockaddr *)&sin, &len);
  return ntohs(sin.sin_port);
}

Test(handover, probe_finds_a_served_address) {
  int fd = listening("127.0.0.1:0");
  char text[32];
  snprintf(text, sizeof text, "127.0.0.1:%u", port_of(fd));
  struct rc_listen_addr a = addr(text);
  cr_assert_eq(rc_handover_probe(&a), -EADDRINUSE, "a SO_REUSEPORT listener is found");
  snprintf(text, sizeof text, "0.0.0.0:%u", port_of(fd));
  a = addr(text);
  cr_assert_eq(rc_handover_probe(&a), -EADDRINUSE, "so is one the wildcard overlaps");
  unsigned port = port_of(fd);
  close(fd);
  snprintf(text, sizeof text, "127.0.0.1:%u", port);
  a = addr(text);
  cr_assert_eq(rc_handover_probe(&a), 0, "free once it is closed");
}

struct offer {
  int conn, *fds;
  unsigned n;
  int ret;
  char err[256];
};

static void *offer_thread(void *arg) {
  struct offer *o = arg;
  o->ret = rc_handover_offer(o->conn, o->fds, o->n, o->err, sizeof o->err);
  return NULL;
}

Test(handover, sockets_go_over_in_batches_and_are_matched) {
  /* 70 sockets: two batches. Listening sockets of two addresses; each copy
   * received is the same socket (same port) as the one sent. */
  int a = listening("127.0.0.1:0"), b = listening("127.0.0.1:0");
  int fds[70];
  for (unsigned i = 0; i < 70; i++)
    fds[i] = dup(i % 2 ? b : a);
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  struct offer o = {.conn = sp[0], .fds = fds, .n = 70};
  pthread_t t;
  pthread_create(&t, NULL, offer_thread, &o);
  int got[80];
  unsigned n = 0;
  char err[256] = "";
  cr_assert_eq(rc_handover_receive(sp[1], got, 80, &n, err, sizeof err), 0, "%s", err);
  pthread_join(t, NULL);
  cr_assert_eq(o.ret, 0, "%s", o.err);
  cr_assert_eq(n, 70);
  char ta[32], tb[32];
  snprintf(ta, sizeof ta, "127.0.0.1:%u", port_of(a));
  snprintf(tb, sizeof tb, "127.0.0.1:%u", port_of(b));
  struct rc_config cfg = {
      .n_listen = 1, .listen = {addr(ta)}, .has_admin = true, .admin = addr(tb)};
  for (unsigned i = 0; i < 70; i++) {
    cr_assert_eq(port_of(got[i]), port_of(i % 2 ? b : a));
    cr_assert_eq(rc_handover_match(&cfg, got[i]), i % 2 ? 1 : 0, "admin: index n_listen");
    close(got[i]);
    close(fds[i]);
  }
  cfg.has_admin = false;
  cr_assert_eq(rc_handover_match(&cfg, b), -ENOENT, "an address we no longer serve");
  int plain = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(rc_handover_match(&cfg, plain), -ENOENT, "not listening");
  close(plain);
  close(a);
  close(b);
  close(sp[0]);
  close(sp[1]);
}

Test(handover, done_and_confirm) {
  int sp[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  cr_assert_eq(send(sp[1], "RCDONE", 6, 0), 6);
  cr_assert_eq(rc_handover_read_done(sp[0]), 0);
  cr_assert_eq(rc_handover_confirm(sp[0]), 0);
  char buf[16];
  cr_assert_eq(recv(sp[1], buf, sizeof buf, 0), 4);
  cr_assert_eq(memcmp(buf, "RCOK", 4), 0);
  close(sp[1]);
  cr_assert_eq(rc_handover_read_done(sp[0]), -EPIPE, "the successor died first");
  close(sp[0]);
}

Test(handover, versions_and_refusals) {
  int sp[2];
  char err[256] = "";
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  cr_assert_eq(send(sp[1], "RCHELLO 2", 9, 0), 9);
  cr_assert_eq(rc_handover_offer(sp[0], NULL, 0, err, sizeof err), -EPROTONOSUPPORT);
  cr_assert(strstr(err, "version 2"), "%s", err);
  char buf[128] = "";
  cr_assert_gt(recv(sp[1], buf, sizeof buf - 1, 0), 0);
  cr_assert(strstr(buf, "RCERR version 2 is not supported"), "%s", buf);
  /* A refused successor hears why. */
  rc_handover_refuse(sp[0], "another takeover is in progress");
  int got[4];
  unsigned n = 9;
  cr_assert_eq(rc_handover_receive(sp[1], got, 4, &n, err, sizeof err), -ECONNREFUSED);
  cr_assert(strstr(err, "another takeover is in progress"), "%s", err);
  cr_assert_eq(n, 0);
  close(sp[0]);
  close(sp[1]);
}
