/* SPDX-License-Identifier: MIT */
/* Strict JSON (RFC 8259), scanned where it lies: validation, and the spans of an
 * object's members, an array's elements and a string's decoded bytes. Pure: no
 * allocation, no globals. What it accepts, every strict parser accepts (Python's
 * json, JSON.parse): no leading zeros, no "1.", no raw control characters in
 * strings, no trailing commas, nesting at most RC_JSON_MAX_DEPTH deep. */
#ifndef RINGCAST_PROTO_JSON_SCAN_H
#define RINGCAST_PROTO_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RC_JSON_MAX_DEPTH 64

enum rc_json_type {
  RC_JSON_OBJECT = 1,
  RC_JSON_ARRAY,
  RC_JSON_STRING,
  RC_JSON_NUMBER,
  RC_JSON_TRUE,
  RC_JSON_FALSE,
  RC_JSON_NULL,
};

/* A value's bytes in the text: p[off..off+len), quotes included for a string. */
struct rc_json_span {
  size_t off, len;
  enum rc_json_type type;
};

/* Whether p[0..len) is exactly one JSON value, whitespace around it allowed.
 * 0, or -EINVAL with a reason (a static string) and the byte offset of the fault. */
int rc_json_check(const uint8_t *p, size_t len, const char **why, size_t *at);
/* In valid JSON text p[0..len) whose value is an object, the span of the member
 * named key (compared byte for byte with its escaped form). 0, -ENOENT, or
 * -EEXIST when the name appears twice (which value a reader takes is then
 * anyone's guess, so callers refuse it). -EINVAL if the value is not an object. */
int rc_json_member(const uint8_t *p, size_t len, const char *key, struct rc_json_span *out);
/* Walks the elements of the array spanned by arr in valid JSON text p: call with
 * *pos = 0, then again with the same pos. 1 with the next element, 0 at the end. */
int rc_json_array_next(const uint8_t *p, const struct rc_json_span *arr, size_t *pos,
                       struct rc_json_span *out);
/* Decodes the string spanned by s (valid, quotes included) into out, which has
 * room for s->len bytes; every escape is decoded, \u0000 too (so the result may
 * hold NUL bytes, and is UTF-8 except for lone surrogates). Returns its length. */
size_t rc_json_string_decode(const uint8_t *p, const struct rc_json_span *s, uint8_t *out);

#endif
