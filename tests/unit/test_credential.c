/* SPDX-License-Identifier: MIT */
/* Bearer tokens from Authorization, token= and cookies; the publish key file and
 * its comparison. Inputs sit right before guard pages. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guard.h"
#include "ringcast/proto/credential.h"

struct hdr {
  const char *name, *value;
};

#define MAX_HDRS 6
#define H(...)                                                                                     \
  ((const struct hdr[]){__VA_ARGS__}),                                                             \
      (sizeof((const struct hdr[]){__VA_ARGS__}) / sizeof(struct hdr))

/* The request's headers, each value in its own guarded copy, alive until the next
 * call (results point into them). */
static struct guarded copies[MAX_HDRS];
static size_t n_copies;
static struct rc_http_header hdrs[MAX_HDRS];

static void release(void) {
  for (size_t i = 0; i < n_copies; i++)
    guard_free(&copies[i]);
  n_copies = 0;
}

static size_t headers(const struct hdr *in, size_t n) {
  release();
  cr_assert_leq(n, MAX_HDRS);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(in[i].value);
    hdrs[i].name = in[i].name;
    hdrs[i].name_len = strlen(in[i].name);
    hdrs[i].value = (const char *)guard_copy(&copies[i], in[i].value, len);
    hdrs[i].value_len = len;
    n_copies++;
  }
  return n;
}

static char got[RC_CREDENTIAL_TOKEN_MAX + 1];

static int bearer(const struct hdr *in, size_t n) {
  const char *tok = NULL, *why = NULL;
  size_t len = 0;
  int rc = rc_credential_bearer(hdrs, headers(in, n), &tok, &len, &why);
  got[0] = '\0';
  if (rc == 0) {
    cr_assert_leq(len, RC_CREDENTIAL_TOKEN_MAX);
    memcpy(got, tok, len);
    got[len] = '\0';
  } else {
    cr_assert_not_null(why);
  }
  return rc;
}

static int cookie(const char *name, const struct hdr *in, size_t n) {
  const char *tok = NULL, *why = NULL;
  size_t len = 0;
  int rc = rc_credential_cookie(hdrs, headers(in, n), name, &tok, &len, &why);
  got[0] = '\0';
  if (rc == 0) {
    memcpy(got, tok, len);
    got[len] = '\0';
  } else {
    cr_assert_not_null(why);
  }
  return rc;
}

static int query(const char *q, size_t out_size) {
  struct guarded g;
  size_t n = strlen(q);
  const char *p = (const char *)guard_copy(&g, q, n);
  const char *why = NULL;
  size_t len = 0;
  static char out[RC_CREDENTIAL_TOKEN_MAX + 64];
  cr_assert_leq(out_size, sizeof out);
  int rc = rc_credential_query(p, n, out, out_size, &len, &why);
  guard_free(&g);
  got[0] = '\0';
  if (rc == 0) {
    cr_assert_eq(strlen(out), len);
    memcpy(got, out, len + 1);
  } else {
    cr_assert_not_null(why);
  }
  return rc;
}

TestSuite(credential, .fini = release);

static const char jwt[] = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";

Test(credential, bearer) {
  cr_assert_eq(bearer(H({"Authorization", "Bearer abc.DEF-_~+/=="})), 0);
  cr_assert_str_eq(got, "abc.DEF-_~+/==");
  cr_assert_eq(bearer(H({"authorization", "bearer tok"})), 0, "scheme and name case-insensitive");
  cr_assert_str_eq(got, "tok");
  cr_assert_eq(bearer(H({"Authorization", "BEARER   tok  "})), 0, "1*SP, trailing OWS");
  cr_assert_str_eq(got, "tok");
  char v[sizeof jwt + 8];
  snprintf(v, sizeof v, "Bearer %s", jwt);
  cr_assert_eq(bearer(H({"Host", "x"}, {"Authorization", v})), 0);
  cr_assert_str_eq(got, jwt);
}

Test(credential, bearer_errors) {
  cr_assert_eq(bearer(H({"Host", "x"})), -ENOENT);
  cr_assert_eq(bearer(NULL, 0), -ENOENT);
  cr_assert_eq(bearer(H({"Authorization", "Basic dXNlcjpwYXNz"})), -ENOTSUP);
  cr_assert_eq(bearer(H({"Authorization", "Bearertok"})), -ENOTSUP);
  cr_assert_eq(bearer(H({"Authorization", "Bearer"})), -EBADMSG);
  cr_assert_eq(bearer(H({"Authorization", "Bearer "})), -EBADMSG);
  cr_assert_eq(bearer(H({"Authorization", ""})), -EBADMSG);
  cr_assert_eq(bearer(H({"Authorization", " Bearer x"})), 0, "leading OWS is trimmed");
  cr_assert_eq(bearer(H({"Authorization", "Bearer\ttok"})), -ENOTSUP);
  cr_assert_eq(bearer(H({"Authorization", "Bearer a b"})), -EBADMSG, "text after the token");
  cr_assert_eq(bearer(H({"Authorization", "Bearer a=b"})), -EBADMSG, "'=' only at the end");
  cr_assert_eq(bearer(H({"Authorization", "Bearer =="})), -EBADMSG);
  cr_assert_eq(bearer(H({"Authorization", "Bearer a,b"})), -EBADMSG);
  cr_assert_eq(bearer(H({"Authorization", "Bearer t\xc3\xa9"})), -EBADMSG);
  cr_assert_eq(bearer(H({"Authorization", "Bearer a"}, {"Authorization", "Bearer b"})), -EEXIST);
  cr_assert_eq(bearer(H({"Authorization", "Bearer a"}, {"authorization", "Bearer a"})), 0,
               "the same credential twice is one");
  cr_assert_eq(bearer(H({"Authorization", "Bearer a"}, {"Authorization", "Basic a"})), -EEXIST);

  static char big[RC_CREDENTIAL_TOKEN_MAX + 16];
  memcpy(big, "Bearer ", 7);
  memset(big + 7, 'a', RC_CREDENTIAL_TOKEN_MAX);
  big[7 + RC_CREDENTIAL_TOKEN_MAX] = '\0';
  cr_assert_eq(bearer(H({"Authorization", big})), 0, "exactly the longest token");
  big[7 + RC_CREDENTIAL_TOKEN_MAX] = 'a';
  big[8 + RC_CREDENTIAL_TOKEN_MAX] = '\0';
  cr_assert_eq(bearer(H({"Authorization", big})), -E2BIG);
}

Test(credential, query) {
  cr_assert_eq(query("token=abc", 64), 0);
  cr_assert_str_eq(got, "abc");
  cr_assert_eq(query("topics=a,b&token=abc.def&x=1", 64), 0);
  cr_assert_str_eq(got, "abc.def");
  cr_assert_eq(query("token=a%2Bb%2fc%3D%3d", 64), 0, "percent-decoded, either case");
  cr_assert_str_eq(got, "a+b/c==");
  cr_assert_eq(query("token=a+b", 64), 0, "'+' is itself");
  cr_assert_str_eq(got, "a+b");
  cr_assert_eq(query("token=first&token=second", 64), 0);
  cr_assert_str_eq(got, "first", "the first occurrence");
  cr_assert_eq(query("xtoken=a&tokens=b&token=c", 64), 0, "whole keys only");
  cr_assert_str_eq(got, "c");
  cr_assert_eq(query("token=first&token=%zz", 64), 0, "later ones are not read");
}

Test(credential, query_errors) {
  cr_assert_eq(query("", 64), -ENOENT);
  cr_assert_eq(query("a=1&b=2", 64), -ENOENT);
  cr_assert_eq(query("%74oken=a", 64), -ENOENT, "the key is not decoded");
  const char *why = NULL;
  char out[8];
  size_t len;
  cr_assert_eq(rc_credential_query(NULL, 0, out, sizeof out, &len, &why), -ENOENT);
  cr_assert_eq(query("token=", 64), -EBADMSG);
  cr_assert_eq(query("token", 64), -EBADMSG);
  cr_assert_eq(query("token=a%2", 64), -EBADMSG, "escape cut short");
  cr_assert_eq(query("token=a%", 64), -EBADMSG);
  cr_assert_eq(query("token=a%g1", 64), -EBADMSG);
  cr_assert_eq(query("token=a%20b", 64), -EBADMSG, "a decoded space is no token");
  cr_assert_eq(query("token=a%00b", 64), -EBADMSG, "nor a NUL");
  cr_assert_eq(query("token=abcdefg", 8), 0, "7 bytes and the NUL fit in 8");
  cr_assert_eq(query("token=abcdefgh", 8), -E2BIG);
  cr_assert_eq(query("token=abc", 0), -E2BIG);
  static char q[RC_CREDENTIAL_TOKEN_MAX * 3 + 16];
  strcpy(q, "token=");
  for (int i = 0; i < RC_CREDENTIAL_TOKEN_MAX; i++)
    strcat(q + 6 + 3 * i, "%41");
  cr_assert_eq(query(q, RC_CREDENTIAL_TOKEN_MAX + 64), 0, "the longest token, all escaped");
  cr_assert_eq(strlen(got), RC_CREDENTIAL_TOKEN_MAX);
  strcat(q, "A");
  cr_assert_eq(query(q, RC_CREDENTIAL_TOKEN_MAX + 64), -E2BIG, "bounded however big out is");
}

Test(credential, cookie) {
  cr_assert_eq(cookie("rc_token", H({"Cookie", "theme=dark; rc_token=abc.def; lang=en"})), 0);
  cr_assert_str_eq(got, "abc.def");
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=\"abc\""})), 0, "quotes are dropped");
  cr_assert_str_eq(got, "abc");
  cr_assert_eq(cookie("rc_token", H({"Cookie", "a=1;rc_token=x;b=2"})), 0, "no space after ';'");
  cr_assert_str_eq(got, "x");
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=first; rc_token=second"})), 0);
  cr_assert_str_eq(got, "first");
  cr_assert_eq(cookie("rc_token", H({"Cookie", "a=1"}, {"Host", "x"}, {"cookie", "rc_token=y"})), 0,
               "several Cookie lines");
  cr_assert_str_eq(got, "y");
  cr_assert_eq(
      cookie("rc_token", H({"Cookie", "junk; =; ==; weird=\"x y\"; x_rc_token=z; rc_token=ok"})), 0,
      "other cookies are not judged");
  cr_assert_str_eq(got, "ok");
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token = spaced "})), 0);
  cr_assert_str_eq(got, "spaced");
  cr_assert_eq(cookie("rc_token", H({"Cookie", jwt}, {"Cookie", "rc_token=eyJ.eyJ.sig"})), 0);
  cr_assert_str_eq(got, "eyJ.eyJ.sig");
}

Test(credential, cookie_errors) {
  cr_assert_eq(cookie("rc_token", H({"Host", "x"})), -ENOENT);
  cr_assert_eq(cookie("rc_token", H({"Cookie", "RC_TOKEN=a; rc_tokenx=b"})), -ENOENT,
               "names are case-sensitive and whole");
  cr_assert_eq(cookie("", H({"Cookie", "=a"})), -ENOENT);
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token="})), -EBADMSG);
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=\"\""})), -EBADMSG);
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=\"abc"})), -EBADMSG);
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=\""})), -EBADMSG);
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=a%20b"})), -EBADMSG,
               "cookie values are not percent-decoded");
  cr_assert_eq(cookie("rc_token", H({"Cookie", "rc_token=a,b"})), -EBADMSG);
  static char big[RC_CREDENTIAL_TOKEN_MAX + 16];
  memcpy(big, "rc_token=", 9);
  memset(big + 9, 'a', RC_CREDENTIAL_TOKEN_MAX + 1);
  big[10 + RC_CREDENTIAL_TOKEN_MAX] = '\0';
  cr_assert_eq(cookie("rc_token", H({"Cookie", big})), -E2BIG);
}

/* --- publish keys -------------------------------------------------------- */

static int keys_parse(const char *text, struct rc_publish_keys *k, char *err, size_t errsz) {
  struct guarded g;
  size_t n = strlen(text);
  const char *p = (const char *)guard_copy(&g, text, n);
  int rc = rc_publish_keys_parse("keys.txt", p, n, k, err, errsz);
  guard_free(&g);
  return rc;
}

static bool matches(const struct rc_publish_keys *k, const char *key) {
  struct guarded g;
  size_t n = strlen(key);
  const char *p = (const char *)guard_copy(&g, key, n);
  bool ok = rc_publish_keys_match(k, p, n);
  guard_free(&g);
  return ok;
}

Test(credential, publish_keys_parse_and_match) {
  struct rc_publish_keys k;
  char err[256] = "";
  const char *text = "# publishers\n"
                     "\n"
                     "0123456789abcdef\n"
                     "   \t\n"
                     "  second-key-with-#-in-it  \r\n"
                     "\t# indented comment\n"
                     "third-key-0123456789-no-newline";
  cr_assert_eq(keys_parse(text, &k, err, sizeof err), 0, "%s", err);
  cr_assert_eq(k.n, 3);
  cr_assert(matches(&k, "0123456789abcdef"));
  cr_assert(matches(&k, "second-key-with-#-in-it"), "trimmed, CRLF read as LF");
  cr_assert(matches(&k, "third-key-0123456789-no-newline"));
  cr_assert_not(matches(&k, "0123456789abcdeF"));
  cr_assert_not(matches(&k, "0123456789abcde"), "a prefix");
  cr_assert_not(matches(&k, "0123456789abcdef0"), "longer");
  cr_assert_not(matches(&k, "x123456789abcdef"), "first byte differs");
  cr_assert_not(matches(&k, ""));
  cr_assert_not(matches(&k, "# publishers"));
  rc_publish_keys_fini(&k);
  cr_assert_null(k.bytes);
  cr_assert_eq(k.n, 0);
  cr_assert_not(matches(&k, "0123456789abcdef"), "a finished set matches nothing");
  rc_publish_keys_fini(&k);
}

Test(credential, publish_keys_errors) {
  struct rc_publish_keys k;
  char err[256];
  cr_assert_eq(keys_parse("0123456789abcdef\n\nshort\n", &k, err, sizeof err), -EINVAL);
  cr_assert_str_eq(err, "keys.txt:3: the key is shorter than 16 bytes");
  cr_assert_null(k.bytes, "nothing to free on error");
  cr_assert_eq(keys_parse("0123456789 abcdef\n", &k, err, sizeof err), -EINVAL);
  cr_assert_str_eq(err, "keys.txt:1: a key is printable ASCII without spaces");
  cr_assert_eq(keys_parse("0123456789abcdef\xc3\xa9\n", &k, err, sizeof err), -EINVAL);
  cr_assert_eq(keys_parse("# only\n\n  \n", &k, err, sizeof err), -EINVAL);
  cr_assert_not_null(strstr(err, "keys.txt: no key"), "%s", err);
  cr_assert_eq(keys_parse("", &k, err, sizeof err), -EINVAL);
  static char big[RC_PUBLISH_KEY_MAX + 8];
  memset(big, 'k', RC_PUBLISH_KEY_MAX + 1);
  big[RC_PUBLISH_KEY_MAX + 1] = '\0';
  cr_assert_eq(keys_parse(big, &k, err, sizeof err), -EINVAL);
  cr_assert_str_eq(err, "keys.txt:1: the key is longer than 1024 bytes");
  big[RC_PUBLISH_KEY_MAX] = '\0';
  cr_assert_eq(keys_parse(big, &k, err, sizeof err), 0, "exactly the longest key");
  cr_assert(matches(&k, big));
  rc_publish_keys_fini(&k);
  char nul[] = "0123456789abcdef\0after";
  cr_assert_eq(rc_publish_keys_parse("keys.txt", nul, sizeof nul - 1, &k, err, sizeof err), -EINVAL,
               "a NUL is not printable");
  cr_assert_eq(
      rc_publish_keys_parse("keys.txt", nul, RC_PUBLISH_KEY_FILE_MAX + 1, &k, err, sizeof err),
      -EINVAL, "the length is checked before anything is read");
}

Test(credential, publish_keys_count_bound) {
  size_t per = 17;
  size_t len = (RC_PUBLISH_KEYS_MAX + 1) * per;
  char *text = malloc(len + 1);
  cr_assert_not_null(text);
  for (size_t i = 0; i <= RC_PUBLISH_KEYS_MAX; i++)
    snprintf(text + i * per, per + 1, "key-%012zu\n", i);
  struct rc_publish_keys k;
  char err[256];
  cr_assert_eq(rc_publish_keys_parse("keys.txt", text, len - per, &k, err, sizeof err), 0, "%s",
               err);
  cr_assert_eq(k.n, RC_PUBLISH_KEYS_MAX);
  cr_assert(matches(&k, "key-000000004095"));
  rc_publish_keys_fini(&k);
  cr_assert_eq(rc_publish_keys_parse("keys.txt", text, len, &k, err, sizeof err), -EINVAL);
  cr_assert_str_eq(err, "keys.txt:4097: more than 4096 keys");
  free(text);
}

Test(credential, publish_keys_load) {
  char path[] = "/tmp/rc_keys_XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  const char text[] = "# test\nAAAABBBBCCCCDDDD\n";
  cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  struct rc_publish_keys k;
  char err[256] = "";
  cr_assert_eq(rc_publish_keys_load(path, &k, err, sizeof err), 0, "%s", err);
  cr_assert(matches(&k, "AAAABBBBCCCCDDDD"));
  rc_publish_keys_fini(&k);

  fd = open(path, O_WRONLY | O_APPEND);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, "tooshort\n", 9), 9);
  close(fd);
  cr_assert_eq(rc_publish_keys_load(path, &k, err, sizeof err), -EINVAL);
  char want[128];
  snprintf(want, sizeof want, "%s:3: the key is shorter than 16 bytes", path);
  cr_assert_str_eq(err, want);
  unlink(path);

  cr_assert_eq(rc_publish_keys_load(path, &k, err, sizeof err), -ENOENT);
  cr_assert_not_null(strstr(err, path));
  cr_assert_eq(rc_publish_keys_load("/", &k, err, sizeof err), -EISDIR);
}
