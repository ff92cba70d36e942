/* SPDX-License-Identifier: MIT */
/* What an accept failure means: one connection's own error goes on at once;
 * anything else backs off, boundedly. */
#include <criterion/criterion.h>
#include <errno.h>

#include "ringcast/io/listener.h"

Test(listener, per_connection_errors_are_transient) {
  const int transient[] = {ECONNABORTED, EPROTO, EPERM, ENETDOWN, EHOSTUNREACH, ENETUNREACH, EINTR};
  for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
    cr_assert(rc_listener_error_is_transient(transient[i]), "errno %d", transient[i]);
  const int persistent[] = {EMFILE, ENOBUFS, ENOMEM, EINVAL, EBADF, ENOTSOCK};
  for (size_t i = 0; i < sizeof persistent / sizeof persistent[0]; i++)
    cr_assert_not(rc_listener_error_is_transient(persistent[i]), "errno %d", persistent[i]);
}

Test(listener, backoff_doubles_to_a_cap) {
  unsigned ms = 0, steps[8];
  for (int i = 0; i < 8; i++) steps[i] = ms = rc_listener_backoff_ms(ms);
  cr_assert_eq(steps[0], 100);
  cr_assert_eq(steps[1], 200);
  cr_assert_eq(steps[4], 1600);
  cr_assert_eq(steps[5], 2000);
  cr_assert_eq(steps[7], 2000, "bounded");
}
