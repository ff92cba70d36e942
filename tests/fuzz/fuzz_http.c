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
    uint8_t body[4096];
    size_t used;
    ssize_t d = rc_http_chunked_decode(data + n, size - (size_t)n, body, sizeof body, &used);
    if (d >= 0 && (used > size - (size_t)n || (size_t)d > sizeof body)) abort();
  }
  /* The same input as a chunked body on its own. */
  uint8_t body[1024];
  size_t used;
  ssize_t d = rc_http_chunked_decode(data, size, body, sizeof body, &used);
  if (d >= 0 && (used > size || (size_t)d > used)) abort();
  return 0;
}
