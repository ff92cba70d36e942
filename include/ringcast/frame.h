/* SPDX-License-Identifier: MIT */
/* Pre-encoded, shared, reference-counted frames.
 *
 * A struct rc_msg holds complete wire bytes, encoded once: for a published message
 * both the envelope frame ({"type":"msg","topic":..,"seq":..,"data":..}) and the raw
 * frame (payload only) are views into one allocation. The count is split: the
 * atomic shard_refs counts shards holding the message; inside a shard a struct
 * rc_hold counts that shard's queue entries with a plain integer, so fan-out to
 * many local subscribers costs no atomic operations. */
#ifndef RINGCAST_FRAME_H
#define RINGCAST_FRAME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ringcast/mpsc.h"

struct rc_topic;

/* What travels through a shard's inbox; kind says which struct embeds it. */
enum rc_inbox_kind {
  RC_INBOX_PUBLISH = 1,  /* struct rc_pubreq: publish on the topic's home shard */
  RC_INBOX_FANOUT,       /* struct rc_batch: stamped messages to deliver locally */
  RC_INBOX_RETURN,       /* struct rc_msg: last reference dropped, free it here */
};

struct rc_inbox_item {
  struct rc_mpsc_node node;
  uint8_t kind;
};

enum rc_msg_view { RC_VIEW_ENVELOPE = 0, RC_VIEW_RAW = 1 };

/* How a published payload is carried in the envelope. */
enum rc_payload_class {
  RC_PAYLOAD_JSON = 0,   /* valid JSON: embedded verbatim as "data" */
  RC_PAYLOAD_TEXT,       /* UTF-8 text: escaped into a JSON string "data" */
  RC_PAYLOAD_BINARY,     /* anything else: base64 in "data_b64" */
};

struct rc_msg {
  struct rc_inbox_item item;     /* for RC_INBOX_RETURN */
  _Atomic uint32_t shard_refs;
  uint16_t owner;                /* shard that allocated it and frees it */
  uint8_t raw_hdr_len;
  uint8_t raw_hdr[10];
  struct rc_topic *topic;        /* NULL for private frames */
  uint64_t seq;
  uint32_t env_len;              /* envelope frame: data[0..env_len) */
  uint32_t raw_off;              /* raw payload: data[raw_off..raw_off+raw_len) */
  uint32_t raw_len;
  uint8_t data[];
};

/* One shard's hold on a message; lives in that shard's pool. */
struct rc_hold {
  struct rc_msg *msg;
  uint32_t refs;
};

/* Allocates a private message of len bytes (HTTP response, control frame, ack) for
 * shard `owner`, shard_refs = 1. The caller fills msg->data[0..len). NULL on ENOMEM. */
struct rc_msg *rc_msg_create_bytes(uint16_t owner, size_t len);
/* Builds a private WebSocket frame (unmasked) with the given payload. */
struct rc_msg *rc_msg_create_ws(uint16_t owner, uint8_t opcode, const void *payload,
                                size_t len);
/* Builds a close frame with code and reason (reason truncated to fit 125 bytes). */
struct rc_msg *rc_msg_create_close(uint16_t owner, unsigned code, const char *reason);
/* Encodes a published message, both views, in one allocation with shard_refs = 1.
 * The topic name must be a valid topic name (no escaping needed). */
struct rc_msg *rc_msg_create_published(uint16_t owner, struct rc_topic *topic,
                                       uint64_t seq, const uint8_t *payload, size_t len,
                                       enum rc_payload_class cls);
void rc_msg_destroy(struct rc_msg *m);
/* Classifies a payload: JSON, UTF-8 text or binary. Pure. */
enum rc_payload_class rc_payload_classify(const uint8_t *p, size_t len);

/* The iovecs of one view; returns how many were written (1 or 2). */
int rc_msg_view_iov(const struct rc_msg *m, enum rc_msg_view view, struct iovec iov[2]);
/* Total bytes of one view on the wire. */
size_t rc_msg_view_len(const struct rc_msg *m, enum rc_msg_view view);

/* Drops one shard reference. Returns true if it was the last one: the caller then
 * frees the message (rc_msg_destroy) if it owns it, or returns it to its owner.
 * Release/acquire ordering makes every shard's reads happen before the free. */
bool rc_msg_shard_unref(struct rc_msg *m);

#endif
