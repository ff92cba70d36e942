/* SPDX-License-Identifier: MIT */
/* A connection's session (what its bytes mean: HTTP requests, then WebSocket
 * frames and commands, and its subscriptions), a shard's session context, and
 * the ways a session writes and ends. The session layer is the only place where
 * io and pub/sub meet. Shard thread only. */
#ifndef RINGCAST_SESSION_SESSION_H
#define RINGCAST_SESSION_SESSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/io/conn.h"
#include "ringcast/io/loop.h"
#include "ringcast/proto/http.h"
#include "ringcast/proto/utf8.h"
#include "ringcast/proto/ws_reader.h"
#include "ringcast/pubsub/pubsub.h"
#include "ringcast/stream/stream.h"
#include "ringcast/stream/tls.h"
#include "ringcast/util/bytebuf.h"
#include "ringcast/util/config.h"
#include "access.h"
#include "admission.h"

#define RC_SESSION_MAX_SUBS 1024
/* Wildcard patterns one connection may hold (of its RC_SESSION_MAX_SUBS). */
#define RC_SESSION_MAX_PATTERNS 64

/* What a connection speaks now; the label of ringcast_connections_active and
 * of the duration histogram (rc_session_kind_names). A new kind (SSE) goes
 * before RC_SESSION_KINDS and gets a name. */
enum rc_session_kind { RC_SESSION_HTTP = 0, RC_SESSION_WS, RC_SESSION_KINDS };
extern const char *const rc_session_kind_names[RC_SESSION_KINDS];

/* Why a connection ended: each close is counted once, under the first cause
 * named (rc_session_mark_end), or else what the io layer saw (rc_conn.end).
 * Labels of ringcast_connections_closed_total (rc_session_end_names). */
enum rc_session_end {
  RC_END_NONE = 0,       /* not named yet */
  RC_END_CLIENT,         /* the client closed: a close frame, its EOF, a TLS close_notify */
  RC_END_SERVER,         /* the server closed normally (Connection: close, an answered error) */
  RC_END_SLOW,           /* slow consumer: its queue passed --max-queue */
  RC_END_PROTOCOL,       /* malformed HTTP, WebSocket or TLS input */
  RC_END_TIMEOUT,        /* --handshake-timeout: no complete request in time */
  RC_END_IDLE,           /* --idle-timeout */
  RC_END_AUTH,           /* refused or expired credential, auth command missing */
  RC_END_RATE,           /* --max-commands-per-sec */
  RC_END_REFUSED,        /* refused at accept: --max-conns or the per-address limits */
  RC_END_OVERLOAD,       /* --max-memory or an allocation failure */
  RC_END_RESET,          /* the peer reset, or a receive or send failed */
  RC_END_SHUTDOWN,       /* the server is stopping */
  RC_SESSION_ENDS,
};
extern const char *const rc_session_end_names[RC_SESSION_ENDS];

/* How a connection attempt turned out, counted once per connection
 * (ringcast_connection_attempts_total, rc_session_attempt_names). */
enum rc_session_attempt {
  RC_ATTEMPT_NONE = 0,       /* not decided yet */
  RC_ATTEMPT_ACCEPTED,       /* a WebSocket upgrade (and its auth), or an HTTP answer below 400
                              * or that keeps the connection open */
  RC_ATTEMPT_REFUSED_FULL,   /* 503: the shard is at --max-conns */
  RC_ATTEMPT_REFUSED_LIMIT,  /* 503/429: the per-address limits */
  RC_ATTEMPT_HANDSHAKE_FAILED, /* closed before those: bad request or upgrade, TLS, timeout */
  RC_ATTEMPT_AUTH_FAILED,    /* 401/403, or a WebSocket's auth refused or missing */
  RC_SESSION_ATTEMPTS,
};
extern const char *const rc_session_attempt_names[RC_SESSION_ATTEMPTS];

enum rc_session_format {
  RC_FORMAT_ENVELOPE = 0,  /* messages in the JSON envelope */
  RC_FORMAT_RAW,           /* the payload alone (one topic) */
  RC_FORMAT_ECHO,          /* GET /echo: messages come back; no commands */
};

/* An HTTP request whose head has been read and whose body is still arriving.
 * Offsets count from the request's first byte, in the receive buffer. */
struct rc_request_progress {
  bool active;
  uint8_t kind;              /* enum rc_http_body_kind */
  uint32_t head_len;
  uint32_t max;              /* the body's limit for this route */
  uint32_t raw;              /* request bytes read so far, head included */
  uint32_t out;              /* end of the body decoded so far (chunked) */
  uint64_t length;           /* Content-Length */
  uint32_t scanned;          /* head not complete: bytes searched for its end */
  struct rc_http_chunked chunked;
};

/* What a connection holds only while something it sent is incomplete (a partial
 * request, a frame cut across receives, a fragmented message), so an idle
 * connection carries none of it. */
struct rc_conflation;
struct rc_stats_feed;

struct rc_session_rx {
  uint32_t charged;          /* bytes of this struct and its buffers charged to the budget */
  struct rc_bytebuf in;      /* HTTP: a partial request; WebSocket: a partial control frame */
  struct rc_request_progress req;
  struct rc_bytebuf msg;     /* WebSocket: the data message being reassembled */
  struct rc_ws_reader rd;    /* WebSocket: the position inside the current frame */
  struct rc_utf8_state utf8; /* the text message being received */
  uint8_t frag_op;           /* opcode of the message in progress; 0: none */
  uint8_t ctl_op;            /* opcode of the control frame in progress; 0: none */
};

enum { RC_AWAIT_NONE = 0, RC_AWAIT_KEEP, RC_AWAIT_CLOSE };

/* One connection's session; the io layer's slot is its first member. */
struct rc_session {
  struct rc_conn conn;
  const struct rc_stream_type *stream;
  struct rc_subscriber sub;
  uint8_t kind;              /* enum rc_session_kind */
  uint8_t format;            /* enum rc_session_format */
  bool served;               /* HTTP: a request completed (keep-alive idle since) */
  bool admin;                /* came in on --admin-listen: monitoring routes only */
  bool admitted;             /* counted by the per-address admission */
  bool handshaking;          /* admitted, first request not finished yet */
  bool proxied;              /* the peer is a --trust-proxy: conn's address is its client's */
  uint8_t policy;            /* enum rc_slow_policy */
  uint16_t joining;          /* upgrade's topics= still waiting for their start (101 corked) */
  uint8_t proxy_family;      /* when proxied: the proxy's own address */
  uint8_t proxy_addr[16];
  uint8_t end;               /* enum rc_session_end: the first cause named */
  uint8_t attempt;           /* enum rc_session_attempt, once decided */
  /* HTTP with --redis: a POST /publish waits for Redis' answer (what follows
   * it on the connection waits too); RC_AWAIT_CLOSE: then close. */
  uint8_t awaiting;
  uint32_t await_left;       /* a batch's messages whose answer is still to come */
  uint32_t await_failed;     /* and of those answered, the ones that failed */
  uint32_t await_total;      /* the batch's messages */
  int16_t await_err;         /* the first failure's errno (negative) */
  struct rc_session_rx *rx;  /* NULL while nothing is incomplete */
  /* Loop-clock marks in 10 ms ticks, compared modulo 2^32. */
  uint32_t rx_tick;          /* last bytes received */
  union {
    uint32_t req_tick;       /* HTTP: start of the current request (handshake timeout) */
    uint32_t ping_tick;      /* WebSocket: last keepalive ping; 0: none since the last bytes */
  };
  uint32_t cmd_tick;         /* --max-commands-per-sec bucket, last refill */
  uint32_t cmd_tokens;       /* and its hundredths of a command */
  uint32_t auth_tick;        /* WebSocket waiting for its auth command: since when */
  uint32_t open_tick;        /* accepted (a connection's duration) */
  struct rc_auth auth;       /* WebSocket: its credential (HTTP: per request) */
  struct rc_conflation *cf;  /* while conflating (conflate.h); NULL otherwise */
};

struct rc_session_stats {
  _Atomic uint64_t ws_upgrades;
  _Atomic uint64_t http_requests;
  _Atomic uint64_t slow_disconnects;
  _Atomic uint64_t protocol_errors;
  _Atomic uint64_t timeouts;
  _Atomic uint64_t pings_sent;
  _Atomic uint64_t acks_lost;      /* publish results for connections gone since */
  _Atomic uint64_t refused_memory; /* requests, connections and messages refused: --max-memory */
  _Atomic uint64_t rate_limited;   /* connections closed: --max-commands-per-sec */
  _Atomic uint64_t conflating;     /* sessions conflating now (a gauge) */
  _Atomic uint64_t conflation_starts;
  _Atomic uint64_t conflated;      /* messages replaced by a newer one of their topic */
  _Atomic uint64_t conflation_gaps; /* gap notices sent for them */
  _Atomic uint64_t shed;           /* messages conflated under --slow-policy disconnect: shard behind */
  _Atomic uint64_t active[RC_SESSION_KINDS];      /* connections open now, by kind (a gauge) */
  _Atomic uint64_t attempts[RC_SESSION_ATTEMPTS]; /* by outcome ([0] unused) */
  _Atomic uint64_t closed[RC_SESSION_ENDS];       /* by cause ([0] unused) */
  _Atomic uint64_t reconnects[2];  /* subscriptions with a resume position: recovered, gap */
  _Atomic uint64_t delivered;      /* messages queued to subscribers' connections */
  /* Gauges the shard measures once a second (its census timer): bytes queued
   * to its connections and not yet handed to the kernel (TLS plaintext
   * included), all of them and the most any one holds, and the bytes its pools
   * hold in their free lists. */
  _Atomic uint64_t queued_bytes;
  _Atomic uint64_t queued_bytes_max;
  _Atomic uint64_t pool_free_bytes;
  struct rc_hist duration[RC_SESSION_KINDS]; /* at close, by kind then (rc_hist_duration_ms) */
  _Atomic uint64_t drain_closes;   /* connections closed by a drain (--drain-seconds) */
  _Atomic uint64_t reconnect_notices; /* {"type":"reconnect"} messages sent by a drain */
};

/* A shard's drain: the connections open when it began, in the order they are
 * closed, and how far it has got (drain.c). */
struct rc_drain_state {
  bool active;
  uint64_t start_ms, end_ms;
  uint64_t *tokens;          /* rc_conn_token of each; NULL when there were none */
  uint32_t n, next;
  struct rc_loop_timer timer;
};

/* One shard's session context: settings copied from the configuration, the
 * shard's loop and pub/sub half. */
struct rc_redis_link;

struct rc_session_shard {
  unsigned id;
  struct rc_server *srv;
  struct rc_loop *loop;
  struct rc_pubsub_shard *ps;
  struct rc_topic_table *topics;
  struct rc_demo_feed *demo;
  struct rc_loop_timer demo_timer;
  struct rc_stats_feed *stats_feed;  /* $sys.stats, on shard 0 unless --stats-interval 0 */
  struct rc_loop_timer stats_timer;
  struct rc_budget *budget;  /* the server's --max-memory */
  struct rc_admission *adm;  /* per-address limits; NULL when all are off */
  struct rc_access *access;  /* the server's access control */
  struct rc_tls_shard *tls;  /* this shard's TLS stream; NULL without --tls-cert */
  struct rc_redis_link *redis; /* --redis: this shard's link (redis_link.h); NULL without */
  /* request.c's answer to an HTTP publish that waited for Redis, reached from
   * delivery.c without the two including each other. */
  void (*publish_answered)(struct rc_loop *l, struct rc_session *s,
                           const struct rc_publish_result *r);
  struct rc_loop_timer sweep_timer;
  struct rc_loop_timer pubsub_timer; /* history ages and heartbeats, once a second */
  struct rc_loop_timer census_timer; /* queue and pool gauges, once a second */
  struct rc_conflation *conflating;  /* sessions conflating (conflate.h) */
  uint64_t behind_checked_ms;        /* when the shard last measured its queues */
  bool behind;                       /* and whether they were growing together */
  /* Settings used per message or per connection. */
  uint32_t max_message;
  uint32_t handshake_ticks, idle_ticks, ping_ticks;  /* 0: off */
  uint64_t max_queue;
  uint32_t max_commands;     /* per connection per second; 0: off */
  uint32_t max_command;      /* bytes of a command other than publish */
  uint8_t slow_policy;       /* --slow-policy: enum rc_slow_policy */
  bool echo;
  bool admin_only_metrics;   /* --admin-listen is set: /metrics only there */
  bool demo_feed;            /* this shard runs the demo feed */
  uint32_t drain_ms;         /* --drain-seconds */
  struct rc_drain_state drain;
  struct rc_session_stats stats;
};

/* Where the server is in its life: what /readyz answers and what a new
 * WebSocket upgrade gets (rc_server_drain). */
enum rc_server_phase {
  RC_SERVER_SERVING = 0,
  RC_SERVER_DRAINING,    /* SIGTERM: listeners open, new upgrades get 503 */
  RC_SERVER_HANDED_OVER, /* a successor took the listeners; draining what is left */
};

struct rc_server {
  const struct rc_config *cfg;
  struct rc_tls *tls;        /* NULL without --tls-cert */
  struct rc_access *access;
  struct rc_budget budget;
  struct rc_admission *admission;
  struct rc_pubsub *pubsub;
  unsigned nshards;
  struct rc_loop *loops[RC_MAX_SHARDS];
  struct rc_session_shard *shards[RC_MAX_SHARDS];
  unsigned started;
  _Atomic int phase;         /* enum rc_server_phase; only ever moves forward */
  _Atomic uint64_t redis_pattern_gen; /* the Redis links' (rc_redis_link_config.pattern_gen) */
  /* The Redis links' (rc_redis_link_config.cluster_masters): nonzero once --redis
   * is found to be a Redis Cluster, where wildcards are refused. */
  _Atomic uint64_t redis_cluster_masters;
};

static inline enum rc_server_phase rc_session_phase(const struct rc_session_shard *ss) {
  return (enum rc_server_phase)atomic_load_explicit(&ss->srv->phase, memory_order_acquire);
}

/* Replaces the session's credential with *auth (taking its grant; NULL: none),
 * keeping --max-memory's charge for the grant. */
void rc_session_set_auth(struct rc_loop *l, struct rc_session *s, struct rc_auth *auth);
/* How long a WebSocket may wait before its auth command (--handshake-timeout). */
uint32_t rc_session_auth_ticks(const struct rc_session_shard *ss);

static inline struct rc_session *rc_session_of(struct rc_conn *c) {
  return (struct rc_session *)c;
}
static inline struct rc_session_shard *rc_session_shard_of(struct rc_loop *l) {
  return rc_loop_user(l);
}
static inline uint32_t rc_session_now(const struct rc_loop *l) {
  return (uint32_t)rc_timer_tick(rc_loop_now_ms(l));
}

/* Names why the connection is ending, unless a cause is already named: call
 * before the close that the cause leads to. */
static inline void rc_session_mark_end(struct rc_session *s, enum rc_session_end why) {
  if (!s->end) s->end = (uint8_t)why;
}
/* Decides the connection's attempt (the first decision stays; counted now). */
void rc_session_attempt(struct rc_loop *l, struct rc_session *s, enum rc_session_attempt result);
/* A connection was accepted: counted open as HTTP, its duration starts. */
void rc_session_opened(struct rc_loop *l, struct rc_session *s);
/* An HTTP connection became a WebSocket: moves it between the active kinds. */
void rc_session_set_kind(struct rc_loop *l, struct rc_session *s, enum rc_session_kind kind);
/* The connection left OPEN: counts its close under its cause, its duration, and
 * its attempt if still undecided. Once per connection, from on_close. */
void rc_session_closed(struct rc_loop *l, struct rc_session *s);

/* Re-arms the connection's timer for its next handshake, idle or ping deadline
 * (the deadlines are checked again when it fires). */
void rc_session_rearm_timer(struct rc_loop *l, struct rc_session *s);
/* Whether an HTTP connection holds, or still awaits, an incomplete request. */
bool rc_session_awaits_request(const struct rc_session *s);
/* Queues a frame of this shard's own; on a full queue the client is closed as a
 * slow consumer. 0 or a negative errno (the connection is closing). */
int rc_session_send_frame(struct rc_loop *l, struct rc_session *s, struct rc_frame *f);
/* Closes with a log line at info and a protocol-error count. */
void rc_session_protocol_close(struct rc_loop *l, struct rc_session *s, unsigned code,
                               const char *reason);
/* Closes a WebSocket connection with code and reason (a close frame after what is
 * queued), or an HTTP one after what is queued (code 0). */
void rc_session_close(struct rc_loop *l, struct rc_session *s, unsigned code, const char *reason,
                      bool drop_queued);
/* The subscriber is too slow: drop what is queued, close with 1008. */
void rc_session_slow_consumer(struct rc_loop *l, struct rc_session *s, size_t adding);
/* Frees what the session holds (subscriptions, buffers) once the connection closed. */
void rc_session_release(struct rc_loop *l, struct rc_session *s);
/* Whether a receive state holds anything incomplete. */
bool rc_session_rx_is_pending(const struct rc_session_rx *rx);
/* Ends a receive: what is incomplete in *rx (which may be on the caller's
 * stack) is kept in s->rx, charged to the memory budget; otherwise s->rx is
 * freed. Closing connections keep nothing. Returns false when what is incomplete
 * did not fit the budget and was dropped: the caller refuses the request or
 * message (503, close 1013). */
bool rc_session_rx_settle(struct rc_loop *l, struct rc_session *s, struct rc_session_rx *rx);
/* n messages' worth of the connection's --max-commands-per-sec bucket (HTTP
 * requests, WebSocket messages and control frames count one each, a command
 * naming n topics n): false when it is short (counted; the caller refuses and
 * closes). */
bool rc_session_take_tokens(struct rc_loop *l, struct rc_session *s, unsigned n);
/* What an auth command costs of --max-commands-per-sec, in messages: a
 * signature check is tens to hundreds of microseconds (RSA, ECDSA), so a client
 * sending tokens as fast as it may send commands would keep a core busy. */
#define RC_SESSION_VERIFY_COST 50
/* What a wildcard subscription costs, in messages: a pattern new to its shard
 * scans the whole topic table once (O(topics), under each partition's lock). */
#define RC_SESSION_PATTERN_COST 100
/* A full bucket, for a new connection. */
void rc_session_fill_tokens(struct rc_loop *l, struct rc_session *s);
/* The client-facing reason a publish was refused (err from rc_pubsub_publish). */
const char *rc_session_publish_refusal(int err);
/* Whether a topic or pattern is refused to a subscriber on this connection for
 * being reserved ('$'): with --admin-listen those are served there only, and the
 * admin address serves nothing else. The reason when refused, NULL otherwise. */
const char *rc_session_reserved_refusal(struct rc_loop *l, const struct rc_session *s,
                                        const char *name, size_t len);
/* Why a client's publish to a reserved topic is refused (403, or an error reply). */
#define RC_SESSION_RESERVED_PUBLISH \
  "topics starting with '$' are reserved for the server: clients may subscribe to them, not publish"
/* The admin address's refusal of anything but a reserved subscription. */
#define RC_SESSION_ADMIN_ONLY \
  "the --admin-listen address takes only subscriptions to the server's own '$' topics (e.g. $sys.stats)"
/* The client-facing reason a topic could not be had (err from rc_topic_acquire). */
const char *rc_session_topic_refusal(int err);
/* Drops the references a command took on the topics it named. */
void rc_session_topics_release(struct rc_loop *l, struct rc_topic **list, unsigned n);

#endif
