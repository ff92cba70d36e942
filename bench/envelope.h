/* SPDX-License-Identifier: MIT */
/* The in-band messages a ringcast subscriber reads (docs/protocol.md): the
 * envelope's top-level members, found without allocating or copying, so the
 * bench can follow each topic's server sequence ("seq") and epoch beside the
 * publisher's own numbering inside "data". Pure: no I/O, no globals. */
#ifndef RINGCAST_BENCH_ENVELOPE_H
#define RINGCAST_BENCH_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum rc_env_type {
  RC_ENV_NONE, /* a JSON object without "type": a bare payload (format=raw, other servers) */
  RC_ENV_MSG,  /* {"type":"msg","topic":..,"seq":..,"data":..} */
  RC_ENV_ACK,  /* {"type":"ack","op":"subscribe","topic":..,"seq":..,"epoch":..[,"recovered":..]} */
  RC_ENV_GAP, /* {"type":"gap","topic":..,"from":..,"to":..,"epoch":..,"reason":..|"conflated":true}
               */
  RC_ENV_HB,  /* {"type":"hb","topic":..,"seq":..} */
  RC_ENV_ERROR, /* {"type":"error",...} */
  RC_ENV_OTHER, /* any other "type" (pong, ...) */
};

/* A string member: its bytes as written between the quotes (escapes left as
 * they are; topic names and epochs never need one). NULL when absent. */
struct rc_env_str {
  const char *p;
  size_t len;
};

struct rc_env {
  enum rc_env_type type;
  struct rc_env_str topic, op, epoch, reason;
  uint64_t seq, from, to;
  bool has_seq, has_from, has_to;
  bool conflated;
  int8_t recovered;    /* -1: absent, 0: false, 1: true */
  const uint8_t *data; /* the "data" member's raw JSON value, or NULL */
  size_t data_len;
};

/* Parses one JSON object at buf (a whole text message). Every member is
 * walked, whatever its order; unknown members and nested values are skipped.
 * Returns the bytes consumed (up to and including the closing brace), or
 * -EINVAL when buf does not hold a well-formed object or when "seq", "from" or
 * "to" is not an unsigned 64-bit integer. Reads nothing past buf + len. */
ssize_t rc_env_parse(const uint8_t *buf, size_t len, struct rc_env *out);

/* Whether a string member equals the NUL-terminated s. */
bool rc_env_str_is(struct rc_env_str v, const char *s);

#endif
