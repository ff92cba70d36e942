/* SPDX-License-Identifier: MIT */
/* The status page route: the embedded HTML with headers that confine it to
 * itself and to its own server. */
#include "status_page.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "ringcast/util/json_out.h"

/* The text between the only open and close tag of an element, or false when
 * there is not exactly one such element. */
static bool element_body(const char *html, size_t len, const char *open, const char *close,
                         const char **body, size_t *body_len) {
  size_t ol = strlen(open), cl = strlen(close);
  const char *b = memmem(html, len, open, ol);
  if (!b) return false;
  b += ol;
  size_t rest = len - (size_t)(b - html);
  const char *e = memmem(b, rest, close, cl);
  if (!e) return false;
  /* A second element would run without a hash: the policy would block it. */
  size_t after = rest - (size_t)(e - b);
  if (memmem(e, after, open, ol)) return false;
  *body = b;
  *body_len = (size_t)(e - b);
  return true;
}

/* 'sha256-<base64>' of p[0..n): CSP Level 2's source expression for an inline
 * element's exact text. */
static bool hash_source(const char *p, size_t n, char *out, size_t cap) {
  byte digest[WC_SHA256_DIGEST_SIZE];
  if (n > UINT32_MAX || wc_Sha256Hash((const byte *)p, (word32)n, digest) != 0) return false;
  if (cap < rc_base64_len(sizeof digest) + 1) return false;
  return rc_base64_encode(out, digest, sizeof digest) > 0;
}

long rc_status_page_csp(const char *html, size_t len, char *out, size_t cap) {
  const char *script, *style;
  size_t script_len, style_len;
  if (!element_body(html, len, "<script>", "</script>", &script, &script_len) ||
      !element_body(html, len, "<style>", "</style>", &style, &style_len))
    return -EINVAL;
  char sh[64], yh[64];
  if (!hash_source(script, script_len, sh, sizeof sh) ||
      !hash_source(style, style_len, yh, sizeof yh))
    return -EINVAL;
  /* 'self' in connect-src covers ws: and wss: to the page's own host and port
   * (CSP Level 3), which is where the page's socket goes; img-src data: is
   * for the inline favicon, which keeps browsers from asking for one. */
  int n = snprintf(out, cap,
                   "default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; "
                   "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'",
                   sh, yh);
  if (n < 0 || (size_t)n >= cap) return -ENOSPC;
  return n;
}

long rc_status_page_head(uint32_t stats_interval_ms, bool close_after, char *out, size_t cap) {
  char csp[512];
  long cl = rc_status_page_csp((const char *)rc_status_page_html, rc_status_page_html_len, csp,
                               sizeof csp);
  if (cl < 0) return cl;
  /* no-cache: a browser revalidates, so a restarted server's new page shows.
   * no-referrer: the page's URL may carry ?token=. */
  int n = snprintf(
      out, cap,
      "HTTP/1.1 200 OK\r\nServer: ringcast\r\nContent-Type: text/html; charset=utf-8\r\n"
      "Content-Length: %zu\r\nCache-Control: no-cache\r\n"
      "Content-Security-Policy: %s\r\nX-Content-Type-Options: nosniff\r\n"
      "Referrer-Policy: no-referrer\r\nX-Ringcast-Stats-Interval: %u\r\n%s\r\n",
      rc_status_page_html_len, csp, stats_interval_ms, close_after ? "Connection: close\r\n" : "");
  if (n < 0 || (size_t)n >= cap) return -ENOSPC;
  return n;
}
