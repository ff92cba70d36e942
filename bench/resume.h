/* SPDX-License-Identifier: MIT */
/* One subscriber's view of one topic on the server's numbering, across its
 * reconnects: the epoch and the last sequence number it has accounted for
 * (what it asks `since=` from), and whether every number from the first
 * expected to the topic's last came exactly once, in order. Loss is told
 * apart as announced (a gap message) or silent (a number skipped, or missing
 * at the end). And the two spellings of a resume request: the URL's since=
 * and the subscribe command's "since" member. Pure: no I/O, no allocation. */
#ifndef RINGCAST_BENCH_RESUME_H
#define RINGCAST_BENCH_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RC_RESUME_EPOCH_MAX 64 /* longer epochs are refused: the stream cannot resume */
#define RC_RESUME_WINDOW 128   /* numbers behind the last one told apart as duplicate or late */

struct rc_resume_stream {
  char epoch[RC_RESUME_EPOCH_MAX + 1]; /* "": none known (no ack with an epoch yet) */
  uint64_t last;       /* the last number accounted for: received, or announced lost */
  uint64_t first;      /* the first number expected after the first subscription (0: none yet) */
  uint64_t replay_end; /* numbers up to it came from history (a recovered resume) */
  uint64_t rebase_to;  /* a "recovered":false ack's number: live messages start after it */
  uint64_t acked_at; /* the caller's clock at the latest ack: which stream knows the newest epoch */
  uint64_t window[RC_RESUME_WINDOW / 64]; /* bit i: last - i was received */
  uint64_t received;
  bool anchored;     /* numbering known: an ack, or a first message from a server without acks */
  bool awaiting_ack; /* a connection began and its ack has not come */
  bool asked_since;  /* that connection asked to resume */
  bool expect_gap;   /* a "recovered":false ack came; its gap message has not */
};

struct rc_resume_totals {
  uint64_t received;       /* messages, replayed ones included */
  uint64_t replayed;       /* of which from history after a recovered resume */
  uint64_t lost_silent;    /* numbers skipped with no gap message, or missing at the end */
  uint64_t lost_announced; /* numbers gap messages said were lost */
  uint64_t gap_messages, conflated_gaps;
  uint64_t duplicates, reorders;
  uint64_t acks, recovered, not_recovered;
  /* Resumes answered in another epoch: the server forgot the topic (a restart,
   * the topic let go). What the old epoch held past last is lost, how much no
   * message can say: such loss shows only in a numbering of the caller's own. */
  uint64_t epoch_changes;
  uint64_t heartbeats;
  /* The server broke the protocol: a message before its topic's ack, a
   * recovered ack in another epoch, a "recovered":false ack with no gap, an
   * error reply. */
  uint64_t protocol_errors;
};

/* A connection for this stream begins. asked_since: its request carried
 * since= (see rc_resume_can_ask); otherwise the stream starts again from
 * whatever the new subscription's ack says (a plain reconnect resumes nothing). */
void rc_resume_connecting(struct rc_resume_stream *s, bool asked_since);
/* Whether the stream knows enough (an epoch and a number) to ask since=. */
bool rc_resume_can_ask(const struct rc_resume_stream *s);

/* The subscription's ack: seq is the topic's number at subscription, epoch its
 * epoch, recovered -1 (absent), 0 or 1; now is the caller's clock (acked_at). */
void rc_resume_on_ack(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t seq,
                      const char *epoch, size_t epoch_len, int recovered, uint64_t now);

enum rc_resume_result {
  RC_RESUME_NEXT,      /* the expected number */
  RC_RESUME_REPLAYED,  /* the expected number, from history */
  RC_RESUME_SKIPPED,   /* past the expected number: the ones between are silently lost */
  RC_RESUME_DUPLICATE, /* received before */
  RC_RESUME_LATE,      /* behind the last one and never received: a reorder */
};
enum rc_resume_result rc_resume_on_msg(struct rc_resume_stream *s, struct rc_resume_totals *t,
                                       uint64_t seq);
/* A gap message: from..to are lost. conflated: dropped for a slow reader
 * rather than a resume the server could not serve. epoch may be NULL. */
void rc_resume_on_gap(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t from,
                      uint64_t to, const char *epoch, size_t epoch_len, bool conflated);
/* A heartbeat: the topic's number is seq; anything between last and it that
 * did not come is silently lost. */
void rc_resume_on_hb(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t seq);

/* At the end, after every stream of one topic has drained: the topic's last
 * number is the highest any of them reached in the newest epoch (that of the
 * latest ack); what each stream in that epoch lacks of it is silent loss, and
 * a stream still in another epoch is a protocol error. Adds both to t; returns
 * the topic's last number. */
uint64_t rc_resume_topic_end(struct rc_resume_stream *const *streams, size_t n,
                             struct rc_resume_totals *t);

void rc_resume_totals_add(struct rc_resume_totals *into, const struct rc_resume_totals *from);
/* Loss of both kinds. */
uint64_t rc_resume_lost(const struct rc_resume_totals *t);

/* One topic's resume point. */
struct rc_since {
  const char *topic;
  const char *epoch;
  uint64_t seq;
};

/* "since=a:EPOCH:120,b:EPOCH:7" (topic names percent-encoded where a query
 * needs it; ':' and '/' stay). Returns the length written (NUL-terminated), or
 * -ENOSPC. */
ssize_t rc_resume_since_query(char *out, size_t size, const struct rc_since *items, size_t n);
/* "\"since\":{\"a\":{\"epoch\":\"EPOCH\",\"seq\":120},...}"; length or -ENOSPC. */
ssize_t rc_resume_since_json(char *out, size_t size, const struct rc_since *items, size_t n);
/* The request path with since= added after its query ('&') or as one ('?'). */
ssize_t rc_resume_path_with_since(char *out, size_t size, const char *path,
                                  const struct rc_since *items, size_t n);
/* A subscribe command (a JSON object) with the "since" member added before its
 * closing brace. Length, -EINVAL when cmd does not end in '}', or -ENOSPC. */
ssize_t rc_resume_command_with_since(char *out, size_t size, const char *cmd, size_t cmd_len,
                                     const struct rc_since *items, size_t n);

#endif
