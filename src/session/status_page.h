/* SPDX-License-Identifier: MIT */
/* GET / and HEAD /: the status page, one HTML file (status_page.html) embedded
 * in the binary at build time, that draws $sys.stats as it arrives over a
 * WebSocket to the same server. */
#ifndef RINGCAST_SESSION_STATUS_PAGE_H
#define RINGCAST_SESSION_STATUS_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The page's bytes, generated from src/session/status_page.html by CMake. */
extern const unsigned char rc_status_page_html[];
extern const size_t rc_status_page_html_len;

/* Writes the page's Content-Security-Policy into out (cap bytes): nothing but
 * the page's own inline <script> and <style> (by their SHA-256), WebSockets and
 * fetches to its own origin, and no framing. Pure. Returns the length, -EINVAL
 * when the page lacks exactly one plain <script> and one <style> element, or
 * -ENOSPC. */
long rc_status_page_csp(const char *html, size_t len, char *out, size_t cap);

/* Writes the head of the 200 response to GET / or HEAD / into out (cap bytes):
 * its type, length, cache and security headers, and X-Ringcast-Stats-Interval
 * (the page reads it to tell a server without a feed from a slow one). Pure.
 * Returns the length, or a negative errno from rc_status_page_csp. */
long rc_status_page_head(uint32_t stats_interval_ms, bool close_after, char *out, size_t cap);

#endif
