/* SPDX-License-Identifier: MIT */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/proto/command.h"

static int parse(const char *s, struct rc_command *c, char *err) {
  return rc_command_parse(s, strlen(s), 0, c, err, 256);
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
  cr_assert_eq(c.data_len, strlen("{\"a\":[1,2]}"));
  cr_assert_eq(memcmp(c.data, "{\"a\":[1,2]}", c.data_len), 0, "other values as written");
  rc_command_fini(&c);
}

Test(command, publish_data_is_byte_exact) {
  struct rc_command c;
  char err[256];
  static const char *const values[] = {"12345678901234567890", "1.0e+300", "{ \"a\" : [ 1 , 2 ] }",
                                       "-0"};
  for (size_t i = 0; i < 4; i++) {
    char in[256];
    snprintf(in, sizeof in, "{\"op\":\"publish\",\"topic\":\"t\",\"data\":%s}", values[i]);
    cr_assert_eq(parse(in, &c, err), 0, "%s: %s", in, err);
    cr_assert_eq(c.data_len, strlen(values[i]), "%s", values[i]);
    cr_assert_eq(memcmp(c.data, values[i], c.data_len), 0, "%s is never re-serialised", values[i]);
    rc_command_fini(&c);
  }
  const char *nul = "{\"op\":\"publish\",\"topic\":\"t\",\"data\":\"a\\u0000b\"}";
  cr_assert_eq(parse(nul, &c, err), 0);
  cr_assert_eq(c.data_len, 3, "a NUL inside the string is data, not its end");
  cr_assert_eq(memcmp(c.data, "a\0b", 3), 0);
  rc_command_fini(&c);
  cr_assert_eq(parse("{\"op\":\"ping\",\"id\":12345678901234567890}", &c, err), 0);
  cr_assert_eq(c.id_json_len, 20);
  cr_assert_eq(memcmp(c.id_json, "12345678901234567890", 20), 0, "the id is echoed as written");
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

Test(command, auth_takes_the_token_as_written) {
  struct rc_command c;
  char err[256];
  cr_assert_eq(parse("{\"op\":\"auth\",\"token\":\"eyJh.eyJz.c2ln\",\"id\":7}", &c, err), 0);
  cr_assert_eq(c.op, RC_CMD_AUTH);
  cr_assert_eq(c.token_len, 14);
  cr_assert_eq(memcmp(c.token, "eyJh.eyJz.c2ln", 14), 0);
  rc_command_fini(&c);
  cr_assert_lt(parse("{\"op\":\"auth\"}", &c, err), 0);
  cr_assert(strstr(err, "token"), "%s", err);
  rc_command_fini(&c);
  cr_assert_lt(parse("{\"op\":\"auth\",\"token\":\"\"}", &c, err), 0);
  rc_command_fini(&c);
  cr_assert_lt(parse("{\"op\":\"auth\",\"token\":42}", &c, err), 0);
  rc_command_fini(&c);
  cr_assert_lt(parse("{\"op\":\"auth\",\"token\":\"a\\u0041b\"}", &c, err), 0);
  cr_assert(strstr(err, "escape"), "%s", err);
  rc_command_fini(&c);
  cr_assert_lt(parse("{\"op\":\"auth\",\"token\":\"a\",\"token\":\"b\"}", &c, err), 0);
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
      {"{\"op\":\"publish\",\"topic\":\"t\",\"data\":01}", "leading zero at byte 36"},
      {"{\"op\":\"publish\",\"topic\":\"t\",\"data\":1.}", "decimal point"},
      {"{\"op\":\"publish\",\"topic\":\"t\",\"data\":\"a\tb\"}", "control character"},
      {"{\"op\":\"publish\",\"topic\":\"a\\u0000b\",\"data\":1}", "\"topic\" holds a NUL"},
      {"{\"op\":\"subscribe\",\"topics\":[\"ok\",\"a\\u0000\"]}", "holds a NUL"},
      {"{\"op\":\"publish\",\"topic\":\"a\",\"topic\":\"b\",\"data\":1}", "\"topic\" appears twice"},
      {"{\"op\":\"ping\",\"op\":\"publish\"}", "\"op\" appears twice"},
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

Test(command, bounds_are_checked_before_anything_is_built) {
  struct rc_command c;
  char err[256];
  const char *big = "{\"op\":\"ping\",\"x\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}";
  cr_assert_eq(rc_command_parse(big, strlen(big), 32, &c, err, sizeof err), -EINVAL);
  cr_assert_not_null(strstr(err, "exceeds --max-command-bytes (32)"), "%s", err);
  cr_assert_null(c.root, "no tree was built");
  rc_command_fini(&c);
  const char *pub = "{\"op\":\"publish\",\"topic\":\"t\",\"data\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0]}";
  cr_assert_eq(rc_command_parse(pub, strlen(pub), 32, &c, err, sizeof err), 0,
               "a publish is bounded by --max-message, not --max-command-bytes");
  cr_assert_null(c.root, "the data is copied, never parsed into a tree");
  rc_command_fini(&c);
  char many[16 * 1100];
  size_t n = (size_t)snprintf(many, sizeof many, "{\"op\":\"subscribe\",\"topics\":[");
  for (int i = 0; i < 1025; i++) n += (size_t)snprintf(many + n, sizeof many - n, "%s\"t%d\"", i ? "," : "", i);
  n += (size_t)snprintf(many + n, sizeof many - n, "]}");
  cr_assert_eq(rc_command_parse(many, n, 0, &c, err, sizeof err), -EINVAL);
  cr_assert_not_null(strstr(err, "more than 1024 topics"), "%s", err);
  cr_assert_null(c.root);
  rc_command_fini(&c);
}

Test(command, subscribe_since_and_snapshot) {
  struct rc_command c;
  char err[256];
  cr_assert_eq(parse("{\"op\":\"subscribe\",\"topics\":[\"a\",\"b\"],\"snapshot\":true,"
                     "\"since\":{\"b\":{\"epoch\":\"00000000000000ff\",\"seq\":120}}}",
                     &c, err), 0, "%s", err);
  uint64_t e, q;
  cr_assert(c.snapshot);
  cr_assert_eq(rc_command_since(&c, "a", &e, &q), -ENOENT);
  cr_assert_eq(rc_command_since(&c, "b", &e, &q), 0);
  cr_assert_eq(e, 255);
  cr_assert_eq(q, 120);
  rc_command_fini(&c);
  static const struct {
    const char *text, *why;
  } bad[] = {
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\":{\"a\":{\"epoch\":\"00000000000000ff\",\"seq\":1},"
       "\"a\":{\"epoch\":\"00000000000000ff\",\"seq\":2}}}", "names 'a' twice"},
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\":{\"a\\u0000x\":{\"epoch\":\"00000000000000ff\",\"seq\":1}}}",
       "holds a NUL"},
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\":{\"b\":{\"epoch\":\"00000000000000ff\",\"seq\":1}}}",
       "which \"topics\" does not"},
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\":{\"a\":{\"epoch\":\"ff\",\"seq\":1}}}", "16 hex digits"},
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\":{\"a\":{\"epoch\":\"00000000000000ff\",\"seq\":-1}}}",
       "the last seq received"},
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"since\":[]}", "must be an object"},
      {"{\"op\":\"subscribe\",\"topics\":[\"a\"],\"snapshot\":\"yes\"}", "true or false"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(parse(bad[i].text, &c, err), -EINVAL, "%s", bad[i].text);
    cr_assert(strstr(err, bad[i].why), "%s: %s", bad[i].text, err);
    rc_command_fini(&c);
  }
}
