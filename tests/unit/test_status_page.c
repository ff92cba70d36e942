/* SPDX-License-Identifier: MIT */
/* The status page's headers: its Content-Security-Policy names the exact hashes
 * of the embedded page's inline script and style, and nothing else runs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "status_page.h"

Test(status_page, csp_hashes_the_inline_elements) {
  /* sha256("x") and sha256("") in base64. */
  static const char page[] = "<html><style></style><body><script>x</script></body></html>";
  char csp[512];
  long n = rc_status_page_csp(page, sizeof page - 1, csp, sizeof csp);
  cr_assert_gt(n, 0);
  cr_assert(strstr(csp, "script-src 'sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE='"), "%s",
            csp);
  cr_assert(strstr(csp, "style-src 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"), "%s",
            csp);
  cr_assert(strstr(csp, "default-src 'none'"));
  cr_assert(strstr(csp, "connect-src 'self'"));
  cr_assert(strstr(csp, "frame-ancestors 'none'"));
  cr_assert_null(strstr(csp, "unsafe"));
  cr_assert_eq(rc_status_page_csp(page, sizeof page - 1, csp, 40), -ENOSPC);
}

Test(status_page, csp_refuses_pages_it_cannot_cover) {
  char csp[512];
  static const char none[] = "<html><style></style></html>";
  static const char two[] = "<style></style><script>a</script><script>b</script>";
  static const char open_only[] = "<style></style><script>a";
  cr_assert_eq(rc_status_page_csp(none, sizeof none - 1, csp, sizeof csp), -EINVAL);
  cr_assert_eq(rc_status_page_csp(two, sizeof two - 1, csp, sizeof csp), -EINVAL);
  cr_assert_eq(rc_status_page_csp(open_only, sizeof open_only - 1, csp, sizeof csp), -EINVAL);
}

Test(status_page, embedded_page_and_head) {
  cr_assert_gt(rc_status_page_html_len, 1000);
  cr_assert_eq(rc_status_page_html[rc_status_page_html_len], 0, "NUL-terminated past its length");
  cr_assert_eq(strlen((const char *)rc_status_page_html), rc_status_page_html_len);
  cr_assert_eq(strncmp((const char *)rc_status_page_html, "<!doctype html>", 15), 0);
  char head[1024];
  long n = rc_status_page_head(1000, true, head, sizeof head);
  cr_assert_gt(n, 0);
  cr_assert_eq(strlen(head), (size_t)n);
  cr_assert(strstr(head, "Content-Type: text/html; charset=utf-8\r\n"));
  cr_assert(strstr(head, "Cache-Control: no-cache\r\n"));
  cr_assert(strstr(head, "Content-Security-Policy: default-src 'none'; script-src 'sha256-"));
  cr_assert(strstr(head, "X-Ringcast-Stats-Interval: 1000\r\n"));
  cr_assert(strstr(head, "Connection: close\r\n"));
  char len[64];
  snprintf(len, sizeof len, "Content-Length: %zu\r\n", rc_status_page_html_len);
  cr_assert(strstr(head, len));
  cr_assert_eq(memcmp(head + n - 4, "\r\n\r\n", 4), 0);
  cr_assert_eq(rc_status_page_head(0, false, head, 100), -ENOSPC);
  n = rc_status_page_head(0, false, head, sizeof head);
  cr_assert(strstr(head, "X-Ringcast-Stats-Interval: 0\r\n"));
  cr_assert_null(strstr(head, "Connection: close"));
}
