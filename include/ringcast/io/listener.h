/* SPDX-License-Identifier: MIT */
/* Listening sockets: one SO_REUSEPORT socket per shard and address, carrying the
 * options accepted connections inherit (a direct descriptor has no fd for
 * setsockopt), and what an accept failure means. */
#ifndef RINGCAST_IO_LISTENER_H
#define RINGCAST_IO_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "ringcast/util/config.h"

/* Returns a listening fd, or a negative errno with a message in err. */
int rc_listener_open(const struct rc_listen_addr *a, char *err, size_t err_size);
/* Whether an accept error (positive errno) belongs to the one connection being
 * accepted (it reset, or the network failed under it), so accepting may go on at
 * once; anything else may persist and is retried after a back-off. */
bool rc_listener_error_is_transient(int err);
/* The next back-off after prev ms (0: none yet): 100 ms doubling to 2 s. */
unsigned rc_listener_backoff_ms(unsigned prev);

#endif
