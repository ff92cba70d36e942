/* SPDX-License-Identifier: MIT */
/* Encoding published messages and private frames into single allocations, and
 * the shard-level (atomic) half of the split reference count. */
#include "ringcast/frame.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/json_out.h"
#include "ringcast/topic.h"
#include "ringcast/utf8.h"
#include "ringcast/ws.h"

static struct rc_msg *msg_alloc(uint16_t owner, size_t len) {
  struct rc_msg *m = malloc(sizeof *m + len);
  if (!m) return NULL;
  m->item.kind = RC_INBOX_RETURN;
  atomic_init(&m->shard_refs, 1);
  m->owner = owner;
  m->raw_hdr_len = 0;
  m->topic = NULL;
  m->seq = 0;
  m->env_len = (uint32_t)len;
  m->raw_off = 0;
  m->raw_len = 0;
  return m;
}

struct rc_msg *rc_msg_create_bytes(uint16_t owner, size_t len) {
  if (len > UINT32_MAX) return NULL;
  return msg_alloc(owner, len);
}

struct rc_msg *rc_msg_create_ws(uint16_t owner, uint8_t opcode, const void *payload,
                                size_t len) {
  uint8_t hdr[10];
  size_t hl = rc_ws_encode_header(hdr, opcode, true, len);
  struct rc_msg *m = rc_msg_create_bytes(owner, hl + len);
  if (!m) return NULL;
  memcpy(m->data, hdr, hl);
  if (len) memcpy(m->data + hl, payload, len);
  return m;
}

struct rc_msg *rc_msg_create_close(uint16_t owner, unsigned code, const char *reason) {
  uint8_t body[RC_WS_MAX_CONTROL_PAYLOAD];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > sizeof body - 2) rl = sizeof body - 2;
  body[0] = (uint8_t)(code >> 8);
  body[1] = (uint8_t)code;
  if (rl) memcpy(body + 2, reason, rl);
  return rc_msg_create_ws(owner, RC_WS_OP_CLOSE, body, 2 + rl);
}

enum rc_payload_class rc_payload_classify(const uint8_t *p, size_t len) {
  if (!rc_utf8_is_valid(p, len)) return RC_PAYLOAD_BINARY;
  if (len == 0) return RC_PAYLOAD_TEXT;
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts((const char *)p, len, &end, 0);
  if (!j) return RC_PAYLOAD_TEXT;
  cJSON_Delete(j);
  for (const char *c = end; c < (const char *)p + len; c++)
    if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') return RC_PAYLOAD_TEXT;
  return RC_PAYLOAD_JSON;
}

struct rc_msg *rc_msg_create_published(uint16_t owner, struct rc_topic *topic,
                                       uint64_t seq, const uint8_t *payload, size_t len,
                                       enum rc_payload_class cls) {
  char prefix[RC_TOPIC_NAME_MAX + 96];
  int pl = snprintf(prefix, sizeof prefix, "{\"type\":\"msg\",\"topic\":\"%s\",\"seq\":%" PRIu64
                    ",\"%s\":", topic->name, seq, cls == RC_PAYLOAD_BINARY ? "data_b64" : "data");
  size_t body_len;
  switch (cls) {
  case RC_PAYLOAD_JSON: body_len = len; break;
  case RC_PAYLOAD_TEXT: body_len = 2 + rc_json_escaped_len(payload, len); break;
  default: body_len = 2 + rc_base64_len(len); break;
  }
  size_t env_payload = (size_t)pl + body_len + 1;
  uint8_t hdr[10];
  size_t hl = rc_ws_encode_header(hdr, RC_WS_OP_TEXT, true, env_payload);
  size_t env_len = hl + env_payload;
  /* The raw view reuses the payload inside the envelope when it is there verbatim;
   * otherwise a copy follows the envelope (+1 for base64's terminator). */
  size_t total = env_len + (cls == RC_PAYLOAD_JSON ? 0 : len + 1);
  if (total > UINT32_MAX) return NULL;
  struct rc_msg *m = msg_alloc(owner, total);
  if (!m) return NULL;
  uint8_t *o = m->data;
  memcpy(o, hdr, hl);
  o += hl;
  memcpy(o, prefix, (size_t)pl);
  o += pl;
  switch (cls) {
  case RC_PAYLOAD_JSON:
    m->raw_off = (uint32_t)(o - m->data);
    memcpy(o, payload, len);
    o += len;
    break;
  case RC_PAYLOAD_TEXT:
    *o++ = '"';
    o += rc_json_escape((char *)o, payload, len);
    *o++ = '"';
    break;
  default:
    *o++ = '"';
    o += rc_base64_encode((char *)o, payload, len);
    *o++ = '"';
    break;
  }
  *o++ = '}';
  m->env_len = (uint32_t)env_len;
  if (cls != RC_PAYLOAD_JSON) {
    m->raw_off = (uint32_t)env_len;
    memcpy(m->data + env_len, payload, len);
  }
  m->raw_len = (uint32_t)len;
  m->raw_hdr_len = (uint8_t)rc_ws_encode_header(
      m->raw_hdr, cls == RC_PAYLOAD_BINARY ? RC_WS_OP_BINARY : RC_WS_OP_TEXT, true, len);
  m->topic = topic;
  m->seq = seq;
  return m;
}

void rc_msg_destroy(struct rc_msg *m) { free(m); }

int rc_msg_view_iov(const struct rc_msg *m, enum rc_msg_view view, struct iovec iov[2]) {
  if (view == RC_VIEW_RAW && m->raw_hdr_len) {
    iov[0].iov_base = (void *)m->raw_hdr;
    iov[0].iov_len = m->raw_hdr_len;
    iov[1].iov_base = (void *)(m->data + m->raw_off);
    iov[1].iov_len = m->raw_len;
    return m->raw_len ? 2 : 1;
  }
  iov[0].iov_base = (void *)m->data;
  iov[0].iov_len = m->env_len;
  return 1;
}

size_t rc_msg_view_len(const struct rc_msg *m, enum rc_msg_view view) {
  if (view == RC_VIEW_RAW && m->raw_hdr_len) return (size_t)m->raw_hdr_len + m->raw_len;
  return m->env_len;
}

bool rc_msg_shard_unref(struct rc_msg *m) {
  /* acq_rel: the release half orders this shard's reads of the message before
   * its decrement; the acquire half, in whichever shard takes the count to zero,
   * orders every other shard's reads before the free. (Rather than release plus
   * an acquire fence on the last one: ThreadSanitizer does not model fences, and
   * on x86 the locked decrement is a full barrier either way.) */
  return atomic_fetch_sub_explicit(&m->shard_refs, 1, memory_order_acq_rel) == 1;
}
