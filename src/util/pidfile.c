/* SPDX-License-Identifier: MIT */
/* The pid file: a temporary file beside it, renamed over it once written. */
#include "ringcast/util/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One temporary name per pid: two servers starting at once do not share it. */
static void tmp_name(const char *path, char *out, size_t size) {
  snprintf(out, size, "%s.tmp.%ld", path, (long)getpid());
}

int rc_pidfile_prepare(const char *path, char *err, size_t err_size) {
  char tmp[PATH_MAX];
  if (strlen(path) + 24 >= sizeof tmp) {
    snprintf(err, err_size, "--pid-file %s: path too long", path);
    return -ENAMETOOLONG;
  }
  tmp_name(path, tmp, sizeof tmp);
  /* The name is predictable: whoever can write the directory could have put a
   * symlink there to have us overwrite its target. Remove whatever is there
   * (unlink does not follow links) and create the file afresh, following no
   * link: one planted in between makes the open fail instead. */
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    snprintf(err, err_size, "--pid-file %s: cannot create %s: %s", path, tmp, strerror(e));
    return -e;
  }
  return fd;
}

void rc_pidfile_abandon(int fd, const char *path) {
  char tmp[PATH_MAX];
  tmp_name(path, tmp, sizeof tmp);
  close(fd);
  unlink(tmp);
}

int rc_pidfile_commit(int fd, const char *path, char *err, size_t err_size) {
  char tmp[PATH_MAX], text[32];
  tmp_name(path, tmp, sizeof tmp);
  int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
  ssize_t w = write(fd, text, (size_t)n);
  int e = w == n ? 0 : (w < 0 ? errno : EIO);
  if (!e && fsync(fd) < 0) e = errno;
  if (close(fd) < 0 && !e) e = errno;
  if (!e && rename(tmp, path) < 0) e = errno;
  if (e) {
    unlink(tmp);
    snprintf(err, err_size, "--pid-file %s: cannot write it: %s", path, strerror(e));
    return -e;
  }
  return 0;
}

pid_t rc_pidfile_read(const char *path) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  FILE *f = fdopen(fd, "r");
  if (!f) {
    close(fd);
    return 0;
  }
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > INT_MAX) pid = 0;
  fclose(f);
  return (pid_t)pid;
}

void rc_pidfile_remove(const char *path) {
  if (rc_pidfile_read(path) == getpid()) unlink(path);
}
