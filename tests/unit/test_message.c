/* SPDX-License-Identifier: MIT */
/* Encoding published messages: the envelope and the raw view in one frame. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/pubsub/message.h"
#include "ringcast/proto/ws.h"

static cJSON *envelope_json(const struct rc_frame *m) {
  struct rc_ws_header h;
  cr_assert_gt(rc_ws_parse_header(m->data, m->len, false, &h), 0);
  cr_assert_eq(h.opcode, RC_WS_OP_TEXT);
  cr_assert_eq(h.header_len + h.payload_len, m->len);
  return cJSON_ParseWithLength((const char *)m->data + h.header_len, (size_t)h.payload_len);
}

static void check_raw(const struct rc_frame *m, const void *payload, size_t len, uint8_t op) {
  size_t l;
  const uint8_t *buf = rc_frame_view(m, RC_MESSAGE_VIEW_RAW, &l);
  cr_assert_eq(l, rc_frame_view_len(m, RC_MESSAGE_VIEW_RAW));
  struct rc_ws_header h;
  ssize_t hl = rc_ws_parse_header(buf, l, false, &h);
  cr_assert_eq(h.opcode, op);
  cr_assert_eq(h.payload_len, len);
  cr_assert_eq(memcmp(buf + hl, payload, len), 0);
}

Test(message, json_payload_is_embedded_verbatim) {
  const char *p = "{\"px\":61000.5,\"qty\":[1,2]}";
  cr_assert_eq(rc_message_classify((const uint8_t *)p, strlen(p)), RC_PAYLOAD_JSON);
  struct rc_frame *m = rc_message_encode(0, "px.BTC", 6, 42, (const uint8_t *)p, strlen(p), RC_PAYLOAD_JSON);
  cJSON *j = envelope_json(m);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "type")->valuestring, "msg");
  cr_assert_str_eq(cJSON_GetObjectItem(j, "topic")->valuestring, "px.BTC");
  cr_assert_eq(cJSON_GetObjectItem(j, "seq")->valuedouble, 42);
  cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "px")->valuedouble, 61000.5);
  cJSON_Delete(j);
  check_raw(m, p, strlen(p), RC_WS_OP_TEXT);
  cr_assert_eq(rc_frame_view_len(m, RC_MESSAGE_VIEW_ENVELOPE), m->len);
  rc_frame_destroy(m);
}

Test(message, text_payload_is_escaped) {
  const char *p = "line 1\n\"quoted\" \\ tab\t\x01";
  cr_assert_eq(rc_message_classify((const uint8_t *)p, strlen(p)), RC_PAYLOAD_TEXT);
  struct rc_frame *m = rc_message_encode(1, "px.BTC", 6, 1, (const uint8_t *)p, strlen(p), RC_PAYLOAD_TEXT);
  cJSON *j = envelope_json(m);
  cr_assert_not_null(j);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "data")->valuestring, p);
  cJSON_Delete(j);
  check_raw(m, p, strlen(p), RC_WS_OP_TEXT);
  rc_frame_destroy(m);
}

Test(message, binary_payload_is_base64) {
  const uint8_t p[] = {0xff, 0x00, 0xfe, 0x80};
  cr_assert_eq(rc_message_classify(p, sizeof p), RC_PAYLOAD_BINARY);
  struct rc_frame *m = rc_message_encode(1, "px.BTC", 6, 7, p, sizeof p, RC_PAYLOAD_BINARY);
  cJSON *j = envelope_json(m);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "data_b64")->valuestring, "/wD+gA==");
  cJSON_Delete(j);
  check_raw(m, p, sizeof p, RC_WS_OP_BINARY);
  rc_frame_destroy(m);
}

Test(message, classify_edge_cases) {
  cr_assert_eq(rc_message_classify((const uint8_t *)"", 0), RC_PAYLOAD_TEXT);
  cr_assert_eq(rc_message_classify((const uint8_t *)"123", 3), RC_PAYLOAD_JSON);
  cr_assert_eq(rc_message_classify((const uint8_t *)"123abc", 6), RC_PAYLOAD_TEXT);
  cr_assert_eq(rc_message_classify((const uint8_t *)"{\"a\":1} ", 8), RC_PAYLOAD_JSON);
  cr_assert_eq(rc_message_classify((const uint8_t *)"{\"a\":1} x", 9), RC_PAYLOAD_TEXT);
  cr_assert_eq(rc_message_classify((const uint8_t *)"{\"a\":", 5), RC_PAYLOAD_TEXT);
}
