/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr with a timestamp and the calling shard. */
#include "ringcast/util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Written before shard threads start, read afterwards: relaxed is enough. */
static _Atomic int log_level = RC_LOG_INFO;
static _Atomic int log_format = RC_LOG_TEXT;
static _Thread_local int thread_shard = -1;

void rc_log_set_level(enum rc_log_level level) {
  atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum rc_log_level rc_log_get_level(void) {
  return (enum rc_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int rc_log_parse_level(const char *s, enum rc_log_level *out) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (enum rc_log_level)i;
      return 0;
    }
  }
  return -EINVAL;
}

void rc_log_set_thread_shard(int shard) { thread_shard = shard; }

void rc_log_set_format(enum rc_log_format format) {
  atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

int rc_log_parse_format(const char *s, enum rc_log_format *out) {
  if (strcmp(s, "text") == 0) *out = RC_LOG_TEXT;
  else if (strcmp(s, "json") == 0) *out = RC_LOG_JSON;
  else return -EINVAL;
  return 0;
}

/* msg as the contents of a JSON string into out (room for 6 bytes a byte):
 * quotes, backslashes and control bytes escaped, and bytes past ASCII as
 * \u00XX, so the line is valid JSON whatever a message quoted. */
static size_t json_escape(char *out, const char *msg, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)msg[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      out[o++] = '\\';
      out[o++] = 'u';
      out[o++] = '0';
      out[o++] = '0';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  return o;
}

static void write_json(enum rc_log_level level, const struct tm *tm, long ms, const char *msg,
                       size_t n) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  char line[1024 * 6 + 160];
  int h = snprintf(line, sizeof line,
                   "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"shard\":",
                   tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min,
                   tm->tm_sec, ms, names[level]);
  if (thread_shard >= 0) h += snprintf(line + h, sizeof line - (size_t)h, "%d", thread_shard);
  else h += snprintf(line + h, sizeof line - (size_t)h, "\"main\"");
  h += snprintf(line + h, sizeof line - (size_t)h, ",\"msg\":\"");
  size_t len = (size_t)h + json_escape(line + h, msg, n);
  memcpy(line + len, "\"}\n", 3);
  (void)!fwrite(line, 1, len + 3, stderr);
}

void rc_log_write(enum rc_log_level level, const char *fmt, ...) {
  static const char *const tags[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  if (atomic_load_explicit(&log_format, memory_order_relaxed) == RC_LOG_JSON) {
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = m < 0 ? 0 : (size_t)m < sizeof line ? (size_t)m : sizeof line - 1;
    write_json(level, &tm, ts.tv_nsec / 1000000, line, n);
    return;
  }
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, tags[level]);
  if (thread_shard >= 0)
    n += snprintf(line + n, sizeof line - (size_t)n, "[shard %d] ", thread_shard);
  else
    n += snprintf(line + n, sizeof line - (size_t)n, "[main] ");
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  /* One write per line keeps lines from different shards whole. */
  (void)!fwrite(line, 1, len, stderr);
}
