/* SPDX-License-Identifier: MIT */
/* A WebSocket connection's inbound side: frames (RFC 6455 section 5), message
 * reassembly with incremental UTF-8 checks, control frames, the close handshake,
 * and the JSON commands a client may send. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/command.h"
#include "ringcast/conn.h"
#include "ringcast/fanout.h"
#include "ringcast/log.h"
#include "ringcast/session.h"
#include "ringcast/shard.h"
#include "ringcast/topic.h"
#include "ringcast/utf8.h"
#include "ringcast/ws.h"

static void protocol_close(struct rc_shard *sh, struct rc_conn *c, unsigned code,
                           const char *reason) {
  char peer[64];
  rc_conn_peer_text(c, peer, sizeof peer);
  rc_info("%s: closing with %u: %s", peer, code, reason);
  RC_METRIC_ADD(&sh->metrics, protocol_errors, 1);
  rc_conn_close(sh, c, code, reason, false);
}

static void send_json(struct rc_shard *sh, struct rc_conn *c, cJSON *obj) {
  char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
  cJSON_Delete(obj);
  if (!s) {
    rc_conn_abort(sh, c);
    return;
  }
  rc_conn_send_text(sh, c, s, strlen(s));
  free(s);
}

static cJSON *reply(const char *type, const struct rc_command *cmd) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "type", type);
  if (cmd && cmd->op) cJSON_AddStringToObject(o, "op", rc_command_op_name(cmd->op));
  if (cmd && cmd->id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(cmd->id, 1));
  return o;
}

static void send_error(struct rc_shard *sh, struct rc_conn *c, const struct rc_command *cmd,
                       const char *msg) {
  cJSON *o = reply("error", cmd);
  if (o) cJSON_AddStringToObject(o, "error", msg);
  send_json(sh, c, o);
}

/* The error reply for rc_topic_get's failure `ret` on `name`. */
static void send_topic_error(struct rc_shard *sh, struct rc_conn *c, const struct rc_command *cmd,
                             int ret, const char *name) {
  char err[256];
  snprintf(err, sizeof err,
           ret == -EINVAL ? "invalid topic name '%.140s': 1-128 characters of A-Z a-z 0-9 . _ - : / @"
                          : "topic table is full ('%.140s')",
           name);
  send_error(sh, c, cmd, err);
}

static void cmd_subscribe(struct rc_shard *sh, struct rc_conn *c, struct rc_command *cmd) {
  if (c->flags & RC_CF_RAW) {
    send_error(sh, c, cmd,
               "a format=raw connection carries only the topic named at connect; open another "
               "connection for more topics");
    return;
  }
  struct rc_topic *list[RC_MAX_SUBS_PER_CONN];
  unsigned n = 0;
  const cJSON *t;
  char err[256];
  cJSON_ArrayForEach(t, cmd->topics) {
    if (n == RC_MAX_SUBS_PER_CONN) {
      send_error(sh, c, cmd, "too many topics in one command");
      return;
    }
    int ret = rc_topic_get(sh->srv->topics, t->valuestring, strlen(t->valuestring), &list[n]);
    if (ret < 0) {
      send_topic_error(sh, c, cmd, ret, t->valuestring);
      return;
    }
    n++;
  }
  for (unsigned i = 0; i < n; i++) {
    int ret = rc_fanout_subscribe(sh, c, list[i]);
    if (ret == -EMLINK) {
      snprintf(err, sizeof err, "subscription limit of %d per connection reached at '%s'",
               RC_MAX_SUBS_PER_CONN, list[i]->name);
      send_error(sh, c, cmd, err);
      return;
    }
    if (ret < 0 && ret != -EEXIST) {
      send_error(sh, c, cmd, "out of memory");
      return;
    }
  }
  cJSON *o = reply("ack", cmd);
  if (o) cJSON_AddItemReferenceToObject(o, "topics", (cJSON *)cmd->topics);
  send_json(sh, c, o);
}

static void cmd_unsubscribe(struct rc_shard *sh, struct rc_conn *c, struct rc_command *cmd) {
  const cJSON *t;
  cJSON *missing = cJSON_CreateArray();
  cJSON_ArrayForEach(t, cmd->topics) {
    struct rc_topic *tp = rc_topic_find(sh->srv->topics, t->valuestring, strlen(t->valuestring));
    if ((!tp || rc_fanout_unsubscribe(sh, c, tp) < 0) && missing)
      cJSON_AddItemToArray(missing, cJSON_CreateString(t->valuestring));
  }
  cJSON *o = reply("ack", cmd);
  if (o) {
    cJSON_AddItemReferenceToObject(o, "topics", (cJSON *)cmd->topics);
    if (missing && cJSON_GetArraySize(missing)) {
      cJSON_AddItemToObject(o, "not_subscribed", missing);
      missing = NULL;
    }
  }
  cJSON_Delete(missing);
  send_json(sh, c, o);
}

static void cmd_publish(struct rc_shard *sh, struct rc_conn *c, struct rc_command *cmd) {
  char err[256];
  if (cmd->data_len > sh->srv->cfg->max_message) {
    snprintf(err, sizeof err, "data of %zu bytes exceeds --max-message (%u)", cmd->data_len,
             sh->srv->cfg->max_message);
    send_error(sh, c, cmd, err);
    return;
  }
  struct rc_topic *tp;
  int ret = rc_topic_get(sh->srv->topics, cmd->topic, strlen(cmd->topic), &tp);
  if (ret < 0) {
    send_topic_error(sh, c, cmd, ret, cmd->topic);
    return;
  }
  if (rc_fanout_publish(sh, tp, (const uint8_t *)cmd->data, cmd->data_len) < 0) {
    send_error(sh, c, cmd, "out of memory; message not published");
    return;
  }
  cJSON *o = reply("ack", cmd);
  if (o) cJSON_AddStringToObject(o, "topic", tp->name);
  send_json(sh, c, o);
}

static void on_message(struct rc_shard *sh, struct rc_conn *c, uint8_t opcode, const uint8_t *p,
                       size_t n) {
  if (c->flags & RC_CF_ECHO) {
    /* The message comes back whole, as one frame with its opcode. */
    struct rc_msg *m = rc_msg_create_ws((uint16_t)sh->id, opcode, p, n);
    if (!m) rc_conn_abort(sh, c);
    else rc_conn_send_msg(sh, c, m);
    return;
  }
  if (opcode == RC_WS_OP_BINARY) {
    send_error(sh, c, NULL, "binary messages are not commands; send JSON text (docs/protocol.md)");
    return;
  }
  struct rc_command cmd;
  char err[256];
  if (rc_command_parse((const char *)p, n, &cmd, err, sizeof err) < 0) {
    send_error(sh, c, &cmd, err);
    rc_command_fini(&cmd);
    return;
  }
  switch (cmd.op) {
  case RC_CMD_SUBSCRIBE: cmd_subscribe(sh, c, &cmd); break;
  case RC_CMD_UNSUBSCRIBE: cmd_unsubscribe(sh, c, &cmd); break;
  case RC_CMD_PUBLISH: cmd_publish(sh, c, &cmd); break;
  case RC_CMD_PING: send_json(sh, c, reply("pong", &cmd)); break;
  }
  rc_command_fini(&cmd);
}

static void on_close_frame(struct rc_shard *sh, struct rc_conn *c, const uint8_t *p, size_t n) {
  if (n == 1) {
    protocol_close(sh, c, RC_WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
    return;
  }
  unsigned code = RC_WS_CLOSE_NORMAL;
  if (n >= 2) {
    code = (unsigned)p[0] << 8 | p[1];
    if (!rc_ws_close_code_is_valid(code)) {
      protocol_close(sh, c, RC_WS_CLOSE_PROTOCOL, "invalid close code");
      return;
    }
    if (!rc_utf8_is_valid(p + 2, n - 2)) {
      protocol_close(sh, c, RC_WS_CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
      return;
    }
  }
  /* Echo the code (section 5.5.1); anything still queued goes out first. */
  rc_conn_close(sh, c, code, "", false);
}

/* Handles one complete frame whose payload is unmasked. */
static void on_frame(struct rc_shard *sh, struct rc_conn *c, const struct rc_ws_header *h,
                     const uint8_t *p) {
  size_t n = (size_t)h->payload_len;
  size_t max = sh->srv->cfg->max_message;
  switch (h->opcode) {
  case RC_WS_OP_PING: {
    struct rc_msg *m = rc_msg_create_ws((uint16_t)sh->id, RC_WS_OP_PONG, p, n);
    if (!m) rc_conn_abort(sh, c);
    else rc_conn_send_msg(sh, c, m);
    return;
  }
  case RC_WS_OP_PONG: return;
  case RC_WS_OP_CLOSE: on_close_frame(sh, c, p, n); return;
  case RC_WS_OP_TEXT:
  case RC_WS_OP_BINARY:
    if (c->frag_op) {
      protocol_close(sh, c, RC_WS_CLOSE_PROTOCOL, "new data frame inside a fragmented message");
      return;
    }
    if (h->fin) {
      if (h->opcode == RC_WS_OP_TEXT && !rc_utf8_is_valid(p, n)) {
        protocol_close(sh, c, RC_WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
        return;
      }
      on_message(sh, c, h->opcode, p, n);
      return;
    }
    c->frag_op = h->opcode;
    rc_utf8_init(&c->utf8);
    break;
  case RC_WS_OP_CONT:
    if (!c->frag_op) {
      protocol_close(sh, c, RC_WS_CLOSE_PROTOCOL, "continuation frame without a message to continue");
      return;
    }
    break;
  default:
    return; /* the header parser rejects every other opcode */
  }
  if (rc_buf_append(&c->msg, p, n, max) < 0) {
    protocol_close(sh, c, RC_WS_CLOSE_TOO_BIG, "message exceeds --max-message");
    return;
  }
  /* Fail fast: an invalid sequence ends the connection before the message does. */
  if (c->frag_op == RC_WS_OP_TEXT && !rc_utf8_feed(&c->utf8, p, n)) {
    protocol_close(sh, c, RC_WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
    return;
  }
  if (!h->fin) return;
  if (c->frag_op == RC_WS_OP_TEXT && !rc_utf8_is_complete(&c->utf8)) {
    protocol_close(sh, c, RC_WS_CLOSE_INVALID_DATA, "text message ends inside a UTF-8 sequence");
    return;
  }
  struct rc_buf msg = c->msg;
  uint8_t op = c->frag_op;
  c->msg = (struct rc_buf){0};
  c->frag_op = 0;
  on_message(sh, c, op, msg.p, msg.len);
  rc_buf_free(&msg);
}

void rc_ws_on_data(struct rc_shard *sh, struct rc_conn *c, uint8_t *p, size_t n) {
  size_t max = sh->srv->cfg->max_message;
  size_t limit = max + RC_WS_MAX_HEADER;
  uint8_t *buf = p;
  size_t len = n;
  bool buffered = c->in.len > 0;
  if (buffered) {
    if (rc_buf_append(&c->in, p, n, limit) < 0) {
      protocol_close(sh, c, RC_WS_CLOSE_TOO_BIG, "frame exceeds --max-message");
      return;
    }
    buf = c->in.p;
    len = c->in.len;
  }
  size_t pos = 0;
  while (pos < len && !(c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN))) {
    struct rc_ws_header h;
    ssize_t hl = rc_ws_parse_header(buf + pos, len - pos, true, &h);
    if (hl == -EAGAIN) break;
    if (hl < 0) {
      protocol_close(sh, c, RC_WS_CLOSE_PROTOCOL,
                     (buf[pos + 1] & 0x80) ? "malformed frame header" : "client frames must be masked");
      break;
    }
    if (h.payload_len > max || (c->frag_op && !(h.opcode & 0x8) && c->msg.len + h.payload_len > max)) {
      protocol_close(sh, c, RC_WS_CLOSE_TOO_BIG, "message exceeds --max-message");
      break;
    }
    if (len - pos - (size_t)hl < h.payload_len) break;
    uint8_t *payload = buf + pos + hl;
    rc_ws_unmask(payload, (size_t)h.payload_len, h.mask, 0);
    pos += (size_t)hl + (size_t)h.payload_len;
    on_frame(sh, c, &h, payload);
  }
  if (c->flags & (RC_CF_CLOSING | RC_CF_TEARDOWN)) {
    /* Data after a close is ignored (RFC 6455 section 5.5.1). */
    if (buffered) rc_buf_free(&c->in);
    return;
  }
  if (buffered) {
    rc_buf_consume(&c->in, pos);
  } else if (pos < len && rc_buf_append(&c->in, buf + pos, len - pos, limit) < 0) {
    protocol_close(sh, c, RC_WS_CLOSE_TOO_BIG, "frame exceeds --max-message");
  }
}
