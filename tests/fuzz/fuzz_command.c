/* SPDX-License-Identifier: MIT */
/* libFuzzer target: client commands, payload classification, the batch publish
 * body, and envelope encoding: every payload must come back out of its envelope
 * and its raw view unchanged. */
#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/command.h"
#include "ringcast/proto/json_scan.h"
#include "ringcast/proto/position.h"
#include "ringcast/pubsub/message.h"
#include "ringcast/util/json_out.h"
#include "ringcast/proto/publish_batch.h"
#include "ringcast/proto/topic_name.h"
#include "ringcast/proto/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 8259's grammar allows a lone surrogate escape (its meaning is left open;
 * Python's json and JSON.parse take it), cJSON refuses one: only where one may
 * be may the strict scanner and cJSON disagree. */
static bool has_surrogate_escape(const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 2 < n; i++)
    if (p[i] == '\\' && p[i + 1] == 'u' && (p[i + 2] == 'd' || p[i + 2] == 'D')) return true;
  return false;
}

static void check_envelope(const uint8_t *p, size_t n) {
  enum rc_payload_class cls = rc_message_classify(p, n);
  struct rc_frame *m = rc_message_encode(0, "fuzz.topic", 10, 7, p, n, cls);
  if (!m) return;
  struct rc_ws_header h;
  ssize_t hl = rc_ws_parse_header(m->data, m->len, false, &h);
  if (hl < 0 || (size_t)hl + h.payload_len != m->len) abort();
  /* Every envelope is strict JSON (what Python's json and JSON.parse accept)... */
  const char *why;
  size_t at;
  if (rc_json_check(m->data + hl, (size_t)h.payload_len, &why, &at) != 0) abort();
  /* ...and so also parses in the lenient cJSON. */
  cJSON *j = cJSON_ParseWithLength((const char *)m->data + hl, (size_t)h.payload_len);
  if (!j) {
    if (cls != RC_PAYLOAD_JSON || !has_surrogate_escape(p, n)) abort();
    rc_frame_destroy(m);
    return;
  }
  cJSON *d = cJSON_GetObjectItemCaseSensitive(j, cls == RC_PAYLOAD_BINARY ? "data_b64" : "data");
  if (!d) abort();
  /* A text payload comes back as the JSON string's contents (cJSON stops at NUL). */
  if (cls == RC_PAYLOAD_TEXT && !memchr(p, 0, n) &&
      (!cJSON_IsString(d) || strlen(d->valuestring) != n || memcmp(d->valuestring, p, n) != 0))
    abort();
  if (cls == RC_PAYLOAD_BINARY) {
    char *b64 = malloc(rc_base64_len(n) + 1);
    size_t bl = rc_base64_encode(b64, p, n);
    if (!cJSON_IsString(d) || strlen(d->valuestring) != bl || memcmp(d->valuestring, b64, bl)) abort();
    free(b64);
  }
  cJSON_Delete(j);
  size_t rl;
  const uint8_t *raw = rc_frame_view(m, RC_MESSAGE_VIEW_RAW, &rl);
  hl = rc_ws_parse_header(raw, rl, false, &h);
  if (hl < 0 || (size_t)hl + n != rl || h.payload_len != n || memcmp(raw + hl, p, n) != 0) abort();
  rc_frame_destroy(m);
}

/* What the strict scanner accepts, cJSON accepts; spans it hands out stay inside
 * the text, and a decoded string never outgrows its escaped form. */
static void check_scanner(const uint8_t *p, size_t n) {
  const char *why;
  size_t at;
  if (rc_json_check(p, n, &why, &at) != 0) {
    if (at > n || !why) abort();
    return;
  }
  cJSON *j = cJSON_ParseWithLength((const char *)p, n);
  if (!j && !has_surrogate_escape(p, n)) abort();
  cJSON_Delete(j);
  static const char *const keys[] = {"op", "topic", "data", "a"};
  for (size_t k = 0; k < 4; k++) {
    struct rc_json_span sp;
    if (rc_json_member(p, n, keys[k], &sp) != 0) continue;
    if (sp.off + sp.len > n) abort();
    if (sp.type == RC_JSON_STRING) {
      uint8_t *out = malloc(sp.len ? sp.len : 1);
      if (rc_json_string_decode(p, &sp, out) > sp.len) abort();
      free(out);
    } else if (sp.type == RC_JSON_ARRAY) {
      struct rc_json_span el;
      size_t pos = 0;
      while (rc_json_array_next(p, &sp, &pos, &el))
        if (el.off < sp.off || el.off + el.len > sp.off + sp.len) abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_scanner(data, size);
  struct rc_command cmd;
  char err[256];
  if (rc_command_parse((const char *)data, size, 4096, &cmd, err, sizeof err) == 0 &&
      cmd.op == RC_CMD_PUBLISH) {
    (void)rc_topic_name_is_valid(cmd.topic, strlen(cmd.topic));
    check_envelope((const uint8_t *)cmd.data, cmd.data_len);
  }
  if (cmd.op == RC_CMD_SUBSCRIBE && cmd.topics) {
    /* Every position the parser let through can be read back. */
    const cJSON *t;
    uint64_t e, q;
    cJSON_ArrayForEach(t, cmd.topics)
      if (rc_command_since(&cmd, t->valuestring, &e, &q) == 0 && q > (1ull << 53)) abort();
  }
  rc_command_fini(&cmd);
  /* A resume position as a URL writes it: the parts stay inside the input and
   * the epoch prints back to what was read. */
  const char *topic;
  size_t tl;
  uint64_t epoch, seq;
  if (rc_position_parse((const char *)data, size, &topic, &tl, &epoch, &seq) == 0) {
    if (topic != (const char *)data || tl + 2 + RC_EPOCH_TEXT_LEN + 1 > size) abort();
    char text[RC_EPOCH_TEXT_LEN + 1];
    rc_epoch_format(epoch, text);
    for (size_t i = 0; i < RC_EPOCH_TEXT_LEN; i++)
      if ((text[i] | 0x20) != (data[tl + 1 + i] | 0x20)) abort();
  }
  check_envelope(data, size);
  struct rc_batch_record rec;
  size_t pos = 0;
  ssize_t r;
  while ((r = rc_publish_batch_next(data, size, pos, 4096, &rec, err, sizeof err)) > 0) {
    if ((size_t)r > size - pos || rec.payload + rec.payload_len > data + size) abort();
    pos += (size_t)r;
  }
  return 0;
}
