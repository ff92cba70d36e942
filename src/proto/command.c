/* SPDX-License-Identifier: MIT */
/* Parsing client commands: {"op":"subscribe","topics":[..],"id":..},
 * unsubscribe, {"op":"publish","topic":..,"data":..} and {"op":"ping"}. */
#include "ringcast/proto/command.h"

#include <cJSON.h>
#include <stdbool.h>

#include "ringcast/proto/json_scan.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  enum rc_cmd_op op;
} ops[] = {
    {"subscribe", RC_CMD_SUBSCRIBE},
    {"unsubscribe", RC_CMD_UNSUBSCRIBE},
    {"publish", RC_CMD_PUBLISH},
    {"ping", RC_CMD_PING},
};

const char *rc_command_op_name(enum rc_cmd_op op) {
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].op == op) return ops[i].name;
  return "unknown";
}

static int fail(char *err, size_t size, const char *msg) {
  snprintf(err, size, "%s", msg);
  return -EINVAL;
}

/* Whether the string spanned by sp decodes to bytes without a NUL (cJSON's
 * strings end at the first one, so the name it sees would not be the one sent). */
static bool string_has_no_nul(const uint8_t *t, const struct rc_json_span *sp) {
  uint8_t buf[512];
  if (sp->len > sizeof buf) return true; /* too long for a topic name anyway */
  size_t n = rc_json_string_decode(t, sp, buf);
  return memchr(buf, 0, n) == NULL;
}

static const char *const members[] = {"op", "id", "topic", "topics", "data"};

int rc_command_parse(const char *text, size_t len, struct rc_command *cmd, char *err,
                     size_t err_size) {
  memset(cmd, 0, sizeof *cmd);
  const uint8_t *t = (const uint8_t *)text;
  const char *why;
  size_t at;
  if (rc_json_check(t, len, &why, &at) < 0) {
    snprintf(err, err_size, "message is not valid JSON (RFC 8259): %s at byte %zu", why, at);
    return -EINVAL;
  }
  cmd->root = cJSON_ParseWithLength(text, len);
  if (!cmd->root) return fail(err, err_size, "message is not valid JSON");
  if (!cJSON_IsObject(cmd->root))
    return fail(err, err_size, "command must be a JSON object with an \"op\" member");
  struct rc_json_span sp;
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
    if (rc_json_member(t, len, members[i], &sp) == -EEXIST) {
      snprintf(err, err_size, "member \"%s\" appears twice", members[i]);
      return -EINVAL;
    }
  }
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(cmd->root, "id");
  if (id) {
    if (!cJSON_IsString(id) && !cJSON_IsNumber(id))
      return fail(err, err_size, "\"id\" must be a string or a number");
    if (cJSON_IsString(id) && strlen(id->valuestring) > 128)
      return fail(err, err_size, "\"id\" is longer than 128 characters");
    if (rc_json_member(t, len, "id", &sp) == 0) {
      if (sp.len > 800) return fail(err, err_size, "\"id\" is longer than 128 characters");
      cmd->id_json = text + sp.off;
      cmd->id_json_len = sp.len;
    }
    cmd->id = id;
  }
  const cJSON *op = cJSON_GetObjectItemCaseSensitive(cmd->root, "op");
  if (!cJSON_IsString(op))
    return fail(err, err_size,
                "missing \"op\": expected subscribe, unsubscribe, publish or ping");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(op->valuestring, ops[i].name) == 0) cmd->op = ops[i].op;
  if (!cmd->op)
    return fail(err, err_size, "unknown \"op\": expected subscribe, unsubscribe, publish or ping");

  switch (cmd->op) {
  case RC_CMD_SUBSCRIBE:
  case RC_CMD_UNSUBSCRIBE: {
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(cmd->root, "topics");
    if (!cJSON_IsArray(topics) || cJSON_GetArraySize(topics) == 0)
      return fail(err, err_size, "\"topics\" must be a non-empty array of topic names");
    const cJSON *e;
    cJSON_ArrayForEach(e, topics) {
      if (!cJSON_IsString(e)) return fail(err, err_size, "every entry of \"topics\" must be a string");
    }
    struct rc_json_span arr, el;
    size_t pos = 0;
    if (rc_json_member(t, len, "topics", &arr) == 0)
      while (rc_json_array_next(t, &arr, &pos, &el))
        if (!string_has_no_nul(t, &el))
          return fail(err, err_size, "a topic name in \"topics\" holds a NUL character");
    cmd->topics = topics;
    return 0;
  }
  case RC_CMD_PUBLISH: {
    const cJSON *topic = cJSON_GetObjectItemCaseSensitive(cmd->root, "topic");
    if (!cJSON_IsString(topic)) return fail(err, err_size, "\"topic\" must be a string");
    if (rc_json_member(t, len, "topic", &sp) == 0 && !string_has_no_nul(t, &sp))
      return fail(err, err_size, "\"topic\" holds a NUL character");
    cmd->topic = topic->valuestring;
    if (rc_json_member(t, len, "data", &sp) < 0) return fail(err, err_size, "\"data\" is missing");
    /* Byte-exact: a string's decoded bytes, anything else as the client wrote it. */
    cmd->data = malloc(sp.len ? sp.len : 1);
    if (!cmd->data) return fail(err, err_size, "out of memory");
    if (sp.type == RC_JSON_STRING) {
      cmd->data_len = rc_json_string_decode(t, &sp, (uint8_t *)cmd->data);
    } else {
      memcpy(cmd->data, text + sp.off, sp.len);
      cmd->data_len = sp.len;
    }
    return 0;
  }
  case RC_CMD_PING:
    return 0;
  }
  return fail(err, err_size, "unknown op");
}

void rc_command_fini(struct rc_command *cmd) {
  cJSON_Delete(cmd->root);
  free(cmd->data);
  memset(cmd, 0, sizeof *cmd);
}
