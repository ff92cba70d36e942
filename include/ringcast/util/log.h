/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr, tagged with the calling shard. The level is set once
 * at start-up, before any shard thread exists, and only read afterwards. */
#ifndef RINGCAST_LOG_H
#define RINGCAST_LOG_H

enum rc_log_level { RC_LOG_ERROR = 0, RC_LOG_WARN, RC_LOG_INFO, RC_LOG_DEBUG };
/* text: "2026-12-02T17:40:09.091Z INFO  [shard 1] message"; json: one object a
 * line, {"ts":"...","level":"info","shard":1,"msg":"..."} ("shard":"main" off
 * the shards), for log pipelines that parse lines. */
enum rc_log_format { RC_LOG_TEXT = 0, RC_LOG_JSON };

/* Any thread. */
void rc_log_set_level(enum rc_log_level level);
enum rc_log_level rc_log_get_level(void);
/* Set once at start-up, like the level. */
void rc_log_set_format(enum rc_log_format format);
/* Parses "text" or "json"; returns 0 or -EINVAL. */
int rc_log_parse_format(const char *s, enum rc_log_format *out);
/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int rc_log_parse_level(const char *s, enum rc_log_level *out);
/* Tags later lines from the calling thread with "shard N" (-1: "main"). */
void rc_log_set_thread_shard(int shard);
void rc_log_write(enum rc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define RC_LOG(level, ...)                                                     \
  do {                                                                         \
    if ((level) <= rc_log_get_level()) rc_log_write((level), __VA_ARGS__);     \
  } while (0)
#define rc_err(...) RC_LOG(RC_LOG_ERROR, __VA_ARGS__)
#define rc_warn(...) RC_LOG(RC_LOG_WARN, __VA_ARGS__)
#define rc_info(...) RC_LOG(RC_LOG_INFO, __VA_ARGS__)
#define rc_debug(...) RC_LOG(RC_LOG_DEBUG, __VA_ARGS__)

#endif
