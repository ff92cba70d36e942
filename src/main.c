/* SPDX-License-Identifier: MIT */
/* Start-up and shutdown: flags, resource limits, the topic table, one shard per
 * CPU, and the signal wait that turns SIGINT/SIGTERM into a clean stop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/config.h"
#include "ringcast/fanout.h"
#include "ringcast/log.h"
#include "ringcast/shard.h"
#include "ringcast/topic.h"

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
  struct rc_config cfg;
  int ret = rc_config_parse(&cfg, argc, argv, stdout, stderr);
  if (ret == 1) return 0;
  if (ret < 0) return 2;
  rc_log_set_level(cfg.log_level);
  if ((ret = raise_nofile()) < 0) rc_warn("raising RLIMIT_NOFILE: %s", strerror(-ret));
  /* The peer may vanish mid-send; io_uring sends carry MSG_NOSIGNAL, but be sure. */
  signal(SIGPIPE, SIG_IGN);

  /* Shards inherit this mask; only main waits for the signals. */
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

  static struct rc_server srv;
  srv.cfg = &cfg;
  srv.nshards = cfg.threads;
  srv.topics = rc_topic_table_create(RC_TOPIC_TABLE_DEFAULT, cfg.threads);
  if (!srv.topics) {
    rc_err("out of memory creating the topic table");
    return 1;
  }
  int status = 1;
  unsigned created = 0, started = 0;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  for (; created < cfg.threads; created++) {
    int cpu = -1;
    if (cfg.pin) cpu = cfg.n_cpus ? cfg.cpus[created] : (int)(created % (unsigned)(ncpu > 0 ? ncpu : 1));
    if ((ret = rc_shard_create(&srv, created, cpu, &srv.shards[created])) < 0) {
      rc_err("creating shard %u failed: %s", created, strerror(-ret));
      goto out;
    }
  }
  for (; started < cfg.threads; started++) {
    if ((ret = rc_shard_start(srv.shards[started])) < 0) {
      rc_err("starting shard %u: %s", started, strerror(-ret));
      goto stop;
    }
  }
  while (atomic_load_explicit(&srv.ready, memory_order_acquire) < cfg.threads)
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  for (unsigned i = 0; i < cfg.threads; i++)
    if (srv.shards[i]->setup_error) {
      rc_err("shard %u could not start; stopping", i);
      goto stop;
    }
  for (unsigned l = 0; l < cfg.n_listen; l++)
    rc_info("listening on %s with %u shards (max %u connections each)%s", cfg.listen[l].text,
            cfg.threads, cfg.max_conns, cfg.demo_feed ? ", demo feed on" : "");

  int sig;
  sigwait(&stop_set, &sig);
  rc_info("%s: closing connections with 1001 and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  status = 0;
stop:
  atomic_store_explicit(&srv.stopping, 1, memory_order_release);
  for (unsigned i = 0; i < started; i++) rc_shard_wake_from_thread(srv.shards[i]);
  for (unsigned i = 0; i < started; i++) rc_shard_join(srv.shards[i]);
  for (unsigned i = 0; i < created; i++) rc_fanout_drain_at_exit(srv.shards[i]);
out:
  for (unsigned i = 0; i < created; i++) rc_shard_destroy(srv.shards[i]);
  rc_topic_table_destroy(srv.topics);
  if (status == 0) rc_info("stopped");
  return status;
}
