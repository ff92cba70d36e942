/* SPDX-License-Identifier: MIT */
/* A WebSocket connection's inbound side: frames, messages and commands.
 * Shard thread only. */
#ifndef RINGCAST_SESSION_WEBSOCKET_H
#define RINGCAST_SESSION_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* Consumes bytes received on a WebSocket connection (unmasks in place). */
void rc_websocket_on_data(struct rc_loop *l, struct rc_session *s, uint8_t *p, size_t n);
/* Sends the keepalive ping. */
void rc_websocket_ping(struct rc_loop *l, struct rc_session *s);

#endif
