/* SPDX-License-Identifier: MIT */
/* A subscriber's position in a topic's stream, as clients write it: the topic's
 * epoch (16 lowercase hex digits) and the last sequence number it has, in a
 * URL's since=TOPIC:EPOCH:SEQ,... or a command's "since" object. Pure. */
#ifndef RINGCAST_PROTO_POSITION_H
#define RINGCAST_PROTO_POSITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_EPOCH_TEXT_LEN 16

/* Writes the epoch's 16 hex digits and a NUL. */
void rc_epoch_format(uint64_t epoch, char out[RC_EPOCH_TEXT_LEN + 1]);
/* Exactly 16 hex digits (either case). */
bool rc_epoch_parse(const char *p, size_t n, uint64_t *out);
/* A sequence number: 1 to 20 decimal digits, no sign, at most 2^63 - 1. */
bool rc_seq_parse(const char *p, size_t n, uint64_t *out);
/* One TOPIC:EPOCH:SEQ item of a since= list. The topic may itself hold ':', so
 * the last two fields are split off from the right. 0 or -EINVAL; the topic is
 * not checked against the name grammar here. */
int rc_position_parse(const char *p, size_t n, const char **topic, size_t *topic_len,
                      uint64_t *epoch, uint64_t *seq);

#endif
