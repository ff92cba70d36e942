/* SPDX-License-Identifier: MIT */
/* --allow-origin patterns and the Origin check. Origin values sit right before a
 * guard page: the check must read within the length it is given. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/origin.h"

#define MAX_PATS 8

static struct rc_origin_pattern pats[MAX_PATS];
static unsigned n_pats;

static void allow(const char *s) {
  char err[256] = "";
  cr_assert_lt(n_pats, MAX_PATS);
  cr_assert_eq(rc_origin_pattern_parse(s, &pats[n_pats], err, sizeof err), 0, "%s: %s", s, err);
  n_pats++;
}

static void reset(void) { n_pats = 0; }

static bool allowed(const char *origin) {
  struct guarded g;
  size_t n = strlen(origin);
  const char *p = (const char *)guard_copy(&g, origin, n);
  cr_assert_not_null(p);
  bool ok = rc_origin_allowed(pats, n_pats, p, n);
  guard_free(&g);
  return ok;
}

static void refused(const char *s, const char *why_part) {
  struct rc_origin_pattern p;
  char err[256] = "";
  cr_assert_eq(rc_origin_pattern_parse(s, &p, err, sizeof err), -EINVAL, "%s was taken", s);
  cr_assert_not_null(strstr(err, why_part), "%s: '%s' lacks '%s'", s, err, why_part);
}

Test(origin, exact) {
  reset();
  allow("https://app.example.com");
  cr_assert(allowed("https://app.example.com"));
  cr_assert(allowed("HTTPS://App.Example.COM"), "scheme and host are case-insensitive");
  cr_assert_not(allowed("http://app.example.com"), "another scheme");
  cr_assert_not(allowed("https://app.example.com:8443"), "another port");
  cr_assert_not(allowed("https://app.example.co"));
  cr_assert_not(allowed("https://app.example.com.evil.net"));
  cr_assert_not(allowed("https://xapp.example.com"));
  cr_assert_not(allowed("https://example.com"));
}

Test(origin, default_port_is_no_port) {
  reset();
  allow("https://a.example.com");
  allow("http://b.example.com:80");
  cr_assert(allowed("https://a.example.com:443"));
  cr_assert(allowed("http://b.example.com"));
  cr_assert(allowed("http://b.example.com:80"));
  cr_assert_not(allowed("https://a.example.com:80"));
  cr_assert_not(allowed("http://b.example.com:443"));
}

Test(origin, explicit_port) {
  reset();
  allow("https://app.example.com:8443");
  cr_assert(allowed("https://app.example.com:8443"));
  cr_assert_not(allowed("https://app.example.com"));
  cr_assert_not(allowed("https://app.example.com:443"));
  cr_assert_not(allowed("https://app.example.com:08443"), "leading zero: not serialised form");
  cr_assert_not(allowed("https://app.example.com:"), "empty port");
}

Test(origin, any_port) {
  reset();
  allow("http://localhost:*");
  cr_assert(allowed("http://localhost:3000"));
  cr_assert(allowed("http://localhost"), "the default port is a port too");
  cr_assert(allowed("http://LOCALHOST:65535"));
  cr_assert_not(allowed("https://localhost:3000"));
  cr_assert_not(allowed("http://localhost:65536"));
  cr_assert_not(allowed("http://localhost:0"));
  cr_assert_not(allowed("http://localhost:*"), "a wildcard in the value is no origin");
  cr_assert_not(allowed("http://localhost.evil.net:3000"));
}

Test(origin, subdomain_wildcard) {
  reset();
  allow("https://*.example.com");
  cr_assert(allowed("https://a.example.com"));
  cr_assert(allowed("https://a.b.example.com"), "one or more labels");
  cr_assert(allowed("https://A.EXAMPLE.com:443"));
  cr_assert_not(allowed("https://example.com"), "not the bare domain");
  cr_assert_not(allowed("https://.example.com"), "an empty label is no label");
  cr_assert_not(allowed("https://badexample.com"), "a label boundary");
  cr_assert_not(allowed("https://a.example.com.evil.net"));
  cr_assert_not(allowed("https://a.example.com:8443"));
  cr_assert_not(allowed("http://a.example.com"));
  cr_assert_not(allowed("https://*.example.com"));
}

Test(origin, ipv6_and_ipv4_literals) {
  reset();
  allow("http://[::1]:8080");
  allow("http://127.0.0.1:*");
  cr_assert(allowed("http://[::1]:8080"));
  cr_assert(allowed("http://[0:0::1]:8080"), "compared as an address");
  cr_assert_not(allowed("http://[::2]:8080"));
  cr_assert_not(allowed("http://[::1]"));
  cr_assert_not(allowed("http://[::1"));
  cr_assert_not(allowed("http://[]:8080"));
  cr_assert(allowed("http://127.0.0.1:5173"));
  cr_assert_not(allowed("http://127.0.0.2:5173"));
}

Test(origin, null_and_garbage_never_match) {
  reset();
  allow("https://*.example.com");
  allow("http://localhost:*");
  const char *bad[] = {"null",
                       "NULL",
                       "",
                       "https://",
                       "https:/a.example.com",
                       "a.example.com",
                       "https://a.example.com/",
                       "https://a.example.com/x",
                       "https://a.example.com?x",
                       "https://a.example.com#x",
                       "https://u@a.example.com",
                       "https://a.example.com https://b.example.com",
                       "https://a.example.com\r\n",
                       "https://a..example.com",
                       "https://a.example.com.",
                       "ht tp://localhost",
                       "http://localhost:80x",
                       "http://localhost:99999",
                       "https://a\x01.example.com",
                       "https://\xc3\xa9.example.com"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_not(allowed(bad[i]), "'%s' was allowed", bad[i]);
  reset();
  cr_assert_not(allowed("https://a.example.com"), "no pattern, nothing allowed");
}

Test(origin, overlong_values) {
  reset();
  allow("https://*.example.com");
  char v[RC_ORIGIN_MAX + 2];
  /* A valid name of exactly RC_ORIGIN_MAX bytes, then one byte more. */
  const char *pre = "https://", *suf = ".example.com";
  size_t fill = RC_ORIGIN_MAX - strlen(pre) - strlen(suf);
  strcpy(v, pre);
  for (size_t i = 0; i < fill; i++)
    v[strlen(pre) + i] = (i % 60 == 59) ? '.' : 'a';
  strcpy(v + strlen(pre) + fill, suf);
  cr_assert_eq(strlen(v), RC_ORIGIN_MAX);
  cr_assert(allowed(v));
  memmove(v + strlen(pre) + 1, v + strlen(pre), strlen(v) - strlen(pre) + 1);
  cr_assert_eq(strlen(v), RC_ORIGIN_MAX + 1);
  cr_assert_not(allowed(v), "over RC_ORIGIN_MAX bytes");
  char label[80];
  memset(label, 'a', 64);
  strcpy(label + 64, ".example.com");
  char url[128];
  snprintf(url, sizeof url, "https://%s", label);
  cr_assert_not(allowed(url), "a label over 63 bytes");
}

Test(origin, pattern_errors) {
  refused("app.example.com", "scheme://host");
  refused("https://app.example.com/", "trailing '/'");
  refused("https://app.example.com/path", "no path");
  refused("https://*", "first label");
  refused("https://*.com", "two labels");
  refused("https://*.1.2.3", "two labels");
  refused("https://a.*.example.com", "first label");
  refused("https://*example.com", "first label");
  refused("https://**.example.com", "first label");
  refused("*://a.example.com", "scheme://host");
  refused("https://a.example.com:0", "1 to 65535");
  refused("https://a.example.com:65536", "1 to 65535");
  refused("https://a.example.com:", "1 to 65535");
  refused("https://a.example.com:**", "1 to 65535");
  refused("https://user@a.example.com", "user info");
  refused("https://[::1", "brackets");
  refused("https://[zz::1]", "malformed");
  refused("https://a_b!.example.com", "labels");
  refused("https://", "no host");
  refused("", "scheme://host");
  char big[RC_ORIGIN_MAX + 16];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  memcpy(big, "https://", 8);
  refused(big, "longer than 256");
}

Test(origin, pattern_fields) {
  struct rc_origin_pattern p;
  char err[128];
  cr_assert_eq(rc_origin_pattern_parse("HTTPS://*.Example.COM:443", &p, err, sizeof err), 0);
  cr_assert_str_eq(p.scheme, "https");
  cr_assert_str_eq(p.host, "example.com");
  cr_assert(p.any_subdomain);
  cr_assert_not(p.any_port);
  cr_assert_eq(p.port, 443);
  cr_assert_eq(rc_origin_pattern_parse("chrome-extension://abcdef", &p, err, sizeof err), 0);
  cr_assert_eq(p.port, 0, "no default port for other schemes");
  reset();
  pats[n_pats++] = p;
  cr_assert(allowed("chrome-extension://abcdef"));
  cr_assert_not(allowed("chrome-extension://abcdef:443"));
}
