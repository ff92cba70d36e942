/* SPDX-License-Identifier: MIT */
/* Per-address admission: how many connections one client address holds
 * (--max-conns-per-ip), how many of them have not finished their first request
 * (--max-handshakes-per-ip, against slow-loris), and how fast it may open new
 * ones (--connect-rate-per-ip, a token bucket with a second's worth as burst).
 * IPv4 addresses count one by one, IPv6 by /64 (what one host is usually
 * given). One table for every shard: connections from one address land on all
 * of them. Any thread. */
#ifndef RINGCAST_SESSION_ADMISSION_H
#define RINGCAST_SESSION_ADMISSION_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "ringcast/io/conn.h"
#include "ringcast/util/budget.h"

struct rc_admission_limits {
  uint32_t max_conns;        /* per address; 0: off */
  uint32_t max_handshakes;   /* per address; 0: off */
  uint32_t rate;             /* new connections per second per address; 0: off */
};

struct rc_admission_stats {
  _Atomic uint64_t refused_conns;       /* over --max-conns-per-ip */
  _Atomic uint64_t refused_handshakes;  /* over --max-handshakes-per-ip */
  _Atomic uint64_t refused_rate;        /* over --connect-rate-per-ip */
};

struct rc_admission;

/* budget is charged for the table's entries (NULL: none). */
struct rc_admission *rc_admission_create(const struct rc_admission_limits *lim,
                                         struct rc_budget *budget);
void rc_admission_destroy(struct rc_admission *a);
/* Whether any limit is on (when none is, nothing is tracked). */
bool rc_admission_enabled(const struct rc_admission *a);
/* A new connection from c's peer: 0 when admitted (counted as connected and in
 * its handshake), or -EMFILE (too many connections from it), -EBUSY (too many
 * in their handshake), -EAGAIN (connecting too fast; *retry_s says when a
 * token is back), -ENOBUFS (over the memory budget). */
int rc_admission_open(struct rc_admission *a, const struct rc_conn *c, uint64_t now_ms,
                      unsigned *retry_s);
/* What a refused client is told for rc_admission_open's error, and the HTTP
 * status (429 for the rate, 503 otherwise). */
const char *rc_admission_refusal(int err);
static inline int rc_admission_status(int err) { return err == -EAGAIN ? 429 : 503; }
/* An admitted connection finished its first request. */
void rc_admission_handshake_done(struct rc_admission *a, const struct rc_conn *c);
/* An admitted connection closed (still in its handshake or not). */
void rc_admission_close(struct rc_admission *a, const struct rc_conn *c, bool handshaking,
                        uint64_t now_ms);
/* Forgets addresses with no connection whose bucket has refilled. */
void rc_admission_sweep(struct rc_admission *a, uint64_t now_ms);
const struct rc_admission_stats *rc_admission_stats(const struct rc_admission *a);
/* Addresses tracked now. */
uint32_t rc_admission_count(const struct rc_admission *a);

#endif
