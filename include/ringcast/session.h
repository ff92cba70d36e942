/* SPDX-License-Identifier: MIT */
/* What a connection's received bytes mean: HTTP requests (routes, the WebSocket
 * upgrade, publish, metrics) and then WebSocket frames and commands. Shard thread
 * only. */
#ifndef RINGCAST_SESSION_H
#define RINGCAST_SESSION_H

#include <stddef.h>
#include <stdint.h>

struct rc_shard;
struct rc_conn;

/* Consumes bytes received on an HTTP-state connection. */
void rc_http_on_data(struct rc_shard *sh, struct rc_conn *c, uint8_t *p, size_t n);
/* Consumes bytes received on a WebSocket connection (unmasks in place). */
void rc_ws_on_data(struct rc_shard *sh, struct rc_conn *c, uint8_t *p, size_t n);
/* Sends a plain HTTP response and closes after it when close_after. */
void rc_http_respond(struct rc_shard *sh, struct rc_conn *c, int status,
                     const char *content_type, const char *extra_headers, const void *body,
                     size_t body_len, int close_after);

#endif
