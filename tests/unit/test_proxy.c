/* SPDX-License-Identifier: MIT */
/* --trust-proxy CIDRs and the client address behind trusted proxies. Header values
 * sit right before guard pages: the walk must stay within the lengths given. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "guard.h"
#include "ringcast/proto/proxy.h"

/* 10.0.0.0/8, fd00::/8 and the bare 192.0.2.1. */
static struct rc_cidr trusted[3];

static void setup(void) {
  const char *spec[] = {"10.0.0.0/8", "fd00::/8", "192.0.2.1"};
  char err[128];
  for (int i = 0; i < 3; i++)
    cr_assert_eq(rc_cidr_parse(spec[i], &trusted[i], err, sizeof err), 0, "%s: %s", spec[i], err);
}

static int family_of(const char *text) { return strchr(text, ':') ? AF_INET6 : AF_INET; }

static void to_addr(const char *text, int *family, uint8_t a[16]) {
  memset(a, 0, 16);
  *family = family_of(text);
  cr_assert_eq(inet_pton(*family, text, a), 1, "%s", text);
}

static bool contains(const char *text) {
  int family;
  uint8_t a[16];
  to_addr(text, &family, a);
  return rc_cidr_list_contains(trusted, 3, family, a);
}

struct hdr {
  const char *name, *value;
};

#define MAX_HDRS 8

/* The client as text ("" when the family is neither), and the return code. */
static int client_use(const char *peer, const struct hdr *in, size_t n, unsigned use, char *out,
                      size_t out_size) {
  struct guarded g[MAX_HDRS];
  struct rc_http_header h[MAX_HDRS];
  cr_assert_leq(n, MAX_HDRS);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(in[i].value);
    h[i].name = in[i].name;
    h[i].name_len = strlen(in[i].name);
    h[i].value = (const char *)guard_copy(&g[i], in[i].value, len);
    h[i].value_len = len;
    cr_assert_not_null(h[i].value);
  }
  int pf, cf = -1;
  uint8_t pa[16], ca[16];
  to_addr(peer, &pf, pa);
  int rc = rc_proxy_client_addr(trusted, 3, use, pf, pa, h, n, &cf, ca);
  for (size_t i = 0; i < n; i++)
    guard_free(&g[i]);
  out[0] = '\0';
  if (cf == AF_INET || cf == AF_INET6)
    cr_assert_not_null(inet_ntop(cf, ca, out, (socklen_t)out_size));
  return rc;
}

static int client(const char *peer, const struct hdr *in, size_t n, char *out) {
  return client_use(peer, in, n, RC_PROXY_USE_ALL, out, INET6_ADDRSTRLEN);
}

#define H(...)                                                                                     \
  ((const struct hdr[]){__VA_ARGS__}),                                                             \
      (sizeof((const struct hdr[]){__VA_ARGS__}) / sizeof(struct hdr))

TestSuite(proxy, .init = setup);

Test(proxy, cidr_parse) {
  struct rc_cidr c;
  char err[160];
  cr_assert_eq(rc_cidr_parse("10.0.0.0/8", &c, err, sizeof err), 0);
  cr_assert_eq(c.family, AF_INET);
  cr_assert_eq(c.prefix, 8);
  cr_assert_eq(rc_cidr_parse("203.0.113.9", &c, err, sizeof err), 0);
  cr_assert_eq(c.prefix, 32, "a bare IPv4 address is a /32");
  cr_assert_eq(rc_cidr_parse("2001:db8::1", &c, err, sizeof err), 0);
  cr_assert_eq(c.family, AF_INET6);
  cr_assert_eq(c.prefix, 128, "a bare IPv6 address is a /128");
  cr_assert_eq(rc_cidr_parse("0.0.0.0/0", &c, err, sizeof err), 0);
  cr_assert_eq(rc_cidr_parse("::/0", &c, err, sizeof err), 0);
  cr_assert_eq(rc_cidr_parse("::ffff:10.0.0.0/104", &c, err, sizeof err), 0);
  cr_assert_eq(c.family, AF_INET, "a mapped network is stored as IPv4");
  cr_assert_eq(c.prefix, 8);
  cr_assert_eq(c.addr[0], 10);

  cr_assert_eq(rc_cidr_parse("10.1.0.0/8", &c, err, sizeof err), -EINVAL);
  cr_assert_not_null(strstr(err, "10.0.0.0/8"), "the message names the network: %s", err);
  const char *bad[] = {"",
                       "/8",
                       "10.0.0.0/",
                       "10.0.0.0/33",
                       "10.0.0.0/8x",
                       "10.0.0.0/-1",
                       "fd00::/129",
                       "10.0.0",
                       "10.0.0.256",
                       "010.0.0.1",
                       "fd00::/0008",
                       "fe80::1%eth0",
                       "10.0.0.0/8/8",
                       "example.com",
                       "10.0.0.0 /8",
                       "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/8"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    cr_assert_eq(rc_cidr_parse(bad[i], &c, err, sizeof err), -EINVAL, "'%s' was taken", bad[i]);
    cr_assert_neq(err[0], '\0', "'%s' has no message", bad[i]);
  }
}

Test(proxy, cidr_contains) {
  cr_assert(contains("10.0.0.1"));
  cr_assert(contains("10.255.255.255"));
  cr_assert_not(contains("11.0.0.0"));
  cr_assert(contains("192.0.2.1"));
  cr_assert_not(contains("192.0.2.2"));
  cr_assert(contains("fd12:3456::1"));
  cr_assert_not(contains("fe80::1"));
  cr_assert(contains("::ffff:10.1.2.3"), "a mapped peer matches the IPv4 network");
  cr_assert(contains("::ffff:192.0.2.1"));
  cr_assert_not(contains("::ffff:11.1.2.3"));
  cr_assert_not(contains("::10.1.2.3"), "IPv4-compatible is not mapped");

  struct rc_cidr c[2];
  char err[128];
  cr_assert_eq(rc_cidr_parse("10.128.0.0/9", &c[0], err, sizeof err), 0);
  cr_assert_eq(rc_cidr_parse("::/0", &c[1], err, sizeof err), 0);
  uint8_t a[16] = {10, 200, 0, 1};
  cr_assert(rc_cidr_list_contains(c, 1, AF_INET, a), "prefix within a byte");
  a[1] = 127;
  cr_assert_not(rc_cidr_list_contains(c, 1, AF_INET, a));
  cr_assert_not(rc_cidr_list_contains(c + 1, 1, AF_INET, a), "::/0 is every IPv6 peer only");
  cr_assert_not(rc_cidr_list_contains(c, 2, AF_UNIX, a));
  cr_assert_not(rc_cidr_list_contains(c, 0, AF_INET, a), "an empty list trusts no one");
}

Test(proxy, untrusted_peer_is_the_client) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("203.0.113.50", H({"X-Forwarded-For", "1.2.3.4"}), out), RC_PROXY_PEER);
  cr_assert_str_eq(out, "203.0.113.50", "a spoofed X-Forwarded-For is ignored");
  cr_assert_eq(
      client("203.0.113.50", H({"Forwarded", "for=1.2.3.4"}, {"X-Real-IP", "1.2.3.4"}), out),
      RC_PROXY_PEER);
  cr_assert_str_eq(out, "203.0.113.50");
  cr_assert_eq(client("203.0.113.50", H({"X-Forwarded-For", "\"garbage"}), out), RC_PROXY_PEER,
               "an untrusted peer's headers are not even read");
  cr_assert_eq(client("2001:db8::9", H({"X-Forwarded-For", "10.0.0.1"}), out), RC_PROXY_PEER);
  cr_assert_str_eq(out, "2001:db8::9");
}

Test(proxy, trusted_peer_without_headers) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("10.0.0.1", H({"Host", "x"}), out), RC_PROXY_PEER);
  cr_assert_str_eq(out, "10.0.0.1");
}

Test(proxy, chain_of_three_proxies) {
  char out[INET6_ADDRSTRLEN];
  /* client -> 10.0.0.3 -> 10.0.0.2 -> 10.0.0.1 (the peer). */
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "203.0.113.7, 10.0.0.3, 10.0.0.2"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7");
  /* What the client wrote itself, left of its own address, is never believed. */
  cr_assert_eq(client("10.0.0.1",
                      H({"X-Forwarded-For", "1.1.1.1, 10.9.9.9, 203.0.113.7, 10.0.0.3,10.0.0.2"}),
                      out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7");
  /* Garbage left of the client is never read. */
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "\"oops[, 203.0.113.7, 10.0.0.2"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7");
  /* Every hop trusted: the leftmost is the client. */
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "10.0.0.4, 10.0.0.3, 10.0.0.2"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "10.0.0.4");
}

Test(proxy, header_on_several_lines) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("10.0.0.1",
                      H({"X-Forwarded-For", "198.51.100.1, 203.0.113.7"}, {"Host", "x"},
                        {"x-forwarded-for", "10.0.0.3"}),
                      out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7", "the lines are one list, in order");
  cr_assert_eq(
      client("10.0.0.1", H({"Forwarded", "for=198.51.100.1"}, {"FORWARDED", "for=10.0.0.9"}), out),
      RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "198.51.100.1");
}

Test(proxy, ports_and_ipv6_in_x_forwarded_for) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("fd00::1", H({"X-Forwarded-For", "2001:db8::5"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "2001:db8::5");
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "[2001:db8::7]:443, 10.0.0.2:8080"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "2001:db8::7");
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "203.0.113.7:5555"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7");
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "203.0.113.7,, ,"}), out),
               RC_PROXY_X_FORWARDED_FOR, "empty list elements are skipped");
  cr_assert_str_eq(out, "203.0.113.7");
}

Test(proxy, mapped_addresses) {
  char out[INET6_ADDRSTRLEN];
  /* A dual-stack socket reports an IPv4 proxy as ::ffff:10.1.2.3. */
  cr_assert_eq(client("::ffff:10.1.2.3", H({"X-Forwarded-For", "203.0.113.7"}), out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7");
  cr_assert_eq(
      client("::ffff:10.1.2.3", H({"X-Forwarded-For", "::ffff:10.0.0.5, ::ffff:10.0.0.6"}), out),
      RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "10.0.0.5", "mapped hops are trusted as IPv4 and come out as IPv4");
  cr_assert_eq(client("::ffff:203.0.113.9", H({"X-Forwarded-For", "1.2.3.4"}), out), RC_PROXY_PEER);
  cr_assert_str_eq(out, "203.0.113.9", "the peer comes out as IPv4 too");
}

Test(proxy, forwarded_forms) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=\"[2001:db8::1]:4711\""}), out),
               RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "2001:db8::1");
  cr_assert_eq(
      client("10.0.0.1", H({"Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"}), out),
      RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "192.0.2.60");
  cr_assert_eq(client("10.0.0.1",
                      H({"Forwarded", "For=\"198.51.100.17:8080\" ; proto=https, "
                                      "by=10.0.0.1;for=\"[fd00::2]\";host=\"a,b\", "
                                      "for=10.0.0.3"}),
                      out),
               RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "198.51.100.17", "quoted commas are not element boundaries");
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=\"[2001:db8::1]\""}), out),
               RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "2001:db8::1");
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=\"10.0.0.2:_port\", for=10.0.0.3"}), out),
               RC_PROXY_FORWARDED, "an obfuscated port is fine; every hop trusted");
  cr_assert_str_eq(out, "10.0.0.2");
}

Test(proxy, forwarded_unknown_and_obfuscated) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=unknown"}), out), -ENODATA);
  cr_assert_str_eq(out, "10.0.0.1", "the peer stands for the client");
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=\"_gazonk\""}), out), -ENODATA);
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=_hidden, for=10.0.0.2"}), out), -ENODATA);
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=\"unknown:4711\""}), out), -ENODATA);
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "proto=https;by=10.0.0.1"}), out), -ENODATA,
               "an element without for=");
  cr_assert_str_eq(out, "10.0.0.1");
  /* An unknown hop left of the client is never reached. */
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", "for=unknown, for=203.0.113.7"}), out),
               RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "203.0.113.7");
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "unknown, 10.0.0.2"}), out), -ENODATA);
}

Test(proxy, forwarded_malformed) {
  char out[INET6_ADDRSTRLEN];
  const char *bad[] = {
      "for=[2001:db8::1]",           /* IPv6 must be quoted */
      "for=\"2001:db8::1\"",         /* and bracketed */
      "for=\"192.0.2.1",             /* unterminated quoted-string */
      "for=192.0.2.1;for=192.0.2.2", /* a parameter twice in one element */
      "for=",                        /* empty value */
      "=192.0.2.1",                  /* no name */
      "for 192.0.2.1",               /* no '=' */
      "for=192.0.2.1 proto=http",    /* no ';' */
      "for=\"\\1\\9\\2.0.2.1\"",     /* a quoted-pair in a node */
      "for=300.0.2.1",
      "for=\"192.0.2.1:123456\"",
      "for=_",
      "for=\"_a b\"",
      "for=\"[2001:db8::1]x\"",
      "",
      " , ;, ",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(client("10.0.0.1", H({"Forwarded", bad[i]}), out), -EBADMSG, "'%s'", bad[i]);
    cr_assert_str_eq(out, "10.0.0.1", "'%s': the peer stands for the client", bad[i]);
  }
}

Test(proxy, garbage_x_forwarded_for) {
  char out[INET6_ADDRSTRLEN];
  const char *bad[] = {"not-an-ip",    "1.2.3.4.5", "300.1.1.1", "1.2.3",     "01.2.3.4",
                       "[::1",         "::1]",      "1.2.3.4:",  "1.2.3.4:x", "1.2.3.4:123456",
                       "fe80::1%eth0", "",          ",",         " , ",       "1.2.3.4 5.6.7.8",
                       "\x01\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", bad[i]}), out), -EBADMSG, "'%s'", bad[i]);
    cr_assert_str_eq(out, "10.0.0.1");
  }
  /* A bad hop between trusted ones stops the walk. */
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", "203.0.113.7, bogus, 10.0.0.2"}), out),
               -EBADMSG);
  cr_assert_str_eq(out, "10.0.0.1");
}

Test(proxy, precedence) {
  char out[INET6_ADDRSTRLEN];
  const struct hdr all[] = {{"X-Real-IP", "198.51.100.3"},
                            {"X-Forwarded-For", "198.51.100.2"},
                            {"Forwarded", "for=198.51.100.1"}};
  cr_assert_eq(client("10.0.0.1", all, 3, out), RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "198.51.100.1");
  cr_assert_eq(client_use("10.0.0.1", all, 3, RC_PROXY_USE_X_FORWARDED_FOR | RC_PROXY_USE_X_REAL_IP,
                          out, sizeof out),
               RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "198.51.100.2");
  cr_assert_eq(client_use("10.0.0.1", all, 3, RC_PROXY_USE_X_REAL_IP, out, sizeof out),
               RC_PROXY_X_REAL_IP);
  cr_assert_str_eq(out, "198.51.100.3");
  cr_assert_eq(client_use("10.0.0.1", all, 3, 0, out, sizeof out), RC_PROXY_PEER);
  cr_assert_str_eq(out, "10.0.0.1");
  /* A malformed header that wins precedence is not skipped for the next. */
  cr_assert_eq(
      client("10.0.0.1", H({"Forwarded", "for=\"oops"}, {"X-Forwarded-For", "1.2.3.4"}), out),
      -EBADMSG);
  cr_assert_str_eq(out, "10.0.0.1");
}

Test(proxy, x_real_ip) {
  char out[INET6_ADDRSTRLEN];
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", "203.0.113.7"}), out), RC_PROXY_X_REAL_IP);
  cr_assert_str_eq(out, "203.0.113.7");
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", "10.0.0.7"}), out), RC_PROXY_X_REAL_IP,
               "one hop, taken even when trusted");
  cr_assert_str_eq(out, "10.0.0.7");
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", "[2001:db8::1]:80"}), out), RC_PROXY_X_REAL_IP);
  cr_assert_str_eq(out, "2001:db8::1");
  cr_assert_eq(
      client("10.0.0.1", H({"X-Real-IP", "2001:db8::1"}, {"X-Real-IP", "2001:db8::1"}), out),
      RC_PROXY_X_REAL_IP);
  cr_assert_eq(
      client("10.0.0.1", H({"X-Real-IP", "203.0.113.7"}, {"X-Real-IP", "203.0.113.8"}), out),
      -EBADMSG, "lines that disagree");
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", "203.0.113.7, 10.0.0.2"}), out), -EBADMSG);
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", ""}), out), -EBADMSG);
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", "unknown"}), out), -ENODATA);
}

Test(proxy, hop_bound_and_long_values) {
  char out[INET6_ADDRSTRLEN];
  static char v[8192];
  /* RC_PROXY_MAX_HOPS trusted hops are walked... */
  size_t o = 0;
  o += (size_t)snprintf(v + o, sizeof v - o, "203.0.113.7");
  for (int i = 0; i < RC_PROXY_MAX_HOPS - 1; i++)
    o += (size_t)snprintf(v + o, sizeof v - o, ", 10.0.1.%d", i);
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", v}), out), RC_PROXY_X_FORWARDED_FOR);
  cr_assert_str_eq(out, "203.0.113.7");
  /* ...one more is too many. */
  o += (size_t)snprintf(v + o, sizeof v - o, ", 10.0.2.1");
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", v}), out), -E2BIG);
  cr_assert_str_eq(out, "10.0.0.1");

  /* The same in Forwarded, where only the last RC_PROXY_MAX_HOPS elements are kept. */
  o = 0;
  for (int i = 0; i < 200; i++)
    o += (size_t)snprintf(v + o, sizeof v - o, "for=10.0.3.%d,", i);
  v[o - 1] = '\0';
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", v}), out), -E2BIG);
  o = 0;
  for (int i = 0; i < 200; i++)
    o += (size_t)snprintf(v + o, sizeof v - o, "for=10.0.3.%d,", i);
  o += (size_t)snprintf(v + o, sizeof v - o, "for=203.0.113.7");
  for (int i = 0; i < RC_PROXY_MAX_HOPS - 1; i++)
    o += (size_t)snprintf(v + o, sizeof v - o, ",for=10.0.4.%d", i);
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", v}), out), RC_PROXY_FORWARDED);
  cr_assert_str_eq(out, "203.0.113.7");
  /* The bound spans lines. */
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", v}, {"Forwarded", "for=10.0.0.9"}), out), -E2BIG);

  /* 8 KiB of one long token, and of one long address. */
  memset(v, '1', sizeof v - 1);
  v[sizeof v - 1] = '\0';
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", v}), out), -EBADMSG);
  cr_assert_eq(client("10.0.0.1", H({"X-Real-IP", v}), out), -EBADMSG);
  memcpy(v, "for=", 4);
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", v}), out), -EBADMSG);
  v[4] = '"';
  cr_assert_eq(client("10.0.0.1", H({"Forwarded", v}), out), -EBADMSG);
  memset(v, ':', sizeof v - 1);
  cr_assert_eq(client("10.0.0.1", H({"X-Forwarded-For", v}), out), -EBADMSG);
}

Test(proxy, other_peer_family) {
  uint8_t a[16] = {1, 2, 3};
  uint8_t out[16];
  int f = -1;
  cr_assert_eq(rc_proxy_client_addr(trusted, 3, RC_PROXY_USE_ALL, AF_UNIX, a, NULL, 0, &f, out),
               RC_PROXY_PEER);
  cr_assert_eq(f, AF_UNIX);
  cr_assert_eq(memcmp(out, a, 16), 0);
}
