/* SPDX-License-Identifier: MIT */
/* The Redis link of one shard: connections, RESP through hiredis, the replies
 * expected in order on the command connection, and each followed topic's
 * channel from SUBSCRIBE through its sync to live. */
#include "redis_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "ringcast/proto/position.h"
#include "ringcast/proto/redis_glob.h"
#include "ringcast/proto/redis_slot.h"
#include "ringcast/util/bytebuf.h"
#include "ringcast/util/counter.h"
#include "ringcast/util/log.h"

extern const unsigned char rc_redis_publish_lua[], rc_redis_sync_lua[], rc_redis_count_lua[];
extern const size_t rc_redis_publish_lua_len, rc_redis_sync_lua_len, rc_redis_count_lua_len;

#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* A connection's unsent commands: publishes are bounded by --max-backlog
 * before they get here; this bounds the rest (syncs, subscriptions). */
#define OUT_MAX (1u << 30)
/* Live messages held for a topic while its sync is on its way (one round trip
 * normally). Past either bound they are dropped and the topic is synced again
 * afterwards, which fills them from Redis' stream. */
#define HELD_MAX_MSGS 4096
#define HELD_MAX_BYTES (8u << 20)
/* Per-node subscriber counts in Redis (redis_count.lua): a change goes out
 * within a second, an unchanged count is renewed every few, and a node that
 * stops renewing (dead) drops out after COUNT_TTL_MS. */
#define COUNT_CHECK_MS 1000
#define COUNT_RENEW_MS 3000
#define COUNT_TTL_MS 10000
/* A Redis that keeps its connections open but answers nothing (stopped, swapping,
 * a network that drops without a reset) is taken for gone after this long, so
 * publishers get their answer and subscribers their refill or gap. */
#define REPLY_TIMEOUT_MS 5000

#define NAME_MAX_LEN (RC_TOPIC_NAME_MAX + 16)
/* Redis Cluster: one endpoint (two connections) per master, so a shard holds
 * 2 x masters connections; past this many masters the link refuses to come
 * up rather than open hundreds of connections per shard. */
#define MASTERS_MAX 16

enum { CMD = 0, SUB = 1 };
enum { SCRIPT_PUBLISH = 0, SCRIPT_SYNC, SCRIPT_COUNT, SCRIPT_NR };

/* What a reply on the command connection answers, in the order sent. */
enum reply_kind {
  R_CHECK = 1,   /* AUTH, SELECT, SCRIPT LOAD: an error takes the link down */
  R_PUBLISH,     /* p: pub/sub's ticket */
  R_SYNC,        /* p: the topic (a reference); gen: the sync it answers */
  R_COUNT,       /* a subscriber count written: an error is logged, nothing more */
  R_COUNT_READ,  /* p: struct count_ask (GET /topics/<name>) */
  R_DISCOVER,    /* CLUSTER SLOTS on the seed: an error is a standalone Redis */
};

struct pending {
  uint8_t kind;
  uint32_t gen;
  void *p;
  uint64_t sent_ms;             /* the loop's clock when it was queued */
};

/* A GET /topics/<name> waiting for Redis. */
struct count_ask {
  uint64_t token;
  char topic[RC_TOPIC_NAME_MAX + 1];
};

enum chan_state {
  CH_IDLE = 0,       /* the link is down: subscribed once it is up */
  CH_SUBSCRIBING,    /* SUBSCRIBE sent */
  CH_SYNCING,        /* subscribed; the sync script's answer awaited */
  CH_LIVE,
};

/* A live message that came while its topic synced. */
struct held {
  struct held *next;
  uint64_t epoch, seq;
  uint32_t len;
  uint32_t synced;              /* syncs it has waited for already */
  uint8_t data[];
};

/* A followed topic (tp->remote_data on its home shard). */
struct chan {
  struct rc_topic *tp;          /* a reference */
  struct chan *prev, *next;
  uint8_t state;                /* enum chan_state */
  bool overflow;                /* held messages were dropped: sync again */
  uint32_t gen;
  struct held *head, *tail;
  uint32_t nheld;
  uint64_t held_bytes;
  uint32_t counted;             /* the count Redis has from this node; UINT32_MAX: none */
  uint64_t count_due_ms;        /* when it is renewed */
  /* Followed for wildcard subscribers only: its messages come through a
   * pattern subscription (on whichever shard is home of the pattern), not
   * through a SUBSCRIBE of its own. */
  bool pattern;
  bool met;                     /* a pattern subscription brought one of its messages */
  uint64_t live_from;           /* the seq at which a wildcard met it, until its first sync */
};

/* A Redis glob this shard holds for the wildcard patterns it is home of. */
struct glob {
  struct rc_redis_glob g;       /* the prefix; the subscription adds the '*' */
  bool sub;                     /* PSUBSCRIBE sent on this connection */
};

struct endpoint;

struct side {
  struct endpoint *ep;
  struct rc_conn *c;            /* NULL while not connected */
  bool connecting;
  redisReader *rd;
  struct rc_bytebuf out;        /* commands of this turn */
};

/* One Redis the link speaks to: the only one standalone, one master of a
 * Cluster. Replies come back in order per connection, so each endpoint keeps
 * its own FIFO of what its command connection is to answer. */
struct endpoint {
  struct rc_redis_link *k;
  struct side side[2];
  struct pending *fifo;         /* replies expected on CMD, a ring */
  uint32_t fifo_cap, fifo_head, fifo_n;
  unsigned setup_pending;       /* set-up answers still to come */
  uint64_t channels;            /* channels its SUB holds, as Redis counts them */
  struct sockaddr_storage addr;
  socklen_t addr_len;
};

struct rc_redis_link {
  struct rc_redis_link_config cfg;
  struct rc_loop *l;
  struct rc_pubsub_shard *ps;
  struct rc_topic_table *topics;
  /* ep[0] is the --redis address until the link knows better: standalone it
   * stays the one endpoint; a Cluster's CLUSTER SLOTS answer replaces it
   * with one endpoint per master (nep), and slot_ep maps each slot to its
   * master. Every time the link goes down it forgets the map and asks again,
   * so a topology change is one reconnect. */
  struct endpoint ep[MASTERS_MAX];
  unsigned nep;
  bool mapped;                  /* ep[] is what Redis said (standalone or Cluster) */
  bool cluster;                 /* the last answer was a Cluster's */
  uint8_t *slot_ep;             /* RC_REDIS_SLOTS entries: index into ep[] */
  /* Where to ask for the map: --redis first, then the masters last seen, in
   * turn after each failure, so a dead seed does not keep a Cluster away. */
  struct sockaddr_storage seeds[MASTERS_MAX + 1];
  socklen_t seed_len[MASTERS_MAX + 1];
  unsigned nseeds, seed_next;
  struct chan *chans;
  uint32_t gen;
  struct glob *globs;           /* sorted by text, no two alike */
  size_t nglobs;
  uint32_t resubscribing;       /* PSUBSCRIBEs of a new connection not yet confirmed */
  uint64_t pattern_gen_seen;    /* of cfg.pattern_gen */
  size_t glob_cut;              /* what rc_redis_glob_reduce cut the globs to last (SIZE_MAX: none) */
  uint64_t patterns_confirmed;  /* PSUBSCRIBEs Redis answered, less PUNSUBSCRIBEs */
  bool up, stopped, down_logged;
  bool ready;                   /* up, and Redis accepted the set-up (AUTH, SELECT, scripts) */
  unsigned backoff_ms;
  struct rc_loop_timer retry;
  struct rc_loop_timer count_timer;
  bool count_error_logged, foreign_logged, drop_logged;
  char sha[SCRIPT_NR][41];
  struct rc_redis_link_stats stats;
};

static const struct rc_conn_ops link_ops;

/* ---- set-up ---- */

int rc_redis_link_resolve(const struct rc_redis_url *url, struct sockaddr_storage *addr,
                          socklen_t *len) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  char port[8];
  snprintf(port, sizeof port, "%u", url->port);
  int ret = getaddrinfo(url->host, port, &hints, &res);
  if (ret != 0 || !res) {
    rc_err("--redis: cannot resolve '%s': %s", url->host, gai_strerror(ret));
    return -EINVAL;
  }
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static void sha1_hex(const unsigned char *p, size_t n, char out[41]) {
  unsigned char d[WC_SHA_DIGEST_SIZE];
  wc_ShaHash(p, (word32)n, d);
  for (int i = 0; i < WC_SHA_DIGEST_SIZE; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

struct rc_redis_link *rc_redis_link_create(const struct rc_redis_link_config *cfg,
                                           struct rc_pubsub_shard *ps,
                                           struct rc_topic_table *topics) {
  struct rc_redis_link *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->cfg = *cfg;
  k->ps = ps;
  k->topics = topics;
  k->backoff_ms = BACKOFF_MIN_MS;
  k->glob_cut = SIZE_MAX;
  k->slot_ep = calloc(RC_REDIS_SLOTS, 1);
  if (!k->slot_ep) {
    free(k);
    return NULL;
  }
  for (unsigned e = 0; e < MASTERS_MAX; e++) {
    k->ep[e].k = k;
    for (int i = 0; i < 2; i++) k->ep[e].side[i].ep = &k->ep[e];
  }
  memcpy(&k->seeds[0], &cfg->addr, sizeof cfg->addr);
  k->seed_len[0] = cfg->addr_len;
  k->nseeds = 1;
  k->nep = 1;
  k->ep[0].addr = k->seeds[0];
  k->ep[0].addr_len = k->seed_len[0];
  /* EVALSHA names a script by its SHA-1: known here, so publishes pipeline
   * behind the SCRIPT LOADs of a new connection without waiting for them. */
  sha1_hex(rc_redis_publish_lua, rc_redis_publish_lua_len, k->sha[SCRIPT_PUBLISH]);
  sha1_hex(rc_redis_sync_lua, rc_redis_sync_lua_len, k->sha[SCRIPT_SYNC]);
  sha1_hex(rc_redis_count_lua, rc_redis_count_lua_len, k->sha[SCRIPT_COUNT]);
  return k;
}

bool rc_redis_link_admit(struct rc_redis_link *k) {
  if (!k->up) rc_counter_add(&k->stats.publishes_refused, 1);
  return k->up;
}
const struct rc_redis_link_stats *rc_redis_link_stats(const struct rc_redis_link *k) {
  return &k->stats;
}

/* ---- commands ---- */

/* The endpoint that owns topic name[0..len): its master in a Cluster (the
 * slot of "rc:{T}" is the slot of every key and channel of T). */
static struct endpoint *ep_of_name(struct rc_redis_link *k, const char *name, size_t len) {
  if (!k->cluster) return &k->ep[0];
  char key[NAME_MAX_LEN];
  int n = snprintf(key, sizeof key, "rc:{%.*s}", (int)len, name);
  return &k->ep[k->slot_ep[rc_redis_key_slot(key, (size_t)n < sizeof key ? (size_t)n : sizeof key - 1)]];
}

static struct endpoint *ep_of(struct rc_redis_link *k, const struct rc_topic *tp) {
  return ep_of_name(k, tp->name, strlen(tp->name));
}

static int command(struct endpoint *ep, int side, int argc, const char **argv,
                   const size_t *argvlen) {
  char *cmd;
  int n = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
  if (n < 0) return -ENOMEM;
  int ret = rc_bytebuf_append(&ep->side[side].out, cmd, (size_t)n, OUT_MAX);
  redisFreeCommand(cmd);
  return ret;
}

static int expect(struct endpoint *ep, uint8_t kind, void *p, uint32_t gen) {
  if (ep->fifo_n == ep->fifo_cap) {
    uint32_t cap = ep->fifo_cap ? ep->fifo_cap * 2 : 256;
    struct pending *v = malloc(cap * sizeof *v);
    if (!v) return -ENOMEM;
    for (uint32_t i = 0; i < ep->fifo_n; i++) v[i] = ep->fifo[(ep->fifo_head + i) % ep->fifo_cap];
    free(ep->fifo);
    ep->fifo = v;
    ep->fifo_cap = cap;
    ep->fifo_head = 0;
  }
  ep->fifo[(ep->fifo_head + ep->fifo_n++) % ep->fifo_cap] =
      (struct pending){kind, gen, p, rc_loop_now_ms(ep->k->l)};
  return 0;
}

static bool pop_expected(struct endpoint *ep, struct pending *out) {
  if (!ep->fifo_n) return false;
  *out = ep->fifo[ep->fifo_head];
  ep->fifo_head = (ep->fifo_head + 1) % ep->fifo_cap;
  ep->fifo_n--;
  return true;
}

static void link_down(struct rc_redis_link *k, const char *why);

/* A command on CMD with the reply it expects, both or neither: a reply with
 * no waiter (or a waiter with no command) would hand every later reply to the
 * wrong one. */
static int request(struct endpoint *ep, uint8_t kind, void *p, uint32_t gen, int argc,
                   const char **argv, const size_t *argvlen) {
  if (expect(ep, kind, p, gen) < 0) return -ENOMEM;
  if (command(ep, CMD, argc, argv, argvlen) < 0) {
    ep->fifo_n--;
    return -ENOMEM;
  }
  return 0;
}

/* A command whose reply only has to be no error. */
static void command_checked(struct endpoint *ep, int argc, const char **argv,
                            const size_t *argvlen) {
  if (request(ep, R_CHECK, NULL, 0, argc, argv, argvlen) < 0) {
    link_down(ep->k, "out of memory queueing a command");
    return;
  }
  ep->setup_pending++;
}

/* "rc:{T}" and the keys "rc:{T}:meta", "rc:{T}:log": the hash tag keeps a
 * topic's keys and channel in one Redis Cluster slot. */
static size_t topic_key(char *out, const struct rc_topic *tp, const char *suffix) {
  return (size_t)snprintf(out, NAME_MAX_LEN, "rc:{%s}%s", tp->name, suffix);
}

/* verb is SUBSCRIBE or UNSUBSCRIBE; a Cluster takes their sharded forms
 * (SSUBSCRIBE on the slot's master), since SPUBLISH reaches only those. */
static void subscribe(struct rc_redis_link *k, struct chan *ch, const char *verb) {
  char name[NAME_MAX_LEN], sverb[16];
  if (k->cluster) verb = (snprintf(sverb, sizeof sverb, "S%s", verb), sverb);
  const char *argv[2] = {verb, name};
  size_t argvlen[2] = {strlen(verb), topic_key(name, ch->tp, "")};
  if (command(ep_of(k, ch->tp), SUB, 2, argv, argvlen) < 0)
    rc_err("redis: out of memory subscribing to %s", name);
}

static void start_sync(struct rc_redis_link *k, struct chan *ch) {
  struct rc_topic *tp = ch->tp;
  ch->state = CH_SYNCING;
  ch->gen = ++k->gen;
  rc_counter_add(&k->stats.syncs, 1);
  char meta[NAME_MAX_LEN], log[NAME_MAX_LEN], from[24], count[16], known[24];
  char epoch[RC_EPOCH_TEXT_LEN + 1];
  /* A topic followed already needs what came after its last message, and
   * tells where it is (Redis may have come back older); a new one, the newest
   * --history messages. */
  bool live = tp->remote == RC_TOPIC_REMOTE_LIVE;
  rc_epoch_format(tp->epoch, epoch);
  const char *argv[9] = {"EVALSHA", k->sha[SCRIPT_SYNC], "2", meta, log, from, count, known, epoch};
  size_t argvlen[9] = {7, 40, 1, topic_key(meta, tp, ":meta"), topic_key(log, tp, ":log"),
                       (size_t)snprintf(from, sizeof from, "%" PRIu64, live ? tp->seq + 1 : 1),
                       (size_t)snprintf(count, sizeof count, "%" PRIu32, k->cfg.history),
                       (size_t)snprintf(known, sizeof known, "%" PRIu64, live ? tp->seq : 0),
                       RC_EPOCH_TEXT_LEN};
  rc_topic_ref(k->topics, tp); /* the reply's */
  if (request(ep_of(k, tp), R_SYNC, tp, ch->gen, live ? 9 : 7, argv, argvlen) < 0) {
    rc_topic_release(k->topics, tp);
    link_down(k, "out of memory syncing a topic"); /* the reconnect syncs it again */
  }
}

/* This node's count of tp's subscribers, for GET /topics across nodes. */
static void write_count(struct rc_redis_link *k, struct chan *ch, uint32_t n) {
  char key[NAME_MAX_LEN], num[16], ttl[16];
  const char *node = k->cfg.node_id;
  const char *argv[7] = {"EVALSHA", k->sha[SCRIPT_COUNT], "1", key, node, num, ttl};
  size_t argvlen[7] = {7, 40, 1, topic_key(key, ch->tp, ":nodes"), strlen(node),
                       (size_t)snprintf(num, sizeof num, "%" PRIu32, n),
                       (size_t)snprintf(ttl, sizeof ttl, "%u", COUNT_TTL_MS)};
  if (request(ep_of(k, ch->tp), R_COUNT, NULL, 0, 7, argv, argvlen) < 0) return; /* tried again next second */
  ch->counted = n;
  ch->count_due_ms = rc_loop_now_ms(k->l) + COUNT_RENEW_MS;
}

static void pattern_resync(struct rc_redis_link *k);

static void count_fired(struct rc_loop *l, struct rc_loop_timer *lt) {
  struct rc_redis_link *k = (struct rc_redis_link *)((char *)lt - offsetof(struct rc_redis_link, count_timer));
  if (k->stopped) return;
  uint64_t now = rc_loop_now_ms(l);
  bool late = false;
  for (unsigned e = 0; e < k->nep; e++) {
    const struct endpoint *ep = &k->ep[e];
    if (ep->fifo_n && now - ep->fifo[ep->fifo_head].sent_ms > REPLY_TIMEOUT_MS) late = true;
  }
  if (k->up && late) {
    link_down(k, "Redis answered nothing for 5 s");
  } else if (k->up) {
    for (struct chan *ch = k->chans; ch; ch = ch->next) {
      uint32_t n = atomic_load_explicit(&ch->tp->nsubs, memory_order_relaxed);
      /* Wildcard subscribers are not counted: a topic followed for them alone
       * has nothing to write. */
      if (ch->pattern && !n && (ch->counted == 0 || ch->counted == UINT32_MAX)) continue;
      if (n != ch->counted || now >= ch->count_due_ms) write_count(k, ch, n);
    }
    pattern_resync(k);
  }
  rc_loop_timer_set(l, &k->count_timer, now + COUNT_CHECK_MS);
}

/* ---- channels ---- */

static void drop_held(struct chan *ch) {
  while (ch->head) {
    struct held *h = ch->head;
    ch->head = h->next;
    free(h);
  }
  ch->tail = NULL;
  ch->nheld = 0;
  ch->held_bytes = 0;
}

/* Lets go of held messages a sync covered. */
static void drop_held_upto(struct chan *ch, uint64_t epoch, uint64_t seq) {
  struct held **pp = &ch->head;
  ch->tail = NULL;
  while (*pp) {
    struct held *h = *pp;
    if (h->epoch == epoch && h->seq <= seq) {
      *pp = h->next;
      ch->nheld--;
      ch->held_bytes -= h->len;
      free(h);
    } else {
      ch->tail = h;
      pp = &h->next;
    }
  }
}

static void hold(struct rc_redis_link *k, struct chan *ch, uint64_t epoch, uint64_t seq,
                 const uint8_t *p, size_t n, uint32_t synced) {
  if (ch->overflow) return;
  struct held *h = NULL;
  if (ch->nheld < HELD_MAX_MSGS && ch->held_bytes + n <= HELD_MAX_BYTES)
    h = malloc(sizeof *h + n);
  if (!h) {
    /* The sync after this one fills it from the stream (or says it cannot). */
    rc_counter_add(&k->stats.buffer_overflows, 1);
    ch->overflow = true;
    drop_held(ch);
    return;
  }
  *h = (struct held){.epoch = epoch, .seq = seq, .len = (uint32_t)n, .synced = synced};
  memcpy(h->data, p, n);
  if (ch->tail) ch->tail->next = h;
  else ch->head = h;
  ch->tail = h;
  ch->nheld++;
  ch->held_bytes += n;
}

/* Hands tp a live message; a hole or a new epoch syncs the topic again,
 * holding the message for after. One that still does not fit after a sync
 * (another epoch, or a seq Redis has not given) is not ringcast's to deliver:
 * dropped and counted, never synced for again. */
static void deliver(struct rc_redis_link *k, struct chan *ch, uint64_t epoch, uint64_t seq,
                    const uint8_t *p, size_t n, uint32_t synced) {
  int r = rc_pubsub_remote_message(k->ps, ch->tp, epoch, seq, p, n);
  if (r != -ERANGE && r != -ESTALE && r != -ENOMEM) return;
  if (synced && r != -ENOMEM) {
    rc_counter_add(&k->stats.foreign, 1);
    if (!k->foreign_logged)
      rc_warn("redis: a message on %s's channel fits neither its epoch nor its seq after a sync; "
              "dropped, and others like it without a word (ringcast_redis_foreign_total)",
              ch->tp->name);
    k->foreign_logged = true;
    return;
  }
  hold(k, ch, epoch, seq, p, n, synced + 1);
  start_sync(k, ch);
}

static void release_held(struct rc_redis_link *k, struct chan *ch) {
  while (ch->head && ch->state == CH_LIVE) {
    struct held *h = ch->head;
    ch->head = h->next;
    if (!ch->head) ch->tail = NULL;
    ch->nheld--;
    ch->held_bytes -= h->len;
    deliver(k, ch, h->epoch, h->seq, h->data, h->len, h->synced);
    free(h);
  }
}

static struct chan *chan_of(struct rc_redis_link *k, const char *name, size_t len,
                            struct rc_topic **tp_ref) {
  /* "rc:{T}" */
  if (len < 6 || memcmp(name, "rc:{", 4) != 0 || name[len - 1] != '}') return NULL;
  struct rc_topic *tp;
  if (rc_topic_acquire(k->topics, name + 4, len - 5, false, &tp) < 0) return NULL;
  *tp_ref = tp;
  return tp->remote_data;
}

static struct chan *chan_new(struct rc_redis_link *k, struct rc_topic *tp) {
  struct chan *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  rc_topic_ref(k->topics, tp);
  ch->tp = tp;
  ch->counted = UINT32_MAX;
  ch->next = k->chans;
  if (k->chans) k->chans->prev = ch;
  k->chans = ch;
  tp->remote_data = ch;
  return ch;
}

void rc_redis_link_interest(struct rc_redis_link *k, struct rc_topic *tp, bool on) {
  struct chan *ch = tp->remote_data;
  if (on) {
    if (ch && !ch->pattern) return;
    if (ch) {
      /* Its wildcards went, its exact subscribers stay: its own channel from
       * now on, and a sync once subscribed fills what fell between. */
      ch->pattern = false;
      ch->live_from = 0;
    } else if (!(ch = chan_new(k, tp))) {
      /* The subscription waits; the next join asks again. */
      rc_err("redis: out of memory following %s; its subscribers wait", tp->name);
      return;
    }
    if (k->up) {
      ch->state = CH_SUBSCRIBING;
      subscribe(k, ch, "SUBSCRIBE");
    }
    return;
  }
  if (!ch) return;
  if (k->up && ch->state != CH_IDLE && !ch->pattern) subscribe(k, ch, "UNSUBSCRIBE");
  if (k->up && ch->counted && ch->counted != UINT32_MAX) write_count(k, ch, 0);
  drop_held(ch);
  if (ch->prev) ch->prev->next = ch->next;
  else k->chans = ch->next;
  if (ch->next) ch->next->prev = ch->prev;
  tp->remote_data = NULL;
  rc_topic_release(k->topics, tp);
  free(ch);
}

/* ---- wildcards ---- */

static bool parse_message(const char *p, size_t n, uint64_t *epoch, uint64_t *seq,
                          const uint8_t **payload, size_t *len);

static int glob_cmp(const struct glob *x, const struct glob *y) { return rc_redis_glob_cmp(&x->g, &y->g); }

static void psubscribe(struct rc_redis_link *k, struct glob *g, const char *verb) {
  char text[RC_REDIS_GLOB_MAX + 1];
  memcpy(text, g->g.text, g->g.len);
  text[g->g.len] = '*';
  const char *argv[2] = {verb, text};
  size_t argvlen[2] = {strlen(verb), (size_t)g->g.len + 1};
  if (command(&k->ep[0], SUB, 2, argv, argvlen) < 0)
    rc_err("redis: out of memory on %s %.*s*", verb, (int)g->g.len, g->g.text);
}

static void count_globs(struct rc_redis_link *k) {
  uint64_t n = 0;
  for (size_t i = 0; i < k->nglobs; i++) n += k->globs[i].sub;
  atomic_store_explicit(&k->stats.patterns, n, memory_order_relaxed);
}

void rc_redis_link_patterns(struct rc_redis_link *k, const char *const *p, const size_t *len, size_t n) {
  struct rc_redis_glob *r = n ? malloc(n * sizeof *r) : NULL;
  struct glob *v = n ? malloc(n * sizeof *v) : NULL;
  if (n && (!r || !v)) {
    free(r);
    free(v);
    rc_err("redis: out of memory updating the wildcard patterns followed; they stay as they were");
    return;
  }
  for (size_t i = 0; i < n; i++) rc_redis_glob_of(p[i], len[i], &r[i]);
  size_t cut, max = k->cfg.max_globs ? k->cfg.max_globs : 1;
  size_t m = rc_redis_glob_reduce(r, n, max, &cut);
  if (cut != k->glob_cut) {
    if (cut == SIZE_MAX)
      rc_info("redis: this node's wildcards fit %zu pattern subscriptions again (--redis-patterns %zu)", m, max);
    else
      rc_warn("redis: this node's wildcards need more than --redis-patterns %zu pattern subscriptions; "
              "their prefixes are cut to %zu characters, so more messages cross to this node and are "
              "dropped here (ringcast_redis_pattern_misses_total)", max, cut);
    k->glob_cut = cut;
  }
  for (size_t i = 0; i < m; i++) v[i] = (struct glob){.g = r[i]};
  free(r);
  /* New ones first, then the old ones go: on one connection, in that order,
   * no message falls between them. Both lists are sorted. */
  size_t o = 0;
  for (size_t i = 0; i < m; i++) {
    while (o < k->nglobs && glob_cmp(&k->globs[o], &v[i]) < 0) o++;
    bool had = o < k->nglobs && glob_cmp(&k->globs[o], &v[i]) == 0 && k->globs[o].sub;
    /* A Cluster's SPUBLISH reaches no pattern subscription: the session
     * refuses wildcards there (rc_redis_link_config.cluster_masters). */
    if (k->up && !k->cluster) {
      if (had) k->globs[o].sub = false; /* carried over, not unsubscribed below */
      else psubscribe(k, &v[i], "PSUBSCRIBE");
      v[i].sub = true;
    }
  }
  for (size_t i = 0; i < k->nglobs; i++)
    if (k->globs[i].sub && k->up && !k->cluster) psubscribe(k, &k->globs[i], "PUNSUBSCRIBE");
  free(k->globs);
  k->globs = v;
  k->nglobs = m;
  count_globs(k);
}

/* A message through a pattern subscription: to its topic's home, which
 * follows it for its wildcard subscribers. */
static void pattern_message(struct rc_redis_link *k, const redisReply *chan, const redisReply *d) {
  rc_counter_add(&k->stats.pattern_messages, 1);
  uint64_t epoch, seq;
  const uint8_t *payload;
  size_t len;
  const char *name = chan->str;
  if (chan->len < 6 || memcmp(name, "rc:{", 4) != 0 || name[chan->len - 1] != '}' ||
      d->type != REDIS_REPLY_STRING || !parse_message(d->str, d->len, &epoch, &seq, &payload, &len)) {
    rc_counter_add(&k->stats.foreign, 1);
    return;
  }
  int r = rc_pubsub_remote_route(k->ps, name + 4, chan->len - 5, epoch, seq, payload, len);
  if (r == -ENOENT) {
    rc_counter_add(&k->stats.pattern_misses, 1);
  } else if (r < 0) {
    rc_counter_add(&k->stats.pattern_dropped, 1);
    if (!k->drop_logged && r == -ENOSPC)
      rc_warn("redis: %.*s is new here and --max-topics is reached: this node's wildcard "
              "subscribers miss its messages (ringcast_redis_pattern_dropped_total; logged once)",
              (int)(chan->len - 5), name + 4);
    else if (!k->drop_logged)
      rc_warn("redis: a message of %.*s for wildcard subscribers was dropped on the way to its "
              "home shard (%s); it is refilled from Redis' stream (logged once)",
              (int)(chan->len - 5), name + 4, strerror(-r));
    k->drop_logged = true;
  }
}

void rc_redis_link_arrived(struct rc_redis_link *k, struct rc_topic *tp, uint64_t epoch,
                           uint64_t seq, const uint8_t *payload, size_t len) {
  struct chan *ch = tp->remote_data;
  if (!ch) {
    if (!(ch = chan_new(k, tp))) {
      rc_err("redis: out of memory following %s for wildcard subscribers; its next message tries again",
             tp->name);
      return;
    }
    ch->pattern = true;
    ch->live_from = seq;
    if (!k->up) return; /* synced once the link is back, from live_from */
    hold(k, ch, epoch, seq, payload, len, 1);
    start_sync(k, ch);
    return;
  }
  ch->met = true;
  if (ch->state == CH_LIVE) deliver(k, ch, epoch, seq, payload, len, 0);
  else if (ch->state == CH_SUBSCRIBING || ch->state == CH_SYNCING) hold(k, ch, epoch, seq, payload, len, 1);
  /* CH_IDLE: this shard's link is down; its sync once up fills the message in. */
}

bool rc_redis_link_via_patterns(struct rc_redis_link *k, struct rc_topic *tp) {
  struct chan *ch = tp->remote_data;
  /* Only once a pattern subscription is known to bring its messages: then
   * leaving the channel loses nothing. */
  if (!ch || ch->pattern || !ch->met || ch->state != CH_LIVE) return false;
  if (k->up) subscribe(k, ch, "UNSUBSCRIBE");
  ch->pattern = true;
  return true;
}

void rc_redis_link_lost(struct rc_redis_link *k, struct rc_topic *tp, uint64_t from) {
  struct chan *ch = tp->remote_data;
  if (!ch) {
    /* Followed from the first message dropped: its sync delivers from there. */
    if (!(ch = chan_new(k, tp))) {
      rc_err("redis: out of memory following %s for wildcard subscribers", tp->name);
      return;
    }
    ch->pattern = true;
    ch->live_from = from;
    if (k->up) start_sync(k, ch);
    return;
  }
  if (ch->live_from && from < ch->live_from) ch->live_from = from; /* its first sync reaches back */
  if (ch->state == CH_LIVE && k->up) start_sync(k, ch);
  else if (ch->state == CH_SYNCING || ch->state == CH_SUBSCRIBING) ch->overflow = true; /* once more after */
}

/* A pattern subscription came back (a home of patterns reconnected): topics
 * followed through patterns may have missed messages meanwhile, on any shard. */
static void pattern_resync(struct rc_redis_link *k) {
  if (!k->cfg.pattern_gen) return;
  uint64_t g = atomic_load_explicit(k->cfg.pattern_gen, memory_order_relaxed);
  if (g == k->pattern_gen_seen) return;
  k->pattern_gen_seen = g;
  if (!k->up) return; /* its own reconnect syncs everything */
  for (struct chan *ch = k->chans; ch; ch = ch->next)
    if (ch->pattern && ch->state == CH_LIVE) start_sync(k, ch);
}

/* ---- up and down ---- */

static void retry_fired(struct rc_loop *l, struct rc_loop_timer *lt);

static void detach(struct rc_redis_link *k, struct side *s) {
  if (s->c) {
    s->c->layer = NULL; /* its on_close has nothing left to tell */
    rc_conn_abort(k->l, s->c);
    s->c = NULL;
  }
  if (s->rd) redisReaderFree(s->rd);
  s->rd = NULL;
  rc_bytebuf_free(&s->out);
}

/* Answers everything ep's command connection still owed with a failure. */
static void fail_expected(struct rc_redis_link *k, struct endpoint *ep) {
  struct pending p;
  while (pop_expected(ep, &p)) {
    if (p.kind == R_PUBLISH) {
      rc_counter_add(&k->stats.publishes_error, 1);
      rc_pubsub_remote_done(k->ps, (uint64_t)(uintptr_t)p.p, -ECONNRESET);
    } else if (p.kind == R_SYNC) {
      rc_topic_release(k->topics, p.p);
    } else if (p.kind == R_COUNT_READ) {
      struct count_ask *a = p.p;
      k->cfg.counted(k->l, a->token, &(struct rc_redis_count){.topic = a->topic, .err = -ECONNRESET});
      free(a);
    }
  }
  ep->setup_pending = 0;
  ep->channels = 0;
}

/* The next address to ask for the slot map: ep[0] is it until Redis says. */
static void next_seed(struct rc_redis_link *k) {
  k->seed_next = (k->seed_next + 1) % k->nseeds;
  k->nep = 1;
  k->mapped = false;
  k->ep[0].addr = k->seeds[k->seed_next];
  k->ep[0].addr_len = k->seed_len[k->seed_next];
}

/* Fails what is in flight, forgets subscriptions and the slot map, and tries
 * again later: whatever went wrong on whichever endpoint (a connection, a
 * MOVED), the whole link goes, and its return syncs every followed topic. */
static void link_down(struct rc_redis_link *k, const char *why) {
  if (!k->stopped && (k->up || !k->down_logged)) {
    rc_warn("redis %s:%u: %s; publishes fail until it is back, subscribers stay connected",
            k->cfg.url->host, k->cfg.url->port, why);
    k->down_logged = true;
  }
  if (k->ready && !k->stopped) rc_counter_add(&k->stats.disconnects, 1); /* a stop is no failure */
  k->up = k->ready = false;
  atomic_store_explicit(&k->stats.up, 0, memory_order_relaxed);
  atomic_store_explicit(&k->stats.channels, 0, memory_order_relaxed);
  for (unsigned e = 0; e < k->nep; e++) fail_expected(k, &k->ep[e]);
  for (struct chan *ch = k->chans; ch; ch = ch->next) {
    ch->state = CH_IDLE;
    ch->overflow = false;
    drop_held(ch);
  }
  for (size_t i = 0; i < k->nglobs; i++) k->globs[i].sub = false;
  k->resubscribing = 0;
  k->patterns_confirmed = 0;
  atomic_store_explicit(&k->stats.patterns, 0, memory_order_relaxed);
  for (unsigned e = 0; e < k->nep; e++)
    for (int i = 0; i < 2; i++) detach(k, &k->ep[e].side[i]);
  next_seed(k);
  if (k->stopped) return;
  rc_loop_timer_set(k->l, &k->retry, rc_loop_now_ms(k->l) + k->backoff_ms);
  k->backoff_ms = k->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff_ms * 2;
}

/* AUTH on both connections, SELECT and the scripts on the command one. */
static void setup_endpoint(struct endpoint *ep) {
  const struct rc_redis_url *u = ep->k->cfg.url;
  for (int i = 0; i < 2; i++) {
    if (!u->password[0]) break;
    const char *argv[3] = {"AUTH", u->user, u->password};
    size_t argvlen[3] = {4, strlen(u->user), strlen(u->password)};
    int argc = u->user[0] ? 3 : 2;
    if (!u->user[0]) {
      argv[1] = u->password;
      argvlen[1] = argvlen[2];
    }
    if (i == CMD) command_checked(ep, argc, argv, argvlen);
    else command(ep, SUB, argc, argv, argvlen); /* its answer comes before any subscription's */
  }
  if (u->db) {
    char db[16];
    const char *argv[2] = {"SELECT", db};
    size_t argvlen[2] = {6, (size_t)snprintf(db, sizeof db, "%" PRIu32, u->db)};
    command_checked(ep, 2, argv, argvlen);
  }
  static const unsigned char *const bodies[SCRIPT_NR] = {rc_redis_publish_lua, rc_redis_sync_lua,
                                                        rc_redis_count_lua};
  const size_t lens[SCRIPT_NR] = {rc_redis_publish_lua_len, rc_redis_sync_lua_len,
                                  rc_redis_count_lua_len};
  for (int i = 0; i < SCRIPT_NR; i++) {
    const char *argv[3] = {"SCRIPT", "LOAD", (const char *)bodies[i]};
    size_t argvlen[3] = {6, 4, lens[i]};
    command_checked(ep, 3, argv, argvlen);
  }
}

/* Once every endpoint accepted its set-up: the link counts as connected (a
 * wrong password is no connect). */
static void maybe_ready(struct rc_redis_link *k) {
  if (!k->up || k->ready) return;
  for (unsigned e = 0; e < k->nep; e++)
    if (k->ep[e].setup_pending) return;
  k->ready = true;
  k->down_logged = false;
  k->backoff_ms = BACKOFF_MIN_MS;
  rc_counter_add(&k->stats.connects, 1);
  atomic_store_explicit(&k->stats.up, 1, memory_order_relaxed);
  rc_info("redis %s:%u: connected%s; following %s", k->cfg.url->host, k->cfg.url->port,
          k->cluster ? " (Redis Cluster, sharded pub/sub)" : "",
          k->chans ? "its topics again (each is synced: refilled or a gap announced)" : "no topic yet");
}

/* The map is known and every connection open: commands pipeline behind the
 * set-up from now on, and every followed topic is subscribed and synced. */
static void go_live(struct rc_redis_link *k) {
  k->up = true;
  for (struct chan *ch = k->chans; ch; ch = ch->next) {
    ch->counted = UINT32_MAX; /* Redis may have lost it: written again */
    if (ch->pattern) {
      start_sync(k, ch); /* its messages come through a pattern subscription */
      continue;
    }
    ch->state = CH_SUBSCRIBING;
    subscribe(k, ch, "SUBSCRIBE");
  }
  if (!k->cluster) {
    for (size_t i = 0; i < k->nglobs; i++) {
      psubscribe(k, &k->globs[i], "PSUBSCRIBE");
      k->globs[i].sub = true;
      k->resubscribing++;
    }
  } else if (k->nglobs) {
    rc_warn("redis: Redis Cluster has no pattern subscriptions for sharded pub/sub; this shard's "
            "%zu wildcard glob(s) get local messages only", k->nglobs);
  }
  count_globs(k);
  /* Pattern messages were missed while this was down, for topics whose homes
   * are other shards too: once these are back, every shard syncs those. */
  k->pattern_gen_seen = k->cfg.pattern_gen ? atomic_load(k->cfg.pattern_gen) : 0;
  maybe_ready(k);
}

static void link_up(struct rc_redis_link *k) {
  for (unsigned e = 0; e < k->nep; e++) setup_endpoint(&k->ep[e]);
  if (k->mapped) {
    go_live(k);
    return;
  }
  /* Standalone or Cluster? Asked on every (re)connect, so a reconnect also
   * learns a changed topology; pipelined behind the set-up, so standalone
   * costs no extra round trip. */
  const char *argv[2] = {"CLUSTER", "SLOTS"};
  size_t argvlen[2] = {7, 5};
  if (request(&k->ep[0], R_DISCOVER, NULL, 0, 2, argv, argvlen) < 0)
    link_down(k, "out of memory asking for the slot map");
}

static void connect_failed(struct rc_redis_link *k, int err) {
  char why[96];
  snprintf(why, sizeof why, "cannot connect: %s", strerror(-err));
  link_down(k, why);
}

static bool all_connected(const struct rc_redis_link *k) {
  for (unsigned e = 0; e < k->nep; e++)
    if (!k->ep[e].side[CMD].c || !k->ep[e].side[SUB].c) return false;
  return true;
}

static void connected(struct rc_loop *l, struct rc_conn *c, int res, void *arg) {
  struct side *s = arg;
  struct rc_redis_link *k = s->ep->k;
  s->connecting = false;
  /* Stopped, or an endpoint the link no longer has (the map changed while
   * it connected). */
  if (k->stopped || (unsigned)(s->ep - k->ep) >= k->nep) {
    if (c) rc_conn_abort(l, c);
    return;
  }
  if (res < 0) {
    connect_failed(k, res);
    return;
  }
  s->c = c;
  s->rd = redisReaderCreate();
  if (!s->rd) {
    link_down(k, "out of memory");
    return;
  }
  if (all_connected(k)) link_up(k);
}

static int connect_side(struct rc_redis_link *k, struct side *s) {
  if (s->c || s->connecting) return 0;
  int ret = rc_loop_connect(k->l, (const struct sockaddr *)&s->ep->addr, s->ep->addr_len,
                            CONNECT_TIMEOUT_MS, &link_ops, s, connected, s);
  if (ret < 0) {
    connect_failed(k, ret);
    return ret;
  }
  s->connecting = true;
  return 0;
}

/* Opens both connections of every endpoint; a connect that fails at once has
 * taken the link down and scheduled the next try already. */
static void connect_all(struct rc_redis_link *k) {
  for (unsigned e = 0; e < k->nep; e++)
    for (int i = 0; i < 2; i++)
      if (connect_side(k, &k->ep[e].side[i]) < 0) return;
}

static void retry_fired(struct rc_loop *l, struct rc_loop_timer *lt) {
  (void)l;
  struct rc_redis_link *k = (struct rc_redis_link *)((char *)lt - offsetof(struct rc_redis_link, retry));
  if (k->stopped) return;
  connect_all(k);
}

/* "ip" and port from CLUSTER SLOTS as an address; an unknown ip ("" or "?",
 * a node that never learnt its own) is the seed's host. */
static int node_addr(struct rc_redis_link *k, const redisReply *ip, long long port,
                     struct sockaddr_storage *out, socklen_t *len) {
  if (ip->type != REDIS_REPLY_STRING || port <= 0 || port > 65535) return -EINVAL;
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (!ip->len || strcmp(ip->str, "?") == 0) {
    *out = k->seeds[0];
    *len = k->seed_len[0];
  } else if (inet_pton(AF_INET, ip->str, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    *len = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip->str, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    *len = sizeof *v6;
  } else {
    return -EINVAL; /* a host name (cluster-preferred-endpoint-type): no blocking lookup here */
  }
  if (out->ss_family == AF_INET) v4->sin_port = htons((uint16_t)port);
  else v6->sin6_port = htons((uint16_t)port);
  return 0;
}

static int find_master(struct rc_redis_link *k, unsigned n, const struct sockaddr_storage *a, socklen_t len) {
  for (unsigned e = 0; e < n; e++)
    if (k->ep[e].addr_len == len && memcmp(&k->ep[e].addr, a, len) == 0) return (int)e;
  return -1;
}

/* CLUSTER SLOTS: [[first, last, [ip, port, id, ...], replicas...], ...].
 * Fills ep[] with the masters and slot_ep; NULL, or why not. */
static const char *read_slot_map(struct rc_redis_link *k, const redisReply *r, unsigned *nmasters) {
  unsigned n = 0;
  uint32_t covered = 0;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *range = r->element[i];
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
        range->element[0]->type != REDIS_REPLY_INTEGER || range->element[1]->type != REDIS_REPLY_INTEGER ||
        range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2 ||
        range->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
      return "an unexpected CLUSTER SLOTS answer";
    long long first = range->element[0]->integer, last = range->element[1]->integer;
    if (first < 0 || last < first || last >= RC_REDIS_SLOTS) return "a slot out of range in CLUSTER SLOTS";
    struct sockaddr_storage a;
    socklen_t len;
    const redisReply *node = range->element[2];
    if (node_addr(k, node->element[0], node->element[1]->integer, &a, &len) < 0)
      return "a master's address that is not an IP address (cluster-preferred-endpoint-type)";
    int e = find_master(k, n, &a, len);
    if (e < 0) {
      if (n == MASTERS_MAX) return "the Cluster has more than 16 masters (ringcast's limit)";
      e = (int)n++;
      memcpy(&k->ep[e].addr, &a, sizeof a);
      k->ep[e].addr_len = len;
    }
    for (long long s = first; s <= last; s++) k->slot_ep[s] = (uint8_t)e;
    covered += (uint32_t)(last - first + 1);
  }
  /* Overlapping ranges would double count; a Cluster never reports them. */
  if (covered != RC_REDIS_SLOTS) return "the Cluster does not cover every slot (CLUSTER SLOTS)";
  *nmasters = n;
  return NULL;
}

/* The seed's answer to CLUSTER SLOTS. An error is a standalone Redis (or one
 * that will not say): the seed is the one endpoint, live at once. A map
 * replaces the seed with one endpoint per master; they connect, set up and
 * go live like the seed would have. */
static void discovered(struct rc_redis_link *k, const redisReply *r) {
  if (r->type == REDIS_REPLY_ERROR) {
    k->cluster = false;
    k->mapped = true;
    atomic_store_explicit(&k->stats.cluster_masters, 0, memory_order_relaxed);
    if (k->cfg.cluster_masters) atomic_store_explicit(k->cfg.cluster_masters, 0, memory_order_relaxed);
    go_live(k);
    return;
  }
  unsigned n = 0;
  const char *why = r->type == REDIS_REPLY_ARRAY ? read_slot_map(k, r, &n) : "an unexpected CLUSTER SLOTS answer";
  if (!why && !n) why = "the Cluster has no slots assigned yet";
  if (why) {
    rc_err("redis: %s", why);
    link_down(k, why);
    return;
  }
  for (int i = 0; i < 2; i++) detach(k, &k->ep[0].side[i]);
  k->nep = n;
  k->cluster = true;
  k->mapped = true;
  atomic_store_explicit(&k->stats.cluster_masters, n, memory_order_relaxed);
  /* Published before any topic can be followed through the Cluster, so a
   * wildcard subscribe is refused from now on (websocket.c, request.c). */
  if (k->cfg.cluster_masters) atomic_store_explicit(k->cfg.cluster_masters, n, memory_order_relaxed);
  /* The masters become seeds too: any of them can answer the next CLUSTER SLOTS. */
  k->nseeds = 1;
  k->seed_next = 0;
  for (unsigned e = 0; e < n; e++) {
    memcpy(&k->seeds[k->nseeds], &k->ep[e].addr, sizeof k->ep[e].addr);
    k->seed_len[k->nseeds++] = k->ep[e].addr_len;
  }
  connect_all(k);
}

void rc_redis_link_start(struct rc_redis_link *k, struct rc_loop *l) {
  k->l = l;
  k->retry.fn = retry_fired;
  k->count_timer.fn = count_fired;
  rc_loop_timer_set(l, &k->count_timer, rc_loop_now_ms(l) + COUNT_CHECK_MS);
  retry_fired(l, &k->retry);
}

void rc_redis_link_flush(struct rc_redis_link *k) {
  for (unsigned e = 0; e < k->nep; e++)
    for (int i = 0; i < 2; i++) {
      struct side *s = &k->ep[e].side[i];
      if (!s->out.len || !s->c) continue;
      struct rc_frame *f = rc_frame_create((uint16_t)rc_loop_id(k->l), s->out.len);
      if (!f) {
        link_down(k, "out of memory sending to Redis");
        return;
      }
      memcpy(f->data, s->out.p, s->out.len);
      /* What waits here is bounded before it gets here (--max-backlog), not by a
       * client's --max-queue. */
      if (rc_conn_push_frame(k->l, s->c, f) < 0) {
        link_down(k, "sending to Redis failed");
        return;
      }
      if (s->out.cap > (1u << 20)) rc_bytebuf_free(&s->out); /* memory comes back after a burst */
      else s->out.len = 0;
    }
}

void rc_redis_link_stop(struct rc_redis_link *k) {
  if (k->stopped) return;
  k->stopped = true;
  if (k->l) {
    rc_loop_timer_cancel(k->l, &k->retry);
    rc_loop_timer_cancel(k->l, &k->count_timer);
  }
  if (k->up) rc_info("redis: closing the link (server stopping)");
  link_down(k, "server stopping");
}

void rc_redis_link_destroy(struct rc_redis_link *k) {
  if (!k) return;
  k->stopped = true;
  for (unsigned e = 0; e < MASTERS_MAX; e++) {
    struct pending p;
    while (pop_expected(&k->ep[e], &p)) {
      if (p.kind == R_PUBLISH) rc_pubsub_remote_done(k->ps, (uint64_t)(uintptr_t)p.p, -ECONNRESET);
      else if (p.kind == R_SYNC) rc_topic_release(k->topics, p.p);
      else if (p.kind == R_COUNT_READ) free(p.p); /* the loop is gone: nobody to answer */
    }
  }
  while (k->chans) {
    k->chans->pattern = false;
    rc_redis_link_interest(k, k->chans->tp, false);
  }
  free(k->globs);
  for (unsigned e = 0; e < MASTERS_MAX; e++) {
    for (int i = 0; i < 2; i++) {
      if (k->ep[e].side[i].rd) redisReaderFree(k->ep[e].side[i].rd);
      rc_bytebuf_free(&k->ep[e].side[i].out);
    }
    free(k->ep[e].fifo);
  }
  free(k->slot_ep);
  free(k);
}

/* ---- publishes ---- */

int rc_redis_link_publish(struct rc_redis_link *k, struct rc_topic *tp, const uint8_t *payload,
                          size_t len, uint64_t ticket) {
  if (k->stopped) return -ESHUTDOWN;
  if (!k->up) {
    rc_counter_add(&k->stats.publishes_refused, 1);
    return -ENOTCONN;
  }
  char meta[NAME_MAX_LEN], log[NAME_MAX_LEN], chan[NAME_MAX_LEN], keep[16];
  const char *argv[9] = {"EVALSHA", k->sha[SCRIPT_PUBLISH], "2", meta, log, chan,
                         (const char *)payload, keep, k->cluster ? "SPUBLISH" : "PUBLISH"};
  size_t argvlen[9] = {7, 40, 1, topic_key(meta, tp, ":meta"), topic_key(log, tp, ":log"),
                       topic_key(chan, tp, ""), len,
                       (size_t)snprintf(keep, sizeof keep, "%" PRIu32, k->cfg.history),
                       k->cluster ? 8 : 7};
  struct endpoint *ep = ep_of(k, tp);
  if (expect(ep, R_PUBLISH, (void *)(uintptr_t)ticket, 0) < 0) return -ENOMEM;
  if (command(ep, CMD, 9, argv, argvlen) < 0) {
    ep->fifo_n--; /* the one just expected */
    return -ENOMEM;
  }
  return 0;
}

int rc_redis_link_read_count(struct rc_redis_link *k, const char *topic, size_t len, uint64_t token) {
  if (!k->ready) return -ENOTCONN;
  char key[NAME_MAX_LEN];
  const char *argv[7] = {"EVALSHA", k->sha[SCRIPT_COUNT], "1", key, "", "0", "0"};
  size_t argvlen[7] = {7, 40, 1, (size_t)snprintf(key, sizeof key, "rc:{%.*s}:nodes", (int)len, topic),
                       0, 1, 1};
  struct count_ask *a = malloc(sizeof *a);
  struct endpoint *ep = ep_of_name(k, topic, len);
  if (!a || len > RC_TOPIC_NAME_MAX || expect(ep, R_COUNT_READ, a, 0) < 0) {
    free(a);
    return -ENOMEM;
  }
  a->token = token;
  memcpy(a->topic, topic, len);
  a->topic[len] = 0;
  if (command(ep, CMD, 7, argv, argvlen) < 0) {
    ep->fifo_n--;
    free(a);
    return -ENOMEM;
  }
  return 0;
}

static void count_read(struct rc_redis_link *k, struct count_ask *a, const redisReply *r) {
  struct rc_redis_count c = {.topic = a->topic};
  uint64_t token = a->token;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
    c.err = -EIO;
    rc_warn("redis: reading subscriber counts failed: %s",
            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
  } else {
    c.total = (uint64_t)r->element[0]->integer;
    for (size_t i = 1; i + 1 < r->elements && c.n < RC_REDIS_COUNT_NODES; i += 2) {
      const redisReply *name = r->element[i], *n = r->element[i + 1];
      if (name->type != REDIS_REPLY_STRING || n->type != REDIS_REPLY_INTEGER) continue;
      c.node[c.n] = name->str;
      c.node_len[c.n] = name->len;
      c.count[c.n++] = (uint64_t)n->integer;
    }
  }
  k->cfg.counted(k->l, token, &c);
  free(a);
}

/* ---- replies ---- */

static bool parse_epoch(const redisReply *r, uint64_t *out) {
  return r && r->type == REDIS_REPLY_STRING && rc_epoch_parse(r->str, r->len, out);
}

/* "<epoch>:<seq>:<payload>" */
static bool parse_message(const char *p, size_t n, uint64_t *epoch, uint64_t *seq,
                          const uint8_t **payload, size_t *len) {
  if (n < RC_EPOCH_TEXT_LEN + 3 || p[RC_EPOCH_TEXT_LEN] != ':') return false;
  if (!rc_epoch_parse(p, RC_EPOCH_TEXT_LEN, epoch)) return false;
  size_t i = RC_EPOCH_TEXT_LEN + 1;
  uint64_t v = 0;
  size_t digits = 0;
  while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 19) {
    v = v * 10 + (uint64_t)(p[i++] - '0');
    digits++;
  }
  if (!digits || i >= n || p[i] != ':' || v == 0) return false;
  *seq = v;
  *payload = (const uint8_t *)p + i + 1;
  *len = n - i - 1;
  return true;
}

static void synced(struct rc_redis_link *k, struct rc_topic *tp, uint32_t gen, redisReply *r) {
  struct chan *ch = tp->remote_data;
  if (!ch || ch->state != CH_SYNCING || ch->gen != gen) return; /* a newer sync, or not followed */
  uint64_t epoch;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      !parse_epoch(r->element[1], &epoch) || r->element[2]->type != REDIS_REPLY_ARRAY ||
      r->element[2]->elements % 2) {
    rc_err("redis: unexpected answer syncing %s%s%s", tp->name,
           r->type == REDIS_REPLY_ERROR ? ": " : "", r->type == REDIS_REPLY_ERROR ? r->str : "");
    link_down(k, "a sync failed");
    return;
  }
  size_t n = r->element[2]->elements / 2;
  uint64_t seq = (uint64_t)r->element[0]->integer;
  struct rc_remote_entry *e = n + ch->nheld ? malloc((n + ch->nheld) * sizeof *e) : NULL;
  if (n + ch->nheld && !e) {
    link_down(k, "out of memory syncing");
    return;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const redisReply *s = r->element[2]->element[2 * i], *p = r->element[2]->element[2 * i + 1];
    if (s->type != REDIS_REPLY_INTEGER || s->integer <= 0 || p->type != REDIS_REPLY_STRING) continue;
    e[m++] = (struct rc_remote_entry){(uint64_t)s->integer, (const uint8_t *)p->str, p->len};
  }
  /* Messages held meanwhile are Redis' too: those up to where it stands
   * extend its history (which --history 0 keeps empty, and which may have
   * been trimmed), rather than be announced as a gap and then dropped. */
  uint64_t last = m ? e[m - 1].seq : 0;
  for (struct held *h = ch->head; h; h = h->next)
    if (h->epoch == epoch && h->seq > last && h->seq <= seq) {
      e[m++] = (struct rc_remote_entry){h->seq, h->data, h->len};
      last = h->seq;
    }
  uint64_t live_from = ch->pattern && tp->remote != RC_TOPIC_REMOTE_LIVE ? ch->live_from : 0;
  rc_pubsub_remote_synced(k->ps, tp, epoch, seq, e, m, live_from);
  ch->live_from = 0;
  free(e);
  drop_held_upto(ch, epoch, seq);
  ch->state = CH_LIVE;
  bool again = ch->overflow;
  ch->overflow = false;
  release_held(k, ch);
  if (again && ch->state == CH_LIVE) start_sync(k, ch);
}

/* A Cluster's answer that the map the link holds is wrong or the Cluster
 * cannot serve: the whole link goes down and finds the map again. */
static bool is_topology_error(const redisReply *r) {
  static const char *const codes[] = {"MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN", "CROSSSLOT"};
  if (r->type != REDIS_REPLY_ERROR) return false;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (strncmp(r->str, codes[i], strlen(codes[i])) == 0) return true;
  return false;
}

static void on_command_reply(struct rc_redis_link *k, struct endpoint *ep, redisReply *r) {
  struct pending p;
  if (!pop_expected(ep, &p)) {
    link_down(k, "an answer from Redis that nothing asked for");
    return;
  }
  /* Someone flushed the scripts (SCRIPT FLUSH, a failover to a replica that
   * never loaded them): whatever this answers failed; a new connection loads
   * them all again. */
  bool noscript = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
  bool moved = is_topology_error(r);
  char why[160];
  if (moved) snprintf(why, sizeof why, "Redis Cluster's topology changed (%.120s)", r->str);
  switch (p.kind) {
  case R_CHECK:
    if (r->type == REDIS_REPLY_ERROR) {
      rc_err("redis: set-up command refused: %s", r->str);
      link_down(k, "Redis refused the link's set-up (AUTH, SELECT or SCRIPT LOAD)");
      break;
    }
    if (ep->setup_pending && --ep->setup_pending == 0) maybe_ready(k);
    break;
  case R_DISCOVER:
    discovered(k, r);
    return; /* the endpoints changed under ep */
  case R_PUBLISH: {
    uint64_t ticket = (uint64_t)(uintptr_t)p.p;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0) {
      rc_counter_add(&k->stats.publishes_ok, 1);
      rc_pubsub_remote_done(k->ps, ticket, r->element[0]->integer);
      break;
    }
    rc_counter_add(&k->stats.publishes_error, 1);
    if (!moved)
      rc_warn("redis: a publish was refused: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
    /* Not run where the slot moved: an error like a lost connection's. */
    rc_pubsub_remote_done(k->ps, ticket, moved ? -ECONNRESET : -EIO);
    break;
  }
  case R_SYNC:
    if (!moved) synced(k, p.p, p.gen, r);
    rc_topic_release(k->topics, p.p);
    break;
  case R_COUNT_READ:
    count_read(k, p.p, r);
    break;
  case R_COUNT:
    if (r->type == REDIS_REPLY_ERROR && !k->count_error_logged && !noscript && !moved) {
      rc_warn("redis: writing a subscriber count failed: %s (logged once)", r->str);
      k->count_error_logged = true;
    }
    break;
  }
  if (moved && k->up) link_down(k, why);
  else if (noscript && k->up) link_down(k, "Redis lost ringcast's scripts (SCRIPT FLUSH or a failover)");
}

/* The sum of every endpoint's channels, less the patterns Redis counts
 * with them on a standalone connection (those it confirmed: what was sent
 * and not yet answered is in neither count). */
static void count_channels(struct rc_redis_link *k) {
  uint64_t n = 0, p = k->patterns_confirmed;
  for (unsigned e = 0; e < k->nep; e++) n += k->ep[e].channels;
  atomic_store_explicit(&k->stats.channels, n > p ? n - p : 0, memory_order_relaxed);
}

static void on_subscriber_reply(struct rc_redis_link *k, struct endpoint *ep, redisReply *r) {
  if (r->type == REDIS_REPLY_STATUS) return; /* AUTH's OK */
  if (r->type == REDIS_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "Redis refused a subscription (%.140s)", r->str);
    rc_err("redis: the subscriber connection was refused: %s", r->str);
    link_down(k, why);
    return;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[0]->type == REDIS_REPLY_STRING &&
      strcmp(r->element[0]->str, "pmessage") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
    pattern_message(k, r->element[2], r->element[3]);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING) {
    link_down(k, "an unexpected message on the subscriber connection");
    return;
  }
  const char *kind = r->element[0]->str;
  if (strcmp(kind, "psubscribe") == 0 || strcmp(kind, "punsubscribe") == 0) {
    bool on = kind[1] == 's';
    if (on) k->patterns_confirmed++;
    else if (k->patterns_confirmed) k->patterns_confirmed--;
    if (r->element[2]->type == REDIS_REPLY_INTEGER) {
      ep->channels = (uint64_t)r->element[2]->integer;
      count_channels(k);
    }
    if (on && k->resubscribing && --k->resubscribing == 0 && k->cfg.pattern_gen)
      atomic_fetch_add(k->cfg.pattern_gen, 1);
    return;
  }
  const redisReply *name = r->element[1];
  struct rc_topic *tp = NULL;
  struct chan *ch = chan_of(k, name->str, name->len, &tp);
  /* A Cluster's sharded forms (SSUBSCRIBE, SPUBLISH) answer and deliver
   * as "ssubscribe", "sunsubscribe" and "smessage". */
  bool message = strcmp(kind, "message") == 0 || strcmp(kind, "smessage") == 0;
  bool subscribed = strcmp(kind, "subscribe") == 0 || strcmp(kind, "ssubscribe") == 0;
  bool unsubscribed = strcmp(kind, "unsubscribe") == 0 || strcmp(kind, "sunsubscribe") == 0;
  if (message) {
    rc_counter_add(&k->stats.messages, 1);
    uint64_t epoch, seq;
    const uint8_t *payload;
    size_t len;
    const redisReply *d = r->element[2];
    if (ch && d->type == REDIS_REPLY_STRING &&
        parse_message(d->str, d->len, &epoch, &seq, &payload, &len)) {
      if (ch->state == CH_LIVE) deliver(k, ch, epoch, seq, payload, len, 0);
      else if (ch->state == CH_SUBSCRIBING || ch->state == CH_SYNCING)
        hold(k, ch, epoch, seq, payload, len, 1); /* the sync on its way is its one */
    } else if (ch) {
      /* Someone else publishes on our channel: counted, said once. */
      rc_counter_add(&k->stats.foreign, 1);
      if (!k->foreign_logged)
        rc_warn("redis: a message on %.*s is not ringcast's (epoch:seq:payload); dropped, "
                "and others like it without a word (ringcast_redis_foreign_total)",
                (int)(name->len > 140 ? 140 : name->len), name->str);
      k->foreign_logged = true;
    }
  } else if (subscribed || unsubscribed) {
    if (r->element[2]->type == REDIS_REPLY_INTEGER) {
      /* Redis counts the connection's patterns with its channels. */
      ep->channels = (uint64_t)r->element[2]->integer;
      count_channels(k);
    }
    if (subscribed && ch && ch->state == CH_SUBSCRIBING) start_sync(k, ch);
    /* A Cluster unsubscribes a shard channel itself when its slot leaves
     * the master: a followed topic that ringcast did not let go of. */
    if (unsubscribed && k->cluster && ch && !ch->pattern &&
        (ch->state == CH_SYNCING || ch->state == CH_LIVE)) {
      if (tp) rc_topic_release(k->topics, tp);
      link_down(k, "Redis Cluster moved a followed topic's slot (sunsubscribe)");
      return;
    }
  }
  if (tp) rc_topic_release(k->topics, tp);
}

static void on_data(struct rc_loop *l, struct rc_conn *c, uint8_t *p, size_t n) {
  (void)l;
  struct side *s = c->layer;
  if (!s) return;
  struct endpoint *ep = s->ep;
  struct rc_redis_link *k = ep->k;
  if (redisReaderFeed(s->rd, (const char *)p, n) != REDIS_OK) {
    link_down(k, "out of memory reading from Redis");
    return;
  }
  for (;;) {
    void *reply = NULL;
    if (redisReaderGetReply(s->rd, &reply) != REDIS_OK) {
      char why[160];
      snprintf(why, sizeof why, "bad RESP from Redis: %s", s->rd->errstr);
      link_down(k, why);
      return;
    }
    if (!reply) return;
    if (s == &ep->side[CMD]) on_command_reply(k, ep, reply);
    else on_subscriber_reply(k, ep, reply);
    freeReplyObject(reply);
    if (!s->rd) return; /* the link went down meanwhile */
  }
}

static void on_timer(struct rc_loop *l, struct rc_conn *c) {
  (void)l;
  (void)c;
}

static void on_close(struct rc_loop *l, struct rc_conn *c) {
  (void)l;
  struct side *s = c->layer;
  if (!s) return; /* detached by link_down */
  s->c = NULL;
  link_down(s->ep->k, c->end == RC_CONN_END_EOF ? "Redis closed the connection" : "the connection to Redis failed");
}

static const struct rc_conn_ops link_ops = {
    .on_data = on_data,
    .on_timer = on_timer,
    .on_close = on_close,
};
