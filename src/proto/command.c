/* SPDX-License-Identifier: MIT */
/* Parsing client commands: {"op":"subscribe","topics":[..],"id":..},
 * unsubscribe, {"op":"publish","topic":..,"data":..}, {"op":"auth","token":..}
 * and {"op":"ping"}. */
#include "ringcast/proto/command.h"

#include <cJSON.h>
#include <stdbool.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/json_scan.h"
#include "ringcast/proto/position.h"
#include "ringcast/proto/topic_name.h"

static const struct {
  const char *name;
  enum rc_cmd_op op;
} ops[] = {
    {"subscribe", RC_CMD_SUBSCRIBE},
    {"unsubscribe", RC_CMD_UNSUBSCRIBE},
    {"publish", RC_CMD_PUBLISH},
    {"ping", RC_CMD_PING},
    {"auth", RC_CMD_AUTH},
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

static const char *const members[] = {"op", "id", "topic", "topics", "data", "token", "since",
                                      "snapshot"};

/* A string member decoded into a NUL-terminated copy of at most max bytes
 * (malloc'd); refused if it holds a NUL (a C string would end there). */
static int decode_name(const uint8_t *t, const struct rc_json_span *sp, size_t max, char **out) {
  if (sp->type != RC_JSON_STRING) return -EINVAL;
  char *buf = malloc(sp->len);
  if (!buf) return -ENOMEM;
  size_t n = rc_json_string_decode(t, sp, (uint8_t *)buf);
  if (n > max || memchr(buf, 0, n)) {
    free(buf);
    return n > max ? -ERANGE : -EILSEQ;
  }
  buf[n] = '\0'; /* the quotes made room */
  *out = buf;
  return 0;
}

/* "since": {"topic": {"epoch": "16 hex digits", "seq": N}, ...}, each topic
 * one the command subscribes to. */
static int parse_since(const char *text, const struct rc_json_span *sp, struct rc_command *cmd,
                       char *err, size_t err_size) {
  if (sp->type != RC_JSON_OBJECT)
    return fail(err, err_size, "\"since\" must be an object: {\"topic\":{\"epoch\":\"...\",\"seq\":N}}");
  /* Topic names never hold a NUL, and a C string would end at one. */
  for (size_t i = 0; i + 6 <= sp->len; i++)
    if (text[sp->off + i] == '\\' && (text[sp->off + i + 1] | 0x20) == 'u' &&
        !memcmp(text + sp->off + i + 2, "0000", 4))
      return fail(err, err_size, "\"since\" holds a NUL character");
  cmd->since = cJSON_ParseWithLength(text + sp->off, sp->len);
  if (!cmd->since) return fail(err, err_size, "out of memory");
  const cJSON *pos;
  cJSON_ArrayForEach(pos, cmd->since) {
    for (const cJSON *q = cmd->since->child; q != pos; q = q->next)
      if (strcmp(q->string, pos->string) == 0) {
        snprintf(err, err_size, "\"since\" names '%.128s' twice", pos->string);
        return -EINVAL;
      }
    const cJSON *t;
    bool named = false;
    cJSON_ArrayForEach(t, cmd->topics) named |= strcmp(t->valuestring, pos->string) == 0;
    if (!named) {
      snprintf(err, err_size, "\"since\" names '%.128s', which \"topics\" does not", pos->string);
      return -EINVAL;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(pos, "epoch");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(pos, "seq");
    uint64_t epoch;
    if (!cJSON_IsObject(pos) || !cJSON_IsString(e) ||
        !rc_epoch_parse(e->valuestring, strlen(e->valuestring), &epoch) || !cJSON_IsNumber(q) ||
        q->valuedouble < 0 || q->valuedouble > 9007199254740991.0 ||
        q->valuedouble != (double)(uint64_t)q->valuedouble) {
      snprintf(err, err_size,
               "\"since\" for '%.128s' must be {\"epoch\":\"<16 hex digits from the ack>\",\"seq\":<the "
               "last seq received>}",
               pos->string);
      return -EINVAL;
    }
  }
  return 0;
}

int rc_command_since(const struct rc_command *cmd, const char *topic, uint64_t *epoch,
                     uint64_t *seq) {
  const cJSON *pos = cmd->since ? cJSON_GetObjectItemCaseSensitive(cmd->since, topic) : NULL;
  if (!pos) return -ENOENT;
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(pos, "epoch");
  rc_epoch_parse(e->valuestring, strlen(e->valuestring), epoch);
  *seq = (uint64_t)cJSON_GetObjectItemCaseSensitive(pos, "seq")->valuedouble;
  return 0;
}

/* The text is scanned where it lies: no tree is built for the command as a
 * whole (a tree costs ~64 bytes a value, 30x a message of small numbers), only
 * for the id and a topic list, each bounded before it is parsed. */
int rc_command_parse(const char *text, size_t len, size_t max_other, struct rc_command *cmd,
                     char *err, size_t err_size) {
  memset(cmd, 0, sizeof *cmd);
  const uint8_t *t = (const uint8_t *)text;
  const char *why;
  size_t at;
  if (rc_json_check(t, len, &why, &at) < 0) {
    snprintf(err, err_size, "message is not valid JSON (RFC 8259): %s at byte %zu", why, at);
    return -EINVAL;
  }
  struct rc_json_span sp;
  if (rc_json_member(t, len, "op", &sp) == -EINVAL)
    return fail(err, err_size, "command must be a JSON object with an \"op\" member");
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
    if (rc_json_member(t, len, members[i], &sp) == -EEXIST) {
      snprintf(err, err_size, "member \"%s\" appears twice", members[i]);
      return -EINVAL;
    }
  }
  if (rc_json_member(t, len, "id", &sp) == 0) {
    if (sp.type != RC_JSON_STRING && sp.type != RC_JSON_NUMBER)
      return fail(err, err_size, "\"id\" must be a string or a number");
    if (sp.len > 800) return fail(err, err_size, "\"id\" is longer than 128 characters");
    cmd->id_root = cJSON_ParseWithLength(text + sp.off, sp.len);
    if (cJSON_IsString(cmd->id_root) && strlen(cmd->id_root->valuestring) > 128)
      return fail(err, err_size, "\"id\" is longer than 128 characters");
    cmd->id = cmd->id_root;
    cmd->id_json = text + sp.off;
    cmd->id_json_len = sp.len;
  }
  char op[16] = "";
  if (rc_json_member(t, len, "op", &sp) < 0 || sp.type != RC_JSON_STRING)
    return fail(err, err_size,
                "missing \"op\": expected subscribe, unsubscribe, publish, auth or ping");
  if (sp.len < sizeof op) op[rc_json_string_decode(t, &sp, (uint8_t *)op)] = '\0';
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(op, ops[i].name) == 0) cmd->op = ops[i].op;
  if (!cmd->op)
    return fail(err, err_size, "unknown \"op\": expected subscribe, unsubscribe, publish, auth or ping");
  if (cmd->op != RC_CMD_PUBLISH && max_other && len > max_other) {
    snprintf(err, err_size, "a %s command of %zu bytes exceeds --max-command-bytes (%zu)", op, len,
             max_other);
    return -EINVAL;
  }

  switch (cmd->op) {
  case RC_CMD_SUBSCRIBE:
  case RC_CMD_UNSUBSCRIBE: {
    struct rc_json_span arr, el;
    if (rc_json_member(t, len, "topics", &arr) < 0 || arr.type != RC_JSON_ARRAY)
      return fail(err, err_size, "\"topics\" must be a non-empty array of topic names");
    size_t pos = 0, n = 0;
    while (rc_json_array_next(t, &arr, &pos, &el)) {
      if (el.type != RC_JSON_STRING) return fail(err, err_size, "every entry of \"topics\" must be a string");
      if (++n > RC_COMMAND_MAX_TOPICS) {
        snprintf(err, err_size, "more than %d topics in one command", RC_COMMAND_MAX_TOPICS);
        return -EINVAL;
      }
      uint8_t buf[RC_TOPIC_NAME_MAX * 6 + 2];
      if (el.len <= sizeof buf && memchr(buf, 0, rc_json_string_decode(t, &el, buf)))
        return fail(err, err_size, "a topic name in \"topics\" holds a NUL character");
    }
    if (n == 0) return fail(err, err_size, "\"topics\" must be a non-empty array of topic names");
    cmd->root = cJSON_ParseWithLength(text + arr.off, arr.len);
    if (!cmd->root) return fail(err, err_size, "out of memory");
    cmd->topics = cmd->root;
    if (cmd->op == RC_CMD_UNSUBSCRIBE) return 0;
    if (rc_json_member(t, len, "snapshot", &sp) == 0) {
      if (sp.type != RC_JSON_TRUE && sp.type != RC_JSON_FALSE)
        return fail(err, err_size, "\"snapshot\" must be true or false");
      cmd->snapshot = sp.type == RC_JSON_TRUE;
    }
    if (rc_json_member(t, len, "since", &sp) == 0) return parse_since(text, &sp, cmd, err, err_size);
    return 0;
  }
  case RC_CMD_PUBLISH: {
    if (rc_json_member(t, len, "topic", &sp) < 0 || sp.type != RC_JSON_STRING)
      return fail(err, err_size, "\"topic\" must be a string");
    int ret = decode_name(t, &sp, RC_TOPIC_NAME_MAX * 4, &cmd->topic_buf);
    if (ret == -ENOMEM) return fail(err, err_size, "out of memory");
    if (ret < 0)
      return fail(err, err_size, ret == -EILSEQ ? "\"topic\" holds a NUL character"
                                                : "\"topic\" is longer than a topic name may be");
    cmd->topic = cmd->topic_buf;
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
  case RC_CMD_AUTH:
    /* A token is base64url and dots: nothing in it needs an escape, so it is
     * taken as written. */
    if (rc_json_member(t, len, "token", &sp) < 0 || sp.type != RC_JSON_STRING || sp.len < 3)
      return fail(err, err_size, "\"token\" must be a non-empty string");
    if (memchr(text + sp.off, '\\', sp.len))
      return fail(err, err_size, "\"token\" holds an escape; a token is base64url and dots");
    cmd->token = text + sp.off + 1;
    cmd->token_len = sp.len - 2;
    return 0;
  case RC_CMD_PING:
    return 0;
  }
  return fail(err, err_size, "unknown op");
}

void rc_command_fini(struct rc_command *cmd) {
  cJSON_Delete(cmd->root);
  cJSON_Delete(cmd->id_root);
  cJSON_Delete(cmd->since);
  free(cmd->topic_buf);
  free(cmd->data);
  memset(cmd, 0, sizeof *cmd);
}
