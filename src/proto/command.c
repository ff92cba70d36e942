/* SPDX-License-Identifier: MIT */
/* Parsing client commands: {"op":"subscribe","topics":[..],"id":..},
 * unsubscribe, {"op":"publish","topic":..,"data":..} and {"op":"ping"}. */
#include "ringcast/proto/command.h"

#include <cJSON.h>
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

int rc_command_parse(const char *text, size_t len, struct rc_command *cmd, char *err,
                     size_t err_size) {
  memset(cmd, 0, sizeof *cmd);
  cmd->root = cJSON_ParseWithLength(text, len);
  if (!cmd->root) return fail(err, err_size, "message is not valid JSON");
  if (!cJSON_IsObject(cmd->root))
    return fail(err, err_size, "command must be a JSON object with an \"op\" member");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(cmd->root, "id");
  if (id) {
    if (!cJSON_IsString(id) && !cJSON_IsNumber(id))
      return fail(err, err_size, "\"id\" must be a string or a number");
    if (cJSON_IsString(id) && strlen(id->valuestring) > 128)
      return fail(err, err_size, "\"id\" is longer than 128 characters");
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
    const cJSON *t;
    cJSON_ArrayForEach(t, topics) {
      if (!cJSON_IsString(t)) return fail(err, err_size, "every entry of \"topics\" must be a string");
    }
    cmd->topics = topics;
    return 0;
  }
  case RC_CMD_PUBLISH: {
    const cJSON *topic = cJSON_GetObjectItemCaseSensitive(cmd->root, "topic");
    if (!cJSON_IsString(topic)) return fail(err, err_size, "\"topic\" must be a string");
    cmd->topic = topic->valuestring;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cmd->root, "data");
    if (!data) return fail(err, err_size, "\"data\" is missing");
    if (cJSON_IsString(data)) {
      cmd->data = strdup(data->valuestring);
    } else {
      cmd->data = cJSON_PrintUnformatted(data);
    }
    if (!cmd->data) return fail(err, err_size, "out of memory");
    cmd->data_len = strlen(cmd->data);
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
