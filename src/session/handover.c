/* SPDX-License-Identifier: MIT */
/* The control socket and the hand-over exchange, over SOCK_SEQPACKET so each
 * message arrives whole with the descriptors it carries:
 *
 *   successor -> server   "RCHELLO <version>"
 *   server -> successor   "RCFDS <version> <n>", then "RCBATCH <k>" messages
 *                         carrying k descriptors each (SCM_RIGHTS), or
 *                         "RCERR <reason>"
 *   successor -> server   "RCDONE" once it accepts on them
 *   server -> successor   "RCOK" once its control socket is closed
 *   server -> successor   "RCRELEASED" once its copies of the sockets are closed
 *
 * and the probe that finds an address already served. */
#include "ringcast/session/handover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/util/log.h"

/* Descriptors per message: well under the kernel's SCM_MAX_FD (253). */
#define BATCH_FDS 64
#define MSG_MAX 256

static int addr_text(const struct sockaddr_storage *ss, char *out, size_t size) {
  char host[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    snprintf(out, size, "%s:%u", host, ntohs(a->sin_port));
    return ntohs(a->sin_port);
  }
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
  inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
  snprintf(out, size, "[%s]:%u", host, ntohs(a->sin6_port));
  return ntohs(a->sin6_port);
}

int rc_handover_name_of(const struct rc_listen_addr *a, struct rc_handover_name *out) {
  memset(out, 0, sizeof *out);
  char text[64];
  if (addr_text(&a->addr, text, sizeof text) == 0) return -EINVAL;
  out->abstract = true;
  out->sun.sun_family = AF_UNIX;
  /* Abstract: sun_path starts with a NUL and the name's length is the
   * address's, with no terminator (unix(7)). */
  int n = snprintf(out->sun.sun_path + 1, sizeof out->sun.sun_path - 1, "ringcast:%s", text);
  out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  snprintf(out->text, sizeof out->text, "@ringcast:%s", text);
  return 0;
}

int rc_handover_name(const struct rc_config *cfg, struct rc_handover_name *out) {
  if (!cfg->control_socket) return rc_handover_name_of(&cfg->listen[0], out);
  memset(out, 0, sizeof *out);
  size_t n = strlen(cfg->control_socket);
  if (n >= sizeof out->sun.sun_path) return -ENAMETOOLONG;
  out->sun.sun_family = AF_UNIX;
  memcpy(out->sun.sun_path, cfg->control_socket, n + 1);
  out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  snprintf(out->text, sizeof out->text, "%s", cfg->control_socket);
  return 0;
}

static int set_timeouts(int fd) {
  struct timeval tv = {.tv_sec = RC_HANDOVER_TIMEOUT_MS / 1000,
                       .tv_usec = (RC_HANDOVER_TIMEOUT_MS % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
    return -errno;
  return 0;
}

/* Our user or root: anyone else could otherwise take the port from us. */
static int peer_allowed(int fd, struct ucred *cred) {
  socklen_t len = sizeof *cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) return -errno;
  return cred->uid == geteuid() || cred->uid == 0 ? 0 : -EPERM;
}

static int send_text(int fd, const char *text) {
  ssize_t n = send(fd, text, strlen(text), MSG_NOSIGNAL);
  if (n < 0) return -errno;
  return (size_t)n == strlen(text) ? 0 : -EIO;
}

/* One message; -EPIPE when the other side closed. */
static int recv_text(int fd, char *buf, size_t size) {
  ssize_t n = recv(fd, buf, size - 1, 0);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
  if (n == 0) return -EPIPE;
  buf[n] = '\0';
  return 0;
}

/* ---- the running server ---- */

static int bind_control(int fd, const struct rc_handover_name *name) {
  if (bind(fd, (const struct sockaddr *)&name->sun, name->len) == 0) return 0;
  int e = errno;
  if (e != EADDRINUSE || name->abstract) return -e;
  /* A path: left behind by a server that died, unless one answers on it. */
  int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (probe < 0) return -EADDRINUSE;
  bool alive = connect(probe, (const struct sockaddr *)&name->sun, name->len) == 0;
  close(probe);
  if (alive) return -EADDRINUSE;
  if (unlink(name->sun.sun_path) < 0) return -errno;
  return bind(fd, (const struct sockaddr *)&name->sun, name->len) == 0 ? 0 : -errno;
}

int rc_handover_listen(const struct rc_handover_name *name, char *err, size_t err_size) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int e = errno;
    snprintf(err, err_size, "control socket %s: %s", name->text, strerror(e));
    return -e;
  }
  int ret = bind_control(fd, name);
  if (ret == 0 && !name->abstract && chmod(name->sun.sun_path, 0600) < 0) ret = -errno;
  if (ret == 0 && listen(fd, 4) < 0) ret = -errno;
  if (ret < 0) {
    snprintf(err, err_size, "control socket %s: %s%s", name->text, strerror(-ret),
             ret == -EADDRINUSE ? " (another ringcast answers on it)" : "");
    close(fd);
    return ret;
  }
  return fd;
}

void rc_handover_unlisten(int fd, const struct rc_handover_name *name) {
  if (fd < 0) return;
  close(fd);
  if (!name->abstract) unlink(name->sun.sun_path);
}

int rc_handover_accept(int lfd, pid_t *peer_pid) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  struct ucred cred = {0};
  int ret = peer_allowed(fd, &cred);
  if (ret < 0) {
    /* Any local user may connect: at most one line a second, so a flood of
     * refused connections cannot flood the log. */
    static uint64_t logged_s, suppressed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if ((uint64_t)ts.tv_sec != logged_s) {
      rc_warn("control socket: refused a connection from pid %ld uid %u: %s (and %llu more "
              "refused since the last line)", (long)cred.pid, (unsigned)cred.uid,
              ret == -EPERM ? "not our user nor root" : strerror(-ret),
              (unsigned long long)suppressed);
      logged_s = (uint64_t)ts.tv_sec;
      suppressed = 0;
    } else {
      suppressed++;
    }
    close(fd);
    return ret;
  }
  if ((ret = set_timeouts(fd)) < 0) {
    close(fd);
    return ret;
  }
  *peer_pid = cred.pid;
  return fd;
}

static int send_fds(int conn, const int *fds, unsigned n) {
  char text[32];
  int tl = snprintf(text, sizeof text, "RCBATCH %u", n);
  struct iovec iov = {.iov_base = text, .iov_len = (size_t)tl};
  union {
    char buf[CMSG_SPACE(BATCH_FDS * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(n * sizeof(int))};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(n * sizeof(int));
  memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
  return sendmsg(conn, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int rc_handover_offer(int conn, const int *fds, unsigned n, char *err, size_t err_size) {
  char msg[MSG_MAX];
  int ret = recv_text(conn, msg, sizeof msg);
  unsigned version;
  if (ret < 0) {
    snprintf(err, err_size, "no hello from the successor: %s", strerror(-ret));
    return ret;
  }
  if (sscanf(msg, "RCHELLO %u", &version) != 1) {
    snprintf(err, err_size, "the successor said '%.40s', not a hello", msg);
    rc_handover_refuse(conn, "expected RCHELLO");
    return -EPROTO;
  }
  if (version != RC_HANDOVER_VERSION) {
    snprintf(err, err_size, "the successor speaks version %u of the hand-over, this server %d",
             version, RC_HANDOVER_VERSION);
    char why[96];
    snprintf(why, sizeof why, "version %u is not supported (this server speaks %d)", version,
             RC_HANDOVER_VERSION);
    rc_handover_refuse(conn, why);
    return -EPROTONOSUPPORT;
  }
  snprintf(msg, sizeof msg, "RCFDS %d %u", RC_HANDOVER_VERSION, n);
  if ((ret = send_text(conn, msg)) < 0) goto fail;
  for (unsigned i = 0; i < n; i += BATCH_FDS) {
    unsigned k = n - i < BATCH_FDS ? n - i : BATCH_FDS;
    if ((ret = send_fds(conn, fds + i, k)) < 0) goto fail;
  }
  return 0;
fail:
  snprintf(err, err_size, "sending the listening sockets: %s", strerror(-ret));
  return ret;
}

void rc_handover_refuse(int conn, const char *reason) {
  char msg[MSG_MAX];
  snprintf(msg, sizeof msg, "RCERR %s", reason);
  (void)!send_text(conn, msg); /* best effort: the successor may be gone */
}

int rc_handover_read_done(int conn) {
  char msg[MSG_MAX];
  int ret = recv_text(conn, msg, sizeof msg);
  if (ret < 0) return ret;
  return strcmp(msg, "RCDONE") == 0 ? 0 : -EPROTO;
}

int rc_handover_confirm(int conn) { return send_text(conn, "RCOK"); }

int rc_handover_released(int conn) { return send_text(conn, "RCRELEASED"); }

/* ---- the successor ---- */

int rc_handover_connect(const struct rc_handover_name *name, pid_t *peer_pid, char *err,
                        size_t err_size) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    snprintf(err, err_size, "control socket: %s", strerror(e));
    return -e;
  }
  int ret = 0;
  if (connect(fd, (const struct sockaddr *)&name->sun, name->len) < 0) {
    ret = -errno;
    snprintf(err, err_size,
             "no ringcast answers on the control socket %s (%s): is one running "
             "with the same first --listen address (or --control-socket)?",
             name->text, strerror(-ret));
    goto fail;
  }
  struct ucred cred = {0};
  if ((ret = peer_allowed(fd, &cred)) < 0) {
    snprintf(err, err_size,
             "the server on %s (pid %ld) runs as uid %u, not as us nor root: "
             "refusing to take its sockets",
             name->text, (long)cred.pid, (unsigned)cred.uid);
    goto fail;
  }
  if ((ret = set_timeouts(fd)) < 0) {
    snprintf(err, err_size, "control socket: %s", strerror(-ret));
    goto fail;
  }
  *peer_pid = cred.pid;
  return fd;
fail:
  close(fd);
  return ret;
}

/* One batch: its descriptors appended to fds. */
static int recv_batch(int conn, int *fds, unsigned max, unsigned *n) {
  char text[MSG_MAX];
  struct iovec iov = {.iov_base = text, .iov_len = sizeof text - 1};
  union {
    char buf[CMSG_SPACE(BATCH_FDS * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t len = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  if (len < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
  if (len == 0) return -EPIPE;
  text[len] = '\0';
  unsigned want = 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (unsigned i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      if (*n < max)
        fds[(*n)++] = fd;
      else
        close(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) return -EMSGSIZE;
  if (sscanf(text, "RCBATCH %u", &want) != 1) return -EPROTO;
  return 0;
}

int rc_handover_receive(int conn, int *fds, unsigned max, unsigned *n, char *err, size_t err_size) {
  char msg[MSG_MAX];
  *n = 0;
  snprintf(msg, sizeof msg, "RCHELLO %d", RC_HANDOVER_VERSION);
  int ret = send_text(conn, msg);
  if (ret < 0) {
    snprintf(err, err_size, "saying hello to the server: %s", strerror(-ret));
    return ret;
  }
  if ((ret = recv_text(conn, msg, sizeof msg)) < 0) {
    snprintf(err, err_size, "no answer from the server: %s", strerror(-ret));
    return ret;
  }
  unsigned version, total;
  if (strncmp(msg, "RCERR ", 6) == 0) {
    snprintf(err, err_size, "the server refused: %s", msg + 6);
    return -ECONNREFUSED;
  }
  if (sscanf(msg, "RCFDS %u %u", &version, &total) != 2 || version != RC_HANDOVER_VERSION) {
    snprintf(err, err_size, "unexpected answer from the server: '%.60s'", msg);
    return -EPROTO;
  }
  if (total > max) {
    snprintf(err, err_size, "the server offers %u listening sockets, more than %u", total, max);
    return -E2BIG;
  }
  while (*n < total) {
    unsigned before = *n;
    if ((ret = recv_batch(conn, fds, max, n)) < 0 || *n == before) {
      if (ret == 0) ret = -EPROTO;
      snprintf(err, err_size, "receiving the listening sockets (%u of %u so far): %s", *n, total,
               strerror(-ret));
      for (unsigned i = 0; i < *n; i++)
        close(fds[i]);
      *n = 0;
      return ret;
    }
  }
  return 0;
}

int rc_handover_finish(int conn, char *err, size_t err_size) {
  int ret = send_text(conn, "RCDONE");
  char msg[MSG_MAX];
  if (ret == 0) ret = recv_text(conn, msg, sizeof msg);
  if (ret == 0 && strcmp(msg, "RCOK") != 0) ret = -EPROTO;
  if (ret < 0)
    snprintf(err, err_size, "the server did not confirm the hand-over: %s", strerror(-ret));
  return ret;
}

int rc_handover_read_released(int conn) {
  char msg[MSG_MAX];
  int ret = recv_text(conn, msg, sizeof msg);
  if (ret < 0) return ret;
  return strcmp(msg, "RCRELEASED") == 0 ? 0 : -EPROTO;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

int rc_handover_match(const struct rc_config *cfg, int fd) {
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) return -ENOENT;
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) return -ENOENT;
  struct sockaddr_storage ss;
  len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -ENOENT;
  for (unsigned i = 0; i < cfg->n_listen; i++)
    if (same_addr(&ss, &cfg->listen[i].addr)) return (int)i;
  if (cfg->has_admin && same_addr(&ss, &cfg->admin.addr)) return (int)cfg->n_listen;
  return -ENOENT;
}

/* ---- refusing a second server ---- */

int rc_handover_probe(const struct rc_listen_addr *a) {
  int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1, ret = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (a->addr.ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
      bind(fd, (const struct sockaddr *)&a->addr, a->addr_len) < 0)
    ret = -errno;
  close(fd);
  return ret;
}

pid_t rc_handover_owner(const struct rc_handover_name *name) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct ucred cred = {0};
  socklen_t len = sizeof cred;
  pid_t pid = 0;
  if (connect(fd, (const struct sockaddr *)&name->sun, name->len) == 0 &&
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    pid = cred.pid;
  close(fd);
  return pid;
}
