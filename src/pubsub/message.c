/* SPDX-License-Identifier: MIT */
/* Encoding a published message: the envelope and the raw view in one allocation.
 * When the payload is JSON it sits verbatim inside the envelope and the raw view
 * points at it; otherwise a copy of the payload follows the envelope. */
#include "ringcast/pubsub/message.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/proto/topic_name.h"
#include "ringcast/proto/utf8.h"
#include "ringcast/proto/ws.h"
#include "ringcast/util/json_out.h"

enum rc_payload_class rc_message_classify(const uint8_t *p, size_t len) {
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

struct rc_frame *rc_message_encode(uint16_t owner, const char *topic, size_t topic_len,
                                   uint64_t seq, const uint8_t *payload, size_t len,
                                   enum rc_payload_class cls) {
  char prefix[RC_TOPIC_NAME_MAX + 96];
  int pl = snprintf(prefix, sizeof prefix,
                    "{\"type\":\"msg\",\"topic\":\"%.*s\",\"seq\":%" PRIu64 ",\"%s\":",
                    (int)topic_len, topic, seq, cls == RC_PAYLOAD_BINARY ? "data_b64" : "data");
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
  /* +1 for base64's terminator. */
  size_t total = env_len + (cls == RC_PAYLOAD_JSON ? 0 : len + 1);
  struct rc_frame *f = rc_frame_create(owner, total);
  if (!f) return NULL;
  uint8_t *o = f->data;
  memcpy(o, hdr, hl);
  o += hl;
  memcpy(o, prefix, (size_t)pl);
  o += pl;
  switch (cls) {
  case RC_PAYLOAD_JSON:
    f->alt_off = (uint32_t)(o - f->data);
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
  f->len = (uint32_t)env_len;
  if (cls != RC_PAYLOAD_JSON) {
    f->alt_off = (uint32_t)env_len;
    memcpy(f->data + env_len, payload, len);
  }
  f->alt_len = (uint32_t)len;
  f->alt_hdr_len = (uint8_t)rc_ws_encode_header(
      f->alt_hdr, cls == RC_PAYLOAD_BINARY ? RC_WS_OP_BINARY : RC_WS_OP_TEXT, true, len);
  return f;
}
