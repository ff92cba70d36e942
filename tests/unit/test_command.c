/* SPDX-License-Identifier: MIT */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ringcast/proto/command.h"

static int parse(const char *s, struct rc_command *c, char *err) {
  return rc_command_parse(s, strlen(s), c, err, 256);
}

Test(command, subscribe) {
  struct rc_command c;
  char err[256];
  cr_assert_eq(parse("{\"op\":\"subscribe\",\"topics\":[\"a\",\"b\"],\"id\":7}", &c, err), 0);
  cr_assert_eq(c.op, RC_CMD_SUBSCRIBE);
  cr_assert_eq(cJSON_GetArraySize(c.topics), 2);
  cr_assert_eq(c.id->valuedouble, 7);
  rc_command_fini(&c);
}

Test(command, publish_string_and_json_data) {
  struct rc_command c;
  char err[256];
  cr_assert_eq(parse("{\"op\":\"publish\",\"topic\":\"t\",\"data\":\"hi\"}", &c, err), 0);
  cr_assert_str_eq(c.topic, "t");
  cr_assert_eq(c.data_len, 2);
  cr_assert_eq(memcmp(c.data, "hi", 2), 0, "a string is published as its contents");
  rc_command_fini(&c);
  cr_assert_eq(parse("{\"op\":\"publish\",\"topic\":\"t\",\"data\":{\"a\":[1,2]}}", &c, err), 0);
  cr_assert_str_eq(c.data, "{\"a\":[1,2]}", "other values as compact JSON");
  rc_command_fini(&c);
}

Test(command, ping) {
  struct rc_command c;
  char err[256];
  cr_assert_eq(parse("{\"op\":\"ping\",\"id\":\"x\"}", &c, err), 0);
  cr_assert_eq(c.op, RC_CMD_PING);
  cr_assert_str_eq(c.id->valuestring, "x");
  rc_command_fini(&c);
}

Test(command, errors_name_the_problem) {
  struct rc_command c;
  char err[256];
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[1,2]", "JSON object"},
      {"{\"id\":1}", "missing \"op\""},
      {"{\"op\":\"dance\"}", "unknown \"op\""},
      {"{\"op\":\"subscribe\"}", "\"topics\""},
      {"{\"op\":\"subscribe\",\"topics\":[]}", "non-empty"},
      {"{\"op\":\"subscribe\",\"topics\":[1]}", "must be a string"},
      {"{\"op\":\"publish\",\"data\":1}", "\"topic\""},
      {"{\"op\":\"publish\",\"topic\":\"t\"}", "\"data\" is missing"},
      {"{\"op\":\"ping\",\"id\":[1]}", "\"id\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_eq(parse(cases[i].in, &c, err), -EINVAL, "%s", cases[i].in);
    cr_assert_not_null(strstr(err, cases[i].want), "%s -> %s", cases[i].in, err);
    rc_command_fini(&c);
  }
  cr_assert_eq(parse("{\"op\":\"dance\",\"id\":5}", &c, err), -EINVAL);
  cr_assert_not_null(c.id, "the id is kept for the error reply");
  rc_command_fini(&c);
}
