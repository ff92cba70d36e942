/* SPDX-License-Identifier: MIT */
/* Start-up and shutdown: flags, resource limits, the server, and the signal wait
 * that turns SIGINT/SIGTERM into a clean stop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ringcast/session/server.h"
#include "ringcast/util/config.h"
#include "ringcast/util/log.h"

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

  /* Shards inherit this mask; only main waits for the signals. */
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

  struct rc_server *srv;
  if (rc_server_create(&cfg, &srv) < 0) return 1;
  int status = 1;
  if (rc_server_start(srv) == 0) {
    for (unsigned l = 0; l < cfg.n_listen; l++)
      rc_info("listening on %s%s with %u shards (max %u connections each)%s", cfg.listen[l].text,
              cfg.listen[l].tls ? " (TLS: wss://, https://)" : "", cfg.threads, cfg.max_conns,
              cfg.demo_feed ? ", demo feed on" : "");
    int sig;
    sigwait(&stop_set, &sig);
    rc_info("%s: closing connections with 1001 and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
  } else {
    rc_err("a shard could not start; stopping");
  }
  rc_server_stop(srv);
  rc_server_join(srv);
  rc_server_destroy(srv);
  if (status == 0) rc_info("stopped");
  return status;
}
