/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ringcast/util/pidfile.h"

static char dir[] = "/tmp/rc-pidfile-XXXXXX";

static void setup(void) { cr_assert_not_null(mkdtemp(dir)); }
static void teardown(void) { rmdir(dir); }

Test(pidfile, written_whole_then_removed, .init = setup, .fini = teardown) {
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/rc.pid", dir);
  int fd = rc_pidfile_prepare(path, err, sizeof err);
  cr_assert_geq(fd, 0, "%s", err);
  cr_assert_neq(access(path, F_OK), 0, "nothing at the path until it is complete");
  cr_assert_eq(rc_pidfile_commit(fd, path, err, sizeof err), 0, "%s", err);
  cr_assert_eq(rc_pidfile_read(path), getpid());
  FILE *f = fopen(path, "r");
  char text[32] = "";
  cr_assert_not_null(fgets(text, sizeof text, f));
  fclose(f);
  char want[32];
  snprintf(want, sizeof want, "%ld\n", (long)getpid());
  cr_assert_str_eq(text, want);
  rc_pidfile_remove(path);
  cr_assert_neq(access(path, F_OK), 0);
}

Test(pidfile, a_successors_file_is_left_alone, .init = setup, .fini = teardown) {
  char path[128];
  snprintf(path, sizeof path, "%s/rc.pid", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "%ld\n", (long)getpid() + 1);
  fclose(f);
  rc_pidfile_remove(path);
  cr_assert_eq(rc_pidfile_read(path), getpid() + 1);
  unlink(path);
}

Test(pidfile, unwritable_and_unreadable, .init = setup, .fini = teardown) {
  char err[256];
  cr_assert_eq(rc_pidfile_prepare("/nonexistent/dir/rc.pid", err, sizeof err), -ENOENT);
  cr_assert(strstr(err, "--pid-file /nonexistent/dir/rc.pid"), "%s", err);
  cr_assert_eq(rc_pidfile_read("/nonexistent/dir/rc.pid"), 0);
  char path[128];
  snprintf(path, sizeof path, "%s/garbage.pid", dir);
  FILE *f = fopen(path, "w");
  fputs("not a pid\n", f);
  fclose(f);
  cr_assert_eq(rc_pidfile_read(path), 0);
  unlink(path);
}

Test(pidfile, abandoned_leaves_nothing, .init = setup, .fini = teardown) {
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/rc.pid", dir);
  int fd = rc_pidfile_prepare(path, err, sizeof err);
  cr_assert_geq(fd, 0, "%s", err);
  rc_pidfile_abandon(fd, path);
  cr_assert_eq(rmdir(dir), 0, "the directory is empty again");
  cr_assert_eq(mkdir(dir, 0700), 0);
}

/* Review: the temporary name is predictable; a symlink planted there must not
 * make the server overwrite its target. */
Test(pidfile, a_planted_symlink_is_not_followed, .init = setup, .fini = teardown) {
  char path[128], tmp[160], victim[128], err[256];
  snprintf(path, sizeof path, "%s/rc.pid", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  snprintf(victim, sizeof victim, "%s/victim", dir);
  FILE *f = fopen(victim, "w");
  fputs("keep\n", f);
  fclose(f);
  cr_assert_eq(symlink(victim, tmp), 0);
  int fd = rc_pidfile_prepare(path, err, sizeof err);
  cr_assert_geq(fd, 0, "%s", err);
  cr_assert_eq(rc_pidfile_commit(fd, path, err, sizeof err), 0, "%s", err);
  struct stat st;
  cr_assert_eq(lstat(path, &st), 0);
  cr_assert(S_ISREG(st.st_mode), "the pid file is a file of its own, not the planted link");
  char text[32] = "";
  f = fopen(victim, "r");
  cr_assert_not_null(fgets(text, sizeof text, f));
  fclose(f);
  cr_assert_str_eq(text, "keep\n", "the link's target is untouched");
  /* A pid file that is itself a link is not read through. */
  unlink(path);
  cr_assert_eq(symlink(victim, path), 0);
  cr_assert_eq(rc_pidfile_read(path), 0);
  unlink(path);
  unlink(victim);
}
