/* SPDX-License-Identifier: MIT */
/* Log lines: --log-format json writes one JSON object a line, whatever the
 * message holds. */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/util/log.h"

static void capture(void) { cr_redirect_stderr(); }

Test(log, json_lines_parse_whatever_the_message_holds, .init = capture) {
  rc_log_set_format(RC_LOG_JSON);
  rc_log_set_thread_shard(3);
  rc_log_write(RC_LOG_WARN, "peer \"%s\" sent \\ and\n%s", "x", "\xc3\x01");
  rc_log_set_thread_shard(-1);
  rc_log_write(RC_LOG_INFO, "listening on %s", "127.0.0.1:8080");
  fflush(stderr);
  FILE *f = cr_get_redirected_stderr();
  char line[8192];
  cr_assert_not_null(fgets(line, sizeof line, f));
  cJSON *j = cJSON_Parse(line);
  cr_assert_not_null(j, "%s", line);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
  cr_assert_eq(cJSON_GetObjectItem(j, "shard")->valuedouble, 3);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, "peer \"x\" sent \\ and\n\xc3\x83\x01");
  cr_assert_eq(strlen(cJSON_GetObjectItem(j, "ts")->valuestring), 24);
  cJSON_Delete(j);
  cr_assert_not_null(fgets(line, sizeof line, f));
  j = cJSON_Parse(line);
  cr_assert_not_null(j, "%s", line);
  cr_assert_str_eq(cJSON_GetObjectItem(j, "shard")->valuestring, "main");
  cr_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, "listening on 127.0.0.1:8080");
  cJSON_Delete(j);
  rc_log_set_format(RC_LOG_TEXT);
}

Test(log, formats_parse) {
  enum rc_log_format f;
  cr_assert_eq(rc_log_parse_format("json", &f), 0);
  cr_assert_eq(f, RC_LOG_JSON);
  cr_assert_eq(rc_log_parse_format("text", &f), 0);
  cr_assert_eq(f, RC_LOG_TEXT);
  cr_assert_eq(rc_log_parse_format("yaml", &f), -22);
}
