/* SPDX-License-Identifier: MIT */
/* Outbound connections on a real shard loop (rc_loop_connect): a connected one
 * is an ordinary connection (send, receive, timer, close), the failures come
 * back through done exactly once, link slots are outside --max-conns, and a stop
 * cancels a connect in flight without leaking its socket. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/io/loop.h"
#include "ringcast/util/config.h"
#include "ringcast/util/frame.h"

/* What the loop thread saw, read by the test thread through the atomics. */
struct seen {
  struct sockaddr_storage target;
  socklen_t target_len;
  unsigned timeout_ms;
  unsigned n_connects;          /* how many on_start starts */
  int start_ret[RC_LINK_SLOTS + 1];
  int sync_ret[3];              /* bad family, short address, one connect too many */
  _Atomic int dones;
  _Atomic int closes;
  _Atomic int timers;
  _Atomic int accepts;
  _Atomic int accepts_over;
  _Atomic size_t received;
  int res[RC_LINK_SLOTS];
  bool outbound[RC_LINK_SLOTS];
  bool layer_ok[RC_LINK_SLOTS];
  int send_ret;
  char peer[64];
  uint8_t data[64];
  struct rc_conn *conn;
  bool close_on_data;
};

static struct seen seen;
static struct rc_loop *loops[1];
static char layer_mark;

static void on_data(struct rc_loop *l, struct rc_conn *c, uint8_t *p, size_t n) {
  size_t have = atomic_load(&seen.received);
  if (have + n > sizeof seen.data) n = sizeof seen.data - have;
  memcpy(seen.data + have, p, n);
  atomic_store(&seen.received, have + n);
  if (seen.close_on_data && have + n >= 5) rc_conn_close(l, c, NULL, false);
}

static void on_timer(struct rc_loop *l, struct rc_conn *c) {
  (void)l;
  (void)c;
  atomic_fetch_add(&seen.timers, 1);
}

static void on_close(struct rc_loop *l, struct rc_conn *c) {
  (void)l;
  (void)c;
  atomic_fetch_add(&seen.closes, 1);
}

static const struct rc_conn_ops ops = {.on_data = on_data, .on_timer = on_timer,
                                       .on_close = on_close};

static void done(struct rc_loop *l, struct rc_conn *c, int res, void *arg) {
  unsigned i = (unsigned)(uintptr_t)arg;
  seen.res[i] = res;
  if (c) {
    seen.outbound[i] = c->outbound;
    seen.layer_ok[i] = c->layer == &layer_mark && c->ops == &ops && rc_conn_is_open(c);
    if (i == 0) {
      seen.conn = c;
      rc_conn_peer_text(c, seen.peer, sizeof seen.peer);
      struct rc_frame *f = rc_frame_create(0, 5);
      memcpy(f->data, "hello", 5);
      seen.send_ret = rc_conn_send_frame(l, c, f);
      rc_conn_set_timer(l, c, rc_loop_now_ms(l) + 20);
    }
  } else if (res == 0) {
    seen.res[i] = -12345; /* success without a connection */
  }
  atomic_fetch_add(&seen.dones, 1);
}

static void on_start(struct rc_loop *l) {
  for (unsigned i = 0; i < seen.n_connects; i++)
    seen.start_ret[i] =
        rc_loop_connect(l, (struct sockaddr *)&seen.target, seen.target_len, seen.timeout_ms, &ops,
                        &layer_mark, done, (void *)(uintptr_t)i);
}

static void on_accept(struct rc_loop *l, struct rc_conn *c, bool over_limit, bool admin,
                      const struct rc_listen_addr *from) {
  (void)l;
  (void)admin;
  (void)from;
  c->ops = &ops;
  atomic_fetch_add(&seen.accepts, 1);
  if (over_limit) atomic_fetch_add(&seen.accepts_over, 1);
}

static void on_turn(struct rc_loop *l) { (void)l; }
static bool has_work(struct rc_loop *l) {
  (void)l;
  return false;
}

static void abort_one(struct rc_loop *l, struct rc_conn *c, void *arg) {
  (void)arg;
  rc_conn_abort(l, c);
}
static void on_stop(struct rc_loop *l) { rc_loop_foreach_conn(l, abort_one, NULL); }

static const struct rc_loop_hooks hooks = {.on_start = on_start, .on_accept = on_accept,
                                           .on_turn = on_turn, .has_work = has_work,
                                           .on_stop = on_stop};

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits up to ms for *v to reach want. */
static bool wait_for(_Atomic int *v, int want, unsigned ms) {
  uint64_t end = now_ms() + ms;
  while (atomic_load(v) < want) {
    if (now_ms() > end) return false;
    usleep(2000);
  }
  return true;
}

static struct rc_loop *start_loop(unsigned max_conns, const struct rc_loop_socket *sockets,
                                  unsigned n_sockets) {
  struct rc_loop_params p = {.id = 0, .cpu = -1, .max_conns = max_conns,
                             .slot_size = sizeof(struct rc_conn), .max_queue = 1 << 20,
                             .sockets = sockets, .n_sockets = n_sockets};
  struct rc_loop *l;
  cr_assert_eq(rc_loop_create(&p, &hooks, &l), 0);
  loops[0] = l;
  rc_loop_set_peers(l, loops, 1);
  int ret = rc_loop_start(l);
  if (ret == -ENOSYS || ret == -EPERM) cr_skip_test("io_uring unavailable: %s", strerror(-ret));
  cr_assert_eq(ret, 0, "loop start: %s", strerror(-ret));
  return l;
}

static void stop_loop(struct rc_loop *l) {
  rc_loop_stop(l);
  rc_loop_join(l);
  rc_loop_destroy(l);
}

/* A TCP socket on 127.0.0.1 with a kernel-chosen port, listening when backlog
 * is >= 0; its address becomes the connect target. */
static int local_socket(int backlog) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  if (backlog >= 0) cr_assert_eq(listen(fd, backlog), 0);
  seen.target_len = sizeof seen.target;
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&seen.target, &seen.target_len), 0);
  return fd;
}

/* A listener whose accept queue is full: a SYN to it is dropped, so a connect
 * to it neither succeeds nor fails until the client gives up. Fillers are
 * connected until one no longer completes; fds get them. */
static int full_listener(int *fds, unsigned max, unsigned *n) {
  int lfd = local_socket(0);
  *n = 0;
  bool stuck = false;
  while (*n < max && !stuck) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    int ret = connect(fd, (struct sockaddr *)&seen.target, seen.target_len);
    cr_assert(ret == 0 || errno == EINPROGRESS);
    fds[(*n)++] = fd;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    stuck = poll(&pfd, 1, 300) == 0;
  }
  if (!stuck) cr_skip_test("could not fill a listener's accept queue here");
  return lfd;
}

static int accept_within(int lfd, unsigned ms) {
  struct pollfd pfd = {.fd = lfd, .events = POLLIN};
  cr_assert_eq(poll(&pfd, 1, (int)ms), 1, "nothing to accept");
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  cr_assert_geq(fd, 0);
  return fd;
}

/* Reads exactly n bytes, or returns fewer at EOF. */
static size_t read_within(int fd, void *buf, size_t n, unsigned ms) {
  size_t got = 0;
  uint64_t end = now_ms() + ms;
  while (got < n) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    uint64_t now = now_ms();
    cr_assert(now <= end, "read timed out after %zu of %zu bytes", got, n);
    cr_assert_eq(poll(&pfd, 1, (int)(end - now)), 1, "read timed out");
    ssize_t r = read(fd, (char *)buf + got, n - got);
    cr_assert_geq(r, 0, "read: %s", strerror(errno));
    if (r == 0) break;
    got += (size_t)r;
  }
  return got;
}

static void reset_seen(void) { memset(&seen, 0, sizeof seen); }

Test(loop_connect, round_trip_then_close) {
  reset_seen();
  int lfd = local_socket(16);
  seen.n_connects = 1;
  seen.timeout_ms = 2000;
  seen.close_on_data = true;
  int fds_before = count_fds();
  struct rc_loop *l = start_loop(8, NULL, 0);
  cr_assert_eq(seen.start_ret[0], 0);
  cr_assert(wait_for(&seen.dones, 1, 3000), "done never ran");
  cr_assert_eq(seen.res[0], 0, "connect: %s", strerror(-seen.res[0]));
  cr_assert(seen.outbound[0], "marked outbound");
  cr_assert(seen.layer_ok[0], "OPEN with the given ops and layer");
  cr_assert_eq(seen.send_ret, 0);
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%u",
           ntohs(((struct sockaddr_in *)&seen.target)->sin_port));
  cr_assert_str_eq(seen.peer, want);

  int s = accept_within(lfd, 2000);
  char buf[16];
  cr_assert_eq(read_within(s, buf, 5, 2000), 5);
  cr_assert_eq(memcmp(buf, "hello", 5), 0);
  cr_assert(wait_for(&seen.timers, 1, 2000), "the connection's timer never fired");
  cr_assert_eq(atomic_load(&rc_loop_stats(l)->conns_open), 1);
  cr_assert_eq(rc_loop_conn_count(l), 0, "open, but a drain never waits for the loop's own connections");

  cr_assert_eq(write(s, "world", 5), 5);
  uint64_t end = now_ms() + 2000;
  while (atomic_load(&seen.received) < 5 && now_ms() < end) usleep(2000);
  cr_assert_eq(atomic_load(&seen.received), 5);
  cr_assert_eq(memcmp(seen.data, "world", 5), 0);
  /* The close lingers: the write side is shut, so the peer reads EOF. */
  cr_assert_eq(read_within(s, buf, sizeof buf, 2000), 0, "EOF after the close");
  cr_assert(wait_for(&seen.closes, 1, 2000), "on_close never ran");
  close(s);
  const struct rc_conn_stats *st = rc_loop_stats(l);
  end = now_ms() + 2000;
  while (atomic_load(&st->conns_open) && now_ms() < end) usleep(2000);
  cr_assert_eq(atomic_load(&st->conns_open), 0, "the slot was released");
  cr_assert_eq(atomic_load(&st->conns_accepted), 0, "an outbound connection is not accepted");
  stop_loop(l);
  cr_assert_eq(atomic_load(&seen.closes), 1, "on_close exactly once");
  cr_assert_eq(atomic_load(&seen.dones), 1, "done exactly once");
  close(lfd);
  cr_assert_eq(count_fds(), fds_before - 1, "every socket closed (the listener too)");
}

Test(loop_connect, refused) {
  reset_seen();
  /* Bound but not listening: the port is ours, and a SYN to it is reset. */
  int bfd = local_socket(-1);
  seen.n_connects = 1;
  seen.timeout_ms = 2000;
  int fds_before = count_fds();
  struct rc_loop *l = start_loop(8, NULL, 0);
  cr_assert_eq(seen.start_ret[0], 0);
  cr_assert(wait_for(&seen.dones, 1, 3000), "done never ran");
  cr_assert_eq(seen.res[0], -ECONNREFUSED, "got %d (%s)", seen.res[0], strerror(-seen.res[0]));
  stop_loop(l);
  cr_assert_eq(atomic_load(&seen.dones), 1);
  cr_assert_eq(atomic_load(&seen.closes), 0);
  cr_assert_eq(count_fds(), fds_before, "the socket was closed");
  close(bfd);
}

Test(loop_connect, times_out) {
  reset_seen();
  int fillers[16];
  unsigned n;
  int lfd = full_listener(fillers, 16, &n);
  seen.n_connects = 1;
  seen.timeout_ms = 300;
  int fds_before = count_fds();
  uint64_t t0 = now_ms();
  struct rc_loop *l = start_loop(8, NULL, 0);
  cr_assert_eq(seen.start_ret[0], 0);
  cr_assert(wait_for(&seen.dones, 1, 5000), "done never ran");
  uint64_t took = now_ms() - t0;
  cr_assert_eq(seen.res[0], -ETIMEDOUT, "got %d (%s)", seen.res[0], strerror(-seen.res[0]));
  cr_assert_geq(took, 250, "timed out early (%llu ms)", (unsigned long long)took);
  cr_assert_lt(took, 3000, "timed out late (%llu ms)", (unsigned long long)took);
  stop_loop(l);
  cr_assert_eq(atomic_load(&seen.dones), 1);
  cr_assert_eq(count_fds(), fds_before);
  for (unsigned i = 0; i < n; i++) close(fillers[i]);
  close(lfd);
}

/* timeout_ms 10 s, or none at all: a pending connect either way when the stop
 * comes. */
static void cancel_on_stop(unsigned timeout_ms) {
  reset_seen();
  int fillers[16];
  unsigned n;
  int lfd = full_listener(fillers, 16, &n);
  seen.n_connects = 1;
  seen.timeout_ms = timeout_ms;
  int fds_before = count_fds();
  struct rc_loop *l = start_loop(8, NULL, 0);
  cr_assert_eq(seen.start_ret[0], 0);
  usleep(100 * 1000);
  cr_assert_eq(atomic_load(&seen.dones), 0, "the connect ended by itself: %d", seen.res[0]);
  uint64_t t0 = now_ms();
  rc_loop_stop(l);
  rc_loop_join(l);
  cr_assert_lt(now_ms() - t0, 1500, "the stop waited for the connect");
  cr_assert_eq(atomic_load(&seen.dones), 1, "done exactly once");
  cr_assert_eq(seen.res[0], -ECANCELED, "got %d (%s)", seen.res[0], strerror(-seen.res[0]));
  rc_loop_destroy(l);
  cr_assert_eq(count_fds(), fds_before, "the socket was closed");
  for (unsigned i = 0; i < n; i++) close(fillers[i]);
  close(lfd);
}

Test(loop_connect, stop_cancels_pending) { cancel_on_stop(10000); }
Test(loop_connect, stop_cancels_pending_without_timeout) { cancel_on_stop(0); }

static void on_start_bad(struct rc_loop *l) {
  on_start(l);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  seen.sync_ret[0] = rc_loop_connect(l, (struct sockaddr *)&un, sizeof un, 100, &ops, NULL, done,
                                     (void *)(uintptr_t)0);
  seen.sync_ret[1] = rc_loop_connect(l, (struct sockaddr *)&seen.target, 4, 100, &ops, NULL, done,
                                     (void *)(uintptr_t)0);
  seen.sync_ret[2] = rc_loop_connect(l, (struct sockaddr *)&seen.target, seen.target_len, 100,
                                     &ops, NULL, done, (void *)(uintptr_t)0);
}

Test(loop_connect, refusals_never_call_done) {
  reset_seen();
  int fillers[16];
  unsigned n;
  int lfd = full_listener(fillers, 16, &n);
  seen.n_connects = RC_LINK_SLOTS;
  struct rc_loop_hooks h = hooks;
  h.on_start = on_start_bad;
  struct rc_loop_params p = {.id = 0, .cpu = -1, .max_conns = 8,
                             .slot_size = sizeof(struct rc_conn), .max_queue = 1 << 20};
  struct rc_loop *l;
  cr_assert_eq(rc_loop_create(&p, &h, &l), 0);
  loops[0] = l;
  rc_loop_set_peers(l, loops, 1);
  int ret = rc_loop_start(l);
  if (ret == -ENOSYS || ret == -EPERM) cr_skip_test("io_uring unavailable");
  cr_assert_eq(ret, 0);
  for (unsigned i = 0; i < RC_LINK_SLOTS; i++) cr_assert_eq(seen.start_ret[i], 0, "connect %u", i);
  cr_assert_eq(seen.sync_ret[0], -EAFNOSUPPORT);
  cr_assert_eq(seen.sync_ret[1], -EINVAL);
  cr_assert_eq(seen.sync_ret[2], -ENFILE, "every link slot is taken");
  usleep(50 * 1000);
  cr_assert_eq(atomic_load(&seen.dones), 0);
  stop_loop(l);
  cr_assert_eq(atomic_load(&seen.dones), RC_LINK_SLOTS, "only the started connects end");
  for (unsigned i = 0; i < RC_LINK_SLOTS; i++) cr_assert_eq(seen.res[i], -ECANCELED);
  for (unsigned i = 0; i < n; i++) close(fillers[i]);
  close(lfd);
}

/* With max_conns 1 and every link slot connected, the first public client is
 * still within the limit and the second past it. */
Test(loop_connect, links_are_outside_max_conns) {
  reset_seen();
  int lfd = local_socket(RC_LINK_SLOTS + 16); /* a backlog for every link slot */
  seen.n_connects = RC_LINK_SLOTS;
  seen.timeout_ms = 2000;
  struct rc_listen_addr la;
  cr_assert_eq(rc_config_parse_listen("127.0.0.1:0", &la), 0);
  struct rc_loop_socket sock = {.addr = &la, .fd = -1};
  struct rc_loop *l = start_loop(1, &sock, 1);
  cr_assert(wait_for(&seen.dones, RC_LINK_SLOTS, 3000), "connects did not finish");
  for (unsigned i = 0; i < RC_LINK_SLOTS; i++) cr_assert_eq(seen.res[i], 0, "connect %u", i);
  int lfds[1];
  bool admin[1];
  cr_assert_eq(rc_loop_listeners(l, lfds, admin, 1), 1);
  struct sockaddr_storage pub;
  socklen_t pub_len = sizeof pub;
  cr_assert_eq(getsockname(lfds[0], (struct sockaddr *)&pub, &pub_len), 0);
  int clients[2];
  for (int i = 0; i < 2; i++) {
    clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(clients[i], (struct sockaddr *)&pub, pub_len), 0);
    cr_assert(wait_for(&seen.accepts, i + 1, 2000), "client %d not accepted", i);
  }
  cr_assert_eq(atomic_load(&seen.accepts_over), 1, "only the second client is over the limit");
  stop_loop(l);
  cr_assert_eq(atomic_load(&seen.closes), RC_LINK_SLOTS + 2);
  for (int i = 0; i < 2; i++) close(clients[i]);
  close(lfd);
}
