/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition of the per-shard counters: one family per counter
 * with a shard label, and a total family without labels. */
#include "ringcast/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ringcast/shard.h"
#include "ringcast/topic.h"

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

static const struct {
  const char *name;
  const char *type;
  const char *help;
  size_t offset;
} families[] = {
#define F(field, name, type, help) {name, type, help, offsetof(struct rc_shard_metrics, field)}
    F(conns_open, "ringcast_connections_open", "gauge", "Connections open now."),
    F(conns_accepted, "ringcast_connections_accepted_total", "counter", "Connections accepted."),
    F(conns_refused, "ringcast_connections_refused_total", "counter",
      "Connections refused with 503 because the shard was at --max-conns."),
    F(ws_upgrades, "ringcast_websocket_upgrades_total", "counter", "WebSocket handshakes completed."),
    F(http_requests, "ringcast_http_requests_total", "counter", "HTTP requests parsed."),
    F(messages_published, "ringcast_messages_published_total", "counter",
      "Messages stamped with a sequence number by their topic's home shard."),
    F(frames_delivered, "ringcast_frames_delivered_total", "counter",
      "Frames and responses fully written to client sockets."),
    F(bytes_delivered, "ringcast_bytes_delivered_total", "counter", "Bytes written to client sockets."),
    F(slow_disconnects, "ringcast_slow_consumer_disconnects_total", "counter",
      "Subscribers closed (1008) because their queue passed --max-queue."),
    F(protocol_errors, "ringcast_protocol_errors_total", "counter",
      "Connections closed for malformed HTTP or WebSocket input."),
    F(recv_enobufs, "ringcast_recv_buffer_exhausted_total", "counter",
      "Receives that found the provided-buffer ring empty and were re-armed."),
    F(sends, "ringcast_sendmsg_total", "counter", "sendmsg operations completed (each coalesces queued frames)."),
    F(timeouts, "ringcast_timeouts_total", "counter",
      "Connections closed by --handshake-timeout or --idle-timeout."),
    F(pings_sent, "ringcast_keepalive_pings_total", "counter", "Keepalive pings sent (--ping-interval)."),
#undef F
};

long rc_metrics_render(const struct rc_server *srv, char **out_p) {
  struct out o = {.cap = 8192};
  o.p = malloc(o.cap);
  if (!o.p) return -ENOMEM;
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
    uint64_t total = 0;
    put(&o, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help, families[f].name,
        families[f].type);
    for (unsigned s = 0; s < srv->nshards; s++) {
      const _Atomic uint64_t *v =
          (const _Atomic uint64_t *)((const char *)&srv->shards[s]->metrics + families[f].offset);
      total += atomic_load_explicit(v, memory_order_relaxed);
    }
    put(&o, "%s %" PRIu64 "\n", families[f].name, total);
  }
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
    const char *name = families[f].name;
    put(&o, "# HELP ringcast_shard_%s %s (per shard)\n# TYPE ringcast_shard_%s %s\n", name + 9,
        families[f].help, name + 9, families[f].type);
    for (unsigned s = 0; s < srv->nshards; s++) {
      const _Atomic uint64_t *v =
          (const _Atomic uint64_t *)((const char *)&srv->shards[s]->metrics + families[f].offset);
      put(&o, "ringcast_shard_%s{shard=\"%u\"} %" PRIu64 "\n", name + 9, s,
          atomic_load_explicit(v, memory_order_relaxed));
    }
  }
  put(&o, "# HELP ringcast_topics Topics known.\n# TYPE ringcast_topics gauge\nringcast_topics %u\n",
      rc_topic_count(srv->topics));
  put(&o, "# HELP ringcast_shards Shards running.\n# TYPE ringcast_shards gauge\nringcast_shards %u\n",
      srv->nshards);
  if (o.err) {
    free(o.p);
    return o.err;
  }
  *out_p = o.p;
  return (long)o.len;
}
