/* SPDX-License-Identifier: MIT */
/* GET /metrics: the Prometheus text exposition of every layer's per-shard
 * counters (io, pub/sub, sessions), one family per counter in total and with a
 * shard label, merged at scrape time. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringcast/stream/tls.h"
#include "ringcast/util/counter.h"
#include "metrics_page.h"
#include "redis_link.h"

struct out {
  char *p;
  size_t len, cap;
  int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...) {
  if (o->err) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->err = -EINVAL;
      return;
    }
    if ((size_t)n < o->cap - o->len) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = o->cap * 2 + (size_t)n;
    char *p = realloc(o->p, cap);
    if (!p) {
      o->err = -ENOMEM;
      return;
    }
    o->p = p;
    o->cap = cap;
  }
}

enum source { IO, PUBSUB, SESSION };

static const struct family {
  const char *name;
  const char *type;
  const char *help;
  enum source src;
  size_t offset;
} families[] = {
#define IOF(field, name, type, help) {name, type, help, IO, offsetof(struct rc_conn_stats, field)}
#define PSF(field, name, type, help) {name, type, help, PUBSUB, offsetof(struct rc_pubsub_stats, field)}
#define SSF(field, name, type, help) {name, type, help, SESSION, offsetof(struct rc_session_stats, field)}
    IOF(conns_open, "ringcast_connections_open", "gauge", "Connections open now."),
    IOF(conns_accepted, "ringcast_connections_accepted_total", "counter", "Connections accepted."),
    IOF(conns_refused, "ringcast_connections_refused_total", "counter",
        "Connections refused with 503 because the shard was at --max-conns."),
    IOF(accept_errors, "ringcast_accept_errors_total", "counter",
        "Accepts that failed (a reset before accept, or a persistent error that paused accepting)."),
    IOF(close_errors, "ringcast_close_errors_total", "counter",
        "Closes of a connection's descriptor that the kernel refused."),
    SSF(ws_upgrades, "ringcast_websocket_upgrades_total", "counter", "WebSocket handshakes completed."),
    SSF(http_requests, "ringcast_http_requests_total", "counter", "HTTP requests parsed."),
    PSF(published, "ringcast_messages_published_total", "counter",
        "Messages stamped with a sequence number by their topic's home shard."),
    PSF(publish_failed, "ringcast_publish_failures_total", "counter",
        "Publishes lost at the home shard for lack of memory (their publisher got an error if it waited for one)."),
    PSF(refused_backlog, "ringcast_publish_refused_backlog_total", "counter",
        "Publishes refused (503 / error reply) because the topic's home shard had --max-backlog bytes waiting."),
    PSF(refused_memory, "ringcast_publish_refused_memory_total", "counter",
        "Publishes refused (503 / error reply) because the server was over --max-memory."),
    SSF(rate_limited, "ringcast_rate_limited_total", "counter",
        "WebSocket connections closed (1008) for sending more than --max-commands-per-sec."),
    SSF(refused_memory, "ringcast_memory_refusals_total", "counter",
        "Upgrades, partial requests and partial messages refused (503 / close 1013) over --max-memory."),
    PSF(batches_in, "ringcast_fanout_batches_received_total", "counter",
        "Fan-out batches received from other shards."),
    PSF(joins, "ringcast_subscriptions_started_total", "counter",
        "Subscriptions answered by their topic's home shard (each then acknowledged with seq and epoch)."),
    PSF(snapshots, "ringcast_snapshots_total", "counter",
        "Subscriptions that asked for a snapshot and got the topic's latest message."),
    PSF(replayed, "ringcast_history_replayed_total", "counter",
        "Messages taken from history for resuming subscribers and snapshots."),
    PSF(heartbeats, "ringcast_topic_heartbeats_total", "counter",
        "Heartbeat frames made for quiet topics (--topic-heartbeat), one per topic per period."),
    PSF(patterns_refused, "ringcast_patterns_refused_total", "counter",
        "Wildcard subscriptions refused by a limit (per connection, or --max-patterns)."),
    PSF(pattern_scans, "ringcast_pattern_scans_total", "counter",
        "Topic-table scans for wildcards (a pattern new to a shard, or a sweep after groups went)."),
    PSF(history_msgs, "ringcast_history_messages", "gauge", "Messages held in topic histories (--history)."),
    PSF(history_bytes, "ringcast_history_bytes", "gauge",
        "Memory topic histories hold: their messages' allocations and their rings (at most half of --max-memory)."),
    IOF(frames_sent, "ringcast_frames_delivered_total", "counter",
        "Frames and responses fully written to client sockets."),
    IOF(bytes_sent, "ringcast_bytes_delivered_total", "counter", "Bytes written to client sockets."),
    IOF(sends, "ringcast_sendmsg_total", "counter",
        "Send operations completed (each coalesces queued frames)."),
    IOF(short_sends, "ringcast_short_sends_total", "counter",
        "Sends the kernel ended early without an error; each resumed at the byte where it stopped."),
    SSF(slow_disconnects, "ringcast_slow_consumer_disconnects_total", "counter",
        "Subscribers closed (1008) because their queue passed --max-queue."),
    SSF(conflating, "ringcast_conflating_subscribers", "gauge",
        "Subscribers conflating now: their queue keeps the newest message per topic (--slow-policy, policy=conflate)."),
    SSF(conflation_starts, "ringcast_conflation_starts_total", "counter",
        "Times a lagging subscriber started conflating."),
    SSF(conflated, "ringcast_conflated_messages_total", "counter",
        "Messages a lagging subscriber skipped because a newer one of the same topic replaced them (each range announced in a gap)."),
    SSF(conflation_gaps, "ringcast_conflation_gaps_total", "counter",
        "Gap notices ({\"type\":\"gap\",\"conflated\":true}) sent for skipped ranges."),
    SSF(shed, "ringcast_overload_shed_total", "counter",
        "Messages conflated instead of closing their subscriber under --slow-policy disconnect, because the whole shard was behind."),
    SSF(protocol_errors, "ringcast_protocol_errors_total", "counter",
        "Connections closed for malformed HTTP or WebSocket input."),
    IOF(recv_enobufs, "ringcast_recv_buffer_exhausted_total", "counter",
        "Receives that found the provided-buffer ring empty and were re-armed."),
    IOF(cqe_stashed, "ringcast_completions_stashed_total", "counter",
        "Completions reaped early because the kernel refused a submission until the CQ drained."),
    SSF(timeouts, "ringcast_timeouts_total", "counter",
        "Connections closed by --handshake-timeout or --idle-timeout."),
    SSF(pings_sent, "ringcast_keepalive_pings_total", "counter", "Keepalive pings sent (--ping-interval)."),
    SSF(acks_lost, "ringcast_publish_acks_undeliverable_total", "counter",
        "Publish acknowledgements whose publisher had disconnected."),
    SSF(delivered, "ringcast_messages_delivered_total", "counter",
        "Messages queued to subscribers' connections, once per subscriber (replays and conflated "
        "latest values included, heartbeats not); what a close then drops is not taken back."),
    SSF(drain_closes, "ringcast_drain_closes_total", "counter",
        "Connections closed by a drain (SIGTERM or a --takeover, over --drain-seconds)."),
    SSF(reconnect_notices, "ringcast_drain_reconnect_notices_total", "counter",
        "{\"type\":\"reconnect\"} messages sent to WebSocket clients by a drain."),
#undef IOF
#undef PSF
#undef SSF
};

/* Every shard's statistics struct of each source, for rc_counter_sum. */
struct sources {
  const void *of[3][RC_MAX_SHARDS];
};

static void collect(const struct rc_server *srv, struct sources *src) {
  for (unsigned s = 0; s < srv->nshards; s++) {
    src->of[IO][s] = rc_loop_stats(srv->loops[s]);
    src->of[PUBSUB][s] = rc_pubsub_shard_stats(srv->pubsub, s);
    src->of[SESSION][s] = &srv->shards[s]->stats;
  }
}

static uint64_t tls_sum(const struct rc_server *srv, size_t offset) {
  const void *of[RC_MAX_SHARDS];
  for (unsigned s = 0; s < srv->nshards; s++) of[s] = rc_tls_shard_stats(srv->shards[s]->tls);
  return rc_counter_sum(of, srv->nshards, offset);
}

/* Only with --tls-cert: a cleartext server shows no TLS families. */
static void render_tls(struct out *o, const struct rc_server *srv) {
  static const struct {
    const char *name, *type, *help;
    size_t off;
  } fam[] = {
      {"ringcast_tls_connections_open", "gauge", "TLS connections open now with their handshake done.",
       offsetof(struct rc_tls_stats, open)},
      {"ringcast_tls_connections_without_wolfssl", "gauge",
       "Of them, connections whose records ringcast seals itself after the handshake "
       "(ChaCha20-Poly1305), their wolfSSL object freed.",
       offsetof(struct rc_tls_stats, own_records)},
      {"ringcast_tls_records_total", "counter",
       "TLS application-data records written (each carries as many queued frames as fit in 16 KiB).",
       offsetof(struct rc_tls_stats, records_out)},
      {"ringcast_tls_plaintext_bytes_total", "counter", "Bytes encrypted into those records.",
       offsetof(struct rc_tls_stats, plaintext_out)},
  };
  for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", fam[i].name, fam[i].help, fam[i].name,
        fam[i].type, fam[i].name, tls_sum(srv, fam[i].off));
  put(o, "# HELP ringcast_tls_handshakes_total TLS handshakes completed, by kind (full, or resumed "
         "from a session ticket).\n# TYPE ringcast_tls_handshakes_total counter\n");
  put(o, "ringcast_tls_handshakes_total{kind=\"full\"} %" PRIu64 "\n",
      tls_sum(srv, offsetof(struct rc_tls_stats, handshakes)));
  put(o, "ringcast_tls_handshakes_total{kind=\"resumed\"} %" PRIu64 "\n",
      tls_sum(srv, offsetof(struct rc_tls_stats, resumed)));
  put(o, "# HELP ringcast_tls_failures_total TLS connections ended by what went wrong (an alert "
         "or a close was sent, and a log line at info).\n# TYPE ringcast_tls_failures_total counter\n");
  for (unsigned r = 0; r < RC_TLS_FAIL_COUNT; r++)
    put(o, "ringcast_tls_failures_total{reason=\"%s\"} %" PRIu64 "\n", rc_tls_fail_names[r],
        tls_sum(srv, offsetof(struct rc_tls_stats, failures) + r * sizeof(_Atomic uint64_t)));
}

/* One histogram's series: cumulative buckets in the base unit, then sum and
 * count. labels: "name=\"value\"," or "" (joined before le). */
static void put_hist(struct out *o, const char *name, const char *labels,
                     const struct rc_hist_snapshot *h, const struct rc_hist_scale *sc) {
  uint64_t cum = 0;
  for (unsigned i = 0; i < sc->n; i++) {
    cum += h->bucket[i];
    put(o, "%s_bucket{%sle=\"%.9g\"} %" PRIu64 "\n", name, labels,
        (double)sc->upper[i] * sc->unit, cum);
  }
  size_t ll = strlen(labels);
  /* The labels without their trailing comma, for _sum and _count. */
  int bare = ll ? (int)ll - 1 : 0;
  put(o, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, h->count);
  const char *open = ll ? "{" : "", *close = ll ? "}" : "";
  put(o, "%s_sum%s%.*s%s %.9g\n", name, open, bare, labels, close, (double)h->sum * sc->unit);
  put(o, "%s_count%s%.*s%s %" PRIu64 "\n", name, open, bare, labels, close, h->count);
}

static void put_head(struct out *o, const char *name, const char *type, const char *help) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The sum over shards of element i of a counter array at `offset` in each
 * shard's struct. */
static uint64_t sum_at(const void *const *of, unsigned n, size_t offset, size_t i) {
  return rc_counter_sum(of, n, offset + i * sizeof(_Atomic uint64_t));
}

/* One sample per label value of a counter array in the session stats, from
 * element `first` (0 when every element is named, 1 when [0] is unused). */
static void put_by_label(struct out *o, const char *name, const char *label,
                         const char *const *names, int first, int count,
                         const void *const *ss, unsigned n, size_t offset) {
  for (int i = first; i < count; i++)
    put(o, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, names[i], sum_at(ss, n, offset, (size_t)i));
}

/* jemalloc's mallctl, when the binary links jemalloc (the server does; tests
 * and sanitizer builds, which keep their own allocator, do not): a weak
 * reference stays NULL without it, and the jemalloc families are left out. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

static void render_memory(struct out *o, const struct sources *src, unsigned nshards) {
  long page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size_pages, resident_pages;
  if (f) {
    if (page > 0 && fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2)
      put(o, "# HELP ringcast_process_resident_memory_bytes Resident set size (/proc/self/statm).\n"
             "# TYPE ringcast_process_resident_memory_bytes gauge\n"
             "ringcast_process_resident_memory_bytes %llu\n",
          resident_pages * (unsigned long long)page);
    fclose(f);
  }
  if (mallctl) {
    /* jemalloc's statistics are a snapshot taken when the epoch advances. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    if (mallctl("epoch", &epoch, &len, &epoch, sizeof epoch) == 0) {
      static const struct {
        const char *ctl, *name, *help;
      } js[] = {
          {"stats.allocated", "ringcast_jemalloc_allocated_bytes",
           "Bytes the application has allocated (jemalloc stats.allocated)."},
          {"stats.active", "ringcast_jemalloc_active_bytes",
           "Bytes in pages holding allocations (jemalloc stats.active)."},
          {"stats.resident", "ringcast_jemalloc_resident_bytes",
           "Bytes of jemalloc's pages resident in memory, its metadata included "
           "(jemalloc stats.resident)."},
      };
      for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
        size_t v, vlen = sizeof v;
        if (mallctl(js[i].ctl, &v, &vlen, NULL, 0) != 0) continue;
        put_head(o, js[i].name, "gauge", js[i].help);
        put(o, "%s %zu\n", js[i].name, v);
      }
    }
  }
  put_head(o, "ringcast_pool_bytes", "gauge",
           "Bytes the shards' object pools hold free (queue chunks, sends, frame holds, TLS "
           "states), measured by each shard once a second.");
  put(o, "ringcast_pool_bytes %" PRIu64 "\n",
      rc_counter_sum(src->of[SESSION], nshards,
                     offsetof(struct rc_session_stats, pool_free_bytes)));
}

/* The operator's signals (docs/operations.md, "The ten signals"). */
static void render_signals(struct out *o, const struct rc_server *srv, const struct sources *src) {
  unsigned n = srv->nshards;
  const void *const *ss = src->of[SESSION];
  char labels[64];

  put_head(o, "ringcast_connections_active", "gauge", "Connections open now, by what they speak.");
  put_by_label(o, "ringcast_connections_active", "kind", rc_session_kind_names, 0, RC_SESSION_KINDS,
               ss, n, offsetof(struct rc_session_stats, active));

  put_head(o, "ringcast_connection_attempts_total", "counter",
           "Connections by how their attempt turned out: accepted (upgraded, or answered below "
           "400 or kept open), refused at accept (--max-conns; per-address limits), or closed "
           "first (handshake_failed, auth_failed).");
  put_by_label(o, "ringcast_connection_attempts_total", "result", rc_session_attempt_names, 1,
               RC_SESSION_ATTEMPTS, ss, n, offsetof(struct rc_session_stats, attempts));

  put_head(o, "ringcast_connections_closed_total", "counter",
           "Connections closed, each once, by the first cause named (the sum is every close).");
  put_by_label(o, "ringcast_connections_closed_total", "reason", rc_session_end_names, 1,
               RC_SESSION_ENDS, ss, n, offsetof(struct rc_session_stats, closed));

  put_head(o, "ringcast_connection_duration_seconds", "histogram",
           "How long connections lived, observed at close, by what they spoke then.");
  for (int k = 0; k < RC_SESSION_KINDS; k++) {
    struct rc_hist_snapshot h;
    memset(&h, 0, sizeof h);
    for (unsigned s = 0; s < n; s++) {
      const struct rc_session_stats *st = ss[s];
      rc_hist_merge(&h, &st->duration[k], &rc_hist_duration_ms);
    }
    snprintf(labels, sizeof labels, "kind=\"%s\",", rc_session_kind_names[k]);
    put_hist(o, "ringcast_connection_duration_seconds", labels, &h, &rc_hist_duration_ms);
  }

  static const char *const reconnect_names[] = {"recovered", "gap"};
  put_head(o, "ringcast_reconnects_total", "counter",
           "Subscriptions that came with a resume position (since), by what the client was told: "
           "recovered from history, or a gap.");
  for (size_t r = 0; r < 2; r++)
    put(o, "ringcast_reconnects_total{outcome=\"%s\"} %" PRIu64 "\n", reconnect_names[r],
        sum_at(ss, n, offsetof(struct rc_session_stats, reconnects), r));

  struct rc_hist_snapshot h;
  memset(&h, 0, sizeof h);
  for (unsigned s = 0; s < n; s++) {
    const struct rc_pubsub_stats *st = src->of[PUBSUB][s];
    rc_hist_merge(&h, &st->message_size, &rc_hist_size_bytes);
  }
  put_head(o, "ringcast_message_size_bytes", "histogram",
           "Payload bytes of each message published, observed at its topic's home shard.");
  put_hist(o, "ringcast_message_size_bytes", "", &h, &rc_hist_size_bytes);

  memset(&h, 0, sizeof h);
  for (unsigned s = 0; s < n; s++) {
    const struct rc_conn_stats *st = src->of[IO][s];
    rc_hist_merge(&h, &st->send_latency, &rc_hist_latency_ns);
  }
  put_head(o, "ringcast_send_latency_seconds", "histogram",
           "From a publish accepted to the completion of the send carrying it to a subscriber, one "
           "sample per send (its oldest message), at loop-turn resolution.");
  put_hist(o, "ringcast_send_latency_seconds", "", &h, &rc_hist_latency_ns);

  put_head(o, "ringcast_inbox_depth", "gauge",
           "Items (fan-out batches, forwarded publishes, subscription steps) waiting in each "
           "shard's inbox.");
  for (unsigned s = 0; s < n; s++)
    put(o, "ringcast_inbox_depth{shard=\"%u\"} %" PRIu64 "\n", s,
        rc_pubsub_inbox_depth(srv->pubsub, s));
  put_head(o, "ringcast_inbox_oldest_age_seconds", "gauge",
           "How long the item each shard last took from its inbox had waited (0 once the inbox "
           "is empty), or while items wait, the time since the shard's last loop turn if "
           "longer.");
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  for (unsigned s = 0; s < n; s++)
    put(o, "ringcast_inbox_oldest_age_seconds{shard=\"%u\"} %.9g\n", s,
        (double)rc_pubsub_inbox_age_ns(srv->pubsub, s, now_ns) * 1e-9);
  put_head(o, "ringcast_queued_bytes", "gauge",
           "Bytes queued to each shard's connections, not yet handed to the kernel (measured "
           "once a second).");
  for (unsigned s = 0; s < n; s++)
    put(o, "ringcast_queued_bytes{shard=\"%u\"} %" PRIu64 "\n", s,
        rc_counter_sum(&ss[s], 1, offsetof(struct rc_session_stats, queued_bytes)));
  put_head(o, "ringcast_queued_bytes_max", "gauge",
           "The most bytes any one connection of each shard had queued (measured once a second; "
           "--max-queue bounds it).");
  for (unsigned s = 0; s < n; s++)
    put(o, "ringcast_queued_bytes_max{shard=\"%u\"} %" PRIu64 "\n", s,
        rc_counter_sum(&ss[s], 1, offsetof(struct rc_session_stats, queued_bytes_max)));

  render_memory(o, src, n);
}

/* The scale-out's link (--redis): one set of connections per shard, summed. */
static void render_redis(struct out *o, const struct rc_server *srv, const struct sources *src) {
  static const struct {
    const char *name, *type, *help;
    size_t off;
  } link[] = {
#define RL(field, name, type, help) {name, type, help, offsetof(struct rc_redis_link_stats, field)}
      RL(connects, "ringcast_redis_connects_total", "counter", "Times a shard's link to Redis came up."),
      RL(disconnects, "ringcast_redis_disconnects_total", "counter",
         "Times a shard's link to Redis went down or could not connect (each is logged)."),
      RL(messages, "ringcast_redis_messages_total", "counter",
         "Channel messages received from Redis: one per message per node that follows its topic."),
      RL(syncs, "ringcast_redis_syncs_total", "counter",
         "Topic positions asked of Redis: a topic followed, a hole seen, a reconnect."),
      RL(channels, "ringcast_redis_channels", "gauge", "Redis channels this node subscribes to now."),
      RL(buffer_overflows, "ringcast_redis_held_overflows_total", "counter",
         "Live messages dropped while their topic synced (past the bound); refilled by a second sync."),
      RL(foreign, "ringcast_redis_foreign_total", "counter",
         "Messages on ringcast's channels not in its epoch:seq:payload form (another publisher); dropped."),
      RL(patterns, "ringcast_redis_patterns", "gauge",
         "Redis pattern subscriptions this node holds now for its wildcards (one per glob no other covers)."),
      RL(pattern_messages, "ringcast_redis_pattern_messages_total", "counter",
         "Messages received through pattern subscriptions: one per message per node whose wildcards match it."),
      RL(pattern_misses, "ringcast_redis_pattern_misses_total", "counter",
         "Messages a pattern subscription brought that no wildcard here matches (Redis' glob is broader); dropped."),
      RL(pattern_dropped, "ringcast_redis_pattern_dropped_total", "counter",
         "Pattern messages dropped on the way to their topic's home shard (--max-backlog, --max-memory, "
         "--max-topics); refilled from Redis' stream."),
#undef RL
  };
  const void *of[RC_MAX_SHARDS];
  uint64_t up = 1;
  for (unsigned s = 0; s < srv->nshards; s++) {
    const struct rc_redis_link_stats *st = rc_redis_link_stats(srv->shards[s]->redis);
    of[s] = st;
    up &= rc_counter_get(&st->up); /* another shard's: its atomic, not its state */
  }
  put_head(o, "ringcast_redis_up", "gauge", "1 when every shard's link to Redis (--redis) is up.");
  put(o, "ringcast_redis_up %" PRIu64 "\n", up);
  /* Every shard links to every master: the masters, not a sum over shards. */
  uint64_t masters = 0;
  for (unsigned s = 0; s < srv->nshards; s++) {
    uint64_t m = rc_counter_get(&rc_redis_link_stats(srv->shards[s]->redis)->cluster_masters);
    masters = m > masters ? m : masters;
  }
  put_head(o, "ringcast_redis_cluster_masters", "gauge",
           "Redis Cluster masters the links speak to (0: a standalone Redis).");
  put(o, "ringcast_redis_cluster_masters %" PRIu64 "\n", masters);
  for (size_t i = 0; i < sizeof link / sizeof link[0]; i++) {
    put_head(o, link[i].name, link[i].type, link[i].help);
    put(o, "%s %" PRIu64 "\n", link[i].name, rc_counter_sum(of, srv->nshards, link[i].off));
  }
  put(o, "# HELP ringcast_redis_publishes_total Publishes through Redis by result: ok, error "
         "(refused by Redis or lost with its connection), refused (the link was down).\n"
         "# TYPE ringcast_redis_publishes_total counter\n"
         "ringcast_redis_publishes_total{result=\"ok\"} %" PRIu64 "\n"
         "ringcast_redis_publishes_total{result=\"error\"} %" PRIu64 "\n"
         "ringcast_redis_publishes_total{result=\"refused\"} %" PRIu64 "\n",
      rc_counter_sum(of, srv->nshards, offsetof(struct rc_redis_link_stats, publishes_ok)),
      rc_counter_sum(of, srv->nshards, offsetof(struct rc_redis_link_stats, publishes_error)),
      rc_counter_sum(of, srv->nshards, offsetof(struct rc_redis_link_stats, publishes_refused)));
  static const struct {
    const char *name, *help;
    size_t off;
  } seq[] = {
      {"ringcast_redis_duplicates_total", "Messages Redis handed a home shard again (dropped by seq).",
       offsetof(struct rc_pubsub_stats, remote_duplicates)},
      {"ringcast_redis_refilled_total", "Messages missed live and filled from Redis' stream.",
       offsetof(struct rc_pubsub_stats, remote_refilled)},
      {"ringcast_redis_gaps_total", "Holes Redis could not fill, each announced to subscribers as a gap message.",
       offsetof(struct rc_pubsub_stats, remote_gaps)},
      {"ringcast_redis_epochs_total", "Times Redis' epoch of a followed topic changed (it lost its data).",
       offsetof(struct rc_pubsub_stats, remote_epochs)},
  };
  for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
    put_head(o, seq[i].name, "counter", seq[i].help);
    put(o, "%s %" PRIu64 "\n", seq[i].name, rc_counter_sum(src->of[PUBSUB], srv->nshards, seq[i].off));
  }
}

long rc_metrics_page_render(const struct rc_server *srv, char **out_p) {
  struct out o = {.cap = 8192};
  o.p = malloc(o.cap);
  if (!o.p) return -ENOMEM;
  struct sources src;
  collect(srv, &src);
  size_t nf = sizeof families / sizeof families[0];
  for (size_t f = 0; f < nf; f++) {
    put(&o, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help, families[f].name,
        families[f].type);
    put(&o, "%s %" PRIu64 "\n", families[f].name,
        rc_counter_sum(src.of[families[f].src], srv->nshards, families[f].offset));
  }
  for (size_t f = 0; f < nf; f++) {
    const char *name = families[f].name;
    put(&o, "# HELP ringcast_shard_%s %s (per shard)\n# TYPE ringcast_shard_%s %s\n", name + 9,
        families[f].help, name + 9, families[f].type);
    for (unsigned s = 0; s < srv->nshards; s++)
      put(&o, "ringcast_shard_%s{shard=\"%u\"} %" PRIu64 "\n", name + 9, s,
          rc_counter_sum(&src.of[families[f].src][s], 1, families[f].offset));
  }
  put(&o, "# HELP ringcast_topics Topics known.\n# TYPE ringcast_topics gauge\nringcast_topics %u\n",
      rc_topic_count(rc_pubsub_topics(srv->pubsub)));
  put(&o, "# HELP ringcast_patterns Distinct wildcard patterns subscribed now (--max-patterns).\n"
          "# TYPE ringcast_patterns gauge\nringcast_patterns %zu\n",
      rc_pubsub_pattern_count(srv->pubsub));
  put(&o, "# HELP ringcast_memory_budget_bytes --max-memory.\n# TYPE ringcast_memory_budget_bytes gauge\n"
          "ringcast_memory_budget_bytes %" PRId64 "\n", srv->budget.limit);
  put(&o, "# HELP ringcast_memory_charged_bytes Bytes charged to --max-memory now (waiting "
          "publishes, encoded messages, queued replies, partial requests and messages).\n"
          "# TYPE ringcast_memory_charged_bytes gauge\nringcast_memory_charged_bytes %" PRId64 "\n",
      rc_budget_used(&srv->budget));
  const struct rc_admission_stats *as = rc_admission_stats(srv->admission);
  static const struct {
    const char *name, *help;
    size_t off;
  } adm[] = {
      {"ringcast_refused_conns_per_ip_total", "Connections refused (503): their address held --max-conns-per-ip.",
       offsetof(struct rc_admission_stats, refused_conns)},
      {"ringcast_refused_handshakes_per_ip_total",
       "Connections refused (503): their address had --max-handshakes-per-ip in their handshake.",
       offsetof(struct rc_admission_stats, refused_handshakes)},
      {"ringcast_refused_connect_rate_total", "Connections refused (429): their address passed --connect-rate-per-ip.",
       offsetof(struct rc_admission_stats, refused_rate)},
  };
  for (size_t i = 0; i < sizeof adm / sizeof adm[0]; i++)
    put(&o, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", adm[i].name, adm[i].help, adm[i].name,
        adm[i].name, atomic_load_explicit((const _Atomic uint64_t *)((const char *)as + adm[i].off),
                                          memory_order_relaxed));
  put(&o, "# HELP ringcast_client_addresses Client addresses tracked by the per-address limits.\n"
          "# TYPE ringcast_client_addresses gauge\nringcast_client_addresses %u\n",
      rc_admission_count(srv->admission));
  put(&o, "# HELP ringcast_shard_backlog_bytes Bytes of publishes waiting for the shard to stamp "
          "them (--max-backlog).\n# TYPE ringcast_shard_backlog_bytes gauge\n");
  for (unsigned s = 0; s < srv->nshards; s++)
    put(&o, "ringcast_shard_backlog_bytes{shard=\"%u\"} %" PRIu64 "\n", s,
        rc_pubsub_backlog(srv->pubsub, s));
  if (srv->tls) render_tls(&o, srv);
  put(&o, "# HELP ringcast_auth_refusals_total Requests, upgrades and commands refused by access "
          "control, by reason (401/403 or an error reply and close 1008).\n"
          "# TYPE ringcast_auth_refusals_total counter\n");
  for (int r = 0; r < RC_ACCESS_REASONS; r++)
    put(&o, "ringcast_auth_refusals_total{reason=\"%s\"} %" PRIu64 "\n", rc_access_reason_name(r),
        rc_access_refusals(srv->access, r));
  put(&o, "# HELP ringcast_auth_accepted_total Credentials accepted, by kind.\n"
          "# TYPE ringcast_auth_accepted_total counter\n"
          "ringcast_auth_accepted_total{kind=\"token\"} %" PRIu64 "\n"
          "ringcast_auth_accepted_total{kind=\"key\"} %" PRIu64 "\n",
      rc_access_accepted(srv->access, RC_AUTH_TOKEN), rc_access_accepted(srv->access, RC_AUTH_KEY));
  static const char *const resume_names[] = {NULL, "recovered", "gap_history", "gap_epoch", "ahead"};
  put(&o, "# HELP ringcast_resumes_total Subscriptions that came with a since position, by outcome "
          "(recovered from history, or an explicit gap: history too short, epoch changed, position ahead).\n"
          "# TYPE ringcast_resumes_total counter\n");
  for (int r = RC_JOIN_RECOVERED; r <= RC_JOIN_AHEAD; r++)
    put(&o, "ringcast_resumes_total{outcome=\"%s\"} %" PRIu64 "\n", resume_names[r],
        rc_counter_sum(src.of[PUBSUB], srv->nshards,
                       offsetof(struct rc_pubsub_stats, resumes) + (size_t)r * sizeof(_Atomic uint64_t)));
  static const char *const cut_names[] = {"count", "bytes", "age", "memory"};
  put(&o, "# HELP ringcast_history_dropped_total Messages dropped from history, by the bound that "
          "dropped them (--history, --history-bytes, --history-ttl, the memory share).\n"
          "# TYPE ringcast_history_dropped_total counter\n");
  for (int r = 0; r < 4; r++)
    put(&o, "ringcast_history_dropped_total{reason=\"%s\"} %" PRIu64 "\n", cut_names[r],
        rc_counter_sum(src.of[PUBSUB], srv->nshards,
                       offsetof(struct rc_pubsub_stats, history_cut) + (size_t)r * sizeof(_Atomic uint64_t)));
  put(&o, "# HELP ringcast_shards Shards running.\n# TYPE ringcast_shards gauge\nringcast_shards %u\n",
      srv->nshards);
  render_signals(&o, srv, &src);
  if (srv->cfg->has_redis) render_redis(&o, srv, &src);
  if (o.err) {
    free(o.p);
    return o.err;
  }
  *out_p = o.p;
  return (long)o.len;
}
