/* SPDX-License-Identifier: MIT */
/* Command-line flags: parsing, validation with messages that name the flag, and
 * the usage text. */
#include "ringcast/util/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define DEFAULT_LISTEN "0.0.0.0:8080"
#define DEFAULT_MAX_MESSAGE (1u << 20)
#define DEFAULT_MAX_QUEUE (4ull << 20)
#define DEFAULT_HANDSHAKE_TIMEOUT 10u
#define DEFAULT_IDLE_TIMEOUT 90u
#define DEFAULT_PING_INTERVAL 30u
#define DEFAULT_MAX_BACKLOG (16ull << 20)
#define DEFAULT_MAX_COMMANDS 20000u
#define DEFAULT_MAX_TOPICS (4u << 20)
#define DEFAULT_MAX_PATTERNS 10000u
#define DEFAULT_REDIS_PATTERNS 64u
#define DEFAULT_MAX_COMMAND_BYTES (256u << 10)
#define DEFAULT_MAX_CONNS_PER_IP 4096u
#define DEFAULT_MAX_HANDSHAKES_PER_IP 128u
#define DEFAULT_CONNECT_RATE_PER_IP 500u
#define MIN_MAX_MEMORY (16ull << 20)

enum {
  OPT_LISTEN = 256, OPT_THREADS, OPT_CPUS, OPT_NO_PIN, OPT_MAX_CONNS, OPT_MAX_MESSAGE,
  OPT_MAX_QUEUE, OPT_DEMO_FEED, OPT_LOG_LEVEL, OPT_HELP, OPT_VERSION, OPT_ECHO,
  OPT_HANDSHAKE_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_PING_INTERVAL, OPT_MAX_MEMORY, OPT_MAX_BACKLOG,
  OPT_MAX_COMMANDS, OPT_MAX_TOPICS, OPT_MAX_PATTERNS, OPT_MAX_COMMAND_BYTES, OPT_ADMIN_LISTEN,
  OPT_MAX_CONNS_PER_IP, OPT_MAX_HANDSHAKES_PER_IP, OPT_CONNECT_RATE_PER_IP, OPT_TLS_CERT,
  OPT_TLS_KEY, OPT_JWT_KEY, OPT_JWT_LEEWAY, OPT_JWT_AUDIENCE, OPT_JWT_ISSUER, OPT_JWT_COOKIE,
  OPT_PUBLISH_KEY_FILE, OPT_ALLOW_ORIGIN, OPT_TRUST_PROXY, OPT_HISTORY, OPT_HISTORY_BYTES,
  OPT_HISTORY_TTL, OPT_TOPIC_HEARTBEAT, OPT_SLOW_POLICY, OPT_LOG_FORMAT, OPT_STATS_INTERVAL,
  OPT_DRAIN_SECONDS, OPT_TAKEOVER, OPT_CONTROL_SOCKET, OPT_PID_FILE, OPT_REDIS, OPT_NODE_ID, OPT_REDIS_PATTERNS,
};
#define DEFAULT_STATS_INTERVAL_MS 1000u
#define DEFAULT_HISTORY_BYTES (1ull << 20)
#define DEFAULT_HISTORY_TTL 300u
#define DEFAULT_JWT_LEEWAY 30u
#define DEFAULT_DRAIN_SECONDS 30u

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"jwt-key", required_argument, NULL, OPT_JWT_KEY},
    {"jwt-leeway", required_argument, NULL, OPT_JWT_LEEWAY},
    {"jwt-audience", required_argument, NULL, OPT_JWT_AUDIENCE},
    {"jwt-issuer", required_argument, NULL, OPT_JWT_ISSUER},
    {"jwt-cookie", required_argument, NULL, OPT_JWT_COOKIE},
    {"publish-key-file", required_argument, NULL, OPT_PUBLISH_KEY_FILE},
    {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
    {"trust-proxy", required_argument, NULL, OPT_TRUST_PROXY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"no-pin", no_argument, NULL, OPT_NO_PIN},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"max-backlog", required_argument, NULL, OPT_MAX_BACKLOG},
    {"max-commands-per-sec", required_argument, NULL, OPT_MAX_COMMANDS},
    {"max-topics", required_argument, NULL, OPT_MAX_TOPICS},
    {"max-patterns", required_argument, NULL, OPT_MAX_PATTERNS},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"history-bytes", required_argument, NULL, OPT_HISTORY_BYTES},
    {"history-ttl", required_argument, NULL, OPT_HISTORY_TTL},
    {"topic-heartbeat", required_argument, NULL, OPT_TOPIC_HEARTBEAT},
    {"slow-policy", required_argument, NULL, OPT_SLOW_POLICY},
    {"max-conns-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP},
    {"max-handshakes-per-ip", required_argument, NULL, OPT_MAX_HANDSHAKES_PER_IP},
    {"connect-rate-per-ip", required_argument, NULL, OPT_CONNECT_RATE_PER_IP},
    {"max-command-bytes", required_argument, NULL, OPT_MAX_COMMAND_BYTES},
    {"demo-feed", no_argument, NULL, OPT_DEMO_FEED},
    {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
    {"echo", no_argument, NULL, OPT_ECHO},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"drain-seconds", required_argument, NULL, OPT_DRAIN_SECONDS},
    {"takeover", no_argument, NULL, OPT_TAKEOVER},
    {"control-socket", required_argument, NULL, OPT_CONTROL_SOCKET},
    {"pid-file", required_argument, NULL, OPT_PID_FILE},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"redis-patterns", required_argument, NULL, OPT_REDIS_PATTERNS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* The per-ring direct-descriptor table may not exceed RLIMIT_NOFILE (the kernel
 * checks the soft limit; main raises it to the hard one first). */
static unsigned nofile_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  rlim_t lim = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
  if (lim > (rlim_t)1 << 20) lim = (rlim_t)1 << 20; /* IORING_MAX_FIXED_FILES */
  return (unsigned)lim;
}

/* A quarter of physical memory: room for the kernel's socket buffers, the
 * allocator's slack and whatever else runs on the box. */
uint64_t rc_config_default_max_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  uint64_t ram = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : (1ull << 30);
  uint64_t v = ram / 4;
  return v < MIN_MAX_MEMORY ? MIN_MAX_MEMORY : v;
}

static unsigned default_max_conns(void) {
  unsigned lim = nofile_limit();
  unsigned reserved = RC_CONN_SPARE + RC_ADMIN_SLOTS + RC_LINK_SLOTS;
  return lim > reserved + 16 ? lim - reserved : 16;
}

void rc_config_usage(FILE *out) {
  fprintf(out,
          "Usage: ringcast [OPTIONS]\n"
          "WebSocket broadcaster for high-fan-out streams (io_uring, one shard per CPU).\n\n"
          "  --listen HOST:PORT[,tls]  address to listen on; repeatable; IPv6 as\n"
          "                       [::1]:8080; ,tls makes it a TLS port (wss://, https://)\n"
          "                       (default %s; TLS when --tls-cert is given)\n"
          "  --tls-cert FILE      PEM certificate chain, leaf first (ECDSA P-256 or RSA)\n"
          "  --tls-key FILE       PEM private key of that certificate\n"
          "  --jwt-key FILE[,kid=NAME]  verify JWTs with this key: an HMAC secret (HS256, 32+\n"
          "                       bytes) or a PEM public key (RS256 RSA-2048+, ES256 P-256);\n"
          "                       repeatable (at most %d), matched by kid when a token names\n"
          "                       one. With any key (or --publish-key-file) every subscribe\n"
          "                       and publish needs a credential (default: none, open)\n"
          "  --jwt-leeway S       clock skew allowed on exp and nbf (default %u)\n"
          "  --jwt-audience AUD   tokens must name it in aud (default: tokens must have no aud)\n"
          "  --jwt-issuer ISS     tokens must carry this iss (default: any)\n"
          "  --jwt-cookie NAME    a cookie that may carry the token (default: none)\n"
          "  --publish-key-file FILE  static keys, one a line, each allowing every publish and\n"
          "                       subscribe when presented as Authorization: Bearer KEY\n"
          "  --allow-origin PATTERN  a browser Origin allowed to open WebSockets, e.g.\n"
          "                       https://*.example.com; repeatable; others get 403 (default:\n"
          "                       any origin)\n"
          "  --trust-proxy CIDR   a reverse proxy whose Forwarded, X-Forwarded-For and X-Real-IP\n"
          "                       are believed for the client address (logs, per-address\n"
          "                       limits); repeatable (default: none)\n"
          "  --admin-listen HOST:PORT  also serve GET /metrics, /healthz and /readyz here, with\n"
          "                       slots of their own so monitoring answers when the public\n"
          "                       port is full; /metrics, the status page (GET /) and\n"
          "                       $sys. topics then leave the public port (default: none)\n"
          "  --threads N          shards, one pinned thread each (default: online CPUs, %ld)\n"
          "  --cpus LIST          CPUs to pin shards to, e.g. 0-3,6 (default: 0..N-1)\n"
          "  --no-pin             do not pin shard threads to CPUs\n"
          "  --max-conns N        connections per shard (default %u, from RLIMIT_NOFILE)\n"
          "  --max-conns-per-ip N  connections one client address (IPv6: one /64) may hold\n"
          "                       at once; more get 503 (default %u; 0 disables; behind a\n"
          "                       reverse proxy every client shares its address)\n"
          "  --max-handshakes-per-ip N  connections from one address that have not yet sent\n"
          "                       a complete first request; more get 503 (default %u; 0\n"
          "                       disables)\n"
          "  --connect-rate-per-ip N  new connections per second from one address, a\n"
          "                       second's worth at once; faster ones get 429 (default %u;\n"
          "                       0 disables; load tests from one address need 0)\n"
          "  --max-message BYTES  largest message published or received; k/m/g suffixes\n"
          "                       (default %u)\n"
          "  --max-queue BYTES    bytes queued per connection before it is closed as a slow\n"
          "                       consumer with code 1008; each queued frame counts its\n"
          "                       bytes plus %u of bookkeeping (default %llu)\n"
          "  --max-memory BYTES   budget for everything clients make the server hold (waiting\n"
          "                       publishes, encoded messages, queued replies, partial requests\n"
          "                       and messages); past it new publishes and WebSocket\n"
          "                       upgrades get 503 (default: a quarter of RAM, %llu)\n"
          "  --max-backlog BYTES  publishes waiting for one shard to stamp them; past it\n"
          "                       publishes to its topics get 503 (default %llu)\n"
          "  --max-topics N       topics alive at once (a topic lives while it has\n"
          "                       subscribers or a publish in flight); past it new topics get\n"
          "                       503 / an error reply (default %u)\n"
          "  --max-patterns N     distinct wildcard patterns (quotes.*, quotes.>) subscribed at\n"
          "                       once, all connections together; past it a new pattern gets\n"
          "                       an error reply (default %u; 0: no wildcards)\n"
          "  --history N          messages kept per topic, for clients that resume with\n"
          "                       since= and for snapshots (default 0: none)\n"
          "  --history-bytes BYTES  bytes of messages kept per topic (default %llu)\n"
          "  --history-ttl S      seconds a message stays in history (default %u; 0: no limit);\n"
          "                       all history together is held to half of --max-memory\n"
          "  --topic-heartbeat S  send {\"type\":\"hb\"} on topics silent this long (default 0: off)\n"
          "  --slow-policy P      a subscriber past --max-queue: disconnect (close 1008) or\n"
          "                       conflate (keep the newest message per topic and announce\n"
          "                       the gap); a client may ask policy=conflate (default\n"
          "                       disconnect)\n"
          "  --max-command-bytes BYTES  largest subscribe, unsubscribe or ping command (a\n"
          "                       publish is bounded by --max-message); larger ones get an\n"
          "                       error reply; at most 1024 topics per command (default %u)\n"
          "  --max-commands-per-sec N  HTTP requests, WebSocket messages and control frames\n"
          "                       (pings count) one connection may send a second, a second's\n"
          "                       worth at once; past it the connection is closed (429, or\n"
          "                       1008) (default %u; 0 disables)\n"
          "  --demo-feed          publish a synthetic market-data feed (quotes.SYM, trades.SYM)\n"
          "  --stats-interval MS  publish the server's statistics to $sys.stats this often,\n"
          "                       while anyone subscribes; the status page (GET /) shows\n"
          "                       them (default %u; 0 disables the topic, 100 at least)\n"
          "  --echo               enable GET /echo, a WebSocket echo route for conformance\n"
          "                       suites (default off)\n"
          "  --handshake-timeout S  seconds a client has to send a complete request head;\n"
          "                       slower ones get 408 (default %u; 0 disables)\n"
          "  --idle-timeout S     close connections silent this long, pongs included\n"
          "                       (default %u; 0 disables)\n"
          "  --ping-interval S    ping WebSocket clients silent this long (default %u; 0 disables)\n"
          "  --log-level LEVEL    error, warn, info or debug (default info)\n"
          "  --log-format F       text, or json: one JSON object a line (ts, level, shard,\n"
          "                       msg) for log pipelines (default text)\n"
          "  --drain-seconds S    on SIGTERM: /readyz turns 503, each WebSocket client is told\n"
          "                       {\"type\":\"reconnect\",\"after_ms\":J} and closed with 1001 at\n"
          "                       its own time, spread over S seconds; a second SIGTERM or\n"
          "                       SIGINT stops at once (default %u; 0: close all at once)\n"
          "  --takeover           replace the ringcast serving the same --listen address:\n"
          "                       its listening sockets are handed over (no connection is\n"
          "                       refused or reset) and it drains as on SIGTERM; with\n"
          "                       none running, start fresh\n"
          "  --control-socket PATH  Unix socket for --takeover (default: abstract, named after\n"
          "                       the first --listen address, e.g. @ringcast:127.0.0.1:8080)\n"
          "  --pid-file PATH      write the process id here once listening (atomically);\n"
          "                       removed at exit\n"
          "  --redis URL          share topics with other nodes through Redis:\n"
          "                       redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; publishes get\n"
          "                       their seq from Redis, every node delivers them in one order,\n"
          "                       resumes are served from Redis' history (default: none, one node)\n"
          "  --node-id NAME       this node's name in Redis' subscriber counts (default: the\n"
          "                       first --listen address)\n"
          "  --redis-patterns N   Redis pattern subscriptions this node's wildcards may hold\n"
          "                       (Redis matches each against every publish); past it they\n"
          "                       are made broader, not refused (default %u)\n"
          "  --help               show this text\n"
          "  --version            show the version\n\n"
          "Routes: GET /ws?topics=a,b,quotes.*[&format=raw][&since=TOPIC:EPOCH:SEQ,...]\n"
          "[&snapshot=1][&policy=conflate], POST /publish/<topic>, POST /publish (batch),\n"
          "GET /topics/<name>, GET /metrics, GET /healthz, GET /readyz, GET / (the status page).\n"
          "See docs/protocol.md; several nodes: docs/deploy/redis.md;\n"
          "restarts and draining: docs/operations.md.\n",
          DEFAULT_LISTEN, RC_CONFIG_MAX_JWT_KEYS, DEFAULT_JWT_LEEWAY, sysconf(_SC_NPROCESSORS_ONLN),
          default_max_conns(),
          DEFAULT_MAX_CONNS_PER_IP, DEFAULT_MAX_HANDSHAKES_PER_IP, DEFAULT_CONNECT_RATE_PER_IP,
          DEFAULT_MAX_MESSAGE, RC_QUEUE_ENTRY_COST, (unsigned long long)DEFAULT_MAX_QUEUE,
          (unsigned long long)rc_config_default_max_memory(), (unsigned long long)DEFAULT_MAX_BACKLOG, DEFAULT_MAX_TOPICS,
          DEFAULT_MAX_PATTERNS, (unsigned long long)DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_TTL, DEFAULT_MAX_COMMAND_BYTES, DEFAULT_MAX_COMMANDS,
          DEFAULT_STATS_INTERVAL_MS, DEFAULT_HANDSHAKE_TIMEOUT,
          DEFAULT_IDLE_TIMEOUT, DEFAULT_PING_INTERVAL, DEFAULT_DRAIN_SECONDS, DEFAULT_REDIS_PATTERNS);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out) {
  if (!*s || !isdigit((unsigned char)*s)) return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return -EINVAL;
  *out = v;
  return 0;
}

int rc_config_parse_size(const char *s, uint64_t *out) {
  if (!*s || !isdigit((unsigned char)*s)) return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return -EINVAL;
  unsigned shift = 0;
  switch (tolower((unsigned char)*end)) {
  case '\0': break;
  case 'k': shift = 10; break;
  case 'm': shift = 20; break;
  case 'g': shift = 30; break;
  default: return -EINVAL;
  }
  if (*end && end[1] && !(tolower((unsigned char)end[1]) == 'b' && !end[2])) return -EINVAL;
  if (v > (UINT64_MAX >> shift)) return -EINVAL;
  *out = (uint64_t)v << shift;
  return 0;
}

/* "HOST:PORT" with an optional ",tls". */
static int parse_listen_with_flags(const char *s, struct rc_listen_addr *out) {
  char addr[128];
  const char *comma = strchr(s, ',');
  size_t n = comma ? (size_t)(comma - s) : strlen(s);
  if (n >= sizeof addr) return -EINVAL;
  memcpy(addr, s, n);
  addr[n] = '\0';
  if (rc_config_parse_listen(addr, out) < 0) return -EINVAL;
  if (comma) {
    if (strcmp(comma + 1, "tls") != 0) return -EINVAL;
    out->tls = true;
  }
  return 0;
}

/* A certificate needs its key and a port to serve it on; a TLS port needs both. */
static int check_tls(struct rc_config *cfg, FILE *err) {
  bool any = cfg->has_admin && cfg->admin.tls;
  for (unsigned i = 0; i < cfg->n_listen; i++) any |= cfg->listen[i].tls;
  if (!cfg->tls_cert != !cfg->tls_key) {
    fprintf(err, "ringcast: %s is given without %s: a TLS port needs both the certificate "
                 "chain and its private key\n",
            cfg->tls_cert ? "--tls-cert" : "--tls-key", cfg->tls_cert ? "--tls-key" : "--tls-cert");
    return -EINVAL;
  }
  if (any && !cfg->tls_cert) {
    fprintf(err, "ringcast: a listener is marked ,tls but no certificate is given: add "
                 "--tls-cert FILE and --tls-key FILE\n");
    return -EINVAL;
  }
  if (cfg->tls_cert && !any) {
    if (cfg->n_listen != 1) {
      fprintf(err, "ringcast: --tls-cert is given but none of the %u --listen addresses is marked "
                   "TLS: write the TLS ones as HOST:PORT,tls\n", cfg->n_listen);
      return -EINVAL;
    }
    cfg->listen[0].tls = true; /* the only listener serves the certificate */
  }
  return 0;
}

int rc_config_parse_listen(const char *s, struct rc_listen_addr *out) {
  char host[64];
  const char *port_s;
  memset(out, 0, sizeof *out);
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host) return -EINVAL;
    memcpy(host, s + 1, (size_t)(close - s - 1));
    host[close - s - 1] = '\0';
    port_s = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port_s = colon + 1;
    if (strchr(host, ':')) return -EINVAL; /* bare IPv6 needs brackets */
  }
  unsigned long long port;
  if (parse_uint(port_s, 65535, &port) < 0) return -EINVAL;
  if (s[0] == '[') {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -EINVAL;
    out->addr_len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&out->addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (host[0] == '\0' || strcmp(host, "*") == 0)
      a->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
      return -EINVAL;
    out->addr_len = sizeof *a;
  }
  snprintf(out->text, sizeof out->text, "%s", s);
  return 0;
}

int rc_config_parse_cpus(const char *s, int *cpus, unsigned max) {
  unsigned n = 0;
  const char *p = s;
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  while (*p) {
    char *end;
    if (!isdigit((unsigned char)*p)) return -EINVAL;
    long a = strtol(p, &end, 10), b = a;
    p = end;
    if (*p == '-') {
      p++;
      if (!isdigit((unsigned char)*p)) return -EINVAL;
      b = strtol(p, &end, 10);
      p = end;
    }
    if (b < a || b >= ncpu || b >= CPU_SETSIZE) return -EINVAL;
    for (long c = a; c <= b; c++) {
      if (n >= max) return -EINVAL;
      cpus[n++] = (int)c;
    }
    if (*p == ',') p++;
    else if (*p) return -EINVAL;
  }
  return n ? (int)n : -EINVAL;
}

static int bad(FILE *err, const char *flag, const char *value, const char *want) {
  fprintf(err, "ringcast: invalid value '%s' for %s: %s (see --help)\n", value, flag, want);
  return -EINVAL;
}

int rc_config_parse(struct rc_config *cfg, int argc, char **argv, FILE *out, FILE *err) {
  memset(cfg, 0, sizeof *cfg);
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  cfg->threads = online > 0 ? (unsigned)(online > RC_MAX_SHARDS ? RC_MAX_SHARDS : online) : 1;
  cfg->pin = true;
  cfg->max_conns = default_max_conns();
  cfg->max_message = DEFAULT_MAX_MESSAGE;
  cfg->max_queue = DEFAULT_MAX_QUEUE;
  cfg->history_bytes = DEFAULT_HISTORY_BYTES;
  cfg->history_ttl = DEFAULT_HISTORY_TTL;
  cfg->max_memory = rc_config_default_max_memory();
  cfg->max_backlog = DEFAULT_MAX_BACKLOG;
  cfg->max_commands = DEFAULT_MAX_COMMANDS;
  cfg->max_topics = DEFAULT_MAX_TOPICS;
  cfg->max_patterns = DEFAULT_MAX_PATTERNS;
  cfg->redis_patterns = DEFAULT_REDIS_PATTERNS;
  cfg->max_command_bytes = DEFAULT_MAX_COMMAND_BYTES;
  cfg->max_conns_per_ip = DEFAULT_MAX_CONNS_PER_IP;
  cfg->max_handshakes_per_ip = DEFAULT_MAX_HANDSHAKES_PER_IP;
  cfg->connect_rate_per_ip = DEFAULT_CONNECT_RATE_PER_IP;
  cfg->log_level = RC_LOG_INFO;
  cfg->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
  cfg->idle_timeout = DEFAULT_IDLE_TIMEOUT;
  cfg->ping_interval = DEFAULT_PING_INTERVAL;
  cfg->stats_interval_ms = DEFAULT_STATS_INTERVAL_MS;
  cfg->jwt_leeway = DEFAULT_JWT_LEEWAY;
  cfg->drain_seconds = DEFAULT_DRAIN_SECONDS;
  unsigned long long v;
  uint64_t sz;
  int opt;
  optind = 1;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
    switch (opt) {
    case OPT_LISTEN:
      if (cfg->n_listen >= RC_CONFIG_MAX_LISTEN)
        return bad(err, "--listen", optarg, "at most 8 addresses");
      if (parse_listen_with_flags(optarg, &cfg->listen[cfg->n_listen]) < 0)
        return bad(err, "--listen", optarg,
                   "expected HOST:PORT or HOST:PORT,tls, e.g. 127.0.0.1:8080 or [::1]:8443,tls");
      cfg->n_listen++;
      break;
    case OPT_ADMIN_LISTEN:
      if (parse_listen_with_flags(optarg, &cfg->admin) < 0)
        return bad(err, "--admin-listen", optarg, "expected HOST:PORT[,tls], e.g. 127.0.0.1:9090");
      cfg->has_admin = true;
      break;
    case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
    case OPT_JWT_KEY:
      if (cfg->n_jwt_keys >= RC_CONFIG_MAX_JWT_KEYS) return bad(err, "--jwt-key", optarg, "at most 16 keys");
      cfg->jwt_keys[cfg->n_jwt_keys++] = optarg;
      break;
    case OPT_JWT_LEEWAY:
      if (parse_uint(optarg, 3600, &v) < 0)
        return bad(err, "--jwt-leeway", optarg, "expected seconds, 0 to 3600");
      cfg->jwt_leeway = (unsigned)v;
      break;
    case OPT_JWT_AUDIENCE: cfg->jwt_audience = optarg; break;
    case OPT_JWT_ISSUER: cfg->jwt_issuer = optarg; break;
    case OPT_JWT_COOKIE:
      if (!*optarg || strpbrk(optarg, " \t;=,\"")) return bad(err, "--jwt-cookie", optarg, "expected a cookie name");
      cfg->jwt_cookie = optarg;
      break;
    case OPT_PUBLISH_KEY_FILE: cfg->publish_key_file = optarg; break;
    case OPT_ALLOW_ORIGIN:
      if (cfg->n_allow_origins >= RC_CONFIG_MAX_ORIGINS)
        return bad(err, "--allow-origin", optarg, "at most 32 patterns");
      cfg->allow_origins[cfg->n_allow_origins++] = optarg;
      break;
    case OPT_TRUST_PROXY:
      if (cfg->n_trust_proxies >= RC_CONFIG_MAX_PROXIES)
        return bad(err, "--trust-proxy", optarg, "at most 32 networks");
      cfg->trust_proxies[cfg->n_trust_proxies++] = optarg;
      break;
    case OPT_TLS_KEY: cfg->tls_key = optarg; break;
    case OPT_THREADS:
      if (parse_uint(optarg, RC_MAX_SHARDS, &v) < 0 || v == 0)
        return bad(err, "--threads", optarg, "expected a number from 1 to 64");
      cfg->threads = (unsigned)v;
      break;
    case OPT_CPUS: {
      int n = rc_config_parse_cpus(optarg, cfg->cpus, RC_MAX_SHARDS);
      if (n < 0) return bad(err, "--cpus", optarg, "expected a list of existing CPUs such as 0-3,6");
      cfg->n_cpus = (unsigned)n;
      break;
    }
    case OPT_NO_PIN: cfg->pin = false; break;
    case OPT_MAX_CONNS: {
      unsigned lim = nofile_limit();
      if (parse_uint(optarg, UINT_MAX, &v) < 0 || v == 0)
        return bad(err, "--max-conns", optarg, "expected a positive number");
      if (v + RC_CONN_SPARE + RC_ADMIN_SLOTS + RC_LINK_SLOTS > lim) {
        char want[160];
        snprintf(want, sizeof want,
                 "at most %u per shard here (RLIMIT_NOFILE %u bounds each shard's io_uring "
                 "file table); add --threads for more connections",
                 lim - RC_CONN_SPARE - RC_ADMIN_SLOTS - RC_LINK_SLOTS, lim);
        return bad(err, "--max-conns", optarg, want);
      }
      cfg->max_conns = (unsigned)v;
      break;
    }
    case OPT_MAX_MESSAGE:
      if (rc_config_parse_size(optarg, &sz) < 0 || sz < 16 || sz > (256u << 20))
        return bad(err, "--max-message", optarg, "expected 16 bytes to 256m");
      cfg->max_message = (uint32_t)sz;
      break;
    case OPT_MAX_QUEUE:
      if (rc_config_parse_size(optarg, &sz) < 0 || sz < 1024 || sz > (1ull << 32))
        return bad(err, "--max-queue", optarg, "expected 1k to 4g");
      cfg->max_queue = sz;
      break;
    case OPT_MAX_MEMORY:
      if (rc_config_parse_size(optarg, &sz) < 0 || sz < MIN_MAX_MEMORY)
        return bad(err, "--max-memory", optarg, "expected a size of at least 16m, e.g. 512m or 4g");
      cfg->max_memory = sz;
      break;
    case OPT_MAX_BACKLOG:
      if (rc_config_parse_size(optarg, &sz) < 0 || sz < 64 * 1024 || sz > (1ull << 40))
        return bad(err, "--max-backlog", optarg, "expected 64k to 1024g");
      cfg->max_backlog = sz;
      break;
    case OPT_MAX_COMMANDS:
      if (parse_uint(optarg, 10000000, &v) < 0)
        return bad(err, "--max-commands-per-sec", optarg, "expected 0 (off) to 10000000");
      cfg->max_commands = (unsigned)v;
      break;
    case OPT_MAX_CONNS_PER_IP:
    case OPT_MAX_HANDSHAKES_PER_IP:
    case OPT_CONNECT_RATE_PER_IP: {
      static const char *const names[] = {"--max-conns-per-ip", "--max-handshakes-per-ip",
                                          "--connect-rate-per-ip"};
      const char *name = names[opt - OPT_MAX_CONNS_PER_IP];
      if (parse_uint(optarg, 100000000, &v) < 0)
        return bad(err, name, optarg, "expected 0 (off) to 100000000");
      if (opt == OPT_MAX_CONNS_PER_IP) cfg->max_conns_per_ip = (uint32_t)v;
      else if (opt == OPT_MAX_HANDSHAKES_PER_IP) cfg->max_handshakes_per_ip = (uint32_t)v;
      else cfg->connect_rate_per_ip = (uint32_t)v;
      break;
    }
    case OPT_MAX_COMMAND_BYTES:
      if (rc_config_parse_size(optarg, &sz) < 0 || sz < 256 || sz > (64u << 20))
        return bad(err, "--max-command-bytes", optarg, "expected 256 to 64m");
      cfg->max_command_bytes = (uint32_t)sz;
      break;
    case OPT_MAX_TOPICS:
      if (parse_uint(optarg, 1u << 30, &v) < 0 || v == 0)
        return bad(err, "--max-topics", optarg, "expected 1 to 1073741824");
      cfg->max_topics = (uint32_t)v;
      break;
    case OPT_MAX_PATTERNS:
      if (parse_uint(optarg, 1u << 20, &v) < 0)
        return bad(err, "--max-patterns", optarg, "expected 0 (no wildcards) to 1048576");
      cfg->max_patterns = (uint32_t)v;
      break;
    case OPT_HISTORY:
      if (parse_uint(optarg, 1u << 24, &v) < 0)
        return bad(err, "--history", optarg, "expected 0 (off) to 16777216 messages");
      cfg->history = (uint32_t)v;
      break;
    case OPT_HISTORY_BYTES:
      if (rc_config_parse_size(optarg, &sz) < 0 || sz > (1ull << 40))
        return bad(err, "--history-bytes", optarg, "expected 0 (no bound) to 1024g, e.g. 4m");
      cfg->history_bytes = sz;
      break;
    case OPT_HISTORY_TTL:
    case OPT_TOPIC_HEARTBEAT:
      if (parse_uint(optarg, 86400 * 366, &v) < 0)
        return bad(err, opt == OPT_HISTORY_TTL ? "--history-ttl" : "--topic-heartbeat", optarg,
                   "expected seconds from 0 (off) to 31622400");
      if (opt == OPT_HISTORY_TTL) cfg->history_ttl = (unsigned)v;
      else cfg->topic_heartbeat = (unsigned)v;
      break;
    case OPT_SLOW_POLICY:
      if (strcmp(optarg, "disconnect") == 0) cfg->slow_policy = RC_SLOW_DISCONNECT;
      else if (strcmp(optarg, "conflate") == 0) cfg->slow_policy = RC_SLOW_CONFLATE;
      else return bad(err, "--slow-policy", optarg, "expected disconnect or conflate");
      break;
    case OPT_DEMO_FEED: cfg->demo_feed = true; break;
    case OPT_ECHO: cfg->echo = true; break;
    case OPT_STATS_INTERVAL:
      /* Under 100 ms the page could not draw it and the samples would mostly
       * measure the sampling. */
      if (parse_uint(optarg, 3600000, &v) < 0 || (v && v < 100))
        return bad(err, "--stats-interval", optarg,
                   "expected milliseconds from 100 to 3600000, or 0 (off)");
      cfg->stats_interval_ms = (uint32_t)v;
      break;
    case OPT_HANDSHAKE_TIMEOUT:
    case OPT_IDLE_TIMEOUT:
    case OPT_PING_INTERVAL: {
      static const char *const names[] = {"--handshake-timeout", "--idle-timeout", "--ping-interval"};
      const char *name = names[opt - OPT_HANDSHAKE_TIMEOUT];
      if (parse_uint(optarg, 86400, &v) < 0)
        return bad(err, name, optarg, "expected seconds from 0 (off) to 86400");
      if (opt == OPT_HANDSHAKE_TIMEOUT) cfg->handshake_timeout = (unsigned)v;
      else if (opt == OPT_IDLE_TIMEOUT) cfg->idle_timeout = (unsigned)v;
      else cfg->ping_interval = (unsigned)v;
      break;
    }
    case OPT_DRAIN_SECONDS:
      if (parse_uint(optarg, 3600, &v) < 0)
        return bad(err, "--drain-seconds", optarg, "expected seconds from 0 (close at once) to 3600");
      cfg->drain_seconds = (unsigned)v;
      break;
    case OPT_TAKEOVER: cfg->takeover = true; break;
    case OPT_CONTROL_SOCKET:
      /* sun_path holds 108 bytes with its terminator. */
      if (!*optarg || strlen(optarg) > 107)
        return bad(err, "--control-socket", optarg, "expected a path of 1 to 107 bytes");
      cfg->control_socket = optarg;
      break;
    case OPT_PID_FILE:
      if (!*optarg) return bad(err, "--pid-file", optarg, "expected a path");
      cfg->pid_file = optarg;
      break;
    case OPT_REDIS: {
      const char *why;
      if (rc_redis_url_parse(optarg, &cfg->redis, &why) < 0) return bad(err, "--redis", optarg, why);
      cfg->has_redis = true;
      break;
    }
    case OPT_REDIS_PATTERNS:
      if (parse_uint(optarg, 4096, &v) < 0 || v < 1)
        return bad(err, "--redis-patterns", optarg, "expected 1 to 4096");
      cfg->redis_patterns = (uint32_t)v;
      break;
    case OPT_NODE_ID:
      /* It is a field name in Redis and a label in logs: printable, no spaces. */
      if (!*optarg || strlen(optarg) > 64 || strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != strlen(optarg))
        return bad(err, "--node-id", optarg, "expected 1 to 64 of A-Z a-z 0-9 . _ : -");
      cfg->node_id = optarg;
      break;
    case OPT_LOG_FORMAT:
      if (rc_log_parse_format(optarg, &cfg->log_format) < 0)
        return bad(err, "--log-format", optarg, "expected text or json");
      break;
    case OPT_LOG_LEVEL:
      if (rc_log_parse_level(optarg, &cfg->log_level) < 0)
        return bad(err, "--log-level", optarg, "expected error, warn, info or debug");
      break;
    case 'h':
    case OPT_HELP: rc_config_usage(out); return 1;
    case OPT_VERSION: fprintf(out, "ringcast 0.1.0\n"); return 1;
    case ':':
      fprintf(err, "ringcast: %s needs a value (see --help)\n", argv[optind - 1]);
      return -EINVAL;
    default:
      fprintf(err, "ringcast: unknown option '%s' (see --help)\n", argv[optind - 1]);
      return -EINVAL;
    }
  }
  if (optind < argc) {
    fprintf(err, "ringcast: unexpected argument '%s' (see --help)\n", argv[optind]);
    return -EINVAL;
  }
  if (cfg->idle_timeout && cfg->ping_interval >= cfg->idle_timeout) {
    fprintf(err, "ringcast: invalid value for --ping-interval: %u must be shorter than "
                 "--idle-timeout %u, or clients are closed before they are pinged\n",
            cfg->ping_interval, cfg->idle_timeout);
    return -EINVAL;
  }
  if (cfg->max_backlog > cfg->max_memory) cfg->max_backlog = cfg->max_memory;
  if (cfg->n_listen == 0) rc_config_parse_listen(DEFAULT_LISTEN, &cfg->listen[cfg->n_listen++]);
  if (check_tls(cfg, err) < 0) return -EINVAL;
  if (cfg->n_cpus && cfg->n_cpus < cfg->threads) {
    char want[96];
    snprintf(want, sizeof want, "lists %u CPUs but --threads is %u; give one CPU per shard",
             cfg->n_cpus, cfg->threads);
    fprintf(err, "ringcast: invalid value for --cpus: %s\n", want);
    return -EINVAL;
  }
  return 0;
}
