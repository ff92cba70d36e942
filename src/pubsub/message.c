/* SPDX-License-Identifier: MIT */
/* Encoding a published message: the envelope frame and the raw frame, back to
 * back in one allocation. The raw frame is its own contiguous copy (its header
 * right before the payload), so a raw subscriber's send is one buffer too: one
 * more copy of the payload per message, not per subscriber. */
#include "ringcast/pubsub/message.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/proto/json_scan.h"
#include "ringcast/proto/topic_name.h"
#include "ringcast/proto/utf8.h"
#include "ringcast/proto/ws.h"
#include "ringcast/util/json_out.h"

enum rc_payload_class rc_message_classify(const uint8_t *p, size_t len) {
  if (!rc_utf8_is_valid(p, len)) return RC_PAYLOAD_BINARY;
  /* Strict RFC 8259 only: what a lenient parser would take ("01", "1.", raw
   * control characters) travels as a string, so every envelope parses in every
   * strict client. */
  const char *why;
  size_t at;
  return rc_json_check(p, len, &why, &at) == 0 ? RC_PAYLOAD_JSON : RC_PAYLOAD_TEXT;
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
  uint8_t hdr[10], raw_hdr[10];
  size_t hl = rc_ws_encode_header(hdr, RC_WS_OP_TEXT, true, env_payload);
  size_t env_len = hl + env_payload;
  size_t raw_hl = rc_ws_encode_header(
      raw_hdr, cls == RC_PAYLOAD_BINARY ? RC_WS_OP_BINARY : RC_WS_OP_TEXT, true, len);
  /* base64's terminator lands where the closing quote goes next. */
  struct rc_frame *f = rc_frame_create(owner, env_len + raw_hl + len);
  if (!f) return NULL;
  uint8_t *o = f->data;
  memcpy(o, hdr, hl);
  o += hl;
  memcpy(o, prefix, (size_t)pl);
  o += pl;
  switch (cls) {
  case RC_PAYLOAD_JSON:
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
  memcpy(o, raw_hdr, raw_hl);
  if (len) memcpy(o + raw_hl, payload, len);
  f->len = (uint32_t)env_len;
  f->alt_off = (uint32_t)env_len;
  f->alt_len = (uint32_t)(raw_hl + len);
  f->tag = seq;
  return f;
}

struct rc_frame *rc_message_encode_heartbeat(uint16_t owner, const char *topic, size_t topic_len,
                                             uint64_t seq) {
  char text[RC_TOPIC_NAME_MAX + 64];
  int n = snprintf(text, sizeof text, "{\"type\":\"hb\",\"topic\":\"%.*s\",\"seq\":%" PRIu64 "}",
                   (int)topic_len, topic, seq);
  struct rc_frame *f = rc_frame_create_ws(owner, RC_WS_OP_TEXT, text, (size_t)n);
  if (f) f->tag = seq | RC_MESSAGE_HEARTBEAT;
  return f;
}

struct rc_frame *rc_message_encode_gap(uint16_t owner, const char *topic, size_t topic_len,
                                       uint64_t from, uint64_t to, uint64_t epoch,
                                       const char *reason) {
  char text[RC_TOPIC_NAME_MAX + 192];
  int n = snprintf(text, sizeof text,
                   "{\"type\":\"gap\",\"topic\":\"%.*s\",\"from\":%" PRIu64 ",\"to\":%" PRIu64
                   ",\"recovered\":false,\"epoch\":\"%016" PRIx64 "\",\"reason\":\"%s\"}",
                   (int)topic_len, topic, from, to, epoch, reason);
  if (n < 0 || (size_t)n >= sizeof text) return NULL;
  struct rc_frame *f = rc_frame_create_ws(owner, RC_WS_OP_TEXT, text, (size_t)n);
  if (f) f->tag = to | RC_MESSAGE_HEARTBEAT;
  return f;
}
