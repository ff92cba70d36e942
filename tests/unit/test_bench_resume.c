/* SPDX-License-Identifier: MIT */
/* ringcast-bench's resume checking: the envelope walk (every member found in
 * any order, nothing read past the message, malformed input refused), the
 * continuity of one subscriber-topic across reconnects on the server's
 * numbering (replay, seam, gaps announced and silent, duplicates, late
 * messages, epochs), and the since= and "since" spellings. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "envelope.h"
#include "guard.h"
#include "resume.h"

/* Parses text placed right before an unreadable page. */
static ssize_t parse_guarded(const char *text, struct rc_env *e) {
  struct guarded g;
  size_t n = strlen(text);
  uint8_t *p = guard_copy(&g, text, n);
  cr_assert_not_null(p);
  ssize_t r = rc_env_parse(p, n, e);
  /* Pointers into the copy are checked by the caller through offsets only. */
  if (e->data) e->data = (const uint8_t *)text + (e->data - p);
  if (e->topic.p) e->topic.p = text + (e->topic.p - (const char *)p);
  if (e->epoch.p) e->epoch.p = text + (e->epoch.p - (const char *)p);
  if (e->op.p) e->op.p = text + (e->op.p - (const char *)p);
  if (e->reason.p) e->reason.p = text + (e->reason.p - (const char *)p);
  guard_free(&g);
  return r;
}

Test(envelope, a_message) {
  const char *m =
      "{\"type\":\"msg\",\"topic\":\"bench.3\",\"seq\":42,\"data\":{\"s\":7,\"p\":\"x\\\"}y\"}}";
  struct rc_env e;
  cr_assert_eq(parse_guarded(m, &e), (ssize_t)strlen(m));
  cr_assert_eq(e.type, RC_ENV_MSG);
  cr_assert(rc_env_str_is(e.topic, "bench.3"));
  cr_assert(e.has_seq);
  cr_assert_eq(e.seq, 42);
  cr_assert_eq(e.recovered, -1);
  const char *d = strstr(m, "{\"s\"");
  cr_assert_eq((const char *)e.data, d);
  cr_assert_eq(e.data_len, strlen(d) - 1, "the data value, without the envelope's closing brace");
}

Test(envelope, acks_gaps_heartbeats_in_any_order) {
  struct rc_env e;
  cr_assert_gt(
      parse_guarded("{\"op\":\"subscribe\",\"seq\":120,\"type\":\"ack\",\"id\":{\"k\":[1,\"]\"]},"
                    "\"topic\":\"a:b\",\"epoch\":\"9f3c0a1b2c3d4e5f\",\"recovered\":true}",
                    &e),
      0);
  cr_assert_eq(e.type, RC_ENV_ACK);
  cr_assert(rc_env_str_is(e.op, "subscribe"));
  cr_assert(rc_env_str_is(e.topic, "a:b"));
  cr_assert(rc_env_str_is(e.epoch, "9f3c0a1b2c3d4e5f"));
  cr_assert_eq(e.seq, 120);
  cr_assert_eq(e.recovered, 1);

  cr_assert_gt(
      parse_guarded(
          " { \"type\" : \"gap\" , \"topic\":\"a\",\"from\":121,\"to\":340,\"recovered\":false,"
          "\"epoch\":\"e2\",\"reason\":\"history\" } ",
          &e),
      0);
  cr_assert_eq(e.type, RC_ENV_GAP);
  cr_assert(e.has_from && e.has_to);
  cr_assert_eq(e.from, 121);
  cr_assert_eq(e.to, 340);
  cr_assert_eq(e.recovered, 0);
  cr_assert(rc_env_str_is(e.reason, "history"));
  cr_assert_not(e.conflated);

  cr_assert_gt(parse_guarded(
                   "{\"type\":\"gap\",\"topic\":\"a\",\"from\":5,\"to\":9,\"conflated\":true}", &e),
               0);
  cr_assert(e.conflated);

  cr_assert_gt(parse_guarded("{\"type\":\"hb\",\"topic\":\"a\",\"seq\":18446744073709551615}", &e),
               0);
  cr_assert_eq(e.type, RC_ENV_HB);
  cr_assert_eq(e.seq, UINT64_MAX);

  cr_assert_gt(
      parse_guarded("{\"type\":\"error\",\"op\":\"subscribe\",\"error\":\"bad \\\\ since\"}", &e),
      0);
  cr_assert_eq(e.type, RC_ENV_ERROR);
  cr_assert_gt(parse_guarded("{\"type\":\"pong\",\"op\":\"ping\"}", &e), 0);
  cr_assert_eq(e.type, RC_ENV_OTHER);
  cr_assert_gt(parse_guarded("{\"type\":7}", &e), 0);
  cr_assert_eq(e.type, RC_ENV_OTHER);
}

Test(envelope, a_bare_payload_is_no_envelope) {
  struct rc_env e;
  cr_assert_gt(parse_guarded("{\"s\":1,\"t\":123456789,\"p\":\"xxxx\"}", &e), 0);
  cr_assert_eq(e.type, RC_ENV_NONE);
  cr_assert_not(e.has_seq, "\"s\" is not \"seq\"");
  cr_assert_eq(parse_guarded("{}", &e), 2);
  cr_assert_eq(e.type, RC_ENV_NONE);
}

Test(envelope, malformed_input_is_refused) {
  static const char *const bad[] = {
      "",
      "   ",
      "[1]",
      "\"msg\"",
      "{",
      "{\"type\"",
      "{\"type\":",
      "{\"type\":\"msg\"",
      "{\"type\":\"msg\",}",
      "{\"type\" \"msg\"}",
      "{type:\"msg\"}",
      "{\"seq\":-1}",
      "{\"seq\":1.5}",
      "{\"seq\":1e3}",
      "{\"seq\":\"12\"}",
      "{\"seq\":18446744073709551616}",
      "{\"to\":}",
      "{\"recovered\":1}",
      "{\"data\":{\"a\":\"}\"}",
      "{\"data\":\"unterminated\\\"}",
      "{\"a\":tru}",
      "{\"a\":1 \"b\":2}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct rc_env e;
    cr_assert_eq(parse_guarded(bad[i], &e), -EINVAL, "accepted: %s", bad[i]);
  }
}

Test(envelope, every_truncation_is_refused_within_bounds) {
  const char *m =
      "{\"type\":\"ack\",\"op\":\"subscribe\",\"topic\":\"a\",\"seq\":120,\"epoch\":\"9f3c\","
      "\"recovered\":false,\"data\":{\"p\":[\"x\\\\\",{\"q\":null}]}}";
  char cut[256];
  for (size_t n = 0; n < strlen(m); n++) {
    memcpy(cut, m, n);
    cut[n] = '\0';
    struct rc_env e;
    cr_assert_eq(parse_guarded(cut, &e), -EINVAL, "a prefix of %zu bytes was accepted", n);
  }
  struct rc_env e;
  cr_assert_eq(parse_guarded(m, &e), (ssize_t)strlen(m));
  cr_assert_eq(e.recovered, 0);
}

/* ---- continuity -------------------------------------------------------------- */

#define EP "9f3c0a1b2c3d4e5f"

static void ack(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t seq,
                const char *epoch, int recovered, uint64_t now) {
  rc_resume_on_ack(s, t, seq, epoch, strlen(epoch), recovered, now);
}

static void msgs(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t from,
                 uint64_t to) {
  for (uint64_t q = from; q <= to; q++)
    rc_resume_on_msg(s, t, q);
}

static bool clean(const struct rc_resume_totals *t) {
  return !t->lost_silent && !t->lost_announced && !t->duplicates && !t->reorders &&
         !t->protocol_errors;
}

Test(resume, the_ack_anchors_the_numbering) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  cr_assert_not(rc_resume_can_ask(&s));
  rc_resume_connecting(&s, false);
  ack(&s, &t, 120, EP, -1, 1);
  cr_assert(rc_resume_can_ask(&s));
  cr_assert_str_eq(s.epoch, EP);
  cr_assert_eq(s.first, 121);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 121), RC_RESUME_NEXT);
  msgs(&s, &t, 122, 200);
  cr_assert(clean(&t));
  cr_assert_eq(t.received, 80);
  cr_assert_eq(s.last, 200);
}

Test(resume, a_first_message_past_the_ack_is_silent_loss) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 10, EP, -1, 1);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 14), RC_RESUME_SKIPPED);
  cr_assert_eq(t.lost_silent, 3);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 15), RC_RESUME_NEXT);
}

Test(resume, duplicates_and_late_messages) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 149);
  msgs(&s, &t, 151, 200); /* 150 skipped: silent, until it comes late */
  cr_assert_eq(t.lost_silent, 1);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 150), RC_RESUME_LATE,
               "50 behind, across the window's word boundary");
  cr_assert_eq(rc_resume_on_msg(&s, &t, 150), RC_RESUME_DUPLICATE, "and again: now a duplicate");
  cr_assert_eq(rc_resume_on_msg(&s, &t, 200), RC_RESUME_DUPLICATE);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 100), RC_RESUME_DUPLICATE,
               "100 behind, in the window's upper word");
  cr_assert_eq(rc_resume_on_msg(&s, &t, 3), RC_RESUME_DUPLICATE,
               "past the window: taken for a duplicate");
  cr_assert_eq(t.reorders, 1);
  cr_assert_eq(t.duplicates, 4);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 201), RC_RESUME_NEXT);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 0), RC_RESUME_LATE, "numbering starts at 1");
  cr_assert_eq(t.protocol_errors, 1);
}

Test(resume, a_recovered_resume_replays_to_the_seam) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 100, EP, -1, 1);
  msgs(&s, &t, 101, 120);
  /* Dropped; since=a:EP:120; the topic is at 130 by now. */
  cr_assert(rc_resume_can_ask(&s));
  cr_assert_eq(s.last, 120, "the number since= asks from");
  rc_resume_connecting(&s, true);
  ack(&s, &t, 130, EP, 1, 2);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 121), RC_RESUME_REPLAYED);
  msgs(&s, &t, 122, 130);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 131), RC_RESUME_NEXT, "live from ack.seq + 1");
  msgs(&s, &t, 132, 140);
  cr_assert(clean(&t));
  cr_assert_eq(t.replayed, 10);
  cr_assert_eq(t.recovered, 1);
  cr_assert_eq(t.received, 40);
}

Test(resume, a_duplicate_at_the_seam_is_caught) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 20);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 25, EP, 1, 2);
  msgs(&s, &t, 20, 25); /* replay began one early */
  msgs(&s, &t, 25, 30); /* and live repeated the last replayed one */
  cr_assert_eq(t.duplicates, 2);
  cr_assert_eq(t.lost_silent, 0);
  cr_assert_eq(t.reorders, 0);
}

Test(resume, a_resume_the_server_cannot_serve_is_announced_loss) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 100, EP, -1, 1);
  msgs(&s, &t, 101, 120);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 340, EP, 0, 2);
  cr_assert_eq(s.last, 120, "last moves with the gap message, not the ack");
  rc_resume_on_gap(&s, &t, 121, 340, EP, strlen(EP), false);
  cr_assert_eq(t.lost_announced, 220);
  cr_assert_eq(t.gap_messages, 1);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 341), RC_RESUME_NEXT);
  cr_assert_eq(t.lost_silent, 0);
  cr_assert_eq(t.duplicates, 0);
  cr_assert_eq(t.not_recovered, 1);
  cr_assert_eq(t.protocol_errors, 0);
}

Test(resume, a_gap_that_announces_less_than_the_ack_skipped) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 10);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 50, EP, 0, 2);
  rc_resume_on_gap(&s, &t, 11, 40, EP, strlen(EP), false);
  cr_assert_eq(t.lost_announced, 30);
  cr_assert_eq(t.lost_silent, 10, "41..50: the ack skipped them, no gap said so");
  cr_assert_eq(rc_resume_on_msg(&s, &t, 51), RC_RESUME_NEXT);
}

Test(resume, no_gap_after_an_unrecovered_ack_is_a_protocol_error) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 10);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 30, EP, 0, 2);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 31), RC_RESUME_NEXT);
  cr_assert_eq(t.protocol_errors, 1);
  cr_assert_eq(t.lost_silent, 20);
}

Test(resume, a_drop_before_the_gap_asks_again_from_the_same_number) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 10);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 30, EP, 0, 2);
  rc_resume_connecting(&s, true); /* dropped before the gap came */
  cr_assert_eq(s.last, 10);
  ack(&s, &t, 35, EP, 0, 3);
  rc_resume_on_gap(&s, &t, 11, 35, EP, strlen(EP), false);
  msgs(&s, &t, 36, 40);
  cr_assert_eq(t.lost_announced, 25);
  cr_assert_eq(t.lost_silent, 0);
  cr_assert_eq(t.protocol_errors, 0);
}

Test(resume, a_new_epoch_starts_a_new_numbering) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 500);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 7, "0000000000000002", 0, 2); /* the server restarted */
  rc_resume_on_gap(&s, &t, 501, 800, "0000000000000002", 16, false);
  cr_assert_eq(t.lost_announced, 300,
               "whatever numbering the gap names, it is this subscriber's loss");
  cr_assert_eq(rc_resume_on_msg(&s, &t, 8), RC_RESUME_NEXT);
  cr_assert_str_eq(s.epoch, "0000000000000002");
  cr_assert_eq(t.epoch_changes, 1);
  cr_assert_eq(t.lost_silent, 0);
  cr_assert_eq(t.duplicates, 0);
  cr_assert_eq(t.reorders, 0);
  cr_assert_eq(t.protocol_errors, 0);
}

Test(resume, a_recovered_ack_in_another_epoch_is_a_protocol_error) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 5);
  rc_resume_connecting(&s, true);
  ack(&s, &t, 3, "ffff", 1, 2);
  cr_assert_eq(t.protocol_errors, 1);
  cr_assert_eq(t.epoch_changes, 1);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 4), RC_RESUME_NEXT,
               "numbering follows the server's from there");
}

Test(resume, a_message_before_its_ack) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 5);
  rc_resume_connecting(&s, true);
  rc_resume_on_msg(&s, &t, 6);
  cr_assert_eq(t.protocol_errors, 1);
}

Test(resume, a_server_without_acks_is_followed_from_its_first_message) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 57), RC_RESUME_NEXT);
  msgs(&s, &t, 58, 60);
  cr_assert_not(rc_resume_can_ask(&s), "no epoch: nothing to resume from");
  rc_resume_connecting(&s, false);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 90), RC_RESUME_NEXT, "a plain reconnect starts again");
  cr_assert(clean(&t));
}

Test(resume, a_plain_reconnect_resumes_nothing) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 5);
  rc_resume_connecting(&s, false);
  ack(&s, &t, 50, EP, -1, 2);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 51), RC_RESUME_NEXT);
  cr_assert(clean(&t));
  cr_assert_eq(t.recovered + t.not_recovered, 0);
}

Test(resume, conflation_and_heartbeats) {
  struct rc_resume_stream s = {0};
  struct rc_resume_totals t = {0};
  rc_resume_connecting(&s, false);
  ack(&s, &t, 0, EP, -1, 1);
  msgs(&s, &t, 1, 10);
  rc_resume_on_gap(&s, &t, 8, 20, EP, strlen(EP), true);
  cr_assert_eq(t.lost_announced, 10, "only 11..20 are news");
  cr_assert_eq(t.conflated_gaps, 1);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 21), RC_RESUME_NEXT);
  rc_resume_on_hb(&s, &t, 21);
  rc_resume_on_hb(&s, &t, 19);
  cr_assert_eq(t.lost_silent, 0);
  rc_resume_on_hb(&s, &t, 24);
  cr_assert_eq(t.lost_silent, 3, "the heartbeat says 22..24 exist");
  cr_assert_eq(t.heartbeats, 3);
  cr_assert_eq(rc_resume_on_msg(&s, &t, 23), RC_RESUME_LATE);
}

Test(resume, the_topics_end_reveals_tail_loss) {
  struct rc_resume_stream a = {0}, b = {0}, c = {0}, stale = {0}, never = {0};
  struct rc_resume_totals t = {0};
  struct rc_resume_stream *all[] = {&a, &b, &c, &stale, &never};
  rc_resume_connecting(&stale, false);
  ack(&stale, &t, 0, "old", -1, 1);
  msgs(&stale, &t, 1, 90);
  rc_resume_connecting(&a, false);
  ack(&a, &t, 0, EP, -1, 5);
  msgs(&a, &t, 1, 50);
  rc_resume_connecting(&b, false);
  ack(&b, &t, 10, EP, -1, 6);
  msgs(&b, &t, 11, 47);
  rc_resume_connecting(&c, false);
  ack(&c, &t, 20, EP, -1, 4);
  memset(&t, 0, sizeof t);
  cr_assert_eq(rc_resume_topic_end(all, 5, &t), 50,
               "the highest in the newest epoch, not the stale 90");
  cr_assert_eq(t.lost_silent, 3 + 30, "b lacks 48..50, c 21..50");
  cr_assert_eq(t.protocol_errors, 1, "a stream left in an old epoch");
  cr_assert_eq(rc_resume_topic_end(all, 0, &t), 0);
}

/* ---- since= and "since" ---------------------------------------------------------- */

Test(since, the_query_spelling) {
  struct rc_since items[] = {{"a", EP, 120}, {"room:42/x,y", "e2", 0}};
  char out[256];
  ssize_t n = rc_resume_since_query(out, sizeof out, items, 2);
  cr_assert_str_eq(out, "since=a:" EP ":120,room:42/x%2Cy:e2:0");
  cr_assert_eq(n, (ssize_t)strlen(out));
  cr_assert_eq(rc_resume_since_query(out, 10, items, 2), -ENOSPC);
}

Test(since, added_to_a_path) {
  struct rc_since one = {"bench.3", EP, 7};
  char out[256];
  rc_resume_path_with_since(out, sizeof out, "/ws?topics=bench.3", &one, 1);
  cr_assert_str_eq(out, "/ws?topics=bench.3&since=bench.3:" EP ":7");
  rc_resume_path_with_since(out, sizeof out, "/ws", &one, 1);
  cr_assert_str_eq(out, "/ws?since=bench.3:" EP ":7");
  rc_resume_path_with_since(out, sizeof out, "/ws?", &one, 1);
  cr_assert_str_eq(out, "/ws?since=bench.3:" EP ":7");
  cr_assert_eq(rc_resume_path_with_since(out, 20, "/ws?topics=bench.3", &one, 1), -ENOSPC);
}

Test(since, the_command_spelling) {
  struct rc_since items[] = {{"a", EP, 120}, {"q\"b", "e2", 18446744073709551615ull}};
  char out[512];
  rc_resume_since_json(out, sizeof out, items, 2);
  cr_assert_str_eq(out, "\"since\":{\"a\":{\"epoch\":\"" EP "\",\"seq\":120},"
                        "\"q\\\"b\":{\"epoch\":\"e2\",\"seq\":18446744073709551615}}");
  const char *cmd = "{\"op\":\"subscribe\",\"topics\":[\"a\"],\"id\":3} \n";
  ssize_t n = rc_resume_command_with_since(out, sizeof out, cmd, strlen(cmd), items, 1);
  cr_assert_str_eq(
      out, "{\"op\":\"subscribe\",\"topics\":[\"a\"],\"id\":3,\"since\":{\"a\":{\"epoch\":\"" EP
           "\",\"seq\":120}}} \n");
  cr_assert_eq(n, (ssize_t)strlen(out));
  struct rc_env e;
  cr_assert_gt(rc_env_parse((const uint8_t *)out, (size_t)n, &e), 0, "still one JSON object");
  rc_resume_command_with_since(out, sizeof out, "{ }", 3, items, 1);
  cr_assert_str_eq(out, "{ \"since\":{\"a\":{\"epoch\":\"" EP "\",\"seq\":120}}}");
  cr_assert_eq(rc_resume_command_with_since(out, sizeof out, "[1]", 3, items, 1), -EINVAL);
  cr_assert_eq(rc_resume_command_with_since(out, sizeof out, "}", 1, items, 1), -EINVAL);
  cr_assert_eq(rc_resume_command_with_since(out, 30, cmd, strlen(cmd), items, 1), -ENOSPC);
}
