/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 requests on a connection: routes, the WebSocket upgrade, publish,
 * metrics and health. Shard thread only. */
#ifndef RINGCAST_SESSION_REQUEST_H
#define RINGCAST_SESSION_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* Consumes bytes received on an HTTP connection. */
void rc_request_on_data(struct rc_loop *l, struct rc_session *s, uint8_t *p, size_t n);
/* Sends a plain HTTP response and closes after it when close_after. */
void rc_request_respond(struct rc_loop *l, struct rc_session *s, int status,
                        const char *content_type, const char *extra_headers, const void *body,
                        size_t body_len, bool close_after);
/* Replies {"error":"..."} with the formatted, JSON-escaped reason. */
void rc_request_error(struct rc_loop *l, struct rc_session *s, int status, bool close_after,
                      const char *extra_headers, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
