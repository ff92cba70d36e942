/* SPDX-License-Identifier: MIT */
/* What a published message looks like on the wire, encoded once into one frame
 * buffer: view 0 is the envelope ({"type":"msg","topic":..,"seq":..,"data":..} in a
 * text frame), view 1 the raw payload alone. Pure apart from the one allocation. */
#ifndef RINGCAST_PUBSUB_MESSAGE_H
#define RINGCAST_PUBSUB_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/util/frame.h"

#define RC_MESSAGE_VIEW_ENVELOPE RC_FRAME_VIEW_MAIN
#define RC_MESSAGE_VIEW_RAW RC_FRAME_VIEW_ALT

/* A message frame's tag: its topic's sequence number, with this bit set on a
 * heartbeat (which carries the topic's last seq and has no raw view). */
#define RC_MESSAGE_HEARTBEAT (1ull << 63)

static inline uint64_t rc_message_seq(const struct rc_frame *f) {
  return f->tag & ~RC_MESSAGE_HEARTBEAT;
}
static inline bool rc_message_is_heartbeat(const struct rc_frame *f) {
  return (f->tag & RC_MESSAGE_HEARTBEAT) != 0;
}

/* How a published payload is carried in the envelope. */
enum rc_payload_class {
  RC_PAYLOAD_JSON = 0,   /* strict JSON (RFC 8259, proto/json_scan.h): embedded verbatim as "data" */
  RC_PAYLOAD_TEXT,       /* UTF-8 text: escaped into a JSON string "data" */
  RC_PAYLOAD_BINARY,     /* anything else: base64 in "data_b64" */
};

/* Classifies a payload: JSON, UTF-8 text or binary. */
enum rc_payload_class rc_message_classify(const uint8_t *p, size_t len);
/* Encodes both views in one frame for arena `owner`, shard_refs = 1. The topic
 * name must be valid (it is written without escaping). NULL on ENOMEM. */
struct rc_frame *rc_message_encode(uint16_t owner, const char *topic, size_t topic_len,
                                   uint64_t seq, const uint8_t *payload, size_t len,
                                   enum rc_payload_class cls);
/* A topic heartbeat, {"type":"hb","topic":..,"seq":..} in a text frame (no raw
 * view), tagged as one. NULL on ENOMEM. */
struct rc_frame *rc_message_encode_heartbeat(uint16_t owner, const char *topic, size_t topic_len,
                                             uint64_t seq);

/* A hole in a live stream that the server could not fill (scale-out: Redis
 * lost or trimmed what was missed): {"type":"gap","topic":..,"from":..,"to":..,
 * "recovered":false,"epoch":..,"reason":..} in a text frame (no raw view),
 * tagged like a heartbeat with seq `to`, so it travels in order with the
 * messages and is never taken for one. NULL on ENOMEM. */
struct rc_frame *rc_message_encode_gap(uint16_t owner, const char *topic, size_t topic_len,
                                       uint64_t from, uint64_t to, uint64_t epoch,
                                       const char *reason);

#endif
