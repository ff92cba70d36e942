/* SPDX-License-Identifier: MIT */
/* The whole server, wired: one pub/sub engine, one shard loop per thread with its
 * session context, and the hooks that join them. main() drives it. */
#ifndef RINGCAST_SESSION_SERVER_H
#define RINGCAST_SESSION_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "ringcast/util/config.h"

struct rc_server;

/* Listening sockets handed over by the server this one replaces (--takeover). */
#define RC_SERVER_MAX_ADOPTED (RC_MAX_SHARDS * (RC_CONFIG_MAX_LISTEN + 1))
struct rc_server_adopted {
  unsigned n;
  int fd[RC_SERVER_MAX_ADOPTED];
  /* The address each serves: an index in cfg->listen, or cfg->n_listen for
   * --admin-listen. */
  unsigned addr[RC_SERVER_MAX_ADOPTED];
};

/* Main thread: creates the engine and every shard (listeners open; no thread
 * yet). adopted (NULL: none) are spread over the shards, each keeping its
 * queue; shards left without one open a new socket that joins the
 * SO_REUSEPORT group. The server owns every adopted fd from here on, even on
 * failure. 0 or a negative errno, logged. cfg must outlive the server. */
int rc_server_create(const struct rc_config *cfg, const struct rc_server_adopted *adopted,
                     struct rc_server **out);
/* Starts every shard's thread and waits until each ring is up. 0 or the first
 * shard's set-up error (the shards started so far keep running: stop them). */
int rc_server_start(struct rc_server *srv);
/* Any thread: asks every shard to close its connections (1001) and stop. */
void rc_server_stop(struct rc_server *srv);
void rc_server_join(struct rc_server *srv);
/* Main thread: the server drains over cfg->drain_seconds: /readyz answers 503,
 * every connection is told when to reconnect and closed at its own time. Until
 * handed_over, the listeners stay open and new upgrades get 503 (closing a
 * listener would reset its queue); once a successor has the listeners, the
 * few connections accepted before it took them are served, then closed with
 * the rest. Called again with handed_over, it only changes that. */
void rc_server_drain(struct rc_server *srv, bool handed_over);
/* Main thread, while running: every shard's listening sockets (the shards
 * still own them) and which are administrative. Returns how many, at most max. */
unsigned rc_server_listeners(const struct rc_server *srv, int *fds, bool *admin, unsigned max);
/* Any thread: every shard stops accepting and closes its listening sockets. */
void rc_server_release_listeners(struct rc_server *srv);
/* Any thread: every shard looks at its listening sockets' queues again
 * (rc_loop_repoll_accepts): after another process sharing them cancelled its
 * accepts (a predecessor that let go, a successor that died). */
void rc_server_repoll_accepts(struct rc_server *srv);
/* Any thread: whether every shard has closed its listening sockets since
 * rc_server_release_listeners. */
bool rc_server_listeners_closed(const struct rc_server *srv);
/* Any thread: connections open on all shards, as of each one's last turn. */
uint64_t rc_server_conn_count(const struct rc_server *srv);
/* After join: frees everything. */
void rc_server_destroy(struct rc_server *srv);

#endif
