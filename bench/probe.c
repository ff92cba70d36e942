/* SPDX-License-Identifier: MIT */
/* ringcast-probe: a small epoll load client for fan-out measurements until
 * ringcast-bench exists. It opens many subscribers (over several 127.0.0.x source
 * addresses), publishes over HTTP at a fixed rate, checks every delivered
 * sequence number per subscriber, and reports deliveries per second, latency,
 * loss and (with --server-pid) the server's CPU and memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client_common.h"
#include "ringcast/ws.h"

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

struct sub {
  int fd;
  uint8_t state;
  uint8_t *carry;
  uint32_t carry_len;
  uint64_t last_seq;
  uint64_t received;
};

static struct {
  struct rc_url url, pub_url;
  unsigned conns;
  struct in_addr src[64];
  unsigned n_src;
  double rate;
  unsigned size;
  double duration;
  double settle;
  char topic[129];
  int server_pid;
  bool idle;
  unsigned batch_ms;
} opt = {.conns = 100, .rate = 100, .size = 128, .duration = 5, .settle = 1, .batch_ms = 5};

static struct sub *subs;
static uint64_t frames, gaps, dups, bytes_in, open_count, failed, closed_by_server;
static uint64_t lat_hist[64 * 16];
static char req[4096], accept_val[29];
static size_t req_len;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Log-linear histogram: 16 sub-buckets per power of two, no allocation. */
static void lat_record(uint64_t ns) {
  uint64_t us = ns / 1000;
  unsigned e = us < 16 ? 0 : (unsigned)(63 - __builtin_clzll(us)) - 3;
  unsigned sub = e == 0 ? (unsigned)us : (unsigned)(us >> e) & 15;
  unsigned idx = e * 16 + sub;
  if (idx >= sizeof lat_hist / sizeof lat_hist[0]) idx = sizeof lat_hist / sizeof lat_hist[0] - 1;
  lat_hist[idx]++;
}

static double lat_percentile(double p) {
  uint64_t total = 0, seen = 0;
  for (size_t i = 0; i < sizeof lat_hist / sizeof lat_hist[0]; i++) total += lat_hist[i];
  if (!total) return 0;
  uint64_t want = (uint64_t)(p * (double)total);
  for (size_t i = 0; i < sizeof lat_hist / sizeof lat_hist[0]; i++) {
    seen += lat_hist[i];
    if (seen > want) {
      unsigned e = (unsigned)i / 16, sub = (unsigned)i % 16;
      return e == 0 ? sub : (double)((16u + sub) << (e - 1)) ;
    }
  }
  return 0;
}

static void proc_stat(int pid, double *cpu_s, long *rss_kb) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  *cpu_s = 0;
  *rss_kb = 0;
  if (!f) return;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  f = fopen(path, "r");
  if (!f) return;
  while (fgets(buf, sizeof buf, f))
    if (sscanf(buf, "VmRSS: %ld kB", rss_kb) == 1) break;
  fclose(f);
}

static void sub_kill(int ep, struct sub *s, bool by_server) {
  if (s->state == ST_DEAD) return;
  if (s->state == ST_OPEN) open_count--;
  else failed++;
  if (by_server) closed_by_server++;
  epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->state = ST_DEAD;
  free(s->carry);
  s->carry = NULL;
}

static void on_text(struct sub *s, const uint8_t *p, size_t n) {
  frames++;
  s->received++;
  const uint8_t *q = memmem(p, n, "\"seq\":", 6);
  if (q) {
    uint64_t seq = strtoull((const char *)q + 6, NULL, 10);
    if (s->last_seq) {
      if (seq > s->last_seq + 1) gaps += seq - s->last_seq - 1;
      else if (seq <= s->last_seq) dups++;
    }
    if (seq > s->last_seq) s->last_seq = seq;
  }
  const uint8_t *t = memmem(p, n, "\"t\":", 4);
  if (t) {
    uint64_t sent = strtoull((const char *)t + 4, NULL, 10);
    uint64_t now = now_ns();
    if (sent && now > sent) lat_record(now - sent);
  }
}

/* Parses complete frames in buf; returns bytes consumed, or -1 on a close/error. */
static long parse_frames(struct sub *s, uint8_t *buf, size_t len) {
  size_t pos = 0;
  while (pos < len) {
    struct rc_ws_header h;
    ssize_t hl = rc_ws_parse_header(buf + pos, len - pos, false, &h);
    if (hl == -EAGAIN) break;
    if (hl < 0) return -1;
    if (len - pos - (size_t)hl < h.payload_len) break;
    if (h.opcode == RC_WS_OP_CLOSE) return -1;
    if (h.opcode == RC_WS_OP_TEXT || h.opcode == RC_WS_OP_BINARY)
      on_text(s, buf + pos + hl, (size_t)h.payload_len);
    pos += (size_t)hl + (size_t)h.payload_len;
  }
  return (long)pos;
}

static uint8_t rbuf[1 << 18];

static void on_readable(int ep, struct sub *s) {
  size_t have = s->carry_len;
  if (have) memcpy(rbuf, s->carry, have);
  ssize_t r = read(s->fd, rbuf + have, sizeof rbuf - have);
  if (r <= 0) {
    if (r < 0 && errno == EAGAIN) return;
    sub_kill(ep, s, true);
    return;
  }
  bytes_in += (uint64_t)r;
  size_t len = have + (size_t)r;
  size_t pos = 0;
  if (s->state == ST_HANDSHAKE) {
    uint8_t *e = memmem(rbuf, len, "\r\n\r\n", 4);
    if (!e) {
      pos = 0;
    } else {
      char why[256];
      size_t hl = (size_t)(e + 4 - rbuf);
      if (rc_client_check_upgrade((char *)rbuf, hl, accept_val, why, sizeof why) < 0) {
        if (failed < 5) fprintf(stderr, "probe: %s\n", why);
        sub_kill(ep, s, false);
        return;
      }
      s->state = ST_OPEN;
      open_count++;
      pos = hl;
    }
  }
  if (s->state == ST_OPEN) {
    long used = parse_frames(s, rbuf + pos, len - pos);
    if (used < 0) {
      sub_kill(ep, s, true);
      return;
    }
    pos += (size_t)used;
  }
  size_t rest = len - pos;
  if (rest) {
    if (rest > s->carry_len || !s->carry) {
      free(s->carry);
      s->carry = malloc(rest);
    }
    memcpy(s->carry, rbuf + pos, rest);
  } else if (s->carry) {
    free(s->carry);
    s->carry = NULL;
  }
  s->carry_len = (uint32_t)rest;
}

static int start_connect(int ep, struct sub *s, unsigned i, struct sockaddr_storage *dst,
                         socklen_t dlen) {
  int fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.n_src && dst->ss_family == AF_INET) {
    /* Defer the port choice to connect() so each source address has its own
     * ephemeral range per destination. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = opt.src[i % opt.n_src]};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
  }
  if (connect(fd, (struct sockaddr *)dst, dlen) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  s->fd = fd;
  s->state = ST_CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static int parse_src(const char *s) {
  char a[32], b[32];
  const char *dash = strchr(s, '-');
  if (dash) {
    snprintf(a, sizeof a, "%.*s", (int)(dash - s), s);
    snprintf(b, sizeof b, "%s", dash + 1);
  } else {
    snprintf(a, sizeof a, "%s", s);
    snprintf(b, sizeof b, "%s", s);
  }
  struct in_addr x, y;
  if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1) return -EINVAL;
  for (uint32_t v = ntohl(x.s_addr); v <= ntohl(y.s_addr) && opt.n_src < 64; v++)
    opt.src[opt.n_src++].s_addr = htonl(v);
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "ringcast-probe --url ws://HOST:PORT/ws?topics=T [options]\n"
          "  --conns N          subscribers (default 100)\n"
          "  --source-ips A-B   spread subscribers over 127.0.0.x source addresses\n"
          "  --publish URL      publish to URL (http://HOST:PORT) at --rate on --topic\n"
          "  --topic T          topic to publish to (default: first of the URL's topics)\n"
          "  --rate R           messages per second (default 100)\n"
          "  --size B           payload bytes (default 128)\n"
          "  --duration S       publishing time in seconds (default 5)\n"
          "  --idle             connect and hold, report memory; no publishing\n"
          "  --server-pid PID   report the server's CPU and RSS\n");
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
      {"url", 1, 0, 'u'}, {"conns", 1, 0, 'c'}, {"source-ips", 1, 0, 's'},
      {"publish", 1, 0, 'p'}, {"topic", 1, 0, 't'}, {"rate", 1, 0, 'r'},
      {"size", 1, 0, 'z'}, {"duration", 1, 0, 'd'}, {"idle", 0, 0, 'i'},
      {"server-pid", 1, 0, 'P'}, {"settle", 1, 0, 'S'}, {0, 0, 0, 0}};
  int o;
  bool have_url = false, have_pub = false;
  while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (o) {
    case 'u': have_url = rc_url_parse(optarg, &opt.url) == 0; break;
    case 'c': opt.conns = (unsigned)atoi(optarg); break;
    case 's': if (parse_src(optarg) < 0) { fprintf(stderr, "probe: bad --source-ips\n"); return 2; } break;
    case 'p': have_pub = rc_url_parse(optarg, &opt.pub_url) == 0; break;
    case 't': snprintf(opt.topic, sizeof opt.topic, "%s", optarg); break;
    case 'r': opt.rate = atof(optarg); break;
    case 'z': opt.size = (unsigned)atoi(optarg); break;
    case 'd': opt.duration = atof(optarg); break;
    case 'i': opt.idle = true; break;
    case 'P': opt.server_pid = atoi(optarg); break;
    case 'S': opt.settle = atof(optarg); break;
    default: usage(); return 2;
    }
  }
  if (!have_url || opt.conns == 0 || (!opt.idle && !have_pub)) {
    usage();
    return 2;
  }
  if (!opt.topic[0]) {
    const char *t = strstr(opt.url.path, "topics=");
    if (t) sscanf(t + 7, "%128[^,&]", opt.topic);
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (opt.conns + 16 > rl.rlim_cur) {
    fprintf(stderr, "probe: --conns %u exceeds RLIMIT_NOFILE %lu; run several probes\n", opt.conns,
            (unsigned long)rl.rlim_cur);
    return 2;
  }
  struct sockaddr_storage dst;
  socklen_t dlen;
  if (rc_url_resolve(&opt.url, &dst, &dlen) < 0) {
    fprintf(stderr, "probe: cannot resolve %s\n", opt.url.host);
    return 2;
  }
  req_len = rc_client_upgrade_request(&opt.url, req, sizeof req, accept_val);
  subs = calloc(opt.conns, sizeof *subs);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  double cpu0 = 0, cpu1, cpu2;
  long rss0 = 0, rss1, rss2;
  if (opt.server_pid) proc_stat(opt.server_pid, &cpu0, &rss0);

  /* Connect, at most 512 handshakes in flight. */
  uint64_t t0 = now_ns();
  unsigned next = 0, inflight = 0;
  struct epoll_event evs[1024];
  while ((open_count + failed < opt.conns) && now_ns() - t0 < 120ull * 1000000000ull) {
    while (next < opt.conns && inflight < 512) {
      if (start_connect(ep, &subs[next], next, &dst, dlen) < 0) {
        subs[next].state = ST_DEAD;
        failed++;
      } else {
        inflight++;
      }
      next++;
    }
    int n = epoll_wait(ep, evs, 1024, 100);
    for (int i = 0; i < n; i++) {
      struct sub *s = &subs[evs[i].data.u32];
      uint8_t before = s->state;
      if (s->state == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (evs[i].events & (EPOLLERR | EPOLLHUP)) || rc_write_all(s->fd, req, req_len) < 0) {
          sub_kill(ep, s, false);
        } else {
          s->state = ST_HANDSHAKE;
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[i].data.u32};
          epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        }
      } else {
        on_readable(ep, s);
      }
      if (before != s->state && (s->state == ST_OPEN || s->state == ST_DEAD) && before != ST_OPEN)
        inflight--;
    }
  }
  double connect_s = (double)(now_ns() - t0) / 1e9;
  fprintf(stderr, "probe: %llu connected, %llu failed in %.2f s\n", (unsigned long long)open_count,
          (unsigned long long)failed, connect_s);
  /* Let the server settle (and subscriptions reach every shard). */
  uint64_t settle_end = now_ns() + (uint64_t)(opt.settle * 1e9);
  while (now_ns() < settle_end) {
    int n = epoll_wait(ep, evs, 1024, 50);
    for (int i = 0; i < n; i++) on_readable(ep, &subs[evs[i].data.u32]);
  }
  if (opt.server_pid) proc_stat(opt.server_pid, &cpu1, &rss1);
  if (opt.idle) {
    printf("connected=%llu failed=%llu connect_s=%.2f\n", (unsigned long long)open_count,
           (unsigned long long)failed, connect_s);
    if (opt.server_pid)
      printf("server_rss_before_kb=%ld server_rss_after_kb=%ld rss_per_conn_bytes=%.0f\n", rss0, rss1,
             open_count ? (double)(rss1 - rss0) * 1024.0 / (double)open_count : 0.0);
    return failed ? 1 : 0;
  }

  /* Publish over one keep-alive HTTP connection, one batch every batch_ms. */
  int pfd = rc_client_connect(&opt.pub_url);
  if (pfd < 0) {
    fprintf(stderr, "probe: cannot connect the publisher\n");
    return 1;
  }
  fcntl(pfd, F_SETFL, O_NONBLOCK);
  struct epoll_event pev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &pev);
  size_t per_batch_max = (size_t)(opt.rate * opt.batch_ms / 1000.0) + 2;
  size_t rec_max = strlen(opt.topic) + 16 + opt.size + 2;
  char *body = malloc(per_batch_max * rec_max + 512);
  char *payload = malloc(opt.size + 64);
  uint64_t published = 0, start = now_ns(), end = start + (uint64_t)(opt.duration * 1e9);
  uint64_t next_pub = start;
  char presp[65536];
  while (now_ns() < end) {
    uint64_t now = now_ns();
    if (now >= next_pub) {
      uint64_t due = (uint64_t)((double)(now - start) / 1e9 * opt.rate) + 1;
      size_t bl = 0;
      while (published < due && (size_t)(due - published) > 0) {
        int pl = snprintf(payload, opt.size + 64, "{\"t\":%llu,\"p\":\"", (unsigned long long)now_ns());
        while ((unsigned)pl < opt.size - 2 && (unsigned)pl < opt.size + 60) payload[pl++] = 'x';
        payload[pl++] = '"';
        payload[pl++] = '}';
        bl += (size_t)sprintf(body + bl, "%s %d\n", opt.topic, pl);
        memcpy(body + bl, payload, (size_t)pl);
        bl += (size_t)pl;
        body[bl++] = '\n';
        published++;
        if (bl + rec_max > per_batch_max * rec_max) break;
      }
      if (bl) {
        char head[256];
        int hl = snprintf(head, sizeof head, "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", bl);
        fcntl(pfd, F_SETFL, 0);
        if (rc_write_all(pfd, head, (size_t)hl) < 0 || rc_write_all(pfd, body, bl) < 0) {
          fprintf(stderr, "probe: publisher connection failed\n");
          return 1;
        }
        fcntl(pfd, F_SETFL, O_NONBLOCK);
      }
      next_pub = now + opt.batch_ms * 1000000ull;
    }
    /* Poll without blocking and nap when idle: a client parked in epoll_wait makes
     * every delivery wake it (an IPI on a VM), a cost the server then pays. */
    int n = epoll_wait(ep, evs, 1024, 0);
    if (n == 0) nanosleep(&(struct timespec){.tv_nsec = 500000}, NULL);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u32 == UINT32_MAX) {
        while (read(pfd, presp, sizeof presp) > 0) {}
        continue;
      }
      on_readable(ep, &subs[evs[i].data.u32]);
    }
  }
  uint64_t pub_end = now_ns();
  /* Drain: wait until every open subscriber has everything, at most 10 s. */
  uint64_t expected_total = published * open_count;
  uint64_t drain_end = now_ns() + 10000000000ull;
  while (frames < expected_total && now_ns() < drain_end) {
    int n = epoll_wait(ep, evs, 1024, 20);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u32 == UINT32_MAX) {
        while (read(pfd, presp, sizeof presp) > 0) {}
        continue;
      }
      on_readable(ep, &subs[evs[i].data.u32]);
    }
    expected_total = published * open_count;
  }
  uint64_t done = now_ns();
  if (opt.server_pid) proc_stat(opt.server_pid, &cpu2, &rss2);
  uint64_t missing = 0;
  for (unsigned i = 0; i < opt.conns; i++)
    if (subs[i].state == ST_OPEN && subs[i].received < published) missing += published - subs[i].received;
  double secs = (double)(done - start) / 1e9;
  printf("subscribers=%llu failed=%llu closed_by_server=%llu\n", (unsigned long long)open_count,
         (unsigned long long)failed, (unsigned long long)closed_by_server);
  printf("published=%llu rate_asked=%.0f publish_s=%.2f deliveries=%llu deliveries_per_s=%.0f "
         "asked_per_s=%.0f\n",
         (unsigned long long)published, opt.rate, (double)(pub_end - start) / 1e9,
         (unsigned long long)frames, (double)frames / secs, opt.rate * (double)open_count);
  printf("missing=%llu gaps=%llu dups_or_reorders=%llu\n", (unsigned long long)missing,
         (unsigned long long)gaps, (unsigned long long)dups);
  printf("latency_us p50=%.0f p90=%.0f p99=%.0f p999=%.0f\n", lat_percentile(0.5),
         lat_percentile(0.9), lat_percentile(0.99), lat_percentile(0.999));
  if (opt.server_pid && frames)
    printf("server_cpu_s=%.2f cpu_s_per_million=%.3f server_rss_kb=%ld\n", cpu2 - cpu1,
           (cpu2 - cpu1) / ((double)frames / 1e6), rss2);
  free(body);
  free(payload);
  for (unsigned i = 0; i < opt.conns; i++) free(subs[i].carry);
  free(subs);
  return (missing || gaps || dups || failed) ? 1 : 0;
}
