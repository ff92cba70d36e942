/* SPDX-License-Identifier: MIT */
/* Command-line configuration: parsed once in main, then read-only for every thread. */
#ifndef RINGCAST_CONFIG_H
#define RINGCAST_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "ringcast/proto/redis_url.h"
#include "ringcast/util/log.h"

#define RC_MAX_SHARDS 64
#define RC_CONFIG_MAX_LISTEN 8
#define RC_CONFIG_MAX_JWT_KEYS 16
#define RC_CONFIG_MAX_ORIGINS 32
#define RC_CONFIG_MAX_PROXIES 32
/* Direct-descriptor slots kept beyond --max-conns so a connection over the limit
 * can still be accepted and told "503 server full" instead of being dropped. */
#define RC_CONN_SPARE 32
/* Slots of the --admin-listen address's own on the shard that serves it, so
 * monitoring is accepted when the public listeners have filled the table; kept
 * out of every shard's --max-conns range so the limit does not depend on it. */
#define RC_ADMIN_SLOTS 16
/* Slots of every shard's own for the connections it opens (rc_loop_connect: the
 * Redis link), outside --max-conns like the admin slots, so a full table of
 * clients never keeps a shard from its link: two per Redis Cluster master (at
 * most 16, redis_link.c), and two more for the seed connections that a new
 * link's slot map replaces while they close. */
#define RC_LINK_SLOTS 34
/* What --max-queue counts for each queued frame beyond its wire bytes: the queue
 * entry, the frame's header and its holder (a 2-byte pong costs ~100 bytes). */
#define RC_QUEUE_ENTRY_COST 96

struct rc_listen_addr {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  bool tls;                      /* HOST:PORT,tls: connections speak TLS (wss://, https://) */
  char text[80];
};

struct rc_config {
  struct rc_listen_addr listen[RC_CONFIG_MAX_LISTEN];
  unsigned n_listen;
  struct rc_listen_addr admin;   /* --admin-listen, when has_admin */
  bool has_admin;
  unsigned threads;
  int cpus[RC_MAX_SHARDS];
  unsigned n_cpus;
  bool pin;
  unsigned max_conns;      /* per shard */
  uint32_t max_message;    /* bytes, inbound and published */
  uint64_t max_queue;      /* bytes queued per connection */
  uint64_t max_memory;     /* bytes clients may make the server hold, all shards */
  uint64_t max_backlog;    /* bytes of publishes waiting in one shard's inbox */
  uint32_t max_topics;     /* topics alive at once, all shards */
  uint32_t max_patterns;   /* distinct wildcard patterns subscribed at once; 0: none */
  uint32_t max_command_bytes; /* a WebSocket command other than publish */
  uint32_t max_conns_per_ip;      /* 0: off */
  uint32_t max_handshakes_per_ip; /* connections before their first request; 0: off */
  uint32_t connect_rate_per_ip;   /* new connections per second; 0: off */
  unsigned max_commands;   /* WebSocket messages and control frames per connection per second; 0: off */
  uint32_t history;          /* messages kept per topic; 0: no history */
  uint64_t history_bytes;    /* per topic; 0: no bound */
  unsigned history_ttl;      /* seconds; 0: no bound */
  unsigned topic_heartbeat;  /* seconds of silence before a topic heartbeat; 0: off */
  uint8_t slow_policy;       /* enum rc_slow_policy */
  bool demo_feed;
  uint32_t stats_interval_ms; /* $sys.stats period; 0: no feed */
  bool echo;                 /* GET /echo for conformance suites */
  unsigned handshake_timeout; /* seconds to send a complete request head; 0: off */
  unsigned idle_timeout;     /* seconds without inbound bytes before closing; 0: off */
  unsigned ping_interval;    /* seconds of inbound silence before a keepalive ping; 0: off */
  enum rc_log_level log_level;
  enum rc_log_format log_format;  /* --log-format */
  const char *tls_cert;      /* --tls-cert: PEM chain, leaf first; NULL: no TLS */
  const char *tls_key;       /* --tls-key: its PEM private key */
  /* Access control (docs/security.md). Files are read when the server starts. */
  const char *jwt_keys[RC_CONFIG_MAX_JWT_KEYS]; /* --jwt-key FILE[,kid=NAME] */
  unsigned n_jwt_keys;
  unsigned jwt_leeway;       /* --jwt-leeway: seconds of clock skew for exp and nbf */
  const char *jwt_audience;  /* --jwt-audience; NULL: tokens must carry no aud */
  const char *jwt_issuer;    /* --jwt-issuer; NULL: any */
  const char *jwt_cookie;    /* --jwt-cookie: cookie that may carry the token; NULL: none */
  const char *publish_key_file; /* --publish-key-file */
  const char *allow_origins[RC_CONFIG_MAX_ORIGINS]; /* --allow-origin */
  unsigned n_allow_origins;
  const char *trust_proxies[RC_CONFIG_MAX_PROXIES]; /* --trust-proxy CIDR */
  unsigned n_trust_proxies;
  /* Lifecycle (docs/operations.md, "Stopping" and "Restarts"). */
  unsigned drain_seconds;    /* --drain-seconds: SIGTERM spreads closes over it; 0: at once */
  bool takeover;             /* --takeover: take the listening sockets of the running server */
  const char *control_socket; /* --control-socket PATH; NULL: abstract, named after --listen */
  const char *pid_file;      /* --pid-file PATH; NULL: none */
  /* Scale-out (docs/deploy/redis.md): topics shared with other nodes through Redis. */
  bool has_redis;            /* --redis given */
  struct rc_redis_url redis;
  const char *node_id;       /* --node-id: this node's name in Redis; NULL: HOST:PORT of --listen */
  uint32_t redis_patterns;   /* --redis-patterns: pattern subscriptions a node's wildcards hold at Redis */
};

/* Fills cfg from argv. Returns 0 to run, 1 when --help or --version was printed
 * (exit 0), or -EINVAL after writing a message that names the bad flag to err
 * (exit 2). */
/* What happens to a subscriber whose queue passes --max-queue. */
enum rc_slow_policy { RC_SLOW_DISCONNECT = 0, RC_SLOW_CONFLATE };

int rc_config_parse(struct rc_config *cfg, int argc, char **argv, FILE *out, FILE *err);
/* A quarter of physical memory (at least 16 MiB). */
uint64_t rc_config_default_max_memory(void);
/* Prints the usage text with every flag and its default. */
void rc_config_usage(FILE *out);
/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT"; 0 or -EINVAL. */
int rc_config_parse_listen(const char *s, struct rc_listen_addr *out);
/* Parses a CPU list such as "0-3,6"; returns the count or -EINVAL. */
int rc_config_parse_cpus(const char *s, int *cpus, unsigned max);
/* Parses a byte size with an optional k/m/g suffix (powers of 1024). */
int rc_config_parse_size(const char *s, uint64_t *out);

#endif
