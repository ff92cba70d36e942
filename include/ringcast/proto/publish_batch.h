/* SPDX-License-Identifier: MIT */
/* The batch publish body: records of "TOPIC SP LENGTH LF PAYLOAD LF", binary safe.
 * Pure parser. */
#ifndef RINGCAST_PUBLISH_BATCH_H
#define RINGCAST_PUBLISH_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rc_batch_record {
  const char *topic;
  size_t topic_len;
  const uint8_t *payload;
  size_t payload_len;
};

/* Parses the record at body[pos..len). Returns the bytes consumed (> 0), 0 at the
 * end of the body, or -EINVAL with the reason in err. A record's topic must be a
 * valid topic name and its payload at most max_payload bytes. */
ssize_t rc_publish_batch_next(const uint8_t *body, size_t len, size_t pos, size_t max_payload,
                              struct rc_batch_record *rec, char *err, size_t err_size);

#endif
