/* SPDX-License-Identifier: MIT */
/* Where a client's credential is in a request: a bearer token in Authorization, in
 * the query's token= parameter or in a cookie; and the static publish keys of
 * --publish-key-file with their constant-time check. String work only: verifying a
 * token is someone else's. Any thread may call these; a loaded key set is read-only
 * and may be shared. */
#ifndef RINGCAST_PROTO_CREDENTIAL_H
#define RINGCAST_PROTO_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "ringcast/proto/http.h"

/* The longest token taken from any of the three places. */
#define RC_CREDENTIAL_TOKEN_MAX 4096

/* Every token found is checked to be RFC 6750's b64token (token68 of RFC 9110):
 * 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", at most
 * RC_CREDENTIAL_TOKEN_MAX bytes. A JWT is one. The functions below return 0, or:
 *   -ENOENT   not there (no such header, parameter or cookie)
 *   -ENOTSUP  Authorization names another scheme (Basic, Digest...)
 *   -EBADMSG  there, but malformed
 *   -EEXIST   Authorization given twice with different values
 *   -E2BIG    longer than RC_CREDENTIAL_TOKEN_MAX
 * and on every error *why is a static reason fit for a log line or a 400 body. */

/* From "Authorization: Bearer <token>", hdrs[0..n) being the request's headers
 * (rc_http_request.headers). The scheme is case-insensitive, one or more spaces
 * follow it, and nothing follows the token. *tok points into the header's value. */
int rc_credential_bearer(const struct rc_http_header *hdrs, size_t n, const char **tok,
                         size_t *tok_len, const char **why);

/* From the first token= parameter of a query (the part after '?', as
 * rc_http_request.query holds it; key=value pairs split at '&'). The value is
 * percent-decoded into out (NUL-terminated; out_size bytes at most, which bounds it
 * below RC_CREDENTIAL_TOKEN_MAX when smaller), '+' being itself, not a space: '+'
 * is a token character and a space never is. Later token= parameters are ignored. */
int rc_credential_query(const char *query, size_t len, char *out, size_t out_size, size_t *out_len,
                        const char **why);

/* From the first cookie called name in the request's Cookie headers (RFC 6265
 * section 4.2: "a=1; b=2"; in order, several Cookie lines read as one). Surrounding
 * double quotes are not part of the value. Other cookies are skipped without being
 * judged: other applications on the same site set them. *tok points into the
 * header's value. */
int rc_credential_cookie(const struct rc_http_header *hdrs, size_t n, const char *name,
                         const char **tok, size_t *tok_len, const char **why);

/* The keys of --publish-key-file. */
#define RC_PUBLISH_KEY_MIN 16
#define RC_PUBLISH_KEY_MAX 1024
#define RC_PUBLISH_KEYS_MAX 4096
#define RC_PUBLISH_KEY_FILE_MAX (1u << 20)

struct rc_publish_key {
  size_t off; /* into bytes */
  size_t len;
};

struct rc_publish_keys {
  char *bytes;                 /* every key, back to back; owned */
  struct rc_publish_key *keys; /* owned */
  unsigned n;
};

/* Reads text[0..len), the file's contents, into out: one key per line (LF or CRLF),
 * leading and trailing blanks trimmed; blank lines and lines whose first non-blank
 * byte is '#' are skipped (a key may hold '#' after its first byte). A key is
 * RC_PUBLISH_KEY_MIN to RC_PUBLISH_KEY_MAX printable ASCII bytes, no spaces. Returns
 * 0, -EINVAL with a message naming `name` (the file) and the line in err (also for
 * a file with no key at all), or -ENOMEM. On error out holds nothing to free. */
int rc_publish_keys_parse(const char *name, const char *text, size_t len,
                          struct rc_publish_keys *out, char *err, size_t errsz);

/* Reads the file at path (at most RC_PUBLISH_KEY_FILE_MAX bytes) and parses it as
 * above. Returns 0, or a negative errno with a message naming the file in err.
 * Called at start-up, from one thread. */
int rc_publish_keys_load(const char *path, struct rc_publish_keys *out, char *err, size_t errsz);

/* Wipes and frees the keys; k may be zeroed or already finished. */
void rc_publish_keys_fini(struct rc_publish_keys *k);

/* Whether key[0..len) equals one of the keys. Its time depends on the key set and
 * on len alone, never on the bytes: every key is compared in full, without an early
 * exit, whatever the earlier ones gave. */
bool rc_publish_keys_match(const struct rc_publish_keys *k, const char *key, size_t len);

#endif
