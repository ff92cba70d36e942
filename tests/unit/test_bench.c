/* SPDX-License-Identifier: MIT */
/* ringcast-bench's measuring parts: the log-linear histogram and the sequence
 * checker; and its TLS client's send bookkeeping (one send in flight, a short
 * send offered again, an ended connection's send freed, never re-sent). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "seqcheck.h"
#include "tls_client.h"

Test(hist, small_values_are_exact) {
  struct rc_hist h;
  rc_hist_init(&h);
  for (uint64_t v = 0; v < 64; v++) rc_hist_record(&h, v);
  cr_assert_eq(h.count, 64);
  cr_assert_eq(rc_hist_quantile(&h, 0.5), 32);
  cr_assert_eq(rc_hist_quantile(&h, 0), 0);
  cr_assert_eq(rc_hist_quantile(&h, 1.0), 63);
}

Test(hist, relative_error_is_bounded) {
  for (uint64_t v = 1; v < (1ull << 40); v = v * 3 + 7) {
    unsigned idx = rc_hist_index(v);
    uint64_t high = rc_hist_bucket_high(idx);
    cr_assert(high >= v, "bucket %u of %llu ends at %llu", idx, (unsigned long long)v,
              (unsigned long long)high);
    cr_assert((double)(high - v) <= (double)v / 64.0 + 1, "%llu reported as %llu",
              (unsigned long long)v, (unsigned long long)high);
    if (idx) cr_assert(rc_hist_bucket_high(idx - 1) < v, "buckets do not overlap");
  }
}

Test(hist, percentiles_of_a_uniform_range) {
  struct rc_hist h;
  rc_hist_init(&h);
  for (uint64_t v = 1; v <= 100000; v++) rc_hist_record(&h, v * 1000); /* 1 us .. 100 ms in ns */
  double p50 = (double)rc_hist_quantile(&h, 0.5), p99 = (double)rc_hist_quantile(&h, 0.99);
  cr_assert(p50 >= 50e6 && p50 <= 50e6 * 1.02, "p50 %.0f", p50);
  cr_assert(p99 >= 99e6 && p99 <= 99e6 * 1.02, "p99 %.0f", p99);
  cr_assert_eq(rc_hist_quantile(&h, 1.0), 100000000, "the maximum is exact");
  struct rc_hist other;
  rc_hist_init(&other);
  rc_hist_record(&other, 5);
  rc_hist_merge(&h, &other);
  cr_assert_eq(h.count, 100001);
  cr_assert_eq(h.min, 5);
}

Test(hist, empty) {
  struct rc_hist h;
  rc_hist_init(&h);
  cr_assert_eq(rc_hist_quantile(&h, 0.99), 0);
}

Test(seqcheck, in_order_stream) {
  struct rc_seq_stream s = {0};
  struct rc_seq_totals t = {0};
  cr_assert_eq(rc_seq_observe(&s, &t, 1), RC_SEQ_FIRST);
  for (uint64_t i = 2; i <= 100; i++) cr_assert_eq(rc_seq_observe(&s, &t, i), RC_SEQ_NEXT);
  cr_assert_eq(t.gaps + t.duplicates + t.reorders, 0);
  cr_assert_eq(rc_seq_missing(&s, 1, 100), 0);
  cr_assert_eq(rc_seq_missing(&s, 1, 103), 3, "messages missing at the end are loss too");
}

Test(seqcheck, gaps_duplicates_reorders) {
  struct rc_seq_stream s = {0};
  struct rc_seq_totals t = {0};
  rc_seq_observe(&s, &t, 1);
  cr_assert_eq(rc_seq_observe(&s, &t, 4), RC_SEQ_GAP);
  cr_assert_eq(t.gaps, 2);
  cr_assert_eq(rc_seq_observe(&s, &t, 4), RC_SEQ_DUPLICATE);
  cr_assert_eq(rc_seq_observe(&s, &t, 2), RC_SEQ_REORDER);
  cr_assert_eq(rc_seq_observe(&s, &t, 5), RC_SEQ_NEXT);
  cr_assert_eq(t.duplicates, 1);
  cr_assert_eq(t.reorders, 1);
  cr_assert_eq(rc_seq_missing(&s, 1, 5), 2, "2 and 3 never arrived in order");
}

Test(seqcheck, stream_joined_late) {
  struct rc_seq_stream s = {0};
  struct rc_seq_totals t = {0};
  for (uint64_t i = 41; i <= 50; i++) rc_seq_observe(&s, &t, i);
  cr_assert_eq(rc_seq_missing(&s, 41, 50), 0);
  cr_assert_eq(rc_seq_missing(&s, 1, 50), 40, "counted from where it should have started");
  struct rc_seq_stream empty = {0};
  cr_assert_eq(rc_seq_missing(&empty, 1, 7), 7, "a stream that got nothing lost everything");
}

/* Pending bytes as wolfSSL's send callback would leave them. */
static void give_pending(struct rc_tls_client *t, const char *text) {
  size_t n = strlen(text);
  t->pending = malloc(n);
  cr_assert_not_null(t->pending);
  memcpy(t->pending, text, n);
  t->pending_len = t->pending_cap = (uint32_t)n;
}

Test(tls_client, one_send_in_flight_and_a_short_send_resumes) {
  struct rc_tls_client t = {0};
  const uint8_t *p;
  size_t n;
  cr_assert_not(rc_tls_client_take_send(&t, &p, &n), "nothing to send");
  give_pending(&t, "hello world");
  cr_assert(rc_tls_client_take_send(&t, &p, &n));
  cr_assert_eq(n, 11);
  cr_assert_not(rc_tls_client_take_send(&t, &p, &n), "a second send while one is in flight");
  cr_assert_eq(rc_tls_client_sent(&t, 6), 0);
  cr_assert(rc_tls_client_take_send(&t, &p, &n), "the rest of a short send");
  cr_assert_eq(n, 5);
  cr_assert_eq(memcmp(p, "world", 5), 0);
  cr_assert_eq(rc_tls_client_sent(&t, 5), 0);
  cr_assert_null(t.sending, "freed once written");
  cr_assert_not(rc_tls_client_take_send(&t, &p, &n));
  rc_tls_client_fini(&t);
}

Test(tls_client, a_failed_send_frees_its_buffer) {
  struct rc_tls_client t = {0};
  const uint8_t *p;
  size_t n;
  give_pending(&t, "abc");
  cr_assert(rc_tls_client_take_send(&t, &p, &n));
  cr_assert_eq(rc_tls_client_sent(&t, -32), -32);
  cr_assert_null(t.sending);
  cr_assert_not(t.in_flight);
  rc_tls_client_fini(&t);
}

Test(tls_client, an_ended_connections_send_is_never_offered_to_the_next) {
  struct rc_tls_client_config cfg = {.host = "localhost", .memory_io = true};
  struct rc_tls_client_ctx *ctx;
  char err[128];
  cr_assert_eq(rc_tls_client_ctx_create(&cfg, &ctx, err, sizeof err), 0, "%s", err);
  struct rc_tls_client t = {0};
  const uint8_t *p;
  size_t n;
  give_pending(&t, "old connection");
  cr_assert(rc_tls_client_take_send(&t, &p, &n));
  rc_tls_client_end(ctx, &t);
  cr_assert(t.orphaned && t.sending, "the kernel may still read it");
  /* The slot's next connection writes its ClientHello meanwhile. */
  cr_assert_eq(rc_tls_client_start(ctx, &t), 0);
  cr_assert_gt(t.pending_len, 0);
  cr_assert_not(rc_tls_client_take_send(&t, &p, &n), "the old send is still in flight");
  cr_assert_eq(rc_tls_client_sent(&t, 3), 0, "a short send of an ended connection");
  cr_assert_null(t.sending, "freed, not offered again");
  cr_assert(rc_tls_client_take_send(&t, &p, &n));
  cr_assert_eq(p[0], 0x16, "the new connection's handshake record comes next");
  cr_assert_eq(rc_tls_client_sent(&t, (int)n), 0);
  rc_tls_client_fini(&t);
  rc_tls_client_ctx_destroy(ctx);
}

Test(tls_client, a_missing_ca_file_is_refused_with_its_name) {
  struct rc_tls_client_config cfg = {.host = "localhost", .ca_file = "/nonexistent/ca.pem"};
  struct rc_tls_client_ctx *ctx = NULL;
  char err[128] = "";
  cr_assert_eq(rc_tls_client_ctx_create(&cfg, &ctx, err, sizeof err), -EINVAL);
  cr_assert_null(ctx);
  cr_assert(strstr(err, "/nonexistent/ca.pem"), "%s", err);
}
