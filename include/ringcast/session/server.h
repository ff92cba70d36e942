/* SPDX-License-Identifier: MIT */
/* The whole server, wired: one pub/sub engine, one shard loop per thread with its
 * session context, and the hooks that join them. main() drives it. */
#ifndef RINGCAST_SESSION_SERVER_H
#define RINGCAST_SESSION_SERVER_H

#include "ringcast/util/config.h"

struct rc_server;

/* Main thread: creates the engine and every shard (listeners open; no thread
 * yet). 0 or a negative errno, logged. cfg must outlive the server. */
int rc_server_create(const struct rc_config *cfg, struct rc_server **out);
/* Starts every shard's thread and waits until each ring is up. 0 or the first
 * shard's set-up error (the shards started so far keep running: stop them). */
int rc_server_start(struct rc_server *srv);
/* Any thread: asks every shard to close its connections (1001) and stop. */
void rc_server_stop(struct rc_server *srv);
void rc_server_join(struct rc_server *srv);
/* After join: frees everything. */
void rc_server_destroy(struct rc_server *srv);

#endif
