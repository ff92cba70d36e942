/* SPDX-License-Identifier: MIT */
/* The grammar of topic names, shared by every way a name reaches the server (URL,
 * command, publish path, batch record). Pure. */
#ifndef RINGCAST_PROTO_TOPIC_NAME_H
#define RINGCAST_PROTO_TOPIC_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define RC_TOPIC_NAME_MAX 128

/* Names are 1..128 bytes of [A-Za-z0-9._:/@-]: safe in URLs, JSON and logs
 * without escaping. */
bool rc_topic_name_is_valid(const char *name, size_t len);

#endif
