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

void rc_log_write(enum rc_log_level level, const char *fmt, ...) {
  static const char *const tags[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
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
