/* SPDX-License-Identifier: MIT */
/* Writing JSON text: string escaping and base64, for envelopes and replies. Pure. */
#ifndef RINGCAST_JSON_OUT_H
#define RINGCAST_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to write p as the inside of a JSON string (no quotes). */
size_t rc_json_escaped_len(const uint8_t *p, size_t n);
/* Writes the escaped form; out has room for rc_json_escaped_len bytes. Returns the
 * bytes written. */
size_t rc_json_escape(char *out, const uint8_t *p, size_t n);
size_t rc_base64_len(size_t n);
/* out needs rc_base64_len(n) + 1 bytes; returns the length written (0 on error). */
size_t rc_base64_encode(char *out, const uint8_t *p, size_t n);

#endif
