/* SPDX-License-Identifier: MIT */
/* Start-up and shutdown: flags, resource limits, taking over from a running
 * server or refusing to share its address, the server, and the main thread's
 * wait for signals and successors (SIGTERM drains, SIGINT or a second SIGTERM
 * stops at once, a successor on the control socket takes the listeners). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/session/handover.h"
#include "ringcast/session/server.h"
#include "ringcast/util/config.h"
#include "ringcast/util/log.h"
#include "ringcast/util/pidfile.h"

/* After the window, connections still closing get this long before the stop
 * that cuts them (which itself waits up to two seconds more). */
#define DRAIN_GRACE_MS 1000
/* How long a successor may take between receiving the sockets and saying it
 * accepts on them (its rings, file tables and TLS set-up). */
#define SUCCESSOR_DEADLINE_MS 60000
#define POLL_MS 100

/* jemalloc's control interface; weak, since sanitizer builds run without it. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

/* Memory a burst of load took goes back to the kernel once the load goes: pages
 * unused for a second are purged (none kept "muzzy"), by a background thread, so
 * a shard that has gone idle (and so never enters the allocator) still gives its
 * pages back. Set through mallctl before any thread starts: Debian's jemalloc
 * does not read a malloc_conf defined by the program. MALLOC_CONF still wins for
 * anything it names. */
static void tune_allocator(void) {
  if (!mallctl || getenv("MALLOC_CONF")) return;
  ssize_t dirty = 1000, muzzy = 0;
  bool on = true;
  /* The defaults for arenas made from now on (each shard thread gets its own),
   * and the one arena that exists already. */
  static const char *const names[] = {"arenas.dirty_decay_ms", "arenas.muzzy_decay_ms",
                                      "arena.0.dirty_decay_ms", "arena.0.muzzy_decay_ms"};
  for (int i = 0; i < 4; i++) {
    ssize_t *v = i % 2 ? &muzzy : &dirty;
    if (mallctl(names[i], NULL, NULL, v, sizeof *v) != 0) rc_warn("jemalloc: could not set %s", names[i]);
  }
  if (mallctl("background_thread", NULL, NULL, &on, sizeof on) != 0)
    rc_warn("jemalloc: no background thread; freed memory returns only as shards allocate");
}

static int raise_nofile(void) {
  /* The kernel checks each ring's direct-descriptor table against the soft limit
   * (and liburing 2.3's own retry ignores setrlimit failures): raise it first. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -errno;
  if (rl.rlim_cur == rl.rlim_max) return 0;
  rl.rlim_cur = rl.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Who serves a: the ringcast answering on the control socket named after it
 * or on ours, else the one --pid-file names if it lives; 0 if unknown. */
static pid_t owner_of(const struct rc_config *cfg, const struct rc_listen_addr *a,
                      const struct rc_handover_name *ctl) {
  struct rc_handover_name name;
  pid_t pid = 0;
  if (rc_handover_name_of(a, &name) == 0) pid = rc_handover_owner(&name);
  if (!pid && ctl) pid = rc_handover_owner(ctl);
  if (!pid && cfg->pid_file) {
    pid = rc_pidfile_read(cfg->pid_file);
    if (pid && kill(pid, 0) < 0 && errno == ESRCH) pid = 0;
  }
  return pid;
}

/* SO_REUSEPORT would let a second server silently share the port (and half the
 * connections): refuse to start on an address someone already serves. */
static int refuse_if_served(const struct rc_config *cfg, const struct rc_handover_name *ctl) {
  for (unsigned i = 0; i <= cfg->n_listen; i++) {
    if (i == cfg->n_listen && !cfg->has_admin) break;
    const struct rc_listen_addr *a = i == cfg->n_listen ? &cfg->admin : &cfg->listen[i];
    /* Anything but "in use" (say, EACCES below port 1024) is for the real bind
     * to report. */
    if (rc_handover_probe(a) != -EADDRINUSE) continue;
    pid_t pid = owner_of(cfg, a, ctl);
    char who[64] = "another process";
    if (pid) snprintf(who, sizeof who, "another process (pid %ld)", (long)pid);
    rc_err("%s%s is already served by %s: stop it, or start this one with --takeover to "
           "replace it without refusing a connection", i == cfg->n_listen ? "--admin-listen " : "",
           a->text, who);
    return -EADDRINUSE;
  }
  return 0;
}

/* --takeover: the running server's listening sockets, each matched to the
 * address of ours it serves. Returns the control connection, kept open until
 * we accept on them. */
static int take_sockets(const struct rc_config *cfg, const struct rc_handover_name *ctl,
                        struct rc_server_adopted *adopted) {
  static int fds[RC_SERVER_MAX_ADOPTED];
  char err[256];
  pid_t pid;
  int conn = rc_handover_connect(ctl, &pid, err, sizeof err);
  if (conn == -EPERM)
    /* Another user holds the name (an abstract name has no permissions): it is
     * no ringcast of ours, and must not keep a server from starting. */
    rc_warn("--takeover: %s; treating the address as not served by ringcast", err);
  if (conn == -ECONNREFUSED || conn == -ENOENT || conn == -EPERM) {
    /* No ringcast to replace: a first start under a blue/green unit that always
     * passes --takeover. Start fresh, unless something else holds the address. */
    if (refuse_if_served(cfg, ctl) < 0) {
      rc_err("--takeover: %s", err);
      return conn;
    }
    rc_info("--takeover: no ringcast answers on %s; starting fresh", ctl->text);
    return -EAGAIN;
  }
  if (conn < 0) {
    rc_err("--takeover: %s", err);
    return conn;
  }
  unsigned n;
  int ret = rc_handover_receive(conn, fds, RC_SERVER_MAX_ADOPTED, &n, err, sizeof err);
  if (ret < 0) {
    rc_err("--takeover from pid %ld: %s", (long)pid, err);
    close(conn);
    return ret;
  }
  adopted->n = 0;
  for (unsigned i = 0; i < n; i++) {
    int a = rc_handover_match(cfg, fds[i]);
    if (a < 0) {
      /* Its queue is reset: the new configuration dropped the address. */
      rc_warn("--takeover: a listening socket of pid %ld serves no address of ours; closing it",
              (long)pid);
      close(fds[i]);
      continue;
    }
    adopted->fd[adopted->n] = fds[i];
    adopted->addr[adopted->n++] = (unsigned)a;
  }
  rc_info("taking over from pid %ld: %u listening sockets handed over", (long)pid, adopted->n);
  return conn;
}

/* The successor's half after the server runs: tell the old server, then answer
 * on the control socket ourselves. The connection stays open until the old
 * server says its copies of the sockets are closed (lifecycle.predecessor). */
static int finish_takeover(int conn, const struct rc_handover_name *ctl, char *err, size_t size) {
  int ret = rc_handover_finish(conn, err, size);
  if (ret < 0) return ret;
  return rc_handover_listen(ctl, err, size);
}

static int commit_pid_file(int *fd, const char *path) {
  char err[512];
  int ret = rc_pidfile_commit(*fd, path, err, sizeof err);
  *fd = -1;
  if (ret < 0) rc_err("%s; stopping", err);
  return ret;
}

struct lifecycle {
  struct rc_server *srv;
  const struct rc_config *cfg;
  const struct rc_handover_name *ctl;
  int ctl_fd;                /* our control socket; -1: none */
  int sig_fd;                /* SIGINT and SIGTERM */
  int successor;             /* a successor's connection mid-exchange; -1: none */
  pid_t successor_pid;
  int released_to;           /* the successor's, until our listeners are closed; -1: none */
  int predecessor;           /* the old server's, until it closed its listeners; -1: none */
  uint64_t successor_deadline;
  bool draining;
  bool handed_over;          /* a successor has the listeners */
  bool sigterm_seen;
  uint64_t drain_start, drain_deadline;
};

static void start_drain(struct lifecycle *lc, bool handed_over, const char *why) {
  rc_server_drain(lc->srv, handed_over);
  if (lc->draining) {
    rc_info("%s; the drain goes on, %llu connections left", why,
            (unsigned long long)rc_server_conn_count(lc->srv));
    return;
  }
  lc->draining = true;
  lc->drain_start = now_ms();
  lc->drain_deadline = lc->drain_start + lc->cfg->drain_seconds * 1000ull + DRAIN_GRACE_MS;
  rc_info("%s: draining %llu connections over %u s (/readyz answers 503; each WebSocket client "
          "is told when to reconnect, then closed with 1001; a second SIGTERM or SIGINT stops "
          "at once)", why, (unsigned long long)rc_server_conn_count(lc->srv),
          lc->cfg->drain_seconds);
}

static void on_successor(struct lifecycle *lc) {
  pid_t pid;
  int conn = rc_handover_accept(lc->ctl_fd, &pid);
  if (conn < 0) return;
  if (lc->successor >= 0) {
    rc_warn("control socket: pid %ld asked to take over while pid %ld is doing so; refused",
            (long)pid, (long)lc->successor_pid);
    rc_handover_refuse(conn, "another takeover is in progress");
    close(conn);
    return;
  }
  /* The exchange is synchronous: a peer of our own user that connects and
   * says nothing must not hold back a signal. Wait for its hello and for the
   * signals together; a signal wins and the peer is dropped. */
  struct pollfd pf[2] = {{.fd = conn, .events = POLLIN}, {.fd = lc->sig_fd, .events = POLLIN}};
  int ready = poll(pf, 2, RC_HANDOVER_TIMEOUT_MS);
  if (ready <= 0 || (pf[1].revents & POLLIN) || !(pf[0].revents & (POLLIN | POLLHUP))) {
    rc_info("control socket: pid %ld sent no hello %s; still serving", (long)pid,
            ready > 0 ? "before a signal" : "in time");
    close(conn);
    return;
  }
  static int fds[RC_SERVER_MAX_ADOPTED];
  static bool admin[RC_SERVER_MAX_ADOPTED];
  unsigned n = rc_server_listeners(lc->srv, fds, admin, RC_SERVER_MAX_ADOPTED);
  char err[256];
  if (rc_handover_offer(conn, fds, n, err, sizeof err) < 0) {
    /* A second server asking who serves the port goes away without a hello. */
    rc_info("control socket: pid %ld: %s; still serving", (long)pid, err);
    close(conn);
    return;
  }
  rc_info("handing %u listening sockets to pid %ld; accepting until it says it accepts", n,
          (long)pid);
  lc->successor = conn;
  lc->successor_pid = pid;
  lc->successor_deadline = now_ms() + SUCCESSOR_DEADLINE_MS;
}

/* Returns true when the server should stop now. */
static bool on_successor_done(struct lifecycle *lc, bool readable) {
  int ret = readable ? rc_handover_read_done(lc->successor) : -ETIMEDOUT;
  if (ret < 0) {
    rc_warn("takeover by pid %ld failed (%s); still serving on every listener",
            (long)lc->successor_pid, ret == -EPIPE ? "it went away" : strerror(-ret));
    close(lc->successor);
    lc->successor = -1;
    /* Its accepts died with it, perhaps with a connection's wake-up. */
    rc_server_repoll_accepts(lc->srv);
    return false;
  }
  /* The name is the successor's from now on: let go of it before confirming. */
  rc_handover_unlisten(lc->ctl_fd, lc->ctl);
  lc->ctl_fd = -1;
  if (rc_handover_confirm(lc->successor) < 0)
    rc_warn("pid %ld took over but did not wait for the confirmation", (long)lc->successor_pid);
  lc->released_to = lc->successor;
  lc->successor = -1;
  /* Our copies of the sockets go; the successor's keep the queues. */
  rc_server_release_listeners(lc->srv);
  lc->handed_over = true;
  char why[64];
  snprintf(why, sizeof why, "pid %ld took over the listeners", (long)lc->successor_pid);
  if (lc->cfg->drain_seconds == 0) {
    rc_info("%s: closing connections with 1001 and stopping", why);
    return true;
  }
  start_drain(lc, true, why);
  return false;
}

/* The main thread's life while the shards run: signals, successors, the drain. */
static void serve(struct lifecycle *lc, int sig_fd) {
  for (;;) {
    struct pollfd p[4] = {{.fd = sig_fd, .events = POLLIN},
                          {.fd = lc->ctl_fd, .events = POLLIN},
                          {.fd = lc->successor, .events = POLLIN},
                          {.fd = lc->predecessor, .events = POLLIN}};
    int timeout = lc->draining || lc->successor >= 0 || lc->released_to >= 0 ? POLL_MS : -1;
    if (poll(p, 4, timeout) < 0 && errno != EINTR) {
      rc_err("poll: %s; stopping", strerror(errno));
      return;
    }
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        const char *name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
        bool second = lc->sigterm_seen;
        if (si.ssi_signo == SIGTERM) lc->sigterm_seen = true;
        if (si.ssi_signo == SIGINT || second || lc->cfg->drain_seconds == 0) {
          rc_info("%s: closing connections with 1001 and stopping", name);
          return;
        }
        /* A service manager stopping a server that a successor replaced (it
         * drains already) is not asking to cut the drain short. */
        if (lc->draining)
          rc_info("SIGTERM: draining already since the hand-over; another SIGTERM or SIGINT "
                  "stops at once");
        else
          start_drain(lc, false, name);
      }
    }
    if (lc->ctl_fd >= 0 && (p[1].revents & POLLIN)) on_successor(lc);
    if (lc->successor >= 0 && ((p[2].revents & (POLLIN | POLLHUP | POLLERR)) ||
                               now_ms() >= lc->successor_deadline))
      if (on_successor_done(lc, p[2].revents != 0)) return;
    if (lc->released_to >= 0 && rc_server_listeners_closed(lc->srv)) {
      (void)!rc_handover_released(lc->released_to); /* gone or not, closing says it too */
      close(lc->released_to);
      lc->released_to = -1;
    }
    if (lc->predecessor >= 0 && p[3].revents) {
      /* Our accepts may have lost a wake-up to one of its accepts cancelled: a
       * connection queued then waits for the next to arrive, unless we look. */
      int ret = rc_handover_read_released(lc->predecessor);
      rc_debug("predecessor %s; looking at the listeners' queues again",
               ret == 0 ? "closed its listeners" : "went away");
      rc_server_repoll_accepts(lc->srv);
      close(lc->predecessor);
      lc->predecessor = -1;
    }
    if (lc->draining) {
      /* Handed over: connections our last accepts brought in are counted only
       * once the listeners are closed. */
      bool settled = !lc->handed_over || rc_server_listeners_closed(lc->srv);
      uint64_t left = rc_server_conn_count(lc->srv), now = now_ms();
      if (settled && left == 0) {
        rc_info("drain: every connection closed after %llu ms",
                (unsigned long long)(now - lc->drain_start));
        return;
      }
      if (now >= lc->drain_deadline) {
        rc_info("drain: window over with %llu connections left; closing them with 1001",
                (unsigned long long)left);
        return;
      }
    }
  }
}

int main(int argc, char **argv) {
  static struct rc_config cfg;
  int ret = rc_config_parse(&cfg, argc, argv, stdout, stderr);
  if (ret == 1) return 0;
  if (ret < 0) return 2;
  rc_log_set_level(cfg.log_level);
  rc_log_set_format(cfg.log_format);
  tune_allocator();
  if ((ret = raise_nofile()) < 0) rc_warn("raising RLIMIT_NOFILE: %s", strerror(-ret));
  /* The peer may vanish mid-send; io_uring sends carry MSG_NOSIGNAL, but be sure. */
  signal(SIGPIPE, SIG_IGN);

  /* Shards inherit this mask; only main reads the signals, through sig_fd. */
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
  int sig_fd = signalfd(-1, &stop_set, SFD_CLOEXEC);
  if (sig_fd < 0) {
    rc_err("signalfd: %s", strerror(errno));
    return 1;
  }

  struct rc_handover_name ctl;
  bool has_ctl = rc_handover_name(&cfg, &ctl) == 0;
  char err[512];
  int status = 1, pid_fd = -1, taking = -1;
  static struct rc_server_adopted adopted;
  struct rc_server *srv = NULL;
  struct lifecycle lc = {.cfg = &cfg, .ctl = &ctl, .ctl_fd = -1, .sig_fd = sig_fd, .successor = -1,
                         .released_to = -1, .predecessor = -1};
  /* A pid file that cannot be written fails before any socket is taken. */
  if (cfg.pid_file && (pid_fd = rc_pidfile_prepare(cfg.pid_file, err, sizeof err)) < 0) {
    rc_err("%s", err);
    goto out;
  }
  if (cfg.takeover) {
    if (!has_ctl) {
      rc_err("--takeover: the first --listen has no fixed port to find the running server by; "
             "give both servers the same --control-socket PATH");
      goto out;
    }
    if ((taking = take_sockets(&cfg, &ctl, &adopted)) < 0 && taking != -EAGAIN) goto out;
    if (taking < 0) cfg.takeover = false; /* nothing ran: a fresh start */
  } else if (refuse_if_served(&cfg, has_ctl ? &ctl : NULL) < 0) {
    goto out;
  }
  if (rc_server_create(&cfg, cfg.takeover ? &adopted : NULL, &srv) < 0) goto out;
  lc.srv = srv;
  /* Listening now (not accepting yet): a fresh server says so before its first
   * connection, so whoever sees it answer can find its pid and replace it. A
   * successor waits until the old server has let go of the name, and of the
   * pid file, which it must not replace before it serves. */
  if (taking < 0) {
    if (has_ctl && (lc.ctl_fd = rc_handover_listen(&ctl, err, sizeof err)) < 0)
      rc_warn("%s; serving, but no --takeover can replace this server", err);
    if (pid_fd >= 0 && commit_pid_file(&pid_fd, cfg.pid_file) < 0) goto out;
  }
  if (rc_server_start(srv) < 0) {
    rc_err("a shard could not start; stopping");
    goto stop;
  }
  if (taking >= 0) {
    /* Accepting on the sockets already: the old server may let go of them. */
    ret = finish_takeover(taking, &ctl, err, sizeof err);
    lc.predecessor = taking;
    taking = -1;
    if (ret >= 0) lc.ctl_fd = ret;
    else rc_warn("--takeover: %s; serving, but no later --takeover can replace this server", err);
    if (pid_fd >= 0 && commit_pid_file(&pid_fd, cfg.pid_file) < 0) goto stop;
  }
  for (unsigned l = 0; l < cfg.n_listen; l++)
    rc_info("listening on %s%s with %u shards (max %u connections each)%s", cfg.listen[l].text,
            cfg.listen[l].tls ? " (TLS: wss://, https://)" : "", cfg.threads, cfg.max_conns,
            cfg.demo_feed ? ", demo feed on" : "");
  if (lc.ctl_fd >= 0) rc_debug("control socket %s", ctl.text);
  serve(&lc, sig_fd);
  status = 0;
stop:
  rc_server_stop(srv);
  rc_server_join(srv);
out:
  if (taking >= 0) close(taking);
  if (lc.successor >= 0) close(lc.successor);
  if (lc.released_to >= 0) close(lc.released_to);
  if (lc.predecessor >= 0) close(lc.predecessor);
  rc_handover_unlisten(lc.ctl_fd, &ctl);
  rc_server_destroy(srv);
  if (pid_fd >= 0) rc_pidfile_abandon(pid_fd, cfg.pid_file);
  if (cfg.pid_file) rc_pidfile_remove(cfg.pid_file);
  close(sig_fd);
  if (status == 0) rc_info("stopped");
  return status;
}
