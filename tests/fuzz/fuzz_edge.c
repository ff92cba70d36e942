/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the edge checks: Origin patterns and values, CIDRs, the
 * walk through proxy headers, and credential extraction. The input is read whole
 * (an Origin, a pattern, a CIDR, a query, a key file) and as header lines, each
 * line's first byte naming its header: F Forwarded, X X-Forwarded-For, R X-Real-IP,
 * A Authorization, C Cookie. Each value gets its own allocation, so a read past
 * its end is a sanitizer report, not a read of the next line. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ringcast/proto/credential.h"
#include "ringcast/proto/origin.h"
#include "ringcast/proto/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 8

static char *dup_str(const uint8_t *p, size_t n) {
  char *s = malloc(n + 1);
  if (!s) abort();
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

static bool in_span(const char *p, size_t n, const char *base, size_t base_len) {
  return p >= base && n <= base_len && (size_t)(p - base) <= base_len - n;
}

static bool is_token68_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         strchr("-._~+/=", c) != NULL;
}

static void check_token(const char *t, size_t n) {
  if (n == 0 || n > RC_CREDENTIAL_TOKEN_MAX) abort();
  for (size_t i = 0; i < n; i++)
    if (t[i] == '\0' || !is_token68_char(t[i])) abort();
}

/* A pattern allows its own text when it holds no wildcard. */
static void check_origin(const uint8_t *data, size_t size) {
  static struct rc_origin_pattern pats[3];
  static bool ready;
  if (!ready) {
    char err[128];
    if (rc_origin_pattern_parse("https://*.example.com", &pats[0], err, sizeof err) ||
        rc_origin_pattern_parse("http://localhost:*", &pats[1], err, sizeof err) ||
        rc_origin_pattern_parse("http://[::1]:8080", &pats[2], err, sizeof err))
      abort();
    ready = true;
  }
  char *v = dup_str(data, size);
  (void)rc_origin_allowed(pats, 3, v, size);
  struct rc_origin_pattern p;
  char err[256];
  if (rc_origin_pattern_parse(v, &p, err, sizeof err) == 0) {
    if (strlen(v) > RC_ORIGIN_MAX) abort();
    if (!p.any_subdomain && !p.any_port && !rc_origin_allowed(&p, 1, v, strlen(v))) abort();
  } else if (err[0] == '\0') {
    abort();
  }
  free(v);
}

/* A parsed network holds its own first address. */
static void check_cidr(const uint8_t *data, size_t size) {
  char *v = dup_str(data, size);
  struct rc_cidr c;
  char err[160];
  if (rc_cidr_parse(v, &c, err, sizeof err) == 0) {
    if (c.family == AF_INET ? c.prefix > 32 : c.prefix > 128) abort();
    if (!rc_cidr_list_contains(&c, 1, c.family, c.addr)) abort();
  }
  free(v);
}

static const char *header_name(char c) {
  switch (c) {
  case 'F': return "Forwarded";
  case 'X': return "X-Forwarded-For";
  case 'R': return "X-Real-IP";
  case 'A': return "Authorization";
  case 'C': return "Cookie";
  default: return "Host";
  }
}

static void check_headers(const uint8_t *data, size_t size) {
  struct rc_http_header h[MAX_LINES];
  size_t n = 0, pos = 0;
  while (pos < size && n < MAX_LINES) {
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - data) : size;
    const char *name = header_name((char)data[pos]);
    size_t start = pos + 1 < end ? pos + 1 : end;
    h[n].name = name;
    h[n].name_len = strlen(name);
    h[n].value = dup_str(data + start, end - start);
    h[n].value_len = end - start;
    n++;
    pos = end + 1;
  }

  static struct rc_cidr trusted[3];
  static bool ready;
  if (!ready) {
    char err[128];
    if (rc_cidr_parse("10.0.0.0/8", &trusted[0], err, sizeof err) ||
        rc_cidr_parse("fd00::/8", &trusted[1], err, sizeof err) ||
        rc_cidr_parse("192.0.2.1", &trusted[2], err, sizeof err))
      abort();
    ready = true;
  }
  /* A trusted IPv4 peer, a trusted IPv6 one, a mapped one and an untrusted one. */
  static const uint8_t peers[4][16] = {
      {10, 0, 0, 1},
      {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3},
      {203, 0, 113, 1},
  };
  static const int families[4] = {AF_INET, AF_INET6, AF_INET6, AF_INET};
  /* What each peer comes out as: mapped addresses as IPv4. */
  static const uint8_t expect[4][16] = {{10, 0, 0, 1},
                                        {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                                        {10, 1, 2, 3},
                                        {203, 0, 113, 1}};
  static const int expect_families[4] = {AF_INET, AF_INET6, AF_INET, AF_INET};
  for (int i = 0; i < 4; i++) {
    int f = -1;
    uint8_t out[16];
    unsigned use = size > 0 ? data[0] & 0xfu : RC_PROXY_USE_ALL;
    int rc = rc_proxy_client_addr(trusted, 3, use, families[i], peers[i], h, n, &f, out);
    if (rc > RC_PROXY_X_REAL_IP) abort();
    if (f != AF_INET && f != AF_INET6) abort();
    for (int b = 4; f == AF_INET && b < 16; b++)
      if (out[b] != 0) abort();
    /* The peer stands for the client on an error, and when it is untrusted. */
    if (i == 3 && rc != RC_PROXY_PEER) abort();
    if (rc <= RC_PROXY_PEER && (f != expect_families[i] || memcmp(out, expect[i], 16) != 0))
      abort();
  }

  const char *tok, *why;
  size_t len;
  if (rc_credential_bearer(h, n, &tok, &len, &why) == 0) {
    bool inside = false;
    for (size_t i = 0; i < n; i++)
      inside |= in_span(tok, len, h[i].value, h[i].value_len);
    if (!inside) abort();
    check_token(tok, len);
  }
  if (rc_credential_cookie(h, n, "rc_token", &tok, &len, &why) == 0) {
    bool inside = false;
    for (size_t i = 0; i < n; i++)
      inside |= in_span(tok, len, h[i].value, h[i].value_len);
    if (!inside) abort();
    check_token(tok, len);
  }
  for (size_t i = 0; i < n; i++)
    free((void *)h[i].value);
}

static void check_query(const uint8_t *data, size_t size) {
  char *q = dup_str(data, size);
  char out[64];
  size_t len = 0;
  const char *why = NULL;
  int rc = rc_credential_query(q, size, out, sizeof out, &len, &why);
  if (rc == 0) {
    if (len >= sizeof out || out[len] != '\0') abort();
    check_token(out, len);
  } else if (!why) {
    abort();
  }
  free(q);
}

/* Every key read from a file matches itself; its neighbours do not. */
static void check_keys(const uint8_t *data, size_t size) {
  struct rc_publish_keys k;
  char err[256];
  if (rc_publish_keys_parse("fuzz", (const char *)data, size, &k, err, sizeof err) != 0) {
    if (k.bytes || k.keys || k.n) abort();
    return;
  }
  for (unsigned i = 0; i < k.n; i++) {
    const char *key = k.bytes + k.keys[i].off;
    size_t n = k.keys[i].len;
    if (n < RC_PUBLISH_KEY_MIN || n > RC_PUBLISH_KEY_MAX) abort();
    if (!rc_publish_keys_match(&k, key, n)) abort();
    if (k.n == 1 && rc_publish_keys_match(&k, key, n - 1)) abort();
  }
  rc_publish_keys_fini(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_origin(data, size);
  check_cidr(data, size);
  check_headers(data, size);
  check_query(data, size);
  if (size <= 4096) check_keys(data, size);
  return 0;
}
