/* SPDX-License-Identifier: MIT */
/* Message encoding (both views) and the shard-level reference count; the
 * multi-threaded release race is in tests/tsan/stress_threads.c. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <string.h>

#include "ringcast/frame.h"
#include "ringcast/topic.h"
#include "ringcast/ws.h"

static struct rc_topic_table *table;
static struct rc_topic *topic;

static void setup(void) {
  table = rc_topic_table_create(4, 2);
  rc_topic_get(table, "px.BTC", 6, &topic);
}
static void teardown(void) { rc_topic_table_destroy(table); }

static cJSON *envelope_json(const struct rc_msg *m) {
  struct rc_ws_header h;
  cr_assert_gt(rc_ws_parse_header(m->data, m->env_len, false, &h), 0);
  cr_assert_eq(h.opcode, RC_WS_OP_TEXT);
  cr_assert_eq(h.header_len + h.payload_len, m->env_len);
  return cJSON_ParseWithLength((const char *)m->data + h.header_len, (size_t)h.payload_len);
}

static void check_raw(const struct rc_msg *m, const void *payload, size_t len, uint8_t op) {
  struct iovec iov[2];
  int n = rc_msg_view_iov(m, RC_VIEW_RAW, iov);
  uint8_t buf[512];
  size_t l = 0;
  for (int i = 0; i < n; i++) {
    memcpy(buf + l, iov[i].iov_base, iov[i].iov_len);
    l += iov[i].iov_len;
  }
  cr_assert_eq(l, rc_msg_view_len(m, RC_VIEW_RAW));
  struct rc_ws_header h;
  ssize_t hl = rc_ws_parse_header(buf, l, false, &h);
  cr_assert_eq(h.opcode, op);
  cr_assert_eq(h.payload_len, len);
  cr_assert_eq(memcmp(buf + hl, payload, len), 0);
}

Test(frame, json_payload_is_embedded_verbatim, .init = setup, .fini = teardown) {
  const char *p = "{\"px\":61000.5,\"qty\":[1,2]}";
  cr_assert_eq(rc_payload_classify((const uint8_t *)p, strlen(p)), RC_PAYLOAD_JSON);
  struct rc_msg *m = rc_msg_create_published(0, topic, 42, (const uint8_t *)p, strlen(p), RC_PAYLOAD_JSON);
  cJSON *j = envelope_json(m);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "type")->valuestring, "msg");
  cr_assert_str_eq(cJSON_GetObjectItem(j, "topic")->valuestring, "px.BTC");
  cr_assert_eq(cJSON_GetObjectItem(j, "seq")->valuedouble, 42);
  cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "px")->valuedouble, 61000.5);
  cJSON_Delete(j);
  check_raw(m, p, strlen(p), RC_WS_OP_TEXT);
  cr_assert_eq(rc_msg_view_len(m, RC_VIEW_ENVELOPE), m->env_len);
  rc_msg_destroy(m);
}

Test(frame, text_payload_is_escaped, .init = setup, .fini = teardown) {
  const char *p = "line 1\n\"quoted\" \\ tab\t\x01";
  cr_assert_eq(rc_payload_classify((const uint8_t *)p, strlen(p)), RC_PAYLOAD_TEXT);
  struct rc_msg *m = rc_msg_create_published(1, topic, 1, (const uint8_t *)p, strlen(p), RC_PAYLOAD_TEXT);
  cJSON *j = envelope_json(m);
  cr_assert_not_null(j);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "data")->valuestring, p);
  cJSON_Delete(j);
  check_raw(m, p, strlen(p), RC_WS_OP_TEXT);
  rc_msg_destroy(m);
}

Test(frame, binary_payload_is_base64, .init = setup, .fini = teardown) {
  const uint8_t p[] = {0xff, 0x00, 0xfe, 0x80};
  cr_assert_eq(rc_payload_classify(p, sizeof p), RC_PAYLOAD_BINARY);
  struct rc_msg *m = rc_msg_create_published(1, topic, 7, p, sizeof p, RC_PAYLOAD_BINARY);
  cJSON *j = envelope_json(m);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "data_b64")->valuestring, "/wD+gA==");
  cJSON_Delete(j);
  check_raw(m, p, sizeof p, RC_WS_OP_BINARY);
  rc_msg_destroy(m);
}

Test(frame, classify_edge_cases) {
  cr_assert_eq(rc_payload_classify((const uint8_t *)"", 0), RC_PAYLOAD_TEXT);
  cr_assert_eq(rc_payload_classify((const uint8_t *)"123", 3), RC_PAYLOAD_JSON);
  cr_assert_eq(rc_payload_classify((const uint8_t *)"123abc", 6), RC_PAYLOAD_TEXT);
  cr_assert_eq(rc_payload_classify((const uint8_t *)"{\"a\":1} ", 8), RC_PAYLOAD_JSON);
  cr_assert_eq(rc_payload_classify((const uint8_t *)"{\"a\":1} x", 9), RC_PAYLOAD_TEXT);
  cr_assert_eq(rc_payload_classify((const uint8_t *)"{\"a\":", 5), RC_PAYLOAD_TEXT);
}

Test(frame, private_frames) {
  struct rc_msg *m = rc_msg_create_close(3, 1008, "slow consumer");
  struct rc_ws_header h;
  cr_assert_eq(rc_ws_parse_header(m->data, m->env_len, false, &h), 2);
  cr_assert_eq(h.opcode, RC_WS_OP_CLOSE);
  cr_assert_eq(m->data[2] << 8 | m->data[3], 1008);
  cr_assert_eq(memcmp(m->data + 4, "slow consumer", 13), 0);
  cr_assert_eq(rc_msg_view_len(m, RC_VIEW_RAW), m->env_len, "private frames have one view");
  rc_msg_destroy(m);
  char reason[300];
  memset(reason, 'r', sizeof reason - 1);
  reason[sizeof reason - 1] = '\0';
  m = rc_msg_create_close(3, 1000, reason);
  cr_assert_eq(m->env_len, 2 + 125, "close payload capped at 125 bytes");
  rc_msg_destroy(m);
}

Test(frame, shard_refs_single_thread) {
  struct rc_msg *m = rc_msg_create_bytes(0, 8);
  atomic_store(&m->shard_refs, 3);
  cr_assert_not(rc_msg_shard_unref(m));
  cr_assert_not(rc_msg_shard_unref(m));
  cr_assert(rc_msg_shard_unref(m));
  rc_msg_destroy(m);
}
