/* SPDX-License-Identifier: MIT */
/* Per-shard counters and the Prometheus text rendering of all shards. A counter
 * is written only by its shard (relaxed load and store, no locked instruction)
 * and read by whichever shard renders /metrics. */
#ifndef RINGCAST_METRICS_H
#define RINGCAST_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct rc_shard_metrics {
  _Atomic uint64_t conns_open;
  _Atomic uint64_t conns_accepted;
  _Atomic uint64_t conns_refused;
  _Atomic uint64_t ws_upgrades;
  _Atomic uint64_t http_requests;
  _Atomic uint64_t messages_published;
  _Atomic uint64_t frames_delivered;
  _Atomic uint64_t bytes_delivered;
  _Atomic uint64_t slow_disconnects;
  _Atomic uint64_t protocol_errors;
  _Atomic uint64_t recv_enobufs;
  _Atomic uint64_t sends;
  _Atomic uint64_t timeouts;
  _Atomic uint64_t pings_sent;
};

/* Owner thread only. */
#define RC_METRIC_ADD(m, field, n)                                                   \
  atomic_store_explicit(&(m)->field,                                                 \
                        atomic_load_explicit(&(m)->field, memory_order_relaxed) + (n), \
                        memory_order_relaxed)
#define RC_METRIC_SUB(m, field, n) RC_METRIC_ADD(m, field, -(uint64_t)(n))

struct rc_server;

/* Renders every metric, per shard and in total, into a malloc'd buffer. Returns
 * its length, or -ENOMEM. Any shard thread. */
long rc_metrics_render(const struct rc_server *srv, char **out);

#endif
