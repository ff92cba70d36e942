/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the HTTP request-head parser, the header and query helpers,
 * and the chunked-body decoder, on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/proto/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct rc_http_request r;
  ssize_t n = rc_http_parse_request((const char *)data, size, &r);
  if (n > 0) {
    if ((size_t)n > size) abort();
    for (size_t i = 0; i < r.n_headers; i++) {
      const struct rc_http_header *h = &r.headers[i];
      if (h->name < (const char *)data || h->value + h->value_len > (const char *)data + n) abort();
      (void)rc_http_has_token(h->value, h->value_len, "upgrade");
    }
    (void)rc_http_find_header(&r, "Content-Length");
    char out[256];
    (void)rc_http_query_get(r.query, r.query_len, "topics", out, sizeof out);
    struct rc_http_framing f;
    const char *why;
    if (rc_http_body_framing(&r, &f, &why) < 0 && !why) abort();
  }
  /* The same input as a chunked body: whole into a separate buffer, and byte by
   * byte in place, must agree. */
  uint8_t *a = malloc(size + 1), *b = malloc(size + 1);
  if (!a || !b) abort();
  memcpy(b, data, size);
  struct rc_http_chunked ca, cb;
  rc_http_chunked_init(&ca);
  rc_http_chunked_init(&cb);
  size_t na = 0, nb = 0, pos = 0;
  bool da = false, db = false;
  ssize_t ra = rc_http_chunked_feed(&ca, data, size, a, 4096, &na, &da);
  ssize_t rb = 0;
  while (pos < size && !db) {
    rb = rc_http_chunked_feed(&cb, b + pos, 1, b, 4096, &nb, &db);
    if (rb < 0) break;
    pos += (size_t)rb;
  }
  if ((ra < 0) != (rb < 0)) abort();
  if (ra >= 0) {
    if (da != db || na != nb || memcmp(a, b, na) != 0) abort();
    if (da && (size_t)ra != pos) abort();
    if (na > (size_t)ra) abort(); /* the data never outgrows what was read */
  }
  free(a);
  free(b);
  return 0;
}
