/* SPDX-License-Identifier: MIT */
/* Client commands over WebSocket: strict JSON (RFC 8259, checked by json_scan
 * first), the structure read with cJSON, and what must stay byte-exact (the
 * published data, the id echoed back) taken from the text itself. Pure: parses one
 * message into a struct that points into the cJSON tree it owns and the text. */
#ifndef RINGCAST_COMMAND_H
#define RINGCAST_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

enum rc_cmd_op { RC_CMD_SUBSCRIBE = 1, RC_CMD_UNSUBSCRIBE, RC_CMD_PUBLISH, RC_CMD_PING, RC_CMD_AUTH };

/* Topics one subscribe or unsubscribe may name. */
#define RC_COMMAND_MAX_TOPICS 1024

struct rc_command {
  enum rc_cmd_op op;
  struct cJSON *root;            /* the topic list's tree; owned */
  struct cJSON *id_root;         /* the id's tree; owned */
  const struct cJSON *id;        /* the "id" member (string or number), or NULL */
  const char *id_json;           /* the id exactly as the client wrote it, in the text */
  size_t id_json_len;
  const struct cJSON *topics;    /* subscribe/unsubscribe: array of strings */
  const char *topic;             /* publish: the decoded name */
  char *topic_buf;               /* owned */
  char *data;                    /* publish payload, byte-exact (may hold NUL); owned */
  size_t data_len;
  const char *token;             /* auth: the token, in the text (no escapes) */
  size_t token_len;
  struct cJSON *since;           /* subscribe: {"topic":{"epoch":..,"seq":..}}, checked; owned */
  bool snapshot;                 /* subscribe: "snapshot":true */
};

/* Parses text[0..len), which must outlive the struct. Commands other than publish
 * may be at most max_other bytes (0: any), and name at most RC_COMMAND_MAX_TOPICS
 * topics; both are checked before anything is built. Returns 0, or -EINVAL with a
 * message for the client in err (the op and id, when known, are still filled in
 * for the error reply). The published data is the "data" member's bytes: a
 * string's decoded contents, any other value exactly as written (12345678901234567890
 * stays 12345678901234567890). Topic names holding a NUL, and commands naming a
 * member twice, are refused. */
int rc_command_parse(const char *text, size_t len, size_t max_other, struct rc_command *cmd,
                     char *err, size_t err_size);
void rc_command_fini(struct rc_command *cmd);
/* A subscribe's resume position for topic: 0, or -ENOENT when it names none. */
int rc_command_since(const struct rc_command *cmd, const char *topic, uint64_t *epoch,
                     uint64_t *seq);
const char *rc_command_op_name(enum rc_cmd_op op);

#endif
