/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "guard.h"
#include "ringcast/proto/ws.h"

static ssize_t parse(const uint8_t *b, size_t n, bool mask, struct rc_ws_header *h) {
  struct guarded g;
  uint8_t *p = guard_copy(&g, b, n);
  ssize_t r = rc_ws_parse_header(p, n, mask, h);
  guard_free(&g);
  return r;
}

Test(ws, encode_parse_roundtrip_all_length_forms) {
  const uint64_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 16u << 20};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    uint8_t b[10];
    size_t n = rc_ws_encode_header(b, RC_WS_OP_BINARY, true, lens[i]);
    cr_assert_eq(n, lens[i] < 126 ? 2u : lens[i] <= 0xffff ? 4u : 10u);
    struct rc_ws_header h;
    cr_assert_eq(parse(b, n, false, &h), (ssize_t)n);
    cr_assert_eq(h.payload_len, lens[i]);
    cr_assert(h.fin);
    cr_assert_eq(h.opcode, RC_WS_OP_BINARY);
    for (size_t k = 0; k < n; k++) cr_assert_eq(parse(b, k, false, &h), -EAGAIN);
  }
}

Test(ws, masked_client_frame) {
  const uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  struct rc_ws_header h;
  cr_assert_eq(parse(f, sizeof f, true, &h), 6);
  uint8_t payload[5];
  memcpy(payload, f + 6, 5);
  rc_ws_unmask(payload, 5, h.mask, 0);
  cr_assert_eq(memcmp(payload, "Hello", 5), 0, "RFC 6455 section 5.7 example");
}

Test(ws, unmask_in_pieces_matches_whole) {
  uint8_t a[100], b[100], mask[4] = {1, 2, 3, 4};
  for (int i = 0; i < 100; i++) a[i] = b[i] = (uint8_t)(i * 7);
  rc_ws_unmask(a, 100, mask, 0);
  rc_ws_unmask(b, 13, mask, 0);
  rc_ws_unmask(b + 13, 87, mask, 13);
  cr_assert_eq(memcmp(a, b, 100), 0);
}

Test(ws, rejects_forbidden_headers) {
  struct rc_ws_header h;
  const uint8_t unmasked[] = {0x81, 0x00};
  cr_assert_eq(parse(unmasked, 2, true, &h), -EPROTO);
  const uint8_t rsv[] = {0xc1, 0x80, 0, 0, 0, 0};
  cr_assert_eq(parse(rsv, sizeof rsv, true, &h), -EPROTO);
  const uint8_t op3[] = {0x83, 0x80, 0, 0, 0, 0};
  cr_assert_eq(parse(op3, sizeof op3, true, &h), -EPROTO);
  const uint8_t opb[] = {0x8b, 0x80, 0, 0, 0, 0};
  cr_assert_eq(parse(opb, sizeof opb, true, &h), -EPROTO);
  const uint8_t frag_ping[] = {0x09, 0x80, 0, 0, 0, 0};
  cr_assert_eq(parse(frag_ping, sizeof frag_ping, true, &h), -EPROTO);
  const uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0};
  cr_assert_eq(parse(long_ping, sizeof long_ping, true, &h), -EPROTO);
  const uint8_t nonminimal16[] = {0x82, 0xfe, 0x00, 0x05, 0, 0, 0, 0};
  cr_assert_eq(parse(nonminimal16, sizeof nonminimal16, true, &h), -EPROTO);
  const uint8_t nonminimal64[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
  cr_assert_eq(parse(nonminimal64, sizeof nonminimal64, true, &h), -EPROTO);
  const uint8_t topbit[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  cr_assert_eq(parse(topbit, sizeof topbit, true, &h), -EPROTO);
}

Test(ws, accept_key_rfc_example) {
  char out[RC_WS_ACCEPT_LEN + 1];
  cr_assert_eq(rc_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
  cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  cr_assert_eq(rc_ws_accept_key("short", 5, out), -EINVAL);
  cr_assert_eq(rc_ws_accept_key("!!!!!!!!!!!!!!!!!!!!!!==", 24, out), -EINVAL);
}

Test(ws, close_codes) {
  cr_assert(rc_ws_close_code_is_valid(1000));
  cr_assert(rc_ws_close_code_is_valid(1013));
  cr_assert(rc_ws_close_code_is_valid(3000));
  cr_assert(rc_ws_close_code_is_valid(4999));
  cr_assert_not(rc_ws_close_code_is_valid(999));
  cr_assert_not(rc_ws_close_code_is_valid(1004));
  cr_assert_not(rc_ws_close_code_is_valid(1005));
  cr_assert_not(rc_ws_close_code_is_valid(1006));
  cr_assert_not(rc_ws_close_code_is_valid(1015));
  cr_assert_not(rc_ws_close_code_is_valid(2999));
  cr_assert_not(rc_ws_close_code_is_valid(5000));
}
