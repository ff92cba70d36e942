/* SPDX-License-Identifier: MIT */
/* The per-message path. A publish goes to its topic's home shard, which stamps
 * the sequence number, encodes the frame once, hands it to its own subscribers and
 * adds it to one batch per other interested shard; batches travel through the
 * destination's MPSC inbox, and the destination is woken through a callback.
 * Per subscriber the cost is one delivery call; per shard, one atomic reference. */
#include "ringcast/pubsub/pubsub.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "ringcast/pubsub/message.h"
#include "ringcast/pubsub/pattern_index.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"

#define BATCH_CAP 256

/* What travels through a shard's inbox; kind says which struct embeds it. */
enum inbox_kind {
  INBOX_PUBLISH = 1,  /* struct pubreq: publish on the topic's home shard */
  INBOX_FANOUT,       /* struct batch: stamped messages to deliver here */
  INBOX_RESULT,       /* struct result: a forwarded publish's outcome */
  INBOX_UNINTEREST,   /* struct release: to the home, a shard's list of the topic emptied */
  INBOX_RELEASE,      /* struct release: back from the home, no more of its messages follow */
  INBOX_JOIN,         /* struct join: to the home, a subscription waits for its start */
  INBOX_JOINED,       /* struct join: back from the home, answered */
  INBOX_ARRIVE,       /* struct arrive: to the home, a sequencer's message met by a wildcard */
};

struct inbox_item {
  struct rc_mpsc_node node;
  uint64_t stamp_ns;     /* the pushing shard's turn clock when pushed (a publish's acceptance) */
  uint8_t kind;
};

struct pubreq {
  struct inbox_item item;
  struct rc_topic *topic;
  uint32_t len;
  uint32_t charge;       /* bytes held against the home's backlog and the budget */
  uint16_t origin_shard;
  uint16_t note_len;
  bool has_origin;
  uint64_t token;
  uint8_t data[];        /* payload, then the note */
};

struct result {
  struct inbox_item item;
  struct rc_publish_result r;
  uint8_t note[];        /* the note, then the topic's name */
};

/* The round trip that lets a shard drop its hold on a topic: every fan-out
 * batch the home shard sent it with the topic is ahead of the answer. */
struct release {
  struct inbox_item item;
  struct rc_topic *topic;
  uint32_t cleared;      /* which emptying of the list this answers */
  uint16_t shard;        /* whose list */
  bool pattern;          /* a wildcard pin: the answer drops one reference, nothing else */
};

/* A subscription's way to its start and back: the home shard fills in where
 * it starts and takes a shard reference on each message to replay. Every
 * batch the home sent the subscriber's shard before it answered is ahead of
 * the answer in the inbox, and every later one behind it: that is the seam. */
struct join {
  struct inbox_item item;
  struct rc_topic *topic;      /* a reference of its own */
  uint64_t token;
  uint32_t id;                 /* the pending subscription's join id */
  uint32_t charge;
  uint16_t shard;              /* the subscriber's */
  bool has_since, snapshot;
  uint64_t since_epoch, since_seq;
  uint64_t max_replay_bytes;
  struct rc_join_result res;
  struct join *next_wait;      /* in its topic's list while the home syncs it (scale-out) */
  struct rc_frame **frames;    /* nframes of them; NULL once handed over */
  uint32_t nframes;
  uint16_t note_len;
  uint8_t note[];
};

/* A live message the remote received through a pattern subscription on
 * another shard, on its way to its topic's home (rc_pubsub_remote_route). */
struct arrive {
  struct inbox_item item;
  struct rc_topic *topic;      /* a reference of its own */
  uint64_t epoch, seq;
  uint32_t len;
  uint32_t charge;             /* held against the home's backlog and the budget */
  uint8_t data[];
};

struct batch_entry {
  struct rc_frame *frame;
  struct rc_topic *topic;
};

struct batch {
  struct inbox_item item;
  uint32_t n;
  struct batch_entry e[BATCH_CAP];
};

struct rc_pubsub_shard {
  unsigned id;
  struct rc_pubsub *ps;
  struct rc_frame_arena *arena;
  struct rc_pubsub_callbacks cb;
  struct batch *out[RC_MAX_SHARDS];
  struct batch *cur;     /* a received batch delivered up to cur_i, the rest next turn */
  uint32_t cur_i;
  uint64_t wake_mask;    /* shards pushed to since the last flush */
  struct rc_pubsub_stats stats;
  uint32_t join_seq;     /* the last join id given out */
  uint32_t now_s;        /* the loop's clock, for history and heartbeats */
  uint64_t now_ns;       /* the same, for publish stamps and inbox ages */
  /* Topics homed here that have history or may have subscribers, least
   * recently published first; each listed one is pinned (a reference). */
  struct rc_topic *tracked_head, *tracked_tail;
  /* Wildcards: this shard's groups by pattern, also listed for shutdown; the
   * generation moves (never to 0) whenever a group comes or goes, which tells
   * each topic's cached list of matching groups it is stale. */
  struct rc_pattern_index *groups;
  struct rc_pattern_group *group_list;
  uint32_t pattern_gen;
  bool pattern_sweep;    /* a group went: stale wildcard pins go at the next tick */
  alignas(64) struct rc_mpsc inbox;
  /* Bytes of forwarded publishes in the inbox: added by the shards that push
   * them, taken off here as they are published. */
  alignas(64) _Atomic uint64_t backlog;
  /* Scale-out: the set of patterns this shard is home of changed (set by any
   * shard under pat_lock, taken here before the next drain). */
  alignas(64) _Atomic bool patterns_dirty;
};

struct rc_pubsub {
  struct rc_topic_table *topics;
  struct rc_pubsub_limits lim;
  unsigned nshards;
  bool remote;           /* scale-out: a sequencer elsewhere numbers the topics */
  struct rc_pubsub_shard *shards[RC_MAX_SHARDS];
  /* Every pattern with a group on some shard; the value slot holds the mask of
   * those shards (a uint64_t in the pointer). Under pat_lock, which is taken
   * inside a topic partition's lock (creation) and never the other way round. */
  pthread_mutex_t pat_lock;
  struct rc_pattern_index *patterns;
  /* Patterns in the index, also read without the lock to skip it when 0 (a
   * creation that misses a pattern registered meanwhile is pinned by that
   * pattern's scan, which reaches the topic's partition after it). */
  _Atomic uint32_t npatterns;
};

_Static_assert(sizeof(void *) >= sizeof(uint64_t), "a shard mask fits a pattern's value slot");

/* Whether a sequencer elsewhere numbers tp: every topic with --redis, but the
 * server's own '$' topics, which describe this node alone. */
static bool remote_topic(const struct rc_pubsub *ps, const struct rc_topic *tp) {
  return ps->remote && !rc_topic_name_is_reserved(tp->name, tp->name_len);
}

static bool tracking(const struct rc_pubsub *ps) {
  if (ps->remote) return true; /* the tick lets go of topics no subscriber follows */
  return ps->lim.history.msgs || ps->lim.history.heartbeat_s;
}

static struct rc_history_limits history_limits(const struct rc_pubsub *ps) {
  return (struct rc_history_limits){.max_msgs = ps->lim.history.msgs,
                                    .max_bytes = ps->lim.history.bytes,
                                    .ttl_s = ps->lim.history.ttl_s};
}

static struct rc_history_ctx history_ctx(struct rc_pubsub_shard *pss) {
  return (struct rc_history_ctx){.arena = pss->arena,
                                 .budget = pss->ps->lim.budget,
                                 .bytes_total = &pss->stats.history_bytes,
                                 .msgs_total = &pss->stats.history_msgs,
                                 .cut = pss->stats.history_cut};
}

static void tracked_unlink(struct rc_pubsub_shard *pss, struct rc_topic *tp) {
  if (tp->tracked_prev) tp->tracked_prev->tracked_next = tp->tracked_next;
  else pss->tracked_head = tp->tracked_next;
  if (tp->tracked_next) tp->tracked_next->tracked_prev = tp->tracked_prev;
  else pss->tracked_tail = tp->tracked_prev;
  tp->tracked_prev = tp->tracked_next = NULL;
}

static void tracked_append(struct rc_pubsub_shard *pss, struct rc_topic *tp) {
  tp->tracked_prev = pss->tracked_tail;
  tp->tracked_next = NULL;
  if (pss->tracked_tail) pss->tracked_tail->tracked_next = tp;
  else pss->tracked_head = tp;
  pss->tracked_tail = tp;
}

/* Home shard: keeps tp (pinned) on its list, at the most recent end. */
static void track(struct rc_pubsub_shard *pss, struct rc_topic *tp) {
  if (tp->tracked) {
    if (pss->tracked_tail != tp) {
      tracked_unlink(pss, tp);
      tracked_append(pss, tp);
    }
    return;
  }
  rc_topic_ref(pss->ps->topics, tp);
  tp->tracked = true;
  tp->last_s = pss->now_s;
  tracked_append(pss, tp);
}

static void untrack(struct rc_pubsub_shard *pss, struct rc_topic *tp) {
  struct rc_history_ctx cx = history_ctx(pss);
  rc_history_clear(&tp->history, &cx);
  tracked_unlink(pss, tp);
  tp->tracked = false;
  rc_topic_release(pss->ps->topics, tp);
}

/* Past the history memory bound (a share of --max-memory), the topics published
 * least recently lose their history first. */
static void history_over_memory(struct rc_pubsub_shard *pss) {
  uint64_t cap = pss->ps->lim.history.memory / pss->ps->nshards;
  if (!cap) return;
  struct rc_history_ctx cx = history_ctx(pss);
  for (struct rc_topic *tp = pss->tracked_head;
       tp && rc_counter_get(&pss->stats.history_bytes) > cap; tp = tp->tracked_next)
    while (tp->history && (tp != pss->tracked_tail || tp->history->n > 1) &&
           rc_counter_get(&pss->stats.history_bytes) > cap)
      rc_history_drop_oldest(&tp->history, RC_HISTORY_CUT_MEMORY, &cx);
}

static uint64_t topic_created(void *ctx, const struct rc_topic *tp);

struct rc_pubsub *rc_pubsub_create(unsigned nshards, uint32_t max_topics,
                                   const struct rc_pubsub_limits *lim) {
  if (nshards == 0 || nshards > RC_MAX_SHARDS) return NULL;
  struct rc_pubsub *ps = calloc(1, sizeof *ps);
  if (!ps) return NULL;
  ps->nshards = nshards;
  if (lim) ps->lim = *lim;
  ps->topics = rc_topic_table_create(max_topics, nshards, ps->lim.budget);
  ps->patterns = rc_pattern_index_create();
  if (!ps->topics || !ps->patterns) {
    rc_topic_table_destroy(ps->topics);
    rc_pattern_index_destroy(ps->patterns);
    free(ps);
    return NULL;
  }
  pthread_mutex_init(&ps->pat_lock, NULL);
  rc_topic_table_set_hook(ps->topics, topic_created, ps);
  return ps;
}

void rc_pubsub_destroy(struct rc_pubsub *ps) {
  if (!ps) return;
  rc_topic_table_destroy(ps->topics);
  rc_pattern_index_destroy(ps->patterns);
  pthread_mutex_destroy(&ps->pat_lock);
  free(ps);
}

struct rc_topic_table *rc_pubsub_topics(struct rc_pubsub *ps) { return ps->topics; }

int rc_pubsub_shard_create(struct rc_pubsub *ps, unsigned id, struct rc_frame_arena *arena,
                           const struct rc_pubsub_callbacks *cb, struct rc_pubsub_shard **out) {
  struct rc_pubsub_shard *pss = aligned_alloc(64, (sizeof *pss + 63) & ~(size_t)63);
  if (!pss) return -ENOMEM;
  memset(pss, 0, sizeof *pss);
  pss->id = id;
  pss->ps = ps;
  pss->arena = arena;
  pss->cb = *cb;
  if (cb->remote_publish) ps->remote = true;
  pss->groups = rc_pattern_index_create();
  if (!pss->groups) {
    free(pss);
    return -ENOMEM;
  }
  rc_mpsc_init(&pss->inbox);
  ps->shards[id] = pss;
  *out = pss;
  return 0;
}

const struct rc_pubsub_stats *rc_pubsub_shard_stats(const struct rc_pubsub *ps, unsigned id) {
  return &ps->shards[id]->stats;
}

uint64_t rc_pubsub_backlog(const struct rc_pubsub *ps, unsigned id) {
  return atomic_load_explicit(&ps->shards[id]->backlog, memory_order_relaxed);
}

uint64_t rc_pubsub_inbox_depth(const struct rc_pubsub *ps, unsigned id) {
  /* Popped is read first: an item pushed and popped meanwhile is then counted
   * as pushed, so the skew only ever reads high, and is gone by the next scrape. */
  uint64_t popped = rc_counter_get(&ps->shards[id]->stats.inbox_popped);
  uint64_t pushed = 0;
  for (unsigned p = 0; p < ps->nshards; p++)
    pushed += rc_counter_get(&ps->shards[p]->stats.inbox_pushed[id]);
  return pushed > popped ? pushed - popped : 0;
}

uint64_t rc_pubsub_inbox_age_ns(const struct rc_pubsub *ps, unsigned id, uint64_t now_ns) {
  const struct rc_pubsub_stats *st = &ps->shards[id]->stats;
  uint64_t age = rc_counter_get(&st->inbox_age_ns);
  uint64_t turn = rc_counter_get(&st->turn_ns);
  if (turn && now_ns > turn && now_ns - turn > age && rc_pubsub_inbox_depth(ps, id))
    age = now_ns - turn;
  return age;
}

static void collect_group(void *ctx, const char *p, size_t plen, void *value) {
  (void)p;
  (void)plen;
  struct rc_sublist *l = ctx;
  l->pg[l->npg++] = value;
}

/* Works out again which of this shard's groups match tp: once per topic after
 * a group came or went here, never per message. */
static void refresh_groups(struct rc_pubsub_shard *pss, struct rc_topic *tp, struct rc_sublist *l) {
  size_t n = rc_pattern_index_match(pss->groups, tp->name, tp->name_len, NULL, NULL);
  if (n > l->npg || (n == 0 && l->pg)) {
    free(l->pg);
    l->pg = n ? malloc(n * sizeof *l->pg) : NULL;
    if (n && !l->pg) {
      /* Said, not hidden; worked out again with the next message. */
      rc_err("out of memory matching %s against wildcards; its pattern subscribers miss a message",
             tp->name);
      l->npg = 0;
      return;
    }
  }
  l->npg = 0;
  if (n) rc_pattern_index_match(pss->groups, tp->name, tp->name_len, collect_group, l);
  l->pgen = pss->pattern_gen;
}

/* Hands m to this shard's subscribers of tp, exact and through its wildcard
 * groups; consumes one shard reference. Wildcards cost one compare here unless
 * a group came or went since the topic's last message. */
static void deliver_local(struct rc_pubsub_shard *pss, struct rc_topic *tp, struct rc_frame *f) {
  struct rc_sublist *l = &tp->local[pss->id];
  if (l->pgen != pss->pattern_gen) refresh_groups(pss, tp, l);
  bool message = !rc_message_is_heartbeat(f);
  if (message) l->last_seq = rc_message_seq(f);
  if (l->newest && !l->parked) {
    rc_hold_unref(pss->arena, l->newest); /* no one parked takes it any more */
    l->newest = NULL;
  }
  if (l->n == 0 && l->npg == 0 && !(l->parked && message)) {
    rc_frame_release(pss->arena, f);
    return;
  }
  struct rc_hold *h = rc_hold_create(pss->arena, f);
  if (!h) {
    rc_err("out of memory delivering a message of %s", tp->name);
    rc_frame_release(pss->arena, f);
    return;
  }
  /* Conflating subscribers, parked, cost nothing per message: they take the
   * newest from here when their queue has room (rc_pubsub_newest). */
  if (l->parked && message) {
    if (l->newest) rc_hold_unref(pss->arena, l->newest);
    rc_hold_ref(h);
    l->newest = h;
  }
  for (uint32_t i = 0; i < l->n; i++) pss->cb.deliver(pss->cb.ctx, l->v[i].sub, tp, h);
  for (uint32_t k = 0; k < l->npg; k++) {
    const struct rc_pattern_group *g = l->pg[k];
    for (uint32_t i = 0; i < g->n; i++) pss->cb.deliver(pss->cb.ctx, g->v[i].sub, tp, h);
  }
  rc_hold_unref(pss->arena, h);
}

void rc_pubsub_park(struct rc_pubsub_shard *pss, struct rc_subscriber *s, uint16_t i) {
  rc_subscription_park(pss->id, s, i);
}

void rc_pubsub_unpark(struct rc_pubsub_shard *pss, struct rc_subscriber *s, uint16_t i) {
  struct rc_sublist *l = &s->v[i].topic->local[pss->id];
  rc_subscription_unpark(pss->id, s, i);
  if (!l->parked && l->newest) {
    rc_hold_unref(pss->arena, l->newest);
    l->newest = NULL;
  }
}

struct rc_hold *rc_pubsub_newest(struct rc_pubsub_shard *pss, const struct rc_topic *tp) {
  return tp->local[pss->id].newest;
}

uint64_t rc_pubsub_last_seq(struct rc_pubsub_shard *pss, const struct rc_topic *tp) {
  return tp->local[pss->id].last_seq;
}

/* The shards a message of tp goes to. */
static uint64_t fanout_mask(const struct rc_topic *tp) {
  /* seq_cst pairs with the subscriber shard's fetch_or: a subscription that was
   * acknowledged before this publish arrived is seen here. */
  return atomic_load_explicit(&tp->interest, memory_order_seq_cst) |
         atomic_load_explicit(&tp->pattern_interest, memory_order_seq_cst);
}

static void free_batch(struct rc_pubsub *ps, struct batch *b) {
  rc_budget_release(ps->lim.budget, sizeof *b);
  free(b);
}

static void push(struct rc_pubsub_shard *pss, unsigned dest, struct inbox_item *it) {
  it->stamp_ns = pss->now_ns;
  /* Counted before the push: the consumer's popped never passes pushed. */
  rc_counter_add(&pss->stats.inbox_pushed[dest], 1);
  rc_mpsc_push(&pss->ps->shards[dest]->inbox, &it->node);
  pss->wake_mask |= 1ull << dest;
}

static void push_batch(struct rc_pubsub_shard *pss, unsigned dest) {
  struct batch *b = pss->out[dest];
  pss->out[dest] = NULL;
  push(pss, dest, &b->item);
}

static void batch_add(struct rc_pubsub_shard *pss, unsigned dest, struct rc_frame *f,
                      struct rc_topic *tp) {
  struct batch *b = pss->out[dest];
  if (b && b->n == BATCH_CAP) {
    push_batch(pss, dest);
    b = NULL;
  }
  if (!b) {
    b = malloc(sizeof *b);
    if (!b) {
      rc_err("out of memory batching to shard %u; shard %u's subscribers of %s miss a message",
             dest, dest, tp->name);
      rc_frame_release(pss->arena, f); /* the reference that was meant for dest */
      return;
    }
    rc_budget_force(pss->ps->lim.budget, sizeof *b);
    b->item.kind = INBOX_FANOUT;
    b->n = 0;
    pss->out[dest] = b;
  }
  b->e[b->n++] = (struct batch_entry){.frame = f, .topic = tp};
}

/* Hands f to every other shard in `others` (one batch entry each) and to this
 * shard's subscribers; the frame's references are already counted. */
static void fan_out(struct rc_pubsub_shard *pss, struct rc_topic *tp, struct rc_frame *f,
                    uint64_t others) {
  while (others) {
    unsigned d = (unsigned)__builtin_ctzll(others);
    others &= others - 1;
    batch_add(pss, d, f, tp);
  }
  deliver_local(pss, tp, f);
}

/* Stamps, encodes and fans out; returns the sequence number, -ENOMEM, or (unless
 * admitted, i.e. already accepted and charged for) -ENOBUFS when the encoded
 * message does not fit the memory budget. accepted_ns: when the publish was
 * accepted, on whichever shard took it. */
static int64_t stamp_as(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t seq,
                        const uint8_t *payload, size_t len, bool admitted, uint64_t accepted_ns,
                        bool fan) {
  enum rc_payload_class cls = rc_message_classify(payload, len);
  struct rc_frame *f =
      rc_message_encode((uint16_t)pss->id, tp->name, tp->name_len, seq, payload, len, cls);
  if (!f) {
    rc_err("out of memory encoding a message for %s; not published", tp->name);
    rc_counter_add(&pss->stats.publish_failed, 1);
    return -ENOMEM;
  }
  if (!rc_frame_charge(f, pss->ps->lim.budget, admitted)) {
    rc_frame_destroy(f);
    rc_counter_add(&pss->stats.refused_memory, 1);
    return -ENOBUFS;
  }
  tp->seq = seq;
  rc_counter_add(&pss->stats.published, 1);
  rc_hist_observe(&pss->stats.message_size, &rc_hist_size_bytes, len);
  f->stamp_ns = accepted_ns; /* before any other shard can see f */
  uint64_t others = fan ? fanout_mask(tp) & ~(1ull << pss->id) : 0;
  bool keep = pss->ps->lim.history.msgs > 0;
  /* All references exist before any other shard can see the frame: one per
   * shard it goes to, one for this shard's subscribers, one for history. */
  atomic_store_explicit(&f->shard_refs, 1u + keep + (uint32_t)__builtin_popcountll(others),
                        memory_order_relaxed);
  if (tracking(pss->ps)) {
    track(pss, tp);
    tp->last_s = pss->now_s;
  }
  if (keep) {
    struct rc_history_limits hl = history_limits(pss->ps);
    struct rc_history_ctx cx = history_ctx(pss);
    rc_history_append(&tp->history, f, pss->now_s, &hl, &cx);
    history_over_memory(pss);
  }
  if (fan) fan_out(pss, tp, f, others);
  else rc_frame_release(pss->arena, f); /* history only: nobody here is to see it live */
  return (int64_t)seq;
}

static int64_t stamp(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t seq,
                     const uint8_t *payload, size_t len, bool admitted, uint64_t accepted_ns) {
  return stamp_as(pss, tp, seq, payload, len, admitted, accepted_ns, true);
}

static int64_t home_publish(struct rc_pubsub_shard *pss, struct rc_topic *tp,
                            const uint8_t *payload, size_t len, bool admitted,
                            uint64_t accepted_ns) {
  return stamp(pss, tp, tp->seq + 1, payload, len, admitted, accepted_ns);
}

static size_t pubreq_size(size_t len, size_t note_len) {
  return sizeof(struct pubreq) + len + note_len;
}

/* Takes n bytes of dest's backlog, within --max-backlog. */
static bool backlog_take(struct rc_pubsub_shard *pss, unsigned dest, uint64_t n) {
  struct rc_pubsub_shard *d = pss->ps->shards[dest];
  uint64_t max = pss->ps->lim.max_backlog;
  uint64_t after = atomic_fetch_add_explicit(&d->backlog, n, memory_order_relaxed) + n;
  /* An empty backlog takes anything, so a publish larger than --max-backlog is
   * slow, not impossible (as --max-queue lets one large frame onto an empty queue). */
  if (max && after > max && after != n) {
    atomic_fetch_sub_explicit(&d->backlog, n, memory_order_relaxed);
    return false;
  }
  return true;
}

static void backlog_give(struct rc_pubsub_shard *pss, unsigned dest, uint64_t n) {
  atomic_fetch_sub_explicit(&pss->ps->shards[dest]->backlog, n, memory_order_relaxed);
}

/* Queues a publish for its home shard. admitted: its backlog and budget were
 * taken by the caller (rc_pubsub_publish_many). */
static int64_t forward(struct rc_pubsub_shard *pss, struct rc_topic *tp, const uint8_t *payload,
                       size_t len, const struct rc_publish_origin *origin, bool admitted) {
  size_t note_len = origin ? origin->note_len : 0;
  size_t size = pubreq_size(len, note_len);
  if (!admitted) {
    if (!backlog_take(pss, tp->home, size)) {
      rc_counter_add(&pss->stats.refused_backlog, 1);
      return -EAGAIN;
    }
    if (!rc_budget_try(pss->ps->lim.budget, size)) {
      backlog_give(pss, tp->home, size);
      rc_counter_add(&pss->stats.refused_memory, 1);
      return -ENOBUFS;
    }
  }
  struct pubreq *r = malloc(size);
  if (!r) {
    backlog_give(pss, tp->home, size);
    rc_budget_release(pss->ps->lim.budget, size);
    return -ENOMEM;
  }
  r->item.kind = INBOX_PUBLISH;
  rc_topic_ref(pss->ps->topics, tp); /* the home shard lets it go once published */
  r->topic = tp;
  r->len = (uint32_t)len;
  r->charge = (uint32_t)size;
  r->origin_shard = (uint16_t)pss->id;
  r->has_origin = origin != NULL;
  r->token = origin ? origin->token : 0;
  r->note_len = (uint16_t)note_len;
  if (len) memcpy(r->data, payload, len);
  if (note_len) memcpy(r->data + len, origin->note, note_len);
  push(pss, tp->home, &r->item);
  return 0;
}

int64_t rc_pubsub_publish(struct rc_pubsub_shard *pss, struct rc_topic *tp,
                          const uint8_t *payload, size_t len,
                          const struct rc_publish_origin *origin) {
  if ((origin && origin->note_len > RC_PUBSUB_NOTE_MAX) || len > UINT32_MAX - 4096) return -EINVAL;
  /* With a sequencer, even the home's own publishes queue: the request is the
   * ticket that waits for the sequencer's answer. */
  if (tp->home == pss->id && !remote_topic(pss->ps, tp))
    return home_publish(pss, tp, payload, len, false, pss->now_ns);
  return forward(pss, tp, payload, len, origin, false);
}

/* What a message homed here is charged while it is encoded: the raw view and
 * the envelope around the payload, escaped as JSON text (3 bytes a byte covers
 * all but payloads of raw control characters, which take up to 6). */
static size_t local_estimate(const struct rc_publish_item *it) {
  return sizeof(struct rc_frame) + 4 * it->len + it->topic->name_len + 128;
}

ssize_t rc_pubsub_publish_many(struct rc_pubsub_shard *pss, const struct rc_publish_item *items,
                               size_t n, const struct rc_publish_origin *origin) {
  if (origin && origin->note_len) return -EINVAL; /* sized without one */
  uint64_t per_shard[RC_MAX_SHARDS] = {0};
  size_t total = 0, local = 0;
  for (size_t i = 0; i < n; i++) {
    if (items[i].len > UINT32_MAX - 4096) return -EINVAL;
    unsigned home = items[i].topic->home;
    if (home == pss->id && !remote_topic(pss->ps, items[i].topic)) {
      local += local_estimate(&items[i]);
    } else {
      per_shard[home] += pubreq_size(items[i].len, 0);
      total += pubreq_size(items[i].len, 0);
    }
  }
  /* All or nothing: every home's backlog, then the budget for all of it. */
  unsigned d;
  for (d = 0; d < pss->ps->nshards; d++)
    if (per_shard[d] && !backlog_take(pss, d, per_shard[d])) break;
  if (d < pss->ps->nshards) {
    while (d-- > 0)
      if (per_shard[d]) backlog_give(pss, d, per_shard[d]);
    rc_counter_add(&pss->stats.refused_backlog, 1);
    return -EAGAIN;
  }
  if (!rc_budget_try(pss->ps->lim.budget, total + local)) {
    for (d = 0; d < pss->ps->nshards; d++)
      if (per_shard[d]) backlog_give(pss, d, per_shard[d]);
    rc_counter_add(&pss->stats.refused_memory, 1);
    return -ENOBUFS;
  }
  size_t done = 0;
  for (; done < n; done++) {
    const struct rc_publish_item *it = &items[done];
    int64_t r = it->topic->home == pss->id && !remote_topic(pss->ps, it->topic)
                    ? home_publish(pss, it->topic, it->payload, it->len, true, pss->now_ns)
                    : forward(pss, it->topic, it->payload, it->len, origin, true);
    if (r < 0) break;
  }
  /* Local messages now carry their own charge; the estimate goes back, as does
   * what the publishes never made take (after an allocation failure). */
  rc_budget_release(pss->ps->lim.budget, local);
  for (size_t i = done + 1; i < n; i++) {
    if (items[i].topic->home == pss->id && !remote_topic(pss->ps, items[i].topic)) continue;
    size_t sz = pubreq_size(items[i].len, 0);
    backlog_give(pss, items[i].topic->home, sz);
    rc_budget_release(pss->ps->lim.budget, sz);
  }
  if (done < n) return done ? (ssize_t)done : -ENOMEM;
  return (ssize_t)n;
}

/* The home shard's answer to a forwarded publish that asked for one. */
static void send_result(struct rc_pubsub_shard *pss, const struct pubreq *r, int64_t seq) {
  size_t name_len = r->topic->name_len;
  struct result *res = malloc(sizeof *res + r->note_len + name_len + 1);
  if (!res) {
    rc_err("out of memory reporting a publish on %s back to shard %u; its acknowledgement is lost",
           r->topic->name, r->origin_shard);
    return;
  }
  res->item.kind = INBOX_RESULT;
  res->r = (struct rc_publish_result){
      .token = r->token,
      .topic = (const char *)res->note + r->note_len,
      .seq = seq > 0 ? (uint64_t)seq : 0,
      .err = seq > 0 ? 0 : (int)seq,
      .note = res->note,
      .note_len = r->note_len,
  };
  if (r->note_len) memcpy(res->note, r->data + r->len, r->note_len);
  memcpy(res->note + r->note_len, r->topic->name, name_len + 1);
  push(pss, r->origin_shard, &res->item);
}

static void released(struct rc_pubsub_shard *pss, struct release *m);

/* ---- joins: where a subscription starts ---- */

static void join_free(struct rc_pubsub_shard *pss, struct join *j) {
  for (uint32_t i = 0; i < j->nframes; i++)
    if (j->frames[i]) rc_frame_release(pss->arena, j->frames[i]);
  if (j->frames) {
    rc_budget_release(pss->ps->lim.budget, (size_t)j->nframes * sizeof *j->frames);
    free(j->frames);
  }
  rc_budget_release(pss->ps->lim.budget, j->charge);
  rc_topic_release(pss->ps->topics, j->topic);
  free(j);
}

/* The home's answer: the topic's position now, and what to replay. */
static void answer(struct rc_pubsub_shard *pss, struct join *j) {
  struct rc_topic *tp = j->topic;
  struct rc_join_result *r = &j->res;
  *r = (struct rc_join_result){.topic = tp, .seq = tp->seq, .epoch = tp->epoch,
                               .snapshot_asked = j->snapshot, .note = j->note,
                               .note_len = j->note_len};
  uint64_t first = 0, last = 0, from = 0, to = 0;
  bool held = rc_history_span(tp->history, &first, &last);
  if (j->has_since) {
    if (j->since_epoch != tp->epoch) {
      r->outcome = RC_JOIN_GAP_EPOCH;
      r->gap_from = 1;
      r->gap_to = tp->seq;
    } else if (j->since_seq > tp->seq) {
      r->outcome = RC_JOIN_AHEAD;
    } else if (j->since_seq == tp->seq || (held && first <= j->since_seq + 1)) {
      r->outcome = RC_JOIN_RECOVERED;
      from = j->since_seq + 1;
      to = tp->seq;
    } else {
      r->outcome = RC_JOIN_GAP_HISTORY;
      r->gap_from = j->since_seq + 1;
      r->gap_to = tp->seq;
    }
    rc_counter_add(&pss->stats.resumes[r->outcome], 1);
  }
  /* A snapshot is the latest message, unless a recovery already ends with it. */
  if (j->snapshot && r->outcome != RC_JOIN_RECOVERED && held && tp->seq > 0) {
    r->snapshot = true;
    from = to = tp->seq;
    if (r->gap_to == tp->seq && r->gap_from <= r->gap_to) r->gap_to--; /* it comes after all */
    rc_counter_add(&pss->stats.snapshots, 1);
  }
  if (from && from <= to) {
    uint32_t n = (uint32_t)(to - from + 1);
    /* Measured before anything is taken: a replay the subscriber could not
     * queue costs no array and no references. */
    uint64_t bytes = 0;
    for (uint64_t q = from; q <= to; q++) bytes += rc_history_get(tp->history, q)->len;
    if (j->max_replay_bytes && bytes > j->max_replay_bytes) {
      r->replay = n;
      r->replay_bytes = bytes;
      r->replay_withheld = true;
      return;
    }
    j->frames = malloc(n * sizeof *j->frames);
    if (!j->frames) {
      /* Said, not hidden: the replay becomes a gap. */
      rc_err("out of memory replaying %u messages of %s; the subscriber gets a gap", n, tp->name);
      if (r->outcome == RC_JOIN_RECOVERED) {
        r->outcome = RC_JOIN_GAP_HISTORY;
        r->gap_from = from;
        r->gap_to = to;
      }
      r->snapshot = false;
      return;
    }
    rc_budget_force(pss->ps->lim.budget, (size_t)n * sizeof *j->frames);
    for (uint64_t q = from; q <= to; q++) {
      struct rc_frame *f = rc_history_get(tp->history, q);
      /* History's own reference keeps it alive while this one is taken. */
      atomic_fetch_add_explicit(&f->shard_refs, 1, memory_order_relaxed);
      j->frames[j->nframes++] = f;
      r->replay_bytes += f->len;
    }
    r->replay = j->nframes;
    rc_counter_add(&pss->stats.replayed, r->replay);
  }
}

/* On the subscriber's shard: the subscription goes live, its start is
 * announced, the replay follows. */
static void joined(struct rc_pubsub_shard *pss, struct join *j) {
  struct rc_subscriber *s = pss->cb.resolve(pss->cb.ctx, j->token);
  j->res.live = s && rc_subscription_activate(pss->id, s, j->topic, j->id);
  if (s && pss->cb.joined(pss->cb.ctx, s, &j->res) && j->res.live) {
    for (uint32_t i = 0; i < j->nframes; i++) {
      struct rc_hold *h = rc_hold_create(pss->arena, j->frames[i]);
      if (!h) {
        /* Cannot happen short of memory; the connection's seq check shows it. */
        rc_err("out of memory replaying %s; a subscriber misses a message", j->topic->name);
        continue; /* the reference is released with the rest */
      }
      j->frames[i] = NULL;
      /* Published long ago: its send says nothing about today's latency. */
      h->flags |= RC_HOLD_UNTIMED;
      pss->cb.deliver(pss->cb.ctx, s, j->topic, h);
      rc_hold_unref(pss->arena, h);
    }
  }
  join_free(pss, j);
}

/* On the home shard: answered here, then live. A subscriber on this same
 * shard goes live in the same step, before any later publish is stamped. */
static void answer_join(struct rc_pubsub_shard *pss, struct join *j) {
  answer(pss, j);
  rc_counter_add(&pss->stats.joins, 1);
  if (j->shard == pss->id) {
    joined(pss, j);
    return;
  }
  /* Whatever this shard batched to the subscriber's is pushed ahead of the answer. */
  if (pss->out[j->shard]) push_batch(pss, j->shard);
  j->item.kind = INBOX_JOINED;
  push(pss, j->shard, &j->item);
}

static void home_join(struct rc_pubsub_shard *pss, struct join *j) {
  struct rc_topic *tp = j->topic;
  if (tracking(pss->ps)) track(pss, tp);
  if (tp->remote_pattern) {
    /* Exact subscribers get the topic's own channel even while a wildcard
     * brings its messages too: when the wildcard goes, nothing falls between. */
    tp->remote_pattern = false;
    pss->cb.remote_interest(pss->cb.ctx, tp, true);
  }
  if (remote_topic(pss->ps, tp) && tp->remote != RC_TOPIC_REMOTE_LIVE) {
    /* Its seq and history are the sequencer's: answered once they are known. */
    j->next_wait = tp->waiting;
    tp->waiting = j;
    if (tp->remote == RC_TOPIC_REMOTE_NONE) {
      tp->remote = RC_TOPIC_REMOTE_SYNCING;
      pss->cb.remote_interest(pss->cb.ctx, tp, true);
    }
    return;
  }
  answer_join(pss, j);
}

/* ---- scale-out: a sequencer elsewhere (pubsub.h, remote_*) ---- */

void rc_pubsub_remote_done(struct rc_pubsub_shard *pss, uint64_t ticket, int64_t res) {
  struct pubreq *r = (struct pubreq *)(uintptr_t)ticket;
  if (res <= 0) rc_counter_add(&pss->stats.publish_failed, 1);
  if (r->has_origin) send_result(pss, r, res);
  atomic_fetch_sub_explicit(&pss->backlog, r->charge, memory_order_relaxed);
  rc_budget_release(pss->ps->lim.budget, r->charge);
  rc_topic_release(pss->ps->topics, r->topic);
  free(r);
}

/* Tells tp's subscribers here and on other shards, in order with its messages,
 * that from..to will not come. */
static void announce_gap(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t from,
                         uint64_t to, const char *reason) {
  rc_counter_add(&pss->stats.remote_gaps, 1);
  if (from > to)
    rc_warn("topic %s: its sequence restarted under a new epoch (%s: the sequencer lost its data); "
            "subscribers are told", tp->name, reason);
  else
    rc_warn("topic %s: messages %" PRIu64 " to %" PRIu64 " are lost (%s); subscribers are told",
            tp->name, from, to, reason);
  struct rc_frame *f = rc_message_encode_gap((uint16_t)pss->id, tp->name, tp->name_len, from, to,
                                             tp->epoch, reason);
  if (!f) {
    rc_err("out of memory announcing a gap on %s; its subscribers see it in the seqs only", tp->name);
    return;
  }
  rc_frame_charge(f, pss->ps->lim.budget, true);
  uint64_t others = fanout_mask(tp) & ~(1ull << pss->id);
  atomic_store_explicit(&f->shard_refs, 1u + (uint32_t)__builtin_popcountll(others),
                        memory_order_relaxed);
  fan_out(pss, tp, f, others);
}

void rc_pubsub_remote_synced(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t epoch,
                             uint64_t seq, const struct rc_remote_entry *e, size_t n,
                             uint64_t live_from) {
  struct rc_history_ctx cx = history_ctx(pss);
  bool live = tp->remote == RC_TOPIC_REMOTE_LIVE; /* subscribers are following it */
  const char *reason = "redis";
  bool told = true;
  if (tp->epoch != epoch || !live) {
    /* What history holds belongs to another run of seqs, or to a time the home
     * did not follow the topic: the sequencer's history replaces it. */
    if (live && tp->epoch != epoch) {
      rc_counter_add(&pss->stats.remote_epochs, 1);
      reason = "epoch";
      told = false;
    }
    rc_history_clear(&tp->history, &cx);
    tp->epoch = epoch;
    tp->seq = 0;
  }
  if (!live) {
    /* Nobody to tell: it starts where it stands, what came before is history.
     * Only wildcard subscribers, who met the topic at live_from, see it live
     * from there (and a gap if the stream no longer reaches back that far). */
    tp->seq = n ? e[0].seq - 1 : seq;
    if (live_from && live_from - 1 < tp->seq) tp->seq = live_from - 1;
  }
  for (size_t i = 0; i < n; i++) {
    if (e[i].seq <= tp->seq) continue;
    bool fan = live || (live_from && e[i].seq >= live_from);
    if (e[i].seq > tp->seq + 1) {
      if (fan) announce_gap(pss, tp, tp->seq + 1, e[i].seq - 1, reason);
      told = true;
      tp->seq = e[i].seq - 1;
    }
    if (!told) {
      announce_gap(pss, tp, 1, 0, reason); /* nothing of the new run is missed */
      told = true;
    }
    if (stamp_as(pss, tp, e[i].seq, e[i].payload, e[i].len, true, pss->now_ns, fan) < 0) {
      if (fan) announce_gap(pss, tp, e[i].seq, e[i].seq, "memory");
      tp->seq = e[i].seq;
    } else if (live) {
      rc_counter_add(&pss->stats.remote_refilled, 1);
    }
  }
  if (seq > tp->seq) {
    if (live || (live_from && seq >= live_from)) announce_gap(pss, tp, tp->seq + 1, seq, reason);
    told = true;
    tp->seq = seq;
  }
  if (!told) announce_gap(pss, tp, 1, 0, reason);
  tp->remote = RC_TOPIC_REMOTE_LIVE;
  struct join *j = tp->waiting;
  tp->waiting = NULL;
  while (j) {
    struct join *next = j->next_wait;
    answer_join(pss, j);
    j = next;
  }
}

int rc_pubsub_remote_message(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t epoch,
                             uint64_t seq, const uint8_t *payload, size_t len) {
  if (tp->remote != RC_TOPIC_REMOTE_LIVE) return -ENOENT;
  if (epoch != tp->epoch) return -ESTALE;
  if (seq <= tp->seq) {
    rc_counter_add(&pss->stats.remote_duplicates, 1);
    return 1;
  }
  if (seq != tp->seq + 1) return -ERANGE;
  int64_t r = stamp(pss, tp, seq, payload, len, true, pss->now_ns);
  return r < 0 ? (int)r : 0;
}

/* No subscriber of tp is left on this node: the sequencer is told, and what the
 * home kept goes (it would miss what comes next; a new subscriber syncs again). */
static void remote_forget(struct rc_pubsub_shard *pss, struct rc_topic *tp) {
  struct rc_history_ctx cx = history_ctx(pss);
  pss->cb.remote_interest(pss->cb.ctx, tp, false);
  tp->remote = RC_TOPIC_REMOTE_NONE;
  tp->remote_pattern = false;
  rc_history_clear(&tp->history, &cx);
  tp->seq = 0;
}

/* On tp's home: messages routed here from the hole's seq on may have been
 * dropped; the remote refills them (following the topic first if need be). */
static void remote_hole_seen(struct rc_pubsub_shard *pss, struct rc_topic *tp) {
  uint64_t from = atomic_exchange_explicit(&tp->remote_hole, 0, memory_order_relaxed);
  if (!from || !remote_topic(pss->ps, tp) || !pss->cb.remote_lost) return;
  if (tp->remote == RC_TOPIC_REMOTE_NONE) {
    if (!atomic_load_explicit(&tp->pattern_interest, memory_order_relaxed)) return;
    track(pss, tp);
    tp->remote = RC_TOPIC_REMOTE_SYNCING;
    tp->remote_pattern = true;
  }
  pss->cb.remote_lost(pss->cb.ctx, tp, from);
}

/* A routed message was dropped (limits): what is dropped is refilled from the
 * sequencer's history, not lost in silence. The first drop since the home
 * last looked sends it a small marker, charged whatever the budget says: one
 * per topic at a time, so they are bounded by --max-topics. Takes the caller's
 * reference on tp. */
static void note_hole(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t seq) {
  struct rc_pubsub *ps = pss->ps;
  uint64_t cur = 0;
  if (!atomic_compare_exchange_strong_explicit(&tp->remote_hole, &cur, seq, memory_order_relaxed,
                                               memory_order_relaxed)) {
    while (cur > seq && !atomic_compare_exchange_weak_explicit(&tp->remote_hole, &cur, seq,
                                                              memory_order_relaxed, memory_order_relaxed)) {
    }
    rc_topic_release(ps->topics, tp);
    return;
  }
  struct arrive *a = malloc(sizeof *a);
  if (!a) {
    rc_topic_release(ps->topics, tp); /* the home's tick finds it if it tracks the topic */
    return;
  }
  rc_budget_force(ps->lim.budget, sizeof *a);
  *a = (struct arrive){.item.kind = INBOX_ARRIVE, .topic = tp, .charge = (uint32_t)sizeof *a};
  push(pss, tp->home, &a->item);
}

/* On tp's home: a sequencer's message that a wildcard of this node met. A
 * topic not followed yet is followed from now on for its pattern subscribers
 * (the remote syncs it, then delivers from this message on). */
static void remote_arrive(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t epoch,
                          uint64_t seq, const uint8_t *payload, size_t len) {
  if (!remote_topic(pss->ps, tp) || !pss->cb.remote_arrived) return;
  if (tp->remote == RC_TOPIC_REMOTE_NONE) {
    if (!atomic_load_explicit(&tp->pattern_interest, memory_order_relaxed))
      return; /* its wildcards went meanwhile */
    track(pss, tp);
    tp->remote = RC_TOPIC_REMOTE_SYNCING;
    tp->remote_pattern = true;
  }
  pss->cb.remote_arrived(pss->cb.ctx, tp, epoch, seq, payload, len);
}

static bool pattern_known(struct rc_pubsub *ps, const char *name, size_t len) {
  if (!atomic_load_explicit(&ps->npatterns, memory_order_relaxed)) return false;
  pthread_mutex_lock(&ps->pat_lock);
  size_t n = rc_pattern_index_match(ps->patterns, name, len, NULL, NULL);
  pthread_mutex_unlock(&ps->pat_lock);
  return n > 0;
}

int rc_pubsub_remote_route(struct rc_pubsub_shard *pss, const char *name, size_t len,
                           uint64_t epoch, uint64_t seq, const uint8_t *payload, size_t plen) {
  struct rc_pubsub *ps = pss->ps;
  if (!ps->remote || !rc_topic_name_is_valid(name, len) || rc_topic_name_is_reserved(name, len))
    return -ENOENT;
  /* A topic its wildcards pin already needs no look at the patterns: the
   * global pattern lock stays off the per-message path. */
  struct rc_topic *tp;
  int ret = rc_topic_acquire(ps->topics, name, len, false, &tp);
  if (ret == 0 && !atomic_load_explicit(&tp->pattern_interest, memory_order_relaxed)) {
    rc_topic_release(ps->topics, tp);
    ret = -ENOENT;
  }
  if (ret < 0) {
    if (!pattern_known(ps, name, len)) return -ENOENT;
    ret = rc_topic_acquire(ps->topics, name, len, true, &tp); /* created: pinned by its wildcards */
    if (ret < 0) return ret;
  }
  if (tp->home == pss->id) {
    remote_arrive(pss, tp, epoch, seq, payload, plen);
    rc_topic_release(ps->topics, tp);
    return 0;
  }
  size_t size = sizeof(struct arrive) + plen;
  struct arrive *a = NULL;
  if (!backlog_take(pss, tp->home, size)) {
    ret = -EAGAIN;
  } else if (!rc_budget_try(ps->lim.budget, size)) {
    backlog_give(pss, tp->home, size);
    ret = -ENOBUFS;
  } else if (!(a = malloc(size))) {
    backlog_give(pss, tp->home, size);
    rc_budget_release(ps->lim.budget, size);
    ret = -ENOMEM;
  }
  if (!a) {
    note_hole(pss, tp, seq); /* takes the reference */
    return ret;
  }
  *a = (struct arrive){.item.kind = INBOX_ARRIVE, .topic = tp, .epoch = epoch, .seq = seq,
                       .len = (uint32_t)plen, .charge = (uint32_t)size};
  if (plen) memcpy(a->data, payload, plen);
  push(pss, tp->home, &a->item);
  return 0;
}

/* The node's patterns ('$' ones aside), handed to the remote whole: it keeps
 * its pattern subscriptions equal to them. One shard holds them all, so that
 * the remote can leave out those another covers and a message crosses once
 * per node however its patterns overlap. */
#define PATTERNS_SHARD 0

struct pattern_copy {
  char *text;            /* every pattern, one after another */
  const char **p;
  size_t *len;
  size_t n, used;
  bool failed;
};

static void copy_pattern(void *ctx, const char *p, size_t plen, void *value) {
  (void)value;
  struct pattern_copy *c = ctx;
  if (c->failed || rc_topic_name_is_reserved(p, plen)) return;
  memcpy(c->text + c->used, p, plen);
  c->len[c->n++] = plen;
  c->used += plen;
}

/* Copied under the lock, handed over outside it: the remote's work on them
 * must not hold up other shards' topic creations. */
static void tell_patterns(struct rc_pubsub_shard *pss) {
  struct rc_pubsub *ps = pss->ps;
  struct pattern_copy c = {0};
  pthread_mutex_lock(&ps->pat_lock);
  size_t n = rc_pattern_index_count(ps->patterns);
  c.text = malloc(n * RC_TOPIC_PATTERN_MAX + 1);
  c.p = malloc((n + 1) * sizeof *c.p);
  c.len = malloc((n + 1) * sizeof *c.len);
  c.failed = !c.text || !c.p || !c.len;
  rc_pattern_index_foreach(ps->patterns, copy_pattern, &c);
  pthread_mutex_unlock(&ps->pat_lock);
  if (c.failed) {
    rc_err("out of memory listing wildcard patterns for the remote; trying again");
    atomic_store_explicit(&pss->patterns_dirty, true, memory_order_relaxed);
  } else {
    size_t off = 0;
    for (size_t i = 0; i < c.n; i++) {
      c.p[i] = c.text + off;
      off += c.len[i];
    }
    pss->cb.remote_patterns(pss->cb.ctx, c.p, c.len, c.n);
  }
  free(c.text);
  free(c.p);
  free(c.len);
}

/* Under pat_lock: pattern p came to the server or left it. */
static void patterns_changed(struct rc_pubsub_shard *pss, const char *p, size_t len) {
  struct rc_pubsub *ps = pss->ps;
  if (!ps->remote || !pss->cb.remote_patterns || rc_topic_name_is_reserved(p, len)) return;
  if (!ps->shards[PATTERNS_SHARD]) return; /* shutting down */
  atomic_store_explicit(&ps->shards[PATTERNS_SHARD]->patterns_dirty, true, memory_order_seq_cst);
  pss->wake_mask |= 1ull << PATTERNS_SHARD;
}

/* ---- heartbeats and aging ---- */

static void heartbeat(struct rc_pubsub_shard *pss, struct rc_topic *tp, uint64_t interest) {
  struct rc_frame *f = rc_message_encode_heartbeat((uint16_t)pss->id, tp->name, tp->name_len, tp->seq);
  if (!f) return; /* the next tick tries again */
  rc_frame_charge(f, pss->ps->lim.budget, true);
  uint64_t others = interest & ~(1ull << pss->id);
  atomic_store_explicit(&f->shard_refs, 1u + (uint32_t)__builtin_popcountll(others),
                        memory_order_relaxed);
  fan_out(pss, tp, f, others);
  tp->last_s = pss->now_s;
  rc_counter_add(&pss->stats.heartbeats, 1);
}

void rc_pubsub_set_clock_ns(struct rc_pubsub_shard *pss, uint64_t now_ns) {
  pss->now_ns = now_ns;
  atomic_store_explicit(&pss->stats.turn_ns, now_ns, memory_order_relaxed);
}

void rc_pubsub_set_clock(struct rc_pubsub_shard *pss, uint64_t now_ms) {
  pss->now_s = (uint32_t)(now_ms / 1000);
}

static void sweep(struct rc_pubsub_shard *pss);

void rc_pubsub_tick(struct rc_pubsub_shard *pss) {
  struct rc_history_limits hl = history_limits(pss->ps);
  struct rc_history_ctx cx = history_ctx(pss);
  uint32_t hb = pss->ps->lim.history.heartbeat_s;
  struct rc_topic *next;
  for (struct rc_topic *tp = pss->tracked_head; tp; tp = next) {
    next = tp->tracked_next;
    rc_history_expire(&tp->history, pss->now_s, &hl, &cx);
    uint64_t exact = atomic_load_explicit(&tp->interest, memory_order_relaxed);
    uint64_t pat = atomic_load_explicit(&tp->pattern_interest, memory_order_relaxed);
    uint64_t interest = exact | pat;
    if (tp->remote_pattern && !pat && tp->remote != RC_TOPIC_REMOTE_NONE) {
      /* Its wildcards went: exact subscribers keep it through its own channel. */
      tp->remote_pattern = false;
      if (exact || tp->waiting) pss->cb.remote_interest(pss->cb.ctx, tp, true);
    } else if (pat && !exact && !tp->waiting && !tp->remote_pattern &&
               tp->remote == RC_TOPIC_REMOTE_LIVE && pss->cb.remote_via_patterns) {
      /* Its exact subscribers went, its wildcards stay: one way in is enough. */
      tp->remote_pattern = pss->cb.remote_via_patterns(pss->cb.ctx, tp);
    }
    if (atomic_load_explicit(&tp->remote_hole, memory_order_relaxed)) remote_hole_seen(pss, tp);
    if (hb && interest && pss->now_s - tp->last_s >= hb && tp->remote != RC_TOPIC_REMOTE_SYNCING)
      heartbeat(pss, tp, interest);
    if (pss->ps->remote && !interest && tp->remote != RC_TOPIC_REMOTE_NONE && !tp->waiting)
      remote_forget(pss, tp);
    /* A topic nobody follows and nothing remembers is let go (a pending
     * subscriber's join holds a reference of its own and tracks it again). */
    if (!interest && !tp->history && !tp->waiting && tp->remote == RC_TOPIC_REMOTE_NONE)
      untrack(pss, tp);
  }
  if (pss->pattern_sweep) sweep(pss);
}

/* Bytes a message adds to each local subscriber's queue (0 without any). */
static size_t local_bytes(const struct rc_pubsub_shard *pss, const struct rc_topic *tp, size_t len) {
  return tp->local[pss->id].n || tp->local[pss->id].npg ? len : 0;
}

bool rc_pubsub_drain(struct rc_pubsub_shard *pss, unsigned max_work, size_t max_bytes) {
  struct rc_mpsc_node *n;
  unsigned work = 0;
  size_t bytes = 0;
  if (atomic_load_explicit(&pss->patterns_dirty, memory_order_relaxed) &&
      atomic_exchange_explicit(&pss->patterns_dirty, false, memory_order_seq_cst))
    tell_patterns(pss);
  for (;;) {
    if (pss->cur) {
      /* Sends start only at the end of the turn: what one turn queues to each
       * subscriber is bounded, or a shard that fell behind would queue its
       * whole backlog at once and cut every subscriber as a slow consumer. */
      struct batch *b = pss->cur;
      while (pss->cur_i < b->n && work < max_work && bytes < max_bytes) {
        struct batch_entry *e = &b->e[pss->cur_i++];
        bytes += local_bytes(pss, e->topic, e->frame->len);
        deliver_local(pss, e->topic, e->frame);
        work++;
      }
      if (pss->cur_i < b->n) return true;
      pss->cur = NULL;
      free_batch(pss->ps, b);
    }
    if (work >= max_work || bytes >= max_bytes) break;
    if (!(n = rc_mpsc_try_pop(&pss->inbox))) {
      if (rc_counter_get(&pss->stats.inbox_age_ns))
        atomic_store_explicit(&pss->stats.inbox_age_ns, 0, memory_order_relaxed);
      break;
    }
    struct inbox_item *it = (struct inbox_item *)n;
    rc_counter_add(&pss->stats.inbox_popped, 1);
    /* A stamp from another shard's turn that began after ours reads as 0. */
    atomic_store_explicit(&pss->stats.inbox_age_ns,
                          pss->now_ns > it->stamp_ns ? pss->now_ns - it->stamp_ns : 0,
                          memory_order_relaxed);
    switch (it->kind) {
    case INBOX_PUBLISH: {
      struct pubreq *r = (struct pubreq *)it;
      if (remote_topic(pss->ps, r->topic)) {
        /* Kept, with its charges, until the sequencer answers: what waits for
         * Redis is bounded by --max-backlog like what waits for this shard. */
        int ret = pss->cb.remote_publish(pss->cb.ctx, r->topic, r->data, r->len, (uint64_t)(uintptr_t)r);
        if (ret < 0) rc_pubsub_remote_done(pss, (uint64_t)(uintptr_t)r, ret);
        work++;
        break;
      }
      bytes += local_bytes(pss, r->topic, r->len);
      /* Accepted when it was queued: it is published whatever the budget says
       * now, and its charge moves to the encoded message. */
      int64_t seq = home_publish(pss, r->topic, r->data, r->len, true, r->item.stamp_ns);
      if (r->has_origin) send_result(pss, r, seq);
      atomic_fetch_sub_explicit(&pss->backlog, r->charge, memory_order_relaxed);
      rc_budget_release(pss->ps->lim.budget, r->charge);
      rc_topic_release(pss->ps->topics, r->topic);
      free(r);
      work++;
      break;
    }
    case INBOX_UNINTEREST: {
      /* Whatever this shard batched to the asker is pushed ahead of the answer. */
      struct release *m = (struct release *)it;
      if (pss->out[m->shard]) push_batch(pss, m->shard);
      m->item.kind = INBOX_RELEASE;
      push(pss, m->shard, &m->item);
      work++;
      break;
    }
    case INBOX_RELEASE: {
      struct release *m = (struct release *)it;
      if (m->pattern) {
        /* A wildcard pin: no batch of the topic is on its way here any more. */
        rc_topic_release(pss->ps->topics, m->topic);
        free(m);
      } else {
        released(pss, m);
      }
      work++;
      break;
    }
    case INBOX_JOIN:
      home_join(pss, (struct join *)it);
      work++;
      break;
    case INBOX_JOINED:
      joined(pss, (struct join *)it);
      work++;
      break;
    case INBOX_FANOUT:
      rc_counter_add(&pss->stats.batches_in, 1);
      pss->cur = (struct batch *)it;
      pss->cur_i = 0;
      break;
    case INBOX_ARRIVE: {
      struct arrive *a = (struct arrive *)it;
      if (a->seq) {
        bytes += local_bytes(pss, a->topic, a->len);
        remote_arrive(pss, a->topic, a->epoch, a->seq, a->data, a->len);
        atomic_fetch_sub_explicit(&pss->backlog, a->charge, memory_order_relaxed);
      } else {
        remote_hole_seen(pss, a->topic); /* a marker: messages were dropped on the way */
      }
      rc_budget_release(pss->ps->lim.budget, a->charge);
      rc_topic_release(pss->ps->topics, a->topic);
      free(a);
      work++;
      break;
    }
    case INBOX_RESULT: {
      struct result *res = (struct result *)it;
      pss->cb.published(pss->cb.ctx, &res->r);
      free(res);
      work++;
      break;
    }
    default:
      rc_err("inbox item of unknown kind %u", it->kind);
      abort();
    }
  }
  return pss->cur || !rc_mpsc_is_empty(&pss->inbox);
}

void rc_pubsub_flush(struct rc_pubsub_shard *pss) {
  for (unsigned d = 0; d < pss->ps->nshards; d++)
    if (pss->out[d]) push_batch(pss, d);
  uint64_t mask = pss->wake_mask & ~(1ull << pss->id);
  pss->wake_mask = 0;
  if (mask) pss->cb.wake(pss->cb.ctx, mask);
}

bool rc_pubsub_has_work(struct rc_pubsub_shard *pss) {
  /* Pushes made after this turn's flush (a closing subscriber's release) still
   * need their wake-up. */
  return pss->wake_mask || pss->cur || !rc_mpsc_is_empty(&pss->inbox) ||
         atomic_load_explicit(&pss->patterns_dirty, memory_order_seq_cst);
}

/* What one subscription holds, both sides' entries with their arrays' slack,
 * charged to the memory budget. */
#define SUBSCRIPTION_COST 48

int rc_pubsub_subscribe(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                        struct rc_topic *tp, unsigned limit, const struct rc_join_request *req) {
  size_t note_len = req->note_len;
  if (note_len > RC_PUBSUB_NOTE_MAX) return -EINVAL;
  size_t jsize = sizeof(struct join) + note_len;
  if (rc_subscription_find(s, tp) >= 0) return -EEXIST;
  if (!rc_budget_try(pss->ps->lim.budget, SUBSCRIPTION_COST + jsize)) return -ENOBUFS;
  struct join *j = malloc(jsize);
  uint32_t id = ++pss->join_seq ? pss->join_seq : ++pss->join_seq;
  int ret = j ? rc_subscription_add(pss->id, s, tp, limit, id) : -ENOMEM;
  if (ret < 0) {
    free(j);
    rc_budget_release(pss->ps->lim.budget, SUBSCRIPTION_COST + jsize);
    return ret;
  }
  struct rc_sublist *l = &tp->local[pss->id];
  if (!l->pinned) {
    rc_topic_ref(pss->ps->topics, tp);
    l->pinned = true;
  }
  rc_topic_ref(pss->ps->topics, tp); /* the join's own: the subscription may end first */
  *j = (struct join){.item.kind = INBOX_JOIN, .topic = tp, .token = req->token, .id = id,
                     .charge = (uint32_t)jsize, .shard = (uint16_t)pss->id,
                     .has_since = req->has_since, .snapshot = req->snapshot,
                     .since_epoch = req->since_epoch, .since_seq = req->since_seq,
                     .max_replay_bytes = req->max_replay_bytes,
                     .note_len = (uint16_t)note_len};
  if (note_len) memcpy(j->note, req->note, note_len);
  push(pss, tp->home, &j->item);
  return 0;
}

/* This shard's list of tp emptied: its hold on tp goes once the home shard can
 * no longer be sending it tp's messages. The home itself sends none to itself. */
static void emptied(void *ctx, struct rc_topic *tp) {
  struct rc_pubsub_shard *pss = ctx;
  struct rc_sublist *l = &tp->local[pss->id];
  l->cleared++;
  if (l->newest) {
    rc_hold_unref(pss->arena, l->newest);
    l->newest = NULL;
  }
  if (tp->home == pss->id) {
    l->pinned = false;
    rc_topic_release(pss->ps->topics, tp);
    return;
  }
  if (l->releasing) return; /* the answer on its way will see the newer emptying */
  struct release *m = malloc(sizeof *m);
  if (!m) {
    /* The topic stays pinned here until the list empties again. */
    rc_err("out of memory releasing topic %s; it stays allocated for now", tp->name);
    return;
  }
  *m = (struct release){.item.kind = INBOX_UNINTEREST, .topic = tp, .cleared = l->cleared,
                        .shard = (uint16_t)pss->id, .pattern = false};
  l->releasing = true;
  push(pss, tp->home, &m->item);
}

static void released(struct rc_pubsub_shard *pss, struct release *m) {
  struct rc_topic *tp = m->topic;
  struct rc_sublist *l = &tp->local[pss->id];
  l->releasing = false;
  /* Pending subscribers count: one made while this answer was on its way holds
   * the topic as much as a live one. */
  bool empty = l->n + l->pending + l->parked == 0;
  if (empty && m->cleared == l->cleared) {
    l->pinned = false;
    free(m);
    rc_topic_release(pss->ps->topics, tp);
    return;
  }
  if (empty) {
    /* Subscribed and emptied again since it asked: messages sent in between
     * may still be on their way; ask again. */
    m->item.kind = INBOX_UNINTEREST;
    m->cleared = l->cleared;
    l->releasing = true;
    push(pss, tp->home, &m->item);
    return;
  }
  free(m); /* subscribed again: the hold stays */
}

int rc_pubsub_unsubscribe(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                          struct rc_topic *tp) {
  int ret = rc_subscription_remove(pss->id, s, tp);
  if (ret < 0) return ret;
  rc_budget_release(pss->ps->lim.budget, SUBSCRIPTION_COST);
  if (ret == 1) emptied(pss, tp);
  return 0;
}

/* ---- wildcards ---- */

static void or_mask(void *ctx, const char *p, size_t plen, void *value) {
  (void)p;
  (void)plen;
  *(uint64_t *)ctx |= (uint64_t)(uintptr_t)value;
}

/* The table's creation hook (any thread, under the new topic's partition
 * lock): the shards with a group matching it take their pins now. */
static uint64_t topic_created(void *ctx, const struct rc_topic *tp) {
  struct rc_pubsub *ps = ctx;
  if (!atomic_load_explicit(&ps->npatterns, memory_order_relaxed)) return 0;
  uint64_t mask = 0;
  pthread_mutex_lock(&ps->pat_lock);
  rc_pattern_index_match(ps->patterns, tp->name, tp->name_len, or_mask, &mask);
  pthread_mutex_unlock(&ps->pat_lock);
  return mask;
}

size_t rc_pubsub_pattern_count(struct rc_pubsub *ps) {
  return atomic_load_explicit(&ps->npatterns, memory_order_relaxed);
}

/* Adds (or, with on clear, removes) this shard in pattern p's global mask. A
 * pattern new to the server counts against --max-patterns: -ENOSPC. */
static int global_mark(struct rc_pubsub_shard *pss, const char *p, size_t len, bool on) {
  struct rc_pubsub *ps = pss->ps;
  uint64_t bit = 1ull << pss->id;
  int ret = 0;
  pthread_mutex_lock(&ps->pat_lock);
  void **slot = rc_pattern_index_slot(ps->patterns, p, len, false);
  if (on) {
    if (!slot) {
      if (rc_pattern_index_count(ps->patterns) >= ps->lim.max_patterns) {
        ret = -ENOSPC;
      } else if (!(slot = rc_pattern_index_slot(ps->patterns, p, len, true))) {
        ret = -ENOMEM;
      } else {
        atomic_fetch_add_explicit(&ps->npatterns, 1, memory_order_relaxed);
        patterns_changed(pss, p, len);
      }
    }
    if (slot) *slot = (void *)(uintptr_t)((uint64_t)(uintptr_t)*slot | bit);
  } else if (slot) {
    uint64_t mask = (uint64_t)(uintptr_t)*slot & ~bit;
    *slot = (void *)(uintptr_t)mask;
    if (!mask) {
      rc_pattern_index_remove(ps->patterns, p, len);
      atomic_fetch_sub_explicit(&ps->npatterns, 1, memory_order_relaxed);
      patterns_changed(pss, p, len);
    }
  }
  pthread_mutex_unlock(&ps->pat_lock);
  return ret;
}

/* Pins every existing topic the new group's pattern matches (rc_topic_foreach,
 * under each partition's lock); the bit says the pin is already held. */
struct attach_scan {
  struct rc_pubsub_shard *pss;
  const struct rc_pattern_group *g;
};

static unsigned attach_one(void *ctx, struct rc_topic *tp) {
  struct attach_scan *a = ctx;
  uint64_t bit = 1ull << a->pss->id;
  if (!rc_topic_pattern_match(a->g->pattern, a->g->len, tp->name, tp->name_len)) return 0;
  /* seq_cst: as an exact subscription's interest bit (subscription.c). */
  if (atomic_fetch_or_explicit(&tp->pattern_interest, bit, memory_order_seq_cst) & bit) return 0;
  return 1;
}

/* Lets go of the wildcard pins this shard holds on topics none of its groups
 * matches any more. Each goes round the home shard first, as an exact
 * subscription's hold does: batches of the topic may still be on their way. */
static unsigned sweep_one(void *ctx, struct rc_topic *tp) {
  struct rc_pubsub_shard *pss = ctx;
  uint64_t bit = 1ull << pss->id;
  if (!(atomic_load_explicit(&tp->pattern_interest, memory_order_relaxed) & bit)) return 0;
  if (rc_pattern_index_match(pss->groups, tp->name, tp->name_len, NULL, NULL)) return 0;
  struct release *m = malloc(sizeof *m);
  if (!m) {
    pss->pattern_sweep = true; /* the next tick tries again */
    return 0;
  }
  atomic_fetch_and_explicit(&tp->pattern_interest, ~bit, memory_order_seq_cst);
  *m = (struct release){.item.kind = INBOX_UNINTEREST, .topic = tp, .shard = (uint16_t)pss->id,
                        .pattern = true};
  push(pss, tp->home, &m->item);
  return 0;
}

static void sweep(struct rc_pubsub_shard *pss) {
  pss->pattern_sweep = false;
  rc_counter_add(&pss->stats.pattern_scans, 1);
  rc_topic_foreach(pss->ps->topics, sweep_one, pss);
}

static void bump_gen(struct rc_pubsub_shard *pss) {
  if (++pss->pattern_gen == 0) pss->pattern_gen = 1;
}

/* The group emptied: it goes, here and globally; its pins go at the next tick,
 * in one scan for however many groups went meanwhile. */
static void group_drop(struct rc_pubsub_shard *pss, struct rc_pattern_group *g) {
  rc_pattern_index_remove(pss->groups, g->pattern, g->len);
  if (g->prev) g->prev->next = g->next;
  else pss->group_list = g->next;
  if (g->next) g->next->prev = g->prev;
  (void)global_mark(pss, g->pattern, g->len, false); /* removing cannot fail */
  bump_gen(pss);
  pss->pattern_sweep = true;
  free(g->v);
  free(g);
}

/* The shard's group for p, created (registered globally, then the existing
 * topics scanned) when new. */
static int group_get(struct rc_pubsub_shard *pss, const char *p, size_t len,
                     struct rc_pattern_group **out) {
  void **slot = rc_pattern_index_slot(pss->groups, p, len, true);
  if (!slot) return -ENOMEM;
  if (*slot) {
    *out = *slot;
    return 0;
  }
  struct rc_pattern_group *g = calloc(1, sizeof *g);
  int ret = g ? global_mark(pss, p, len, true) : -ENOMEM;
  if (ret < 0) {
    free(g);
    rc_pattern_index_remove(pss->groups, p, len);
    return ret;
  }
  memcpy(g->pattern, p, len);
  g->len = (uint16_t)len;
  g->next = pss->group_list;
  if (g->next) g->next->prev = g;
  pss->group_list = g;
  *slot = g;
  bump_gen(pss);
  /* Registered first, so a topic created from now on is pinned by the hook
   * and one created before is in its partition when the scan gets there. */
  struct attach_scan a = {.pss = pss, .g = g};
  rc_counter_add(&pss->stats.pattern_scans, 1);
  rc_topic_foreach(pss->ps->topics, attach_one, &a);
  *out = g;
  return 0;
}

int rc_pubsub_subscribe_pattern(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                                const char *p, size_t len, unsigned limit, unsigned pattern_limit) {
  if (!rc_topic_pattern_is_valid(p, len)) return -EINVAL;
  if (rc_subscription_find_pattern(s, p, len) >= 0) return -EEXIST;
  if (s->n >= limit || s->npatterns >= pattern_limit) {
    rc_counter_add(&pss->stats.patterns_refused, 1);
    return -EMLINK;
  }
  if (!rc_budget_try(pss->ps->lim.budget, SUBSCRIPTION_COST)) return -ENOBUFS;
  struct rc_pattern_group *g;
  int ret = group_get(pss, p, len, &g);
  if (ret == 0) {
    ret = rc_subscription_add_pattern(s, g, limit, pattern_limit);
    if (ret < 0 && g->n == 0) group_drop(pss, g);
  }
  if (ret < 0) {
    if (ret == -ENOSPC) rc_counter_add(&pss->stats.patterns_refused, 1);
    rc_budget_release(pss->ps->lim.budget, SUBSCRIPTION_COST);
    return ret;
  }
  return 0;
}

int rc_pubsub_unsubscribe_pattern(struct rc_pubsub_shard *pss, struct rc_subscriber *s,
                                  const char *p, size_t len) {
  int i = rc_subscription_find_pattern(s, p, len);
  if (i < 0) return i;
  struct rc_pattern_group *g = s->v[i].group;
  if (rc_subscription_remove_pattern(pss->id, s, (uint16_t)i)) group_drop(pss, g);
  rc_budget_release(pss->ps->lim.budget, SUBSCRIPTION_COST);
  return 0;
}

void rc_pubsub_unsubscribe_all(struct rc_pubsub_shard *pss, struct rc_subscriber *s) {
  for (uint16_t i = s->n; i-- > 0;) {
    if (!s->v[i].pattern) continue;
    struct rc_pattern_group *g = s->v[i].group;
    /* The entry that fills i comes from the end, already looked at. */
    if (rc_subscription_remove_pattern(pss->id, s, i)) group_drop(pss, g);
    rc_budget_release(pss->ps->lim.budget, SUBSCRIPTION_COST);
  }
  rc_budget_release(pss->ps->lim.budget, (size_t)s->n * SUBSCRIPTION_COST);
  rc_subscription_remove_all(pss->id, s, emptied, pss);
}

static void drop_batch(struct rc_pubsub *ps, struct batch *b) {
  /* Every shard has stopped: whoever drops the last reference frees. */
  for (uint32_t i = 0; i < b->n; i++)
    if (rc_frame_shard_unref(b->e[i].frame)) rc_frame_destroy(b->e[i].frame);
  free_batch(ps, b);
}

void rc_pubsub_shard_destroy(struct rc_pubsub_shard *pss) {
  if (!pss) return;
  for (struct rc_topic *tp = pss->tracked_head; tp; tp = tp->tracked_next) {
    while (tp->waiting) {
      struct join *j = tp->waiting;
      tp->waiting = j->next_wait;
      join_free(pss, j);
    }
  }
  while (pss->tracked_head) untrack(pss, pss->tracked_head);
  for (unsigned d = 0; d < RC_MAX_SHARDS; d++)
    if (pss->out[d]) drop_batch(pss->ps, pss->out[d]);
  if (pss->cur) {
    /* The entries before cur_i were delivered: their references are gone. */
    struct batch *b = pss->cur;
    memmove(b->e, b->e + pss->cur_i, (b->n - pss->cur_i) * sizeof b->e[0]);
    b->n -= pss->cur_i;
    drop_batch(pss->ps, b);
  }
  struct rc_mpsc_node *n;
  while ((n = rc_mpsc_try_pop(&pss->inbox))) {
    struct inbox_item *it = (struct inbox_item *)n;
    if (it->kind == INBOX_FANOUT) {
      drop_batch(pss->ps, (struct batch *)it);
    } else if (it->kind == INBOX_JOIN || it->kind == INBOX_JOINED) {
      struct join *j = (struct join *)it;
      for (uint32_t i = 0; i < j->nframes; i++)
        if (rc_frame_shard_unref(j->frames[i])) rc_frame_destroy(j->frames[i]);
      j->nframes = 0;
      join_free(pss, j);
    } else {
      if (it->kind == INBOX_PUBLISH) rc_budget_release(pss->ps->lim.budget, ((struct pubreq *)it)->charge);
      if (it->kind == INBOX_ARRIVE) rc_budget_release(pss->ps->lim.budget, ((struct arrive *)it)->charge);
      free(it);
    }
  }
  while (pss->group_list) {
    struct rc_pattern_group *g = pss->group_list;
    pss->group_list = g->next;
    free(g->v);
    free(g);
  }
  rc_pattern_index_destroy(pss->groups);
  pss->ps->shards[pss->id] = NULL;
  free(pss);
}
