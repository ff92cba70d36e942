/* SPDX-License-Identifier: MIT */
/* The batch publish body: "TOPIC SP LENGTH LF PAYLOAD LF" repeated. Length-prefixed
 * so payloads may hold any byte, and a feed handler can write it without escaping. */
#include "ringcast/proto/publish_batch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/proto/topic_name.h"

ssize_t rc_publish_batch_next(const uint8_t *body, size_t len, size_t pos, size_t max_payload,
                              struct rc_batch_record *rec, char *err, size_t err_size) {
  if (pos >= len) return 0;
  const uint8_t *p = body + pos, *end = body + len;
  const uint8_t *sp = memchr(p, ' ', (size_t)(end - p) < RC_TOPIC_NAME_MAX + 1
                                         ? (size_t)(end - p) : RC_TOPIC_NAME_MAX + 1);
  if (!sp) {
    snprintf(err, err_size, "record at byte %zu: expected \"TOPIC LENGTH\\n\"", pos);
    return -EINVAL;
  }
  if (!rc_topic_name_is_valid((const char *)p, (size_t)(sp - p))) {
    snprintf(err, err_size, "record at byte %zu: invalid topic name (1-128 of A-Z a-z 0-9 . _ - : / @)",
             pos);
    return -EINVAL;
  }
  rec->topic = (const char *)p;
  rec->topic_len = (size_t)(sp - p);
  const uint8_t *q = sp + 1;
  size_t n = 0;
  int digits = 0;
  while (q < end && *q >= '0' && *q <= '9' && digits < 10) {
    n = n * 10 + (size_t)(*q - '0');
    q++;
    digits++;
  }
  if (!digits || q >= end || *q != '\n') {
    snprintf(err, err_size, "record at byte %zu: expected a decimal LENGTH then a newline", pos);
    return -EINVAL;
  }
  q++;
  if (n > max_payload) {
    snprintf(err, err_size, "record at byte %zu: payload of %zu bytes exceeds --max-message (%zu)",
             pos, n, max_payload);
    return -EINVAL;
  }
  if ((size_t)(end - q) < n + 1 || q[n] != '\n') {
    snprintf(err, err_size, "record at byte %zu: payload shorter than LENGTH or not followed by a newline",
             pos);
    return -EINVAL;
  }
  rec->payload = q;
  rec->payload_len = n;
  return (ssize_t)(q + n + 1 - p);
}
