/* SPDX-License-Identifier: MIT */
/* A WebSocket connection's inbound side: frames read incrementally (RFC 6455
 * section 5) with each payload piece checked as it arrives, message reassembly,
 * control frames, the close handshake, and the JSON commands a client may send. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/command.h"
#include "ringcast/proto/topic_pattern.h"
#include "ringcast/proto/utf8.h"
#include "ringcast/proto/ws.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"
#include "websocket.h"

/* The parser's bound on topics per command keeps a command within a connection's. */
_Static_assert(RC_COMMAND_MAX_TOPICS <= RC_SESSION_MAX_SUBS, "a command fits the per-connection list");
#include "conflate.h"
#include "delivery.h"
#include "redis_link.h"

static void send_text(struct rc_loop *l, struct rc_session *s, const char *t, size_t len) {
  struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_TEXT, t, len);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  rc_session_send_frame(l, s, f);
}

static void send_json(struct rc_loop *l, struct rc_session *s, cJSON *obj) {
  char *t = obj ? cJSON_PrintUnformatted(obj) : NULL;
  cJSON_Delete(obj);
  if (!t) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  send_text(l, s, t, strlen(t));
  free(t);
}

static cJSON *reply(const char *type, const struct rc_command *cmd) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "type", type);
  if (cmd && cmd->op) cJSON_AddStringToObject(o, "op", rc_command_op_name(cmd->op));
  if (cmd && cmd->id_json) {
    /* Echoed exactly as written: a number is not re-serialised. */
    char id[1024];
    size_t n = cmd->id_json_len < sizeof id - 1 ? cmd->id_json_len : sizeof id - 1;
    memcpy(id, cmd->id_json, n);
    id[n] = '\0';
    cJSON_AddRawToObject(o, "id", id);
  }
  return o;
}

static void send_error(struct rc_loop *l, struct rc_session *s, const struct rc_command *cmd,
                       const char *msg) {
  cJSON *o = reply("error", cmd);
  if (o) cJSON_AddStringToObject(o, "error", msg);
  send_json(l, s, o);
}

/* The error reply for rc_topic_acquire's failure `ret` on `name`. */
static void send_topic_error(struct rc_loop *l, struct rc_session *s, const struct rc_command *cmd,
                             int ret, const char *name) {
  char err[320];
  snprintf(err, sizeof err, "%s ('%.140s')", rc_session_topic_refusal(ret), name);
  send_error(l, s, cmd, err);
}

/* Whether the connection's credential allows the topic; the error reply when
 * not. */
static bool topic_allowed(struct rc_loop *l, struct rc_session *s, const struct rc_command *cmd,
                          enum rc_jwt_right right, const char *name) {
  if (rc_access_allows(&s->auth, right, name, strlen(name))) return true;
  struct rc_session_shard *ss = rc_session_shard_of(l);
  rc_access_count(ss->access, RC_ACCESS_TOPIC);
  char err[320], peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  rc_info("%s: token of '%s' does not allow %s '%.140s'", peer,
          s->auth.grant ? rc_jwt_grant_subject(s->auth.grant) : "?",
          right == RC_JWT_SUB ? "subscribing to" : "publishing to", name);
  snprintf(err, sizeof err, "your token does not allow %s '%.140s'%s",
           right == RC_JWT_SUB ? "subscribing to" : "publishing to", name,
           right == RC_JWT_SUB ? "; nothing subscribed" : "; not published");
  send_error(l, s, cmd, err);
  return false;
}

/* Whether x and y (each a pattern when it holds a wildcard) would both deliver
 * some message: a connection may not hold both. */
static bool items_overlap(const char *x, bool xp, const char *y, bool yp) {
  size_t xl = strlen(x), yl = strlen(y);
  if (xp && yp) return (xl != yl || memcmp(x, y, xl) != 0) && rc_topic_pattern_overlap(x, xl, y, yl);
  if (xp) return rc_topic_pattern_match(x, xl, y, yl);
  if (yp) return rc_topic_pattern_match(y, yl, x, xl);
  return false;
}

/* A subscription that would overlap one held or named earlier in the command:
 * the error naming both. */
static bool overlap_refused(struct rc_loop *l, struct rc_session *s, const struct rc_command *cmd) {
  const cJSON *t;
  unsigned k = 0;
  cJSON_ArrayForEach(t, cmd->topics) {
    const char *x = t->valuestring;
    size_t xl = strlen(x);
    bool xp = rc_topic_pattern_has_wildcard(x, xl);
    const char *other = NULL;
    int i = rc_subscription_overlap(&s->sub, x, xl, xp);
    if (i >= 0) other = rc_subscription_name(&s->sub.v[i]);
    const cJSON *u;
    unsigned j = 0;
    cJSON_ArrayForEach(u, cmd->topics) {
      if (other || j++ >= k) break;
      if (items_overlap(x, xp, u->valuestring, rc_topic_pattern_has_wildcard(u->valuestring, strlen(u->valuestring))))
        other = u->valuestring;
    }
    if (other) {
      char err[400];
      snprintf(err, sizeof err,
               "'%.128s' overlaps '%.128s': a message on a topic both match would arrive twice; "
               "unsubscribe one first; nothing subscribed", x, other);
      send_error(l, s, cmd, err);
      return true;
    }
    k++;
  }
  return false;
}

/* A wildcard in a subscribe: valid, and without what only exact topics take. */
static bool pattern_ok(struct rc_loop *l, struct rc_session *s, const struct rc_command *cmd,
                       const char *p) {
  char err[400];
  uint64_t e, q;
  if (!rc_topic_pattern_is_valid(p, strlen(p)))
    snprintf(err, sizeof err,
             "'%.140s' is not a valid pattern: '*' and '>' stand for whole '.'-separated "
             "segments, '>' only as the last; nothing subscribed", p);
  else if (cmd->snapshot)
    snprintf(err, sizeof err, "snapshot does not apply to pattern '%.140s' (no one topic to take it "
             "from); subscribe to it without snapshot; nothing subscribed", p);
  else if (rc_command_since(cmd, p, &e, &q) == 0)
    snprintf(err, sizeof err, "since does not apply to pattern '%.140s' (positions are per "
             "topic); nothing subscribed", p);
  else if (atomic_load_explicit(&rc_session_shard_of(l)->srv->redis_cluster_masters,
                                memory_order_relaxed)) /* a flag the links set; orders nothing */
    snprintf(err, sizeof err, "pattern '%.140s' refused: " RC_REDIS_LINK_NO_WILDCARDS
             "; nothing subscribed", p);
  else
    return true;
  send_error(l, s, cmd, err);
  return false;
}

/* The error for rc_pubsub_subscribe_pattern's failure ret on p. */
static void pattern_error(struct rc_loop *l, struct rc_session *s, const struct rc_command *cmd,
                          int ret, const char *p) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  char err[400];
  uint32_t max = ss->srv->cfg->max_patterns;
  if (ret == -EMLINK && s->sub.npatterns >= RC_SESSION_MAX_PATTERNS)
    snprintf(err, sizeof err, "pattern limit of %d per connection reached at '%.140s'; nothing subscribed",
             RC_SESSION_MAX_PATTERNS, p);
  else if (ret == -EMLINK)
    snprintf(err, sizeof err,
             "subscription limit of %d per connection reached at '%.140s'; nothing subscribed",
             RC_SESSION_MAX_SUBS, p);
  else if (ret == -ENOSPC && !max)
    snprintf(err, sizeof err, "wildcards are off on this server (--max-patterns 0): '%.140s'; "
             "nothing subscribed", p);
  else if (ret == -ENOSPC)
    snprintf(err, sizeof err, "the server's limit of %u distinct patterns (--max-patterns) is "
             "reached at '%.140s'; nothing subscribed", max, p);
  else
    snprintf(err, sizeof err, "%s; nothing subscribed",
             ret == -ENOBUFS ? "the server is over its memory budget (--max-memory)" : "out of memory");
  send_error(l, s, cmd, err);
}

/* All or nothing: every topic is resolved (created when new, within --max-topics
 * and the memory budget) before any subscription changes, and a subscription
 * refused part-way (a limit) undoes the ones this command made. Names holding
 * '*' or '>' are wildcard patterns (docs/protocol.md, Wildcards). */
static void cmd_subscribe(struct rc_loop *l, struct rc_session *s, struct rc_command *cmd) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (s->format == RC_FORMAT_RAW) {
    send_error(l, s, cmd,
               "a format=raw connection carries only the topic named at connect; open another "
               "connection for more topics");
    return;
  }
  char err[256];
  struct rc_topic *list[RC_SESSION_MAX_SUBS];
  bool added[RC_SESSION_MAX_SUBS];
  const char *pats[RC_SESSION_MAX_SUBS];
  bool pat_added[RC_SESSION_MAX_SUBS], pat_already[RC_SESSION_MAX_SUBS];
  unsigned n = 0, np = 0;
  const cJSON *t;
  cJSON_ArrayForEach(t, cmd->topics) {
    const char *x = t->valuestring;
    if (rc_topic_pattern_has_wildcard(x, strlen(x)) && !pattern_ok(l, s, cmd, x)) return;
    const char *why = rc_session_reserved_refusal(l, s, x, strlen(x));
    if (why) {
      snprintf(err, sizeof err, "%s ('%.100s'); nothing subscribed", why, x);
      send_error(l, s, cmd, err);
      return;
    }
    if (!topic_allowed(l, s, cmd, RC_JWT_SUB, x)) return;
  }
  if (overlap_refused(l, s, cmd)) return;
  cJSON_ArrayForEach(t, cmd->topics) {
    if (rc_topic_pattern_has_wildcard(t->valuestring, strlen(t->valuestring))) {
      pats[np++] = t->valuestring;
      continue;
    }
    int ret = rc_topic_acquire(ss->topics, t->valuestring, strlen(t->valuestring), true, &list[n]);
    if (ret < 0) {
      rc_session_topics_release(l, list, n);
      send_topic_error(l, s, cmd, ret, t->valuestring);
      return;
    }
    n++;
  }
  bool already[RC_SESSION_MAX_SUBS];
  for (unsigned i = 0; i < n; i++) {
    struct rc_join_request jr = {.token = rc_conn_token(l, &s->conn),
                                 .snapshot = cmd->snapshot,
                                 .max_replay_bytes = ss->max_queue / 2,
                                 .note = cmd->id_json,
                                 .note_len = cmd->id_json_len};
    jr.has_since = rc_command_since(cmd, list[i]->name, &jr.since_epoch, &jr.since_seq) == 0;
    int ret = rc_pubsub_subscribe(ss->ps, &s->sub, list[i], RC_SESSION_MAX_SUBS, &jr);
    added[i] = ret == 0;
    /* Named twice in this command: acknowledged once, when it goes live. */
    bool twice = false;
    for (unsigned j = 0; j < i && !twice; j++) twice = list[j] == list[i];
    already[i] = ret == -EEXIST && !twice;
    if (ret < 0 && ret != -EEXIST) {
      for (unsigned j = 0; j < i; j++)
        if (added[j]) rc_pubsub_unsubscribe(ss->ps, &s->sub, list[j]);
      if (ret == -EMLINK)
        snprintf(err, sizeof err,
                 "subscription limit of %d per connection reached at '%s'; nothing subscribed",
                 RC_SESSION_MAX_SUBS, list[i]->name);
      else
        snprintf(err, sizeof err, "%s; nothing subscribed",
                 ret == -ENOBUFS ? "the server is over its memory budget (--max-memory)"
                                 : "out of memory");
      rc_session_topics_release(l, list, n);
      send_error(l, s, cmd, err);
      return;
    }
  }
  for (unsigned i = 0; i < np; i++) {
    int ret = rc_pubsub_subscribe_pattern(ss->ps, &s->sub, pats[i], strlen(pats[i]),
                                          RC_SESSION_MAX_SUBS, RC_SESSION_MAX_PATTERNS);
    pat_added[i] = ret == 0;
    pat_already[i] = ret == -EEXIST;
    if (ret < 0 && ret != -EEXIST) {
      for (unsigned j = 0; j < i; j++)
        if (pat_added[j]) rc_pubsub_unsubscribe_pattern(ss->ps, &s->sub, pats[j], strlen(pats[j]));
      for (unsigned j = 0; j < n; j++)
        if (added[j]) rc_pubsub_unsubscribe(ss->ps, &s->sub, list[j]);
      rc_session_topics_release(l, list, n);
      pattern_error(l, s, cmd, ret, pats[i]);
      return;
    }
  }
  /* Each new subscription to a topic is acknowledged when it goes live, with
   * its topic's seq and epoch (rc_delivery_joined); one already held, and
   * every pattern (live now), at once. */
  for (unsigned i = 0; i < n; i++) {
    if (!already[i]) continue;
    cJSON *o = reply("ack", cmd);
    if (o) {
      cJSON_AddStringToObject(o, "topic", list[i]->name);
      cJSON_AddBoolToObject(o, "already_subscribed", true);
    }
    send_json(l, s, o);
  }
  for (unsigned i = 0; i < np; i++)
    rc_delivery_ack_pattern(l, s, pats[i], strlen(pats[i]), cmd->id_json ? cmd->id_json : "",
                            cmd->id_json_len, pat_already[i]);
  rc_session_topics_release(l, list, n); /* the subscriptions hold their own */
}

static void cmd_unsubscribe(struct rc_loop *l, struct rc_session *s, struct rc_command *cmd) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  const cJSON *t;
  cJSON *missing = cJSON_CreateArray();
  cJSON_ArrayForEach(t, cmd->topics) {
    if (rc_topic_pattern_has_wildcard(t->valuestring, strlen(t->valuestring))) {
      if (rc_pubsub_unsubscribe_pattern(ss->ps, &s->sub, t->valuestring, strlen(t->valuestring)) < 0 &&
          missing)
        cJSON_AddItemToArray(missing, cJSON_CreateString(t->valuestring));
      continue;
    }
    /* A topic this connection subscribes to exists: it is never created here. */
    struct rc_topic *tp;
    bool gone = rc_topic_acquire(ss->topics, t->valuestring, strlen(t->valuestring), false, &tp) < 0;
    if (!gone) {
      gone = rc_pubsub_unsubscribe(ss->ps, &s->sub, tp) < 0;
      rc_topic_release(ss->topics, tp);
    }
    if (gone && missing) cJSON_AddItemToArray(missing, cJSON_CreateString(t->valuestring));
  }
  rc_conflate_forget(l, s);
  cJSON *o = reply("ack", cmd);
  if (o) {
    cJSON_AddItemReferenceToObject(o, "topics", (cJSON *)cmd->topics);
    if (missing && cJSON_GetArraySize(missing)) {
      cJSON_AddItemToObject(o, "not_subscribed", missing);
      missing = NULL;
    }
  }
  cJSON_Delete(missing);
  send_json(l, s, o);
}

/* Acknowledged once the topic's home shard has stamped it, with its seq. */
static void cmd_publish(struct rc_loop *l, struct rc_session *s, struct rc_command *cmd) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  char err[256];
  if (cmd->data_len > ss->max_message) {
    snprintf(err, sizeof err, "data of %zu bytes exceeds --max-message (%u)", cmd->data_len,
             ss->max_message);
    send_error(l, s, cmd, err);
    return;
  }
  if (rc_topic_name_is_reserved(cmd->topic, strlen(cmd->topic))) {
    snprintf(err, sizeof err, "%s ('%.100s'); not published", RC_SESSION_RESERVED_PUBLISH, cmd->topic);
    send_error(l, s, cmd, err);
    return;
  }
  if (!topic_allowed(l, s, cmd, RC_JWT_PUB, cmd->topic)) return;
  struct rc_topic *tp;
  int ret = rc_topic_acquire(ss->topics, cmd->topic, strlen(cmd->topic), true, &tp);
  if (ret < 0) {
    send_topic_error(l, s, cmd, ret, cmd->topic);
    return;
  }
  struct rc_publish_origin origin = {
      .token = rc_conn_token(l, &s->conn), .note = cmd->id_json, .note_len = cmd->id_json_len};
  int64_t seq = rc_pubsub_publish(ss->ps, tp, (const uint8_t *)cmd->data, cmd->data_len, &origin);
  /* 0: forwarded; the ack follows from the home shard (rc_delivery_published). */
  if (seq != 0)
    rc_delivery_ack_publish(l, s, tp->name, seq, cmd->id_json ? cmd->id_json : "", cmd->id_json_len);
  rc_topic_release(ss->topics, tp);
}

/* A renewed token may allow less than the one it replaces: the subscriptions it
 * does not cover end now (named in the ack), rather than outliving their right. */
static cJSON *drop_disallowed(struct rc_loop *l, struct rc_session *s) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  cJSON *names = NULL;
  unsigned n = 0;
  /* From the end: removing entry i moves the last one, already looked at, there. */
  for (unsigned i = s->sub.n; i-- > 0;) {
    struct rc_subscription *e = &s->sub.v[i];
    const char *name = rc_subscription_name(e);
    if (rc_access_allows(&s->auth, RC_JWT_SUB, name, strlen(name))) continue;
    if (!names) names = cJSON_CreateArray();
    if (names) cJSON_AddItemToArray(names, cJSON_CreateString(name));
    n++;
    if (e->pattern) rc_pubsub_unsubscribe_pattern(ss->ps, &s->sub, name, e->group->len);
    else rc_pubsub_unsubscribe(ss->ps, &s->sub, e->topic);
  }
  if (!n) return NULL;
  rc_conflate_forget(l, s);
  char peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  rc_info("%s: renewed token no longer allows %u of its subscriptions; ended them", peer, n);
  rc_access_count(ss->access, RC_ACCESS_TOPIC);
  if (!names) names = cJSON_CreateArray(); /* non-NULL says some went, even out of memory */
  return names;
}

/* A token (or static key) for this connection: the first one, when the upgrade
 * carried none, or a fresh one before the current token expires, for the same
 * subject. A refused one closes the connection (1008): each forged token costs
 * its sender a connection, as on HTTP. */
static void cmd_auth(struct rc_loop *l, struct rc_session *s, struct rc_command *cmd) {
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (!rc_access_required(ss->access)) {
    send_error(l, s, cmd, "this server takes no credentials (no --jwt-key or --publish-key-file)");
    return;
  }
  struct rc_auth fresh;
  int reason;
  char msg[320], peer[64];
  rc_conn_peer_text(&s->conn, peer, sizeof peer);
  if (rc_access_from_token(ss->access, cmd->token, cmd->token_len, &fresh, &reason, msg, sizeof msg) < 0) {
    rc_info("%s: auth command refused (%s): %s", peer, rc_access_reason_name(reason), msg);
    send_error(l, s, cmd, msg);
    rc_session_mark_end(s, RC_END_AUTH);
    rc_session_close(l, s, RC_WS_CLOSE_POLICY, "authentication failed", false);
    return;
  }
  if (s->auth.kind == RC_AUTH_TOKEN && fresh.kind == RC_AUTH_TOKEN &&
      strcmp(rc_jwt_grant_subject(s->auth.grant), rc_jwt_grant_subject(fresh.grant)) != 0) {
    snprintf(msg, sizeof msg, "a renewal must be for the same subject ('%.64s'), not '%.64s'",
             rc_jwt_grant_subject(s->auth.grant), rc_jwt_grant_subject(fresh.grant));
    rc_info("%s: auth command refused: %s", peer, msg);
    rc_auth_clear(&fresh);
    send_error(l, s, cmd, msg);
    return;
  }
  rc_session_set_auth(l, s, &fresh);
  rc_session_attempt(l, s, RC_ATTEMPT_ACCEPTED); /* its upgrade waited for this */
  cJSON *dropped = drop_disallowed(l, s);
  if (dropped && s->format == RC_FORMAT_RAW) {
    cJSON_Delete(dropped);
    rc_info("%s: renewed token no longer allows the raw connection's topic; closing", peer);
    rc_session_mark_end(s, RC_END_AUTH);
    rc_session_close(l, s, RC_WS_CLOSE_POLICY, "token no longer allows this topic", false);
    return;
  }
  cJSON *o = reply("ack", cmd);
  int64_t exp = rc_access_expiry(&s->auth);
  if (o && exp) cJSON_AddNumberToObject(o, "expires", (double)exp);
  if (o && dropped) cJSON_AddItemToObject(o, "unsubscribed", dropped);
  else cJSON_Delete(dropped);
  send_json(l, s, o);
  rc_session_rearm_timer(l, s);
}

/* The pong owed for the latest of a run of pings in one receive: RFC 6455
 * (5.5.3) lets an endpoint answer only the most recent of several pings, so a
 * burst of pings costs one pong, not one each. It goes out before anything
 * answering a later frame, so replies keep their order. */
struct pong_due {
  bool due;
  uint8_t len;
  uint8_t p[RC_WS_MAX_CONTROL_PAYLOAD];
};

/* Past --max-commands-per-sec the connection is closed: a flood is cut, not
 * queued behind. */
static bool rate_ok(struct rc_loop *l, struct rc_session *s, unsigned n) {
  if (rc_session_take_tokens(l, s, n)) return true;
  char reason[96];
  snprintf(reason, sizeof reason, "more than --max-commands-per-sec %u messages a second",
           rc_session_shard_of(l)->max_commands);
  rc_session_protocol_close(l, s, RC_WS_CLOSE_POLICY, reason);
  return false;
}

static void send_pong(struct rc_loop *l, struct rc_session *s, struct pong_due *pong) {
  if (!pong->due || !rc_conn_is_open(&s->conn)) return;
  pong->due = false;
  struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_PONG, pong->p, pong->len);
  if (!f) rc_conn_abort(l, &s->conn);
  else rc_session_send_frame(l, s, f);
}

static void on_message(struct rc_loop *l, struct rc_session *s, uint8_t opcode, const uint8_t *p,
                       size_t n) {
  if (!rate_ok(l, s, 1)) return;
  if (s->format == RC_FORMAT_ECHO) {
    /* The message comes back whole, as one frame with its opcode. */
    struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), opcode, p, n);
    if (!f) rc_conn_abort(l, &s->conn);
    else rc_session_send_frame(l, s, f);
    return;
  }
  if (opcode == RC_WS_OP_BINARY) {
    send_error(l, s, NULL, "binary messages are not commands; send JSON text (docs/protocol.md)");
    return;
  }
  struct rc_command cmd;
  char err[256];
  struct rc_session_shard *ss = rc_session_shard_of(l);
  if (rc_command_parse((const char *)p, n, ss->max_command, &cmd, err, sizeof err) < 0) {
    send_error(l, s, &cmd, err);
    rc_command_fini(&cmd);
    return;
  }
  /* A command naming n topics costs n messages of the rate (its first was
   * taken on arrival): re-subscribing a long list is work for each name; an
   * auth costs a signature check's worth. */
  int ntopics = cmd.op == RC_CMD_AUTH ? RC_SESSION_VERIFY_COST
                : cmd.topics          ? cJSON_GetArraySize(cmd.topics)
                                      : 0;
  /* A wildcard subscribe may scan the whole topic table: it costs
   * RC_SESSION_PATTERN_COST messages. */
  if (cmd.op == RC_CMD_SUBSCRIBE && cmd.topics) {
    const cJSON *t;
    cJSON_ArrayForEach(t, cmd.topics)
      if (rc_topic_pattern_has_wildcard(t->valuestring, strlen(t->valuestring)))
        ntopics += RC_SESSION_PATTERN_COST - 1;
  }
  if (ntopics > 1 && !rate_ok(l, s, (unsigned)ntopics - 1)) {
    rc_command_fini(&cmd);
    return;
  }
  if (s->auth.kind == RC_AUTH_PENDING && cmd.op != RC_CMD_AUTH) {
    send_error(l, s, &cmd, "authenticate first: send {\"op\":\"auth\",\"token\":\"...\"}");
    rc_session_mark_end(s, RC_END_AUTH);
    rc_session_close(l, s, RC_WS_CLOSE_POLICY, "authentication required", false);
    rc_command_fini(&cmd);
    return;
  }
  if (s->admin && (cmd.op == RC_CMD_AUTH || cmd.op == RC_CMD_PUBLISH)) {
    send_error(l, s, &cmd, RC_SESSION_ADMIN_ONLY);
    rc_command_fini(&cmd);
    return;
  }
  switch (cmd.op) {
  case RC_CMD_AUTH: cmd_auth(l, s, &cmd); break;
  case RC_CMD_SUBSCRIBE: cmd_subscribe(l, s, &cmd); break;
  case RC_CMD_UNSUBSCRIBE: cmd_unsubscribe(l, s, &cmd); break;
  case RC_CMD_PUBLISH: cmd_publish(l, s, &cmd); break;
  case RC_CMD_PING: send_json(l, s, reply("pong", &cmd)); break;
  }
  rc_command_fini(&cmd);
}

static void on_close_frame(struct rc_loop *l, struct rc_session *s, const uint8_t *p, size_t n) {
  if (n == 1) {
    rc_session_protocol_close(l, s, RC_WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
    return;
  }
  unsigned code = RC_WS_CLOSE_NORMAL;
  if (n >= 2) {
    code = (unsigned)p[0] << 8 | p[1];
    if (!rc_ws_close_code_is_valid(code)) {
      rc_session_protocol_close(l, s, RC_WS_CLOSE_PROTOCOL, "invalid close code");
      return;
    }
    if (!rc_utf8_is_valid(p + 2, n - 2)) {
      rc_session_protocol_close(l, s, RC_WS_CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
      return;
    }
  }
  /* Echo the code (section 5.5.1); anything still queued goes out first. */
  rc_session_mark_end(s, RC_END_CLIENT);
  rc_session_close(l, s, code, "", false);
}

static void on_control(struct rc_loop *l, struct rc_session *s, struct pong_due *pong, uint8_t op,
                       const uint8_t *p, size_t n) {
  if (!rate_ok(l, s, 1)) return;
  switch (op) {
  case RC_WS_OP_PING:
    pong->due = true;
    pong->len = (uint8_t)n;
    if (n) memcpy(pong->p, p, n);
    return;
  case RC_WS_OP_PONG: return;
  default:
    send_pong(l, s, pong); /* owed before the close */
    on_close_frame(l, s, p, n);
    return;
  }
}

/* A data frame's header: may it start or continue a message here? */
static bool data_header_ok(struct rc_loop *l, struct rc_session *s, struct rc_session_rx *rx,
                           const struct rc_ws_header *h) {
  uint32_t max = rc_session_shard_of(l)->max_message;
  if (h->opcode == RC_WS_OP_CONT) {
    if (!rx->frag_op) {
      rc_session_protocol_close(l, s, RC_WS_CLOSE_PROTOCOL,
                                "continuation frame without a message to continue");
      return false;
    }
  } else if (rx->frag_op) {
    rc_session_protocol_close(l, s, RC_WS_CLOSE_PROTOCOL, "new data frame inside a fragmented message");
    return false;
  }
  /* The whole message is bounded, not each frame: what is assembled plus this frame. */
  if (h->payload_len > max || rx->msg.len + h->payload_len > max) {
    rc_session_protocol_close(l, s, RC_WS_CLOSE_TOO_BIG, "message exceeds --max-message");
    return false;
  }
  if (h->opcode != RC_WS_OP_CONT) {
    rx->frag_op = h->opcode;
    rc_utf8_init(&rx->utf8);
  }
  return true;
}

/* A piece of a data frame's payload, already unmasked. frame_last: it ends the
 * frame; whole: it is the whole frame, and the message was not fragmented. */
static void on_data_piece(struct rc_loop *l, struct rc_session *s, struct rc_session_rx *rx,
                          const uint8_t *p, size_t n, bool frame_last, bool fin) {
  /* Fail fast: an invalid sequence ends the connection as soon as it arrives. */
  if (rx->frag_op == RC_WS_OP_TEXT && !rc_utf8_feed(&rx->utf8, p, n)) {
    rc_session_protocol_close(l, s, RC_WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
    return;
  }
  bool message_done = frame_last && fin;
  if (message_done && rx->frag_op == RC_WS_OP_TEXT && !rc_utf8_is_complete(&rx->utf8)) {
    rc_session_protocol_close(l, s, RC_WS_CLOSE_INVALID_DATA,
                              "text message ends inside a UTF-8 sequence");
    return;
  }
  uint8_t op = rx->frag_op;
  if (message_done && rx->msg.len == 0) {
    /* The whole message is in this piece: straight from the receive buffer. */
    rx->frag_op = 0;
    on_message(l, s, op, p, n);
    return;
  }
  if (rc_bytebuf_append(&rx->msg, p, n, rc_session_shard_of(l)->max_message) < 0) {
    rc_session_protocol_close(l, s, RC_WS_CLOSE_TOO_BIG, "message exceeds --max-message");
    return;
  }
  if (!message_done) return;
  struct rc_bytebuf msg = rx->msg;
  rx->msg = (struct rc_bytebuf){0};
  rx->frag_op = 0;
  on_message(l, s, op, msg.p, msg.len);
  rc_bytebuf_free(&msg);
}

static const char *header_fault(const struct rc_ws_header *h) {
  if (h->rsv) return "reserved bits set without a negotiated extension";
  if (h->opcode > RC_WS_OP_BINARY && h->opcode < RC_WS_OP_CLOSE) return "unknown opcode";
  if (h->opcode > RC_WS_OP_PONG) return "unknown opcode";
  if (!h->masked) return "client frames must be masked";
  return "malformed frame header";
}

void rc_websocket_on_data(struct rc_loop *l, struct rc_session *s, uint8_t *p, size_t n) {
  /* Frames that arrive whole need no receive state of their own: it lives on the
   * stack and moves to the heap only if something is left incomplete. */
  struct rc_session_rx tmp = {0};
  struct rc_session_rx *rx = s->rx ? s->rx : &tmp;
  struct pong_due pong;
  pong.due = false;
  size_t pos = 0;
  while (pos < n && rc_conn_is_open(&s->conn)) {
    struct rc_ws_event ev;
    ssize_t used = rc_ws_reader_next(&rx->rd, p + pos, n - pos, &ev);
    if (used < 0) {
      rc_session_protocol_close(l, s, RC_WS_CLOSE_PROTOCOL, header_fault(&ev.h));
      break;
    }
    pos += (size_t)used;
    if (ev.kind == RC_WS_EVENT_HEADER) {
      if (ev.h.opcode & 0x8) {
        rx->ctl_op = ev.h.opcode;
        if (ev.last) {
          rx->ctl_op = 0;
          on_control(l, s, &pong, ev.h.opcode, NULL, 0);
        }
      } else {
        send_pong(l, s, &pong); /* replies keep the order of what they answer */
        if (data_header_ok(l, s, rx, &ev.h) && ev.last) on_data_piece(l, s, rx, NULL, 0, true, ev.h.fin);
      }
    } else if (ev.kind == RC_WS_EVENT_PAYLOAD) {
      if (rx->ctl_op) {
        /* Control frames are at most 125 bytes: gather a split one, then act. */
        if (!ev.last || rx->in.len) {
          if (rc_bytebuf_append(&rx->in, ev.p, ev.n, RC_WS_MAX_CONTROL_PAYLOAD) < 0) {
            rc_conn_abort(l, &s->conn);
            break;
          }
        }
        if (ev.last) {
          uint8_t op = rx->ctl_op;
          rx->ctl_op = 0;
          if (rx->in.len) {
            struct rc_bytebuf ctl = rx->in;
            rx->in = (struct rc_bytebuf){0};
            on_control(l, s, &pong, op, ctl.p, ctl.len);
            rc_bytebuf_free(&ctl);
          } else {
            on_control(l, s, &pong, op, ev.p, ev.n);
          }
        }
      } else {
        on_data_piece(l, s, rx, ev.p, ev.n, ev.last, rx->rd.fin);
      }
    }
  }
  send_pong(l, s, &pong);
  if (!rc_session_rx_settle(l, s, rx)) {
    rc_session_mark_end(s, RC_END_OVERLOAD);
    rc_session_close(l, s, RC_WS_CLOSE_TRY_LATER,
                     "server over its memory budget (--max-memory); try again later", true);
  }
}

void rc_websocket_ping(struct rc_loop *l, struct rc_session *s) {
  struct rc_frame *f = rc_frame_create_ws((uint16_t)rc_loop_id(l), RC_WS_OP_PING, NULL, 0);
  if (!f) {
    rc_conn_abort(l, &s->conn);
    return;
  }
  rc_counter_add(&rc_session_shard_of(l)->stats.pings_sent, 1);
  rc_session_send_frame(l, s, f);
}
