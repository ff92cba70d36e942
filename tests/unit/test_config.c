/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ringcast/util/config.h"

static int run(struct rc_config *cfg, char *errbuf, size_t n, int argc, char **argv) {
  FILE *err = fmemopen(errbuf, n, "w");
  FILE *out = fopen("/dev/null", "w");
  int r = rc_config_parse(cfg, argc, argv, out, err);
  fclose(err);
  fclose(out);
  return r;
}

Test(config, defaults) {
  struct rc_config c;
  char e[512] = "";
  char *argv[] = {"ringcast", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 1, argv), 0);
  cr_assert_eq(c.n_listen, 1);
  cr_assert_str_eq(c.listen[0].text, "0.0.0.0:8080");
  cr_assert(c.threads >= 1);
  cr_assert(c.pin);
  cr_assert_eq(c.max_queue, 4u << 20);
  cr_assert_eq(c.max_patterns, 10000);
}

Test(config, flags) {
  struct rc_config c;
  char e[512] = "";
  char *argv[] = {"ringcast", "--listen", "127.0.0.1:9000", "--listen", "[::1]:9001",
                  "--threads", "4", "--no-pin", "--max-message", "64k", "--max-queue", "1m",
                  "--demo-feed", "--log-level", "debug", "--max-conns", "1000", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 17, argv), 0, "%s", e);
  cr_assert_eq(c.n_listen, 2);
  cr_assert_eq(c.listen[1].addr.ss_family, AF_INET6);
  cr_assert_eq(c.threads, 4);
  cr_assert_not(c.pin);
  cr_assert_eq(c.max_message, 65536);
  cr_assert_eq(c.max_queue, 1u << 20);
  cr_assert(c.demo_feed);
  cr_assert_eq(c.max_conns, 1000);
}

Test(config, limits) {
  struct rc_config c;
  char e[512] = "";
  char *argv[] = {"ringcast", "--max-memory", "512m", "--max-backlog", "1m", "--max-topics", "5000",
                  "--max-command-bytes", "8k", "--max-commands-per-sec", "0", "--max-conns-per-ip", "0",
                  "--max-handshakes-per-ip", "7", "--connect-rate-per-ip", "9",
                  "--admin-listen", "127.0.0.1:9090", "--max-patterns", "77", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 21, argv), 0, "%s", e);
  cr_assert_eq(c.max_patterns, 77);
  cr_assert_eq(c.max_memory, 512u << 20);
  cr_assert_eq(c.max_backlog, 1u << 20);
  cr_assert_eq(c.max_topics, 5000);
  cr_assert_eq(c.max_command_bytes, 8192);
  cr_assert_eq(c.max_commands, 0);
  cr_assert_eq(c.max_conns_per_ip, 0);
  cr_assert_eq(c.max_handshakes_per_ip, 7);
  cr_assert_eq(c.connect_rate_per_ip, 9);
  cr_assert(c.has_admin);
  cr_assert_str_eq(c.admin.text, "127.0.0.1:9090");
  char *small[] = {"ringcast", "--max-memory", "16m", "--max-backlog", "64m", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 5, small), 0, "%s", e);
  cr_assert_eq(c.max_backlog, 16u << 20, "a backlog is never larger than the whole budget");
}

Test(config, delivery) {
  struct rc_config c;
  char e[512] = "";
  char *none[] = {"ringcast", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 1, none), 0, "%s", e);
  cr_assert_eq(c.history, 0, "history is off unless asked for");
  cr_assert_eq(c.history_bytes, 1u << 20);
  cr_assert_eq(c.history_ttl, 300);
  cr_assert_eq(c.topic_heartbeat, 0);
  cr_assert_eq(c.slow_policy, RC_SLOW_DISCONNECT);
  cr_assert_eq(c.log_format, RC_LOG_TEXT);
  char *argv[] = {"ringcast", "--history", "1000", "--history-bytes", "4m", "--history-ttl", "0",
                  "--topic-heartbeat", "5", "--slow-policy", "conflate", "--log-format", "json", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 13, argv), 0, "%s", e);
  cr_assert_eq(c.history, 1000);
  cr_assert_eq(c.history_bytes, 4u << 20);
  cr_assert_eq(c.history_ttl, 0);
  cr_assert_eq(c.topic_heartbeat, 5);
  cr_assert_eq(c.slow_policy, RC_SLOW_CONFLATE);
  cr_assert_eq(c.log_format, RC_LOG_JSON);
}

Test(config, bad_values_name_the_flag) {
  static const char *cases[][3] = {
      {"--threads", "0", "--threads"},     {"--threads", "abc", "--threads"},
      {"--listen", "nope", "--listen"},    {"--listen", "1.2.3.4:99999", "--listen"},
      {"--listen", "::1:80", "--listen"},  {"--max-queue", "12q", "--max-queue"},
      {"--max-message", "1", "--max-message"}, {"--cpus", "5-2", "--cpus"},
      {"--log-level", "loud", "--log-level"}, {"--max-conns", "99999999", "--max-conns"},
      {"--max-memory", "1m", "--max-memory"}, {"--max-backlog", "1k", "--max-backlog"},
      {"--max-topics", "0", "--max-topics"}, {"--max-command-bytes", "12", "--max-command-bytes"},
      {"--max-commands-per-sec", "-5", "--max-commands-per-sec"},
      {"--max-conns-per-ip", "x", "--max-conns-per-ip"},
      {"--max-handshakes-per-ip", "1e3", "--max-handshakes-per-ip"},
      {"--connect-rate-per-ip", "", "--connect-rate-per-ip"},
      {"--admin-listen", "9090", "--admin-listen"},
      {"--max-patterns", "2000000", "--max-patterns"},
      {"--history", "-1", "--history"}, {"--history", "99999999", "--history"},
      {"--history-bytes", "3x", "--history-bytes"}, {"--history-ttl", "1.5", "--history-ttl"},
      {"--topic-heartbeat", "soon", "--topic-heartbeat"},
      {"--slow-policy", "drop", "--slow-policy"}, {"--log-format", "yaml", "--log-format"},
      {"--redis", "localhost:6379", "--redis"}, {"--redis", "rediss://h", "--redis"},
      {"--node-id", "a b", "--node-id"},
      {"--redis-patterns", "0", "--redis-patterns"}, {"--redis-patterns", "5000", "--redis-patterns"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct rc_config c;
    char e[512] = "";
    char *argv[] = {"ringcast", (char *)cases[i][0], (char *)cases[i][1], NULL};
    cr_assert_eq(run(&c, e, sizeof e, 3, argv), -EINVAL, "%s %s", cases[i][0], cases[i][1]);
    cr_assert_not_null(strstr(e, cases[i][2]), "message names the flag: %s", e);
  }
  struct rc_config c;
  char e[512] = "";
  char *argv[] = {"ringcast", "--bogus", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 2, argv), -EINVAL);
  cr_assert_not_null(strstr(e, "--bogus"));
}

Test(config, sizes_and_cpus) {
  uint64_t v;
  cr_assert_eq(rc_config_parse_size("10", &v), 0);
  cr_assert_eq(v, 10);
  cr_assert_eq(rc_config_parse_size("2k", &v), 0);
  cr_assert_eq(v, 2048);
  cr_assert_eq(rc_config_parse_size("3MB", &v), 0);
  cr_assert_eq(v, 3u << 20);
  cr_assert_eq(rc_config_parse_size("", &v), -EINVAL);
  cr_assert_eq(rc_config_parse_size("-1", &v), -EINVAL);
  int cpus[8];
  cr_assert_eq(rc_config_parse_cpus("0-1", cpus, 8), 2);
  cr_assert_eq(rc_config_parse_cpus("0,1", cpus, 8), 2);
  cr_assert_eq(rc_config_parse_cpus("x", cpus, 8), -EINVAL);
}

Test(config, tls_listeners_need_a_certificate_and_its_key) {
  struct rc_config c;
  char e[512] = "";
  char *both[] = {"ringcast", "--listen", "127.0.0.1:8080", "--listen", "[::1]:8443,tls",
                  "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 9, both), 0, "%s", e);
  cr_assert(!c.listen[0].tls);
  cr_assert(c.listen[1].tls);
  cr_assert_str_eq(c.listen[1].text, "[::1]:8443");
  char *only[] = {"ringcast", "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 5, only), 0, "%s", e);
  cr_assert(c.listen[0].tls, "the only listener serves the certificate");
  char *no_key[] = {"ringcast", "--tls-cert", "c.pem", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, no_key), -EINVAL);
  cr_assert(strstr(e, "--tls-cert is given without --tls-key"), "%s", e);
  char *no_cert[] = {"ringcast", "--listen", "127.0.0.1:8443,tls", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, no_cert), -EINVAL);
  cr_assert(strstr(e, "no certificate"), "%s", e);
  char *unmarked[] = {"ringcast", "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2",
                      "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 9, unmarked), -EINVAL);
  cr_assert(strstr(e, "HOST:PORT,tls"), "%s", e);
  char *bad_suffix[] = {"ringcast", "--listen", "127.0.0.1:8443,ssl", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, bad_suffix), -EINVAL);
}

Test(config, access_control_flags) {
  struct rc_config c;
  char e[512] = "";
  char *argv[] = {"ringcast", "--jwt-key", "a.pem", "--jwt-key", "b.secret,kid=b", "--jwt-leeway", "5",
                  "--jwt-audience", "aud", "--jwt-issuer", "iss", "--jwt-cookie", "tok",
                  "--publish-key-file", "keys", "--allow-origin", "https://*.example.com",
                  "--trust-proxy", "10.0.0.0/8", "--trust-proxy", "::1", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 21, argv), 0, "%s", e);
  cr_assert_eq(c.n_jwt_keys, 2);
  cr_assert_str_eq(c.jwt_keys[1], "b.secret,kid=b");
  cr_assert_eq(c.jwt_leeway, 5);
  cr_assert_str_eq(c.jwt_cookie, "tok");
  cr_assert_eq(c.n_allow_origins, 1);
  cr_assert_eq(c.n_trust_proxies, 2);
  char *defaults[] = {"ringcast", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 1, defaults), 0);
  cr_assert_eq(c.jwt_leeway, 30);
  cr_assert_eq(c.n_jwt_keys, 0);
  char *bad_cookie[] = {"ringcast", "--jwt-cookie", "a=b", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, bad_cookie), -EINVAL);
  cr_assert(strstr(e, "--jwt-cookie"), "%s", e);
  char *bad_leeway[] = {"ringcast", "--jwt-leeway", "99999", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, bad_leeway), -EINVAL);
}

Test(config, stats_interval) {
  struct rc_config c;
  char e[512] = "";
  char *defaults[] = {"ringcast", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 1, defaults), 0);
  cr_assert_eq(c.stats_interval_ms, 1000);
  char *off[] = {"ringcast", "--stats-interval", "0", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, off), 0, "%s", e);
  cr_assert_eq(c.stats_interval_ms, 0);
  char *slow[] = {"ringcast", "--stats-interval", "5000", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, slow), 0, "%s", e);
  cr_assert_eq(c.stats_interval_ms, 5000);
  char *fast[] = {"ringcast", "--stats-interval", "10", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, fast), -EINVAL);
  cr_assert(strstr(e, "--stats-interval"), "%s", e);
  char *junk[] = {"ringcast", "--stats-interval", "1s", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, junk), -EINVAL);
}

Test(config, lifecycle_flags) {
  struct rc_config c;
  char e[512] = "";
  char *none[] = {"ringcast", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 1, none), 0);
  cr_assert_eq(c.drain_seconds, 30);
  cr_assert(!c.takeover);
  cr_assert_null(c.control_socket);
  cr_assert_null(c.pid_file);
  char *argv[] = {"ringcast", "--drain-seconds", "0", "--takeover", "--control-socket",
                  "/run/ringcast/ctl", "--pid-file", "/run/ringcast.pid", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 8, argv), 0, "%s", e);
  cr_assert_eq(c.drain_seconds, 0);
  cr_assert(c.takeover);
  cr_assert_str_eq(c.control_socket, "/run/ringcast/ctl");
  cr_assert_str_eq(c.pid_file, "/run/ringcast.pid");

  char *bad_drain[] = {"ringcast", "--drain-seconds", "3601", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, bad_drain), -EINVAL);
  cr_assert(strstr(e, "--drain-seconds"), "%s", e);
  char *neg_drain[] = {"ringcast", "--drain-seconds", "-1", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, neg_drain), -EINVAL);
  char long_path[200];
  memset(long_path, 'a', sizeof long_path - 1);
  long_path[sizeof long_path - 1] = '\0';
  char *bad_ctl[] = {"ringcast", "--control-socket", long_path, NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, bad_ctl), -EINVAL);
  cr_assert(strstr(e, "--control-socket"), "%s", e);
  char *empty_pid[] = {"ringcast", "--pid-file", "", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 3, empty_pid), -EINVAL);
  cr_assert(strstr(e, "--pid-file"), "%s", e);
}

Test(config, redis_scale_out) {
  struct rc_config c;
  char e[512] = "";
  char *argv[] = {"ringcast", "--redis", "redis://:pw@10.0.0.5:6380/1", "--node-id", "node-a", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 5, argv), 0, "%s", e);
  cr_assert(c.has_redis);
  cr_assert_str_eq(c.redis.host, "10.0.0.5");
  cr_assert_eq(c.redis.port, 6380);
  cr_assert_eq(c.redis.db, 1);
  cr_assert_str_eq(c.node_id, "node-a");
  cr_assert_eq(c.max_patterns, 10000, "wildcards are shared through Redis: on as without it");
  cr_assert_eq(c.redis_patterns, 64, "the default --redis-patterns");
  char *argv2[] = {"ringcast", "--redis", "redis://h", "--max-patterns", "10", NULL};
  cr_assert_eq(run(&c, e, sizeof e, 5, argv2), 0, "%s", e);
  cr_assert_eq(c.max_patterns, 10);
}
