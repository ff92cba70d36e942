/* SPDX-License-Identifier: MIT */
/* --pid-file: written atomically once the server listens, removed at exit
 * unless a successor has replaced it. Main thread only. */
#ifndef RINGCAST_UTIL_PIDFILE_H
#define RINGCAST_UTIL_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Creates a temporary file beside path, so a path that cannot be written
 * fails before the server takes any socket. Returns its fd, or a negative
 * errno with a message in err. */
int rc_pidfile_prepare(const char *path, char *err, size_t err_size);
/* Writes our pid to the prepared file (closing it) and renames it over path,
 * so a reader never sees a partial file. 0 or a negative errno (the temporary
 * file is removed). */
int rc_pidfile_commit(int fd, const char *path, char *err, size_t err_size);
/* Gives up a prepared file: closes and removes it. */
void rc_pidfile_abandon(int fd, const char *path);
/* Removes path if it still names our pid (a successor may have replaced it). */
void rc_pidfile_remove(const char *path);
/* The pid a pid file names, or 0 when it names none. */
pid_t rc_pidfile_read(const char *path);

#endif
