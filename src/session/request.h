/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 requests on a connection: routes, the WebSocket upgrade, publish,
 * metrics and health. Shard thread only. */
#ifndef RINGCAST_SESSION_REQUEST_H
#define RINGCAST_SESSION_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_link.h"
#include "session.h"

/* Consumes bytes received on an HTTP connection. */
void rc_request_on_data(struct rc_loop *l, struct rc_session *s, uint8_t *p, size_t n);
/* With --redis: Redis answered the POST /publish that s awaits (the 200 with
 * its seq, or a 503 that says why); what came behind it is served next. */
void rc_request_publish_answered(struct rc_loop *l, struct rc_session *s,
                                 const struct rc_publish_result *r);
/* With --redis: Redis answered the GET /topics/<name> that s awaits. */
void rc_request_count_answered(struct rc_loop *l, struct rc_session *s, const struct rc_redis_count *c);
/* Sends a plain HTTP response and closes after it when close_after. */
void rc_request_respond(struct rc_loop *l, struct rc_session *s, int status,
                        const char *content_type, const char *extra_headers, const void *body,
                        size_t body_len, bool close_after);
/* Replies {"error":"..."} with the formatted, JSON-escaped reason. */
void rc_request_error(struct rc_loop *l, struct rc_session *s, int status, bool close_after,
                      const char *extra_headers, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
