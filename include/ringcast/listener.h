/* SPDX-License-Identifier: MIT */
/* Listening sockets: one SO_REUSEPORT socket per shard and address, carrying the
 * options accepted connections inherit (a direct descriptor has no fd for
 * setsockopt). */
#ifndef RINGCAST_LISTENER_H
#define RINGCAST_LISTENER_H

#include "ringcast/config.h"

/* Returns a listening fd, or a negative errno with a message in err. */
int rc_listener_open(const struct rc_listen_addr *a, char *err, size_t err_size);

#endif
