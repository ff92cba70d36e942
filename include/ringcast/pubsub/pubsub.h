/* SPDX-License-Identifier: MIT */
/* The pub/sub engine: routing a publish to its topic's home shard, stamping the
 * sequence number, encoding the message once, delivering it to this shard's
 * subscribers and batching it to every other interested shard, plus the
 * subscription bookkeeping behind it.
 *
 * It knows subscribers only as struct rc_subscriber handles and hands them
 * messages through a delivery callback; it wakes other shards through a callback
 * too, and never touches connections or the ring. One struct rc_pubsub_shard per
 * shard; every function taking one runs on that shard's thread. */
#ifndef RINGCAST_PUBSUB_PUBSUB_H
#define RINGCAST_PUBSUB_PUBSUB_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringcast/pubsub/subscription.h"
#include "ringcast/pubsub/topic.h"
#include "ringcast/util/budget.h"
#include "ringcast/util/config.h"
#include "ringcast/util/frame.h"
#include "ringcast/util/hist.h"
#include "ringcast/util/mpsc.h"


/* Bytes of an acknowledgement note carried with a forwarded publish. */
#define RC_PUBSUB_NOTE_MAX 1024

/* Where a publish came from, so its result can be reported back to the shard
 * that asked, after the home shard stamped it. Opaque to pub/sub. */
struct rc_publish_origin {
  uint64_t token;        /* the caller's, e.g. a connection's slot and generation */
  const void *note;      /* copied, e.g. the command's id; at most RC_PUBSUB_NOTE_MAX */
  size_t note_len;
};

/* The outcome of a forwarded publish, on the origin shard. */
struct rc_publish_result {
  uint64_t token;
  const char *topic;     /* its name */
  uint64_t seq;          /* valid when err == 0 */
  int err;               /* 0 or a negative errno */
  const void *note;
  size_t note_len;
};

/* How a subscription asks to start (rc_pubsub_subscribe). */
struct rc_join_request {
  uint64_t token;        /* the subscriber's, handed back to cb->resolve */
  bool has_since;        /* resume after (since_epoch, since_seq) */
  bool snapshot;         /* send the topic's latest message first */
  uint64_t since_epoch, since_seq;
  uint64_t max_replay_bytes; /* a replay larger than this is withheld; 0: no bound */
  const void *note;      /* copied, e.g. the command's id; at most RC_PUBSUB_NOTE_MAX */
  size_t note_len;
};

/* How the home shard answered: where the subscription starts and what comes
 * before its live messages. */
enum rc_join_outcome {
  RC_JOIN_LIVE = 0,      /* no resume asked */
  RC_JOIN_RECOVERED,     /* since+1..seq follow from history */
  RC_JOIN_GAP_HISTORY,   /* part of gap_from..gap_to is no longer in history */
  RC_JOIN_GAP_EPOCH,     /* the epoch differs: the server forgot what came before */
  RC_JOIN_AHEAD,         /* since is past the topic's seq in this epoch */
};

struct rc_join_result {
  bool live;             /* false: the subscription ended before it went live
                          * (nothing follows; told only for the caller's bookkeeping) */
  struct rc_topic *topic;
  uint64_t seq;          /* the last message before the live ones */
  uint64_t epoch;
  enum rc_join_outcome outcome;
  uint64_t gap_from, gap_to;  /* GAP_*: what the subscriber will not get */
  bool snapshot_asked;
  bool snapshot;         /* the latest message (seq) follows as a snapshot */
  uint32_t replay;       /* messages that follow before the live ones */
  uint64_t replay_bytes; /* their envelope bytes */
  bool replay_withheld;  /* past max_replay_bytes: counted, none follow */
  const void *note;
  size_t note_len;
};

/* Bounds on what history keeps (all 0: none) and the heartbeat period. */
struct rc_history_config {
  uint32_t msgs;         /* per topic, --history */
  uint64_t bytes;        /* per topic, --history-bytes; 0: no bound */
  uint32_t ttl_s;        /* --history-ttl; 0: no bound */
  uint64_t memory;       /* all topics of all shards; 0: no bound */
  uint32_t heartbeat_s;  /* --topic-heartbeat; 0: off */
};

struct rc_pubsub_callbacks {
  void *ctx;
  /* The subscriber a join request's token names, or NULL when it is gone. */
  struct rc_subscriber *(*resolve)(void *ctx, uint64_t token);
  /* A pending subscription of s is live from now: messages after r->seq follow.
   * Returns whether to deliver the r->replay messages that come next (through
   * deliver); false: the callee announced what it does instead. Also called,
   * with r->live false, when the subscription ended while pending. */
  bool (*joined)(void *ctx, struct rc_subscriber *s, const struct rc_join_result *r);
  /* Queue the message of topic tp held by h to s; take a reference with
   * rc_hold_ref if kept. Must not change any subscription (closing is fine if
   * deferred). */
  void (*deliver)(void *ctx, struct rc_subscriber *s, struct rc_topic *tp, struct rc_hold *h);
  /* A publish made with an origin on this shard was stamped (or failed) at its
   * home shard. */
  void (*published)(void *ctx, const struct rc_publish_result *r);
  /* Wake the shards in mask (bit per shard id): they have new inbox items.
   * Called after this shard's pushes; the callee orders its check of whether they
   * sleep after them. */
  void (*wake)(void *ctx, uint64_t mask);
  /* Scale-out (both NULL: this node numbers its topics itself). With them, a
   * home shard stamps nothing on its own: each publish goes to remote_publish
   * (0, or a negative errno: it fails now with that) and its outcome comes back
   * through rc_pubsub_remote_done(ticket); messages are stamped as the
   * sequencer hands them back (rc_pubsub_remote_message), in its order and
   * numbering. A subscription to a topic the home does not follow waits: the
   * home calls remote_interest(tp, true) and answers it once the remote calls
   * rc_pubsub_remote_synced; remote_interest(tp, false) once no subscriber of
   * tp is left on this node (the home then forgets tp's history). */
  int (*remote_publish)(void *ctx, struct rc_topic *tp, const uint8_t *payload, size_t len,
                        uint64_t ticket);
  void (*remote_interest)(void *ctx, struct rc_topic *tp, bool on);
  /* Wildcards with scale-out (all three NULL: wildcards stay on this node).
   * remote_patterns, on shard 0 only: the node's patterns changed; p/len is
   * the whole set now ('$' ones left out, they stay local), the texts valid
   * during the call only. */
  void (*remote_patterns)(void *ctx, const char *const *p, const size_t *len, size_t n);
  /* On tp's home: a live message the remote received through a pattern
   * subscription (rc_pubsub_remote_route). tp->remote_pattern set: the home
   * follows tp for its wildcards only, and the remote follows it through its
   * pattern subscription rather than tp's own channel; when those wildcards
   * go and exact subscribers stay, remote_interest(tp, true) is called again
   * to switch to the channel. */
  void (*remote_arrived)(void *ctx, struct rc_topic *tp, uint64_t epoch, uint64_t seq,
                         const uint8_t *payload, size_t len);
  /* On tp's home: messages routed to it from seq `from` on may have been
   * dropped on the way (limits): the remote syncs tp to refill them. A topic
   * not followed yet is followed for its wildcards from `from` (as by
   * remote_arrived). */
  void (*remote_lost)(void *ctx, struct rc_topic *tp, uint64_t from);
  /* On tp's home, at a tick: tp is followed through its own channel, but only
   * wildcards want it now. Returns whether the remote let go of the channel
   * (its pattern subscription brings the messages): tp->remote_pattern is set
   * then. */
  bool (*remote_via_patterns)(void *ctx, struct rc_topic *tp);
};

struct rc_pubsub_stats {
  _Atomic uint64_t published;         /* stamped here, as home shard */
  _Atomic uint64_t publish_failed;    /* lost to out of memory at the home shard */
  _Atomic uint64_t batches_in;        /* fan-out batches received from other shards */
  _Atomic uint64_t refused_backlog;   /* publishes refused here: home's backlog full */
  _Atomic uint64_t refused_memory;    /* publishes refused here: memory budget spent */
  _Atomic uint64_t joins;             /* subscriptions answered here, as home */
  _Atomic uint64_t resumes[5];        /* by enum rc_join_outcome (LIVE unused) */
  _Atomic uint64_t snapshots;
  _Atomic uint64_t replayed;          /* messages sent from history to subscribers */
  _Atomic uint64_t heartbeats;        /* heartbeat frames made here, as home */
  _Atomic uint64_t history_bytes;     /* held in this shard's histories */
  _Atomic uint64_t history_msgs;
  _Atomic uint64_t history_cut[4];    /* messages dropped: count, bytes, age, memory */
  _Atomic uint64_t patterns_refused;  /* wildcard subscriptions refused here by a limit */
  _Atomic uint64_t pattern_scans;     /* topic-table scans for wildcards (new groups, sweeps) */
  struct rc_hist message_size;        /* payload bytes of publishes stamped here (size scale) */
  /* Scale-out, as home shard: messages the sequencer handed back twice (dropped),
   * messages filled from its history after a hole, and holes it could not fill
   * (each announced to subscribers as a gap). */
  _Atomic uint64_t remote_duplicates;
  _Atomic uint64_t remote_refilled;
  _Atomic uint64_t remote_gaps;
  _Atomic uint64_t remote_epochs;     /* the sequencer's epoch changed under live subscribers */
  /* The inbox: items this shard pushed to each shard's inbox, and items it took
   * from its own, each written by one thread only, so a shard's depth is the
   * sum of every shard's pushed[it] less its popped (rc_pubsub_inbox_depth). */
  _Atomic uint64_t inbox_pushed[RC_MAX_SHARDS];
  _Atomic uint64_t inbox_popped;
  /* How long the item this shard last took from its inbox had waited there (the
   * oldest one then: the inbox is FIFO); 0 once the inbox is found empty. */
  _Atomic uint64_t inbox_age_ns;
  _Atomic uint64_t turn_ns;           /* the clock of this shard's latest loop turn */
};

/* Bounds on what publishers can make the engine hold. */
struct rc_pubsub_limits {
  uint64_t max_backlog;       /* bytes of forwarded publishes waiting in one shard's inbox; 0: none */
  struct rc_budget *budget;   /* charged for those, batches and encoded messages; NULL: none */
  struct rc_history_config history;
  uint32_t max_patterns;      /* distinct wildcard patterns subscribed at once; 0: wildcards off */
};

/* One publish of a batch (rc_pubsub_publish_many). */
struct rc_publish_item {
  struct rc_topic *topic;
  const uint8_t *payload;
  size_t len;
};

struct rc_pubsub;
struct rc_pubsub_shard;

/* Main thread, before any shard runs. */
struct rc_pubsub *rc_pubsub_create(unsigned nshards, uint32_t max_topics,
                                   const struct rc_pubsub_limits *lim);
/* Frees everything; call rc_pubsub_shard_destroy on every shard first. */
void rc_pubsub_destroy(struct rc_pubsub *ps);
struct rc_topic_table *rc_pubsub_topics(struct rc_pubsub *ps);
/* Main thread, before the shard's thread starts: the shard's half of the engine.
 * arena is the shard's frame arena and must outlive it. 0 or -ENOMEM. */
int rc_pubsub_shard_create(struct rc_pubsub *ps, unsigned id, struct rc_frame_arena *arena,
                           const struct rc_pubsub_callbacks *cb, struct rc_pubsub_shard **out);
/* Once every shard has stopped: frees what is still queued, then the shard. */
void rc_pubsub_shard_destroy(struct rc_pubsub_shard *pss);
const struct rc_pubsub_stats *rc_pubsub_shard_stats(const struct rc_pubsub *ps, unsigned id);
/* Any thread: bytes of forwarded publishes waiting in shard id's inbox. */
uint64_t rc_pubsub_backlog(const struct rc_pubsub *ps, unsigned id);
/* Any thread: items waiting in shard id's inbox (pushed, not yet taken; a
 * moment's skew between the counters reads as 0, never as negative). */
uint64_t rc_pubsub_inbox_depth(const struct rc_pubsub *ps, unsigned id);
/* Any thread: the age of the oldest item in shard id's inbox as far as it is
 * known at now_ns (CLOCK_MONOTONIC): the wait of the item the shard last took,
 * or, while items wait and the shard has run no loop turn for longer, the time
 * since its last turn (an upper bound that keeps growing while a shard is stuck,
 * where the last item's wait would stand still). */
uint64_t rc_pubsub_inbox_age_ns(const struct rc_pubsub *ps, unsigned id, uint64_t now_ns);

/* Publishes a copy of payload on tp. Returns the sequence number (> 0) when this
 * shard is the topic's home and stamped it now; 0 when it was forwarded to the
 * home shard (with an origin, the result comes back through cb->published).
 * Nothing was published on -EAGAIN (the home shard's backlog is at
 * max_backlog), -ENOBUFS (the memory budget is spent) or -ENOMEM. A forwarded
 * publish is accepted: the home shard publishes it whatever the budget says by
 * then. */
int64_t rc_pubsub_publish(struct rc_pubsub_shard *pss, struct rc_topic *tp,
                          const uint8_t *payload, size_t len,
                          const struct rc_publish_origin *origin);
/* Publishes n messages, in order, all or none as far as the limits go: returns
 * n, or -EAGAIN / -ENOBUFS with nothing published. Only an allocation failure
 * part-way stops it after the first k: k (> 0), or -ENOMEM when k is 0. With
 * an origin (without a note), each forwarded message's outcome comes back
 * through cb->published (with a sequencer: every one of them). */
ssize_t rc_pubsub_publish_many(struct rc_pubsub_shard *pss, const struct rc_publish_item *items,
                               size_t n, const struct rc_publish_origin *origin);
/* Subscribes s to tp, pending until the topic's home shard answers: then
 * cb->joined says where it starts (its seq and epoch, the resume's outcome),
 * any replayed messages follow through cb->deliver, then the live ones, with
 * nothing missed or repeated at the seam. 0, -EEXIST (already), -EMLINK (s
 * holds `limit` topics), -ENOBUFS (over the memory budget), -ENOMEM. The
 * subscription holds its own reference on tp (the caller's stays the caller's). */
int rc_pubsub_subscribe(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                        struct rc_topic *tp, unsigned limit, const struct rc_join_request *req);
/* Conflation without a cost per message: a parked subscription (s's entry i, a
 * live exact one) is taken out of its topic's delivery list, and the shard keeps
 * the topic's newest message for it instead (rc_pubsub_newest, NULL until one
 * comes after the park); unparked, it is delivered to again. Nothing is lost at
 * either seam: rc_pubsub_last_seq is the last message the list was handed. */
void rc_pubsub_park(struct rc_pubsub_shard *pss, struct rc_subscriber *s, uint16_t i);
void rc_pubsub_unpark(struct rc_pubsub_shard *pss, struct rc_subscriber *s, uint16_t i);
struct rc_hold *rc_pubsub_newest(struct rc_pubsub_shard *pss, const struct rc_topic *tp);
uint64_t rc_pubsub_last_seq(struct rc_pubsub_shard *pss, const struct rc_topic *tp);
/* 0 or -ENOENT. */
int rc_pubsub_unsubscribe(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                          struct rc_topic *tp);
void rc_pubsub_unsubscribe_all(struct rc_pubsub_shard *pss, struct rc_subscriber *s);
/* Wildcards. A pattern subscription (proto/topic_pattern.h) joins this shard's
 * group for the pattern; a new group registers its pattern globally, then scans
 * the topic table once for the topics it matches, and topics created later are
 * matched as they are created, so no message is ever matched against patterns.
 * Live at once (no join round trip, no seq: deliveries name their topics).
 * 0, -EINVAL (not a valid pattern), -EEXIST (already), -EMLINK (s holds
 * `limit` subscriptions or `pattern_limit` patterns), -ENOSPC (--max-patterns
 * distinct patterns live, or wildcards off), -ENOBUFS (memory budget), -ENOMEM.
 * The caller checks overlaps (rc_subscription_overlap). */
int rc_pubsub_subscribe_pattern(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                                const char *p, size_t len, unsigned limit, unsigned pattern_limit);
/* 0 or -ENOENT. */
int rc_pubsub_unsubscribe_pattern(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                                  const char *p, size_t len);
/* Any thread: distinct patterns subscribed now, all shards together. */
size_t rc_pubsub_pattern_count(struct rc_pubsub *ps);
/* Scale-out (cb->remote_*), all on tp's home shard. A publish handed to
 * remote_publish ended: res is its seq (> 0) or a negative errno. */
void rc_pubsub_remote_done(struct rc_pubsub_shard *pss, uint64_t ticket, int64_t res);
/* One message of the sequencer's history. */
struct rc_remote_entry {
  uint64_t seq;
  const uint8_t *payload;
  size_t len;
};
/* Where tp stands at the sequencer (epoch, last seq) with the newest messages of
 * its history, oldest first (entries up to seq): after remote_interest(tp, true),
 * or again whenever the remote lost messages (its link went down, a hole). The
 * home fills what it misses from the entries, announces as a gap what they do
 * not cover to subscribers already live, then answers waiting subscriptions.
 * A topic followed only now keeps the entries as history without delivering
 * them, except from live_from on (when not 0: the seq at which a wildcard met
 * it, remote_arrived), which its pattern subscribers get live. */
void rc_pubsub_remote_synced(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t epoch,
                             uint64_t seq, const struct rc_remote_entry *e, size_t n,
                             uint64_t live_from);
/* A live message the remote received through a pattern subscription, on any
 * shard, for topic name[0..len): handed to the topic's home (created when new,
 * so its wildcards pin it), where cb->remote_arrived gets it. 0; -ENOENT no
 * wildcard of this node matches the name (a broader remote pattern, or one
 * that just went), or it is invalid or reserved; -ENOSPC (--max-topics: not
 * kept, this node's wildcards miss the topic); -EAGAIN (the home's
 * --max-backlog), -ENOBUFS, -ENOMEM: dropped, and the home has the remote
 * refill it (cb->remote_lost). */
int rc_pubsub_remote_route(struct rc_pubsub_shard *pss, const char *name, size_t len,
                           uint64_t epoch, uint64_t seq, const uint8_t *payload, size_t plen);
/* A live message from the sequencer: 0 stamped and delivered; 1 a duplicate
 * (dropped); -ERANGE it is ahead of the next one expected (the remote fills the
 * hole through rc_pubsub_remote_synced, then hands it again); -ESTALE another
 * epoch (likewise); -ENOENT tp is not followed (dropped); -ENOMEM. */
int rc_pubsub_remote_message(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t epoch,
                             uint64_t seq, const uint8_t *payload, size_t len);

/* Handles the shard's inbox (publishes to stamp, batches to deliver, results to
 * report) up to about max_work units (a publish or result is one, a batch one per
 * message) and max_bytes of messages for local subscribers, so a flooded inbox is
 * taken in slices between the loop's other work, sends included. A batch may be
 * left part-way. Returns whether work remains. */
bool rc_pubsub_drain(struct rc_pubsub_shard *pss, unsigned max_work, size_t max_bytes);
/* The shard's clock for history ages and heartbeats; each turn. */
void rc_pubsub_set_clock(struct rc_pubsub_shard *pss, uint64_t now_ms);
/* The same turn's clock in CLOCK_MONOTONIC nanoseconds: stamps publishes as
 * they are accepted (rc_frame.stamp_ns) and inbox items as they are pushed. */
void rc_pubsub_set_clock_ns(struct rc_pubsub_shard *pss, uint64_t now_ns);
/* Once a second: ages histories, sends heartbeats on quiet topics, and lets go
 * of topics with neither subscribers nor history. */
void rc_pubsub_tick(struct rc_pubsub_shard *pss);
/* Pushes this turn's batches to their shards and wakes them. */
void rc_pubsub_flush(struct rc_pubsub_shard *pss);
/* Whether the inbox holds anything, even half-pushed (seq_cst: the consumer's
 * half of the sleep handshake), or pushes to other shards wait for their
 * wake-up. */
bool rc_pubsub_has_work(struct rc_pubsub_shard *pss);

#endif
