/* SPDX-License-Identifier: MIT */
/* ringcast-bench: a WebSocket fan-out load generator on io_uring.
 *
 * Subscriber threads each own one ring; connections live in the ring's direct
 * descriptor table (so one process holds more than RLIMIT_NOFILE) and read with
 * multishot recv over a provided-buffer ring, so a delivery costs a completion,
 * not a read() system call. Every payload carries the publisher's per-topic
 * sequence number ("s") and send time ("t"): each subscriber checks its stream
 * for gaps, duplicates and reordering and records end-to-end latency in a
 * log-linear histogram. Any WebSocket broadcaster can be the target: the
 * subscribe URL, an optional subscribe message and the publish request are
 * templates in which {topic} is replaced. Over wss:// each subscriber's wolfSSL
 * object is fed from the same receives and its records leave through the same
 * ring (tls_client.h), so ws and wss are measured the same way. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <liburing.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_common.h"
#include "envelope.h"
#include "hist.h"
#include "resume.h"
#include "ringcast/proto/ws.h"
#include "seqcheck.h"
#include "tls_client.h"

#define MAX_THREADS 16
#define MAX_TOPICS 1024
#define BUF_COUNT 4096       /* provided buffers per thread, power of two */
#define BUF_SIZE 8192
#define MAX_SERIES 3600
/* Connections being set up at once per thread, from connect() to the 101: TCP,
 * TLS and the upgrade. Bounding the handshakes, not only the connects, keeps a
 * slow TLS handshake (RSA on one core) from waiting past the server's
 * handshake timeout behind thousands of others. */
#define CONNECTS_IN_FLIGHT 256
#define TLS_RECORD_MAX 16384 /* the largest plaintext of one record (RFC 8446 5.1) */
#define CARRY_KEEP (64u << 10) /* a connection's carry buffer kept between split frames */
/* Receive buffer of a slow-scenario subscriber that will stop reading (see
 * start_connect); the kernel doubles it. Room enough to keep up while it
 * still reads (the baseline), under ASan on a busy machine too. */
#define SLOW_RCVBUF (256u << 10)
/* After the with-slow phase, how long to wait for every slow subscriber to read
 * its close: longer than the server's close grace (3 s in ringcast), so a
 * server that cuts the connection instead is seen too. */
#define SLOW_CLOSE_WAIT_S 6.0

enum scenario { SC_FANOUT, SC_RAMP, SC_IDLE, SC_STORM, SC_SLOW, SC_CHURN };
static const char *const scenario_names[] = {"fanout", "ramp", "idle", "storm", "slow", "churn"};
#define SCENARIOS (sizeof scenario_names / sizeof *scenario_names)
enum pub_mode { PUB_BATCH, PUB_SINGLE, PUB_WS };
static const char *const pub_mode_names[] = {"batch", "single", "ws"};
enum dist { DIST_ONE, DIST_RR, DIST_ZIPF };
enum { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };
enum { OP_CONNECT = 1, OP_SEND, OP_RECV, OP_CLOSE, OP_CANCEL, OP_PONG, OP_TLS_SEND };
enum cmd {
  CMD_NONE, CMD_RESET, CMD_SNAPSHOT, CMD_STORM_CLOSE, CMD_RECONNECT, CMD_SLOW_STOP, CMD_SLOW_RESUME,
  CMD_CHURN_START, CMD_CHURN_STOP, CMD_STOP,
};

static struct options {
  char url[2048];
  char sub_message[1024];
  char publish[2048];
  enum pub_mode pub_mode;
  bool pub_mode_set;
  unsigned conns;
  unsigned ntopics;
  char topics[MAX_TOPICS][129];
  enum dist dist;
  double connect_rate;
  struct in_addr src[64];
  unsigned n_src;
  double rate;
  unsigned size;
  double duration;
  unsigned threads;
  enum scenario scenario;
  double ramp_start, ramp_factor, ramp_step, p99_bound_ms;
  unsigned ramp_steps;
  double slow_fraction;
  int server_pid;
  int server_cpu; /* -1: not measured */
  char json[1024];
  uint64_t max_loss, max_failed;
  double drain;
  uint64_t inject_gap_every;
  bool tls;           /* subscribers speak TLS (--tls or a wss:// URL) */
  bool no_tls_resume; /* --no-tls-resume (or --no-resume): every TLS handshake is a full one */
  bool resume;        /* --resume: every reconnect asks since= for its topic (not TLS's resumption) */
  double churn_every; /* --churn-every: mean seconds between one subscriber's drops */
  double churn_down;  /* --churn-down: mean seconds it stays away */
  uint64_t seed;      /* --seed: the churn's random drops */
  char ca[1024];      /* --ca: verify the server against it; empty: no verification */
  char ciphers[512];  /* --tls-ciphers, or empty for wolfSSL's default order */
  char auth[1100];    /* "Authorization: Bearer TOKEN\r\n" from --token, or empty */
} opt = {
    .url = "ws://127.0.0.1:8080/ws?topics={topic}", .publish = "http://127.0.0.1:8080/publish",
    .conns = 1000, .ntopics = 1, .dist = DIST_RR, .rate = 100, .size = 128, .duration = 10,
    .threads = 1, .scenario = SC_FANOUT, .ramp_start = 50, .ramp_factor = 2, .ramp_step = 5,
    .p99_bound_ms = 50, .ramp_steps = 8, .slow_fraction = 0.1, .drain = 5, .server_cpu = -1,
    .churn_every = 5, .churn_down = 0.5, .seed = 1,
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void build_from_template(char *out, size_t size, const char *tmpl, const char *topic) {
  size_t o = 0;
  for (const char *p = tmpl; *p && o + 1 < size;) {
    if (strncmp(p, "{topic}", 7) == 0) {
      int n = snprintf(out + o, size - o, "%s", topic);
      o = n < 0 || (size_t)n >= size - o ? size - 1 : o + (size_t)n;
      p += 7;
    } else {
      out[o++] = *p++;
    }
  }
  out[o] = '\0';
}

/* ---- subscriber threads -------------------------------------------------------- */

struct conn {
  uint8_t state;
  bool slow, recv_armed, got_since_reconnect, pong_inflight;
  /* paused: not reading on purpose, so no receive is re-armed. stopped: a slow
   * subscriber that stopped reading in this run: what it reads afterwards and
   * how it ends are the slow subscribers' figures, not the readers'. */
  bool paused, stopped;
  /* Closed by the server while reading: its stream stays in the snapshots, and
   * what it never got counts as missing. */
  bool lost;
  bool setting_up; /* counted in inflight_connects until open or closed */
  bool closing;    /* its close has not completed: the slot cannot connect again yet */
  bool churned;    /* dropped by the churn scenario; connects again at churn_at */
  bool asked_since; /* this connection's request is req/sub (with since), not the topic's */
  uint16_t topic;
  uint32_t gen;
  uint32_t carry_len, carry_cap;
  uint8_t *carry; /* the start of a frame split across receive buffers */
  struct rc_seq_stream seq; /* the publisher's numbering ("s"): per connection; with --resume, per run */
  /* The publisher's first number this stream must have: the count published
   * when its subscription was in place (the 101, or a subscribe command's ack)
   * plus one; anything published later reached the server after it. 0: not
   * known (a subscribe message without an ack), counted from the first one
   * received. Set once per stream: with --resume, once per run. */
  uint64_t seq_floor;
  struct rc_resume_stream rs; /* the server's numbering ("seq") across reconnects */
  uint64_t connect_ns;
  uint64_t churn_at; /* open: when the churn drops it; churned: when it connects again */
  uint64_t rng;      /* its own draws, so a run's drops follow from --seed */
  /* With --resume, this slot's upgrade request and subscribe frame carrying
   * since (allocated at its first resume, sized for its topic, then reused:
   * a send of them completes before the 101, or fails on the closed socket,
   * before the slot connects again). */
  char *req;
  uint8_t *sub;
  uint32_t req_len, sub_len;
  struct rc_tls_client tls; /* over wss:// only; its session outlives the connection */
};

struct stats {
  uint64_t frames, bytes, closed_by_server, failed, slow_closed_1008, slow_closed;
  uint64_t slow_frames; /* read by stopped slow subscribers once they read again */
  uint64_t reconnects, since_asked, since_unavailable, churn_drops;
  uint64_t since_unanswered; /* resumes whose connection ended before their ack */
  struct rc_seq_totals seq;
  struct rc_resume_totals cont;      /* the server's numbering, readers */
  struct rc_resume_totals slow_cont; /* stopped slow subscribers': kept apart, as slow_frames is */
  struct rc_hist lat;      /* ns, publish to delivery */
  struct rc_hist connect;  /* ns, connect() to the 101 */
};

struct worker {
  unsigned id;
  pthread_t thread;
  struct io_uring ring;
  struct io_uring_buf_ring *br;
  uint8_t *bufs;
  unsigned bufs_pending;
  struct conn *c;          /* this thread's connections: global index = id + k * threads */
  unsigned n;
  struct stats st;   /* this phase's (CMD_RESET starts it again) */
  struct stats past; /* the earlier phases' together: closes, faults and frames of the whole run */
  _Atomic uint64_t frames_live;           /* the whole run's */
  _Atomic unsigned open_live, failed_live;
  _Atomic unsigned slow_open_live;        /* stopped slow subscribers still open */
  _Atomic uint64_t tls_full, tls_resumed; /* finished TLS handshakes, the whole run's */
  _Atomic unsigned ack;
  unsigned *rearm;
  unsigned n_rearm;
  unsigned inflight_connects, next_connect, pending_closes;
  uint64_t connect_interval_ns, next_connect_ns;
  unsigned churn_away;  /* dropped by the churn and not yet connecting again */
  uint64_t churn_due;   /* the earliest churn_at to act on */
  bool churning;        /* drops go on (after CMD_CHURN_STOP only the away ones come back) */
  bool connecting;
  bool stop;
  /* Written by the worker on CMD_SNAPSHOT, read by main after the ack. */
  uint64_t snap_missing, snap_expected;
  unsigned snap_unrecovered;
  uint8_t plain[TLS_RECORD_MAX]; /* a record's plaintext, on its way to on_data */
};

static struct worker workers[MAX_THREADS];
static _Atomic bool snapshot_skip_slow;
static _Atomic unsigned cmd_seq;
static _Atomic int cmd_value;
static _Atomic uint64_t published[MAX_TOPICS];
static struct sockaddr_storage dst;
static socklen_t dst_len;
static char accept_key[29];
static char *topic_req[MAX_TOPICS];
static size_t topic_req_len[MAX_TOPICS];
static size_t topic_path_end[MAX_TOPICS]; /* where the path ends in topic_req: " HTTP/1.1" */
static uint8_t *sub_frame[MAX_TOPICS];
static size_t sub_frame_len[MAX_TOPICS];
static char *sub_text[MAX_TOPICS]; /* --sub-message for each topic, unframed */
/* What since= or "since" adds to a request at most: a topic of 128 characters
 * percent-encoded, an epoch of RC_RESUME_EPOCH_MAX, a number, punctuation. */
#define SINCE_ROOM 1024
static const uint8_t empty_pong[6] = {0x8a, 0x80, 0, 0, 0, 0};
/* The subscribers' TLS settings (NULL over ws://), shared by every worker. */
static struct rc_tls_client_ctx *sub_tls;

static inline uint64_t ud_make(unsigned op, uint32_t gen, unsigned k) {
  return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffff) << 32 | k;
}

static struct io_uring_sqe *get_sqe(struct worker *w) {
  struct io_uring_sqe *sqe;
  while (!(sqe = io_uring_get_sqe(&w->ring))) io_uring_submit(&w->ring);
  return sqe;
}

static void arm_recv(struct worker *w, unsigned k) {
  struct conn *c = &w->c[k];
  struct io_uring_sqe *sqe = get_sqe(w);
  io_uring_prep_recv_multishot(sqe, (int)k, NULL, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  io_uring_sqe_set_data64(sqe, ud_make(OP_RECV, c->gen, k));
  c->recv_armed = true;
}

static void setup_done(struct worker *w, struct conn *c) {
  if (!c->setting_up) return;
  c->setting_up = false;
  w->inflight_connects--;
}

static void close_conn(struct worker *w, unsigned k) {
  struct conn *c = &w->c[k];
  setup_done(w, c);
  c->closing = true;
  if (c->state == ST_OPEN) {
    atomic_fetch_sub_explicit(&w->open_live, 1, memory_order_relaxed);
    if (c->stopped) atomic_fetch_sub_explicit(&w->slow_open_live, 1, memory_order_relaxed);
  }
  c->state = ST_CLOSED;
  free(c->carry);
  c->carry = NULL;
  c->carry_len = c->carry_cap = 0;
  /* No close_notify: a wss subscriber drops as abruptly as a ws one does. */
  if (sub_tls) rc_tls_client_end(sub_tls, &c->tls);
  /* Shutdown ends an armed multishot recv (it holds the file), then the slot is
   * closed; room for both SQEs is made first so the link is never split. */
  if (io_uring_sq_space_left(&w->ring) < 2) io_uring_submit(&w->ring);
  struct io_uring_sqe *sd = get_sqe(w), *cl = get_sqe(w);
  io_uring_prep_shutdown(sd, (int)k, SHUT_RDWR);
  sd->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sd, ud_make(OP_CANCEL, c->gen, k));
  io_uring_prep_close_direct(cl, k);
  io_uring_sqe_set_data64(cl, ud_make(OP_CLOSE, c->gen, k));
  w->pending_closes++;
}

/* The slot's request (or subscribe frame) for a resume from where its stream
 * stands. 0, or a negative errno (the caller then subscribes afresh). */
static int prepare_since(struct conn *c) {
  unsigned t = c->topic;
  struct rc_since since = {.topic = opt.topics[t], .epoch = c->rs.epoch, .seq = c->rs.last};
  if (opt.sub_message[0]) {
    if (!sub_text[t]) return -EINVAL;
    char cmd[sizeof opt.sub_message + SINCE_ROOM];
    size_t tl = strlen(sub_text[t]);
    if (!c->sub && !(c->sub = malloc(tl + SINCE_ROOM + 16))) return -ENOMEM;
    ssize_t n = rc_resume_command_with_since(cmd, tl + SINCE_ROOM, sub_text[t], tl, &since, 1);
    if (n < 0) return (int)n;
    c->sub_len = (uint32_t)rc_client_frame(c->sub, RC_WS_OP_TEXT, cmd, (size_t)n);
    return 0;
  }
  char path[2048 + SINCE_ROOM], base[2048];
  if (topic_path_end[t] < 4 || topic_path_end[t] - 4 >= sizeof base) return -EINVAL;
  size_t pl = topic_path_end[t] - 4; /* after "GET " */
  memcpy(base, topic_req[t] + 4, pl);
  base[pl] = '\0';
  if (rc_resume_path_with_since(path, sizeof path, base, &since, 1) < 0) return -ENOSPC;
  size_t cap = topic_req_len[t] + SINCE_ROOM;
  if (!c->req && !(c->req = malloc(cap))) return -ENOMEM;
  int n = snprintf(c->req, cap, "GET %s%s", path, topic_req[t] + topic_path_end[t]);
  if (n < 0 || (size_t)n >= cap) return -ENOSPC;
  c->req_len = (uint32_t)n;
  return 0;
}

/* A new connection's subscription: with --resume, from where the slot's
 * stream stands when it knows an epoch; otherwise afresh. */
static void begin_subscription(struct worker *w, struct conn *c) {
  bool reconnect = c->gen > 0;
  bool ask = opt.resume && rc_resume_can_ask(&c->rs) && prepare_since(c) == 0;
  if (reconnect) {
    w->st.reconnects++;
    /* Dropped between its 101 and its ack (the churn drops at any moment):
     * the resume it asked for is asked again now. */
    if (c->rs.awaiting_ack && c->rs.asked_since) w->st.since_unanswered++;
    if (ask) w->st.since_asked++;
    else if (opt.resume) w->st.since_unavailable++;
  }
  c->asked_since = ask;
  rc_resume_connecting(&c->rs, ask);
  /* With --resume the publisher's numbering is checked across reconnects too:
   * whatever a resume could not bring back shows as a gap or as missing. */
  if (!opt.resume) {
    memset(&c->seq, 0, sizeof c->seq);
    c->seq_floor = 0;
  }
}

static void set_seq_floor(struct conn *c) {
  if (!c->seq_floor) c->seq_floor = atomic_load_explicit(&published[c->topic], memory_order_relaxed) + 1;
}

static void upgrade_request(const struct conn *c, const void **p, size_t *n) {
  bool own = c->asked_since && !opt.sub_message[0];
  *p = own ? (const void *)c->req : topic_req[c->topic];
  *n = own ? c->req_len : topic_req_len[c->topic];
}

static void subscribe_frame(const struct conn *c, const void **p, size_t *n) {
  bool own = c->asked_since && opt.sub_message[0];
  *p = own ? (const void *)c->sub : sub_frame[c->topic];
  *n = own ? c->sub_len : sub_frame_len[c->topic];
}

static int start_connect(struct worker *w, unsigned k) {
  struct conn *c = &w->c[k];
  unsigned global = w->id + k * opt.threads;
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (c->slow) {
    /* A subscriber that will stop reading gets a small, fixed receive buffer
     * (set before connect, so the window scale fits it). Left to autotuning
     * its buffer may grow to tcp_rmem's maximum (6 MB by default, more on
     * some machines), and with the server's send buffer (up to tcp_wmem's
     * 4 MiB) the kernel then holds about 10 MB for it: the server's queue for
     * it would not pass --max-queue within the phase, and the server would
     * never close it. Fixed, only the server's send buffer holds much. */
    int rcvbuf = SLOW_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  if (opt.n_src && dst.ss_family == AF_INET) {
    /* The port is chosen at connect, per source address and destination. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = opt.src[global % opt.n_src]};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      int e = errno;
      close(fd);
      return -e;
    }
  }
  /* Into the ring's table at slot k; the process fd is closed at once, so the
   * fd limit only bounds connections being set up, not connections held. */
  int ret = io_uring_register_files_update(&w->ring, k, &fd, 1);
  close(fd);
  if (ret < 0) return ret;
  begin_subscription(w, c);
  c->gen++;
  c->state = ST_CONNECTING;
  c->lost = false;
  c->connect_ns = now_ns();
  struct io_uring_sqe *sqe = get_sqe(w);
  io_uring_prep_connect(sqe, (int)k, (struct sockaddr *)&dst, dst_len);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, ud_make(OP_CONNECT, c->gen, k));
  c->setting_up = true;
  w->inflight_connects++;
  return 0;
}

static void send_static(struct worker *w, unsigned k, const void *p, size_t n, unsigned op) {
  struct io_uring_sqe *sqe = get_sqe(w);
  io_uring_prep_send(sqe, (int)k, p, n, MSG_WAITALL);
  sqe->flags |= IOSQE_FIXED_FILE;
  if (op == OP_SEND) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, ud_make(op, w->c[k].gen, k));
}

/* Sends what wolfSSL wrote for slot k, unless a send is in flight already: its
 * completion sends the rest (OP_TLS_SEND). One send at a time keeps the records
 * in order without a queue. */
static void tls_flush(struct worker *w, unsigned k) {
  const uint8_t *p;
  size_t n;
  if (!rc_tls_client_take_send(&w->c[k].tls, &p, &n)) return;
  struct io_uring_sqe *sqe = get_sqe(w);
  io_uring_prep_send(sqe, (int)k, p, n, MSG_WAITALL);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, ud_make(OP_TLS_SEND, w->c[k].gen, k));
}

/* A subscriber's own message (the upgrade request, a subscribe message, a pong):
 * in the clear from static storage, or encrypted into the connection's pending
 * buffer. 0, or -EPROTO when wolfSSL refused it (the caller closes). */
static int conn_send(struct worker *w, unsigned k, const void *p, size_t n, unsigned op) {
  if (!sub_tls) {
    send_static(w, k, p, n, op);
    return 0;
  }
  if (op == OP_PONG) w->c[k].pong_inflight = false; /* encrypted now: nothing static is in flight */
  int ret = rc_tls_client_write(&w->c[k].tls, p, n);
  if (ret < 0) return ret;
  tls_flush(w, k);
  return 0;
}

static void count_failed(struct worker *w) {
  w->st.failed++;
  atomic_fetch_add_explicit(&w->failed_live, 1, memory_order_relaxed);
}

/* An in-band message of ringcast's: the stream of the server's numbering
 * follows it. True for a message of this subscriber's topic, whose payload the
 * caller goes on to check. */
static bool on_envelope(struct worker *w, struct conn *c, const struct rc_env *e, uint64_t now) {
  struct rc_resume_totals *tot = c->stopped ? &w->st.slow_cont : &w->st.cont;
  if (e->type == RC_ENV_ERROR) {
    if (tot->protocol_errors < 3)
      fprintf(stderr, "ringcast-bench: a subscriber got an error reply: %.*s\n", (int)e->op.len,
              e->op.p ? e->op.p : "");
    tot->protocol_errors++;
    return false;
  }
  /* One topic per subscriber: anything else named is not its stream. */
  if (e->topic.p && !rc_env_str_is(e->topic, opt.topics[c->topic])) return false;
  switch (e->type) {
  case RC_ENV_MSG:
    if (e->has_seq) rc_resume_on_msg(&c->rs, tot, e->seq);
    return true;
  case RC_ENV_ACK:
    if (!rc_env_str_is(e->op, "subscribe")) return false;
    if (opt.sub_message[0]) set_seq_floor(c);
    /* An ack naming its topics ("topics", before history) says nothing of the
     * numbering. */
    if (e->topic.p && e->has_seq)
      rc_resume_on_ack(&c->rs, tot, e->seq, e->epoch.p, e->epoch.len, e->recovered, now);
    return false;
  case RC_ENV_GAP:
    if (e->has_from && e->has_to)
      rc_resume_on_gap(&c->rs, tot, e->from, e->to, e->epoch.p, e->epoch.len, e->conflated);
    return false;
  case RC_ENV_HB:
    if (e->has_seq) rc_resume_on_hb(&c->rs, tot, e->seq);
    return false;
  default: return false;
  }
}

static void on_message(struct worker *w, struct conn *c, const uint8_t *p, size_t n, uint64_t now) {
  size_t frame_len = n;
  struct rc_env env;
  if (n && p[0] == '{' && rc_env_parse(p, n, &env) > 0 && env.type != RC_ENV_NONE) {
    if (!on_envelope(w, c, &env, now)) return;
    if (env.data) {
      p = env.data;
      n = env.data_len;
    }
  }
  const uint8_t *q = memmem(p, n, "\"s\":", 4);
  if (q) rc_seq_observe(&c->seq, &w->st.seq, strtoull((const char *)q + 4, NULL, 10));
  if (c->stopped) {
    /* The backlog a slow subscriber reads late says nothing of the readers'
     * throughput or latency. */
    w->st.slow_frames++;
    c->got_since_reconnect = true;
    return;
  }
  w->st.frames++;
  w->st.bytes += frame_len;
  const uint8_t *t = memmem(p, n, "\"t\":", 4);
  if (t) {
    uint64_t sent = strtoull((const char *)t + 4, NULL, 10);
    if (sent && now > sent) rc_hist_record(&w->st.lat, now - sent);
  }
  c->got_since_reconnect = true;
}

/* Parses frames; returns bytes consumed, or -1 when the connection ended. */
static long parse_frames(struct worker *w, unsigned k, uint8_t *buf, size_t len) {
  struct conn *c = &w->c[k];
  size_t pos = 0;
  uint64_t now = now_ns();
  while (pos < len) {
    struct rc_ws_header h;
    ssize_t hl = rc_ws_parse_header(buf + pos, len - pos, false, &h);
    if (hl == -EAGAIN) break;
    if (hl < 0) return -1;
    if (len - pos - (size_t)hl < h.payload_len) break;
    uint8_t *p = buf + pos + hl;
    size_t n = (size_t)h.payload_len;
    switch (h.opcode) {
    case RC_WS_OP_TEXT:
    case RC_WS_OP_BINARY:
    case RC_WS_OP_CONT: on_message(w, c, p, n, now); break;
    case RC_WS_OP_PING:
      if (n == 0 && !c->pong_inflight) {
        c->pong_inflight = true;
        if (conn_send(w, k, empty_pong, sizeof empty_pong, OP_PONG) < 0) return -1;
      }
      break;
    case RC_WS_OP_CLOSE:
      if (c->stopped) {
        if (n >= 2 && ((unsigned)p[0] << 8 | p[1]) == 1008) w->st.slow_closed_1008++;
        else w->st.slow_closed++;
      } else {
        w->st.closed_by_server++;
        c->lost = true;
      }
      return -1;
    default: break;
    }
    pos += (size_t)hl + n;
  }
  return (long)pos;
}

static int carry_reserve(struct conn *c, size_t need) {
  if (need <= c->carry_cap) return 0;
  size_t cap = c->carry_cap ? c->carry_cap : 1024;
  while (cap < need) cap *= 2;
  if (cap > UINT32_MAX) return -ENOMEM;
  uint8_t *p = realloc(c->carry, cap);
  if (!p) return -ENOMEM;
  c->carry = p;
  c->carry_cap = (uint32_t)cap;
  return 0;
}

/* A frame split across receive buffers is gathered in the connection's carry
 * buffer, which is kept (up to CARRY_KEEP bytes) while frames keep arriving
 * split: a split frame costs one copy of its pieces and no allocation. (An
 * allocation and a copy of everything so far per 8 KiB buffer was most of the
 * bench's time under ASan, whose quarantine makes every allocation fresh
 * memory: with 16 KiB messages the bench, not the server, fell behind.) */
static void on_data(struct worker *w, unsigned k, uint8_t *p, size_t n) {
  struct conn *c = &w->c[k];
  uint8_t *buf = p;
  size_t len = n;
  if (c->carry_len) {
    if (carry_reserve(c, c->carry_len + n) < 0) {
      close_conn(w, k);
      return;
    }
    memcpy(c->carry + c->carry_len, p, n);
    buf = c->carry;
    len = c->carry_len + n;
  }
  size_t pos = 0;
  if (c->state == ST_HANDSHAKE) {
    uint8_t *e = memmem(buf, len, "\r\n\r\n", 4);
    if (e) {
      char why[256];
      size_t hl = (size_t)(e + 4 - buf);
      if (rc_client_check_upgrade((char *)buf, hl, accept_key, why, sizeof why) < 0) {
        if (w->st.failed < 3) fprintf(stderr, "ringcast-bench: %s\n", why);
        w->st.failed++;
        atomic_fetch_add_explicit(&w->failed_live, 1, memory_order_relaxed);
        close_conn(w, k);
        return;
      }
      c->state = ST_OPEN;
      setup_done(w, c);
      if (!opt.sub_message[0]) set_seq_floor(c); /* subscribed before the 101 */
      rc_hist_record(&w->st.connect, now_ns() - c->connect_ns);
      atomic_fetch_add_explicit(&w->open_live, 1, memory_order_relaxed);
      const void *sf;
      size_t sfl;
      subscribe_frame(c, &sf, &sfl);
      if (opt.sub_message[0] && conn_send(w, k, sf, sfl, OP_SEND) < 0) {
        close_conn(w, k);
        return;
      }
      pos = hl;
    } else if (len > 16384) {
      w->st.failed++;
      atomic_fetch_add_explicit(&w->failed_live, 1, memory_order_relaxed);
      close_conn(w, k);
      return;
    }
  }
  if (c->state == ST_OPEN) {
    long used = parse_frames(w, k, buf + pos, len - pos);
    if (used < 0) {
      close_conn(w, k);
      return;
    }
    pos += (size_t)used;
  }
  size_t left = len - pos;
  if (buf == c->carry) {
    if (left && pos) memmove(c->carry, c->carry + pos, left);
  } else if (left) {
    if (carry_reserve(c, left) < 0) {
      close_conn(w, k); /* the stream cannot go on without these bytes */
      return;
    }
    memcpy(c->carry, buf + pos, left);
  }
  c->carry_len = (uint32_t)left;
  if (!left && c->carry_cap > CARRY_KEEP) {
    free(c->carry);
    c->carry = NULL;
    c->carry_cap = 0;
  }
}

static void tls_failed(struct worker *w, unsigned k, const char *during) {
  struct conn *c = &w->c[k];
  char why[160];
  rc_tls_client_why(&c->tls, why, sizeof why);
  if (c->state == ST_HANDSHAKE) {
    if (w->st.failed < 3) fprintf(stderr, "ringcast-bench: %s: %s\n", during, why);
    count_failed(w);
  } else if (c->stopped) {
    w->st.slow_closed++;
  } else {
    w->st.closed_by_server++;
    c->lost = true;
  }
  close_conn(w, k);
}

/* The TLS handshake finished: the upgrade request goes out, encrypted. */
static void tls_connected(struct worker *w, unsigned k) {
  struct conn *c = &w->c[k];
  if (c->tls.resumed) atomic_fetch_add_explicit(&w->tls_resumed, 1, memory_order_relaxed);
  else atomic_fetch_add_explicit(&w->tls_full, 1, memory_order_relaxed);
  const void *req;
  size_t rl;
  upgrade_request(c, &req, &rl);
  if (conn_send(w, k, req, rl, OP_SEND) < 0) tls_failed(w, k, "sending the upgrade request");
}

/* Ciphertext from the ring: wolfSSL takes it, and each record's plaintext goes
 * through on_data as a cleartext receive would. */
static void on_cipher(struct worker *w, unsigned k, const uint8_t *p, size_t n) {
  struct conn *c = &w->c[k];
  rc_tls_client_feed(&c->tls, p, n);
  for (;;) {
    size_t got;
    int ev = rc_tls_client_advance(&c->tls, w->plain, sizeof w->plain, &got);
    if (ev == RC_TLS_CLIENT_NEED_INPUT) break;
    if (ev == RC_TLS_CLIENT_CONNECTED) {
      tls_connected(w, k);
    } else if (ev == RC_TLS_CLIENT_DATA) {
      on_data(w, k, w->plain, got);
    } else {
      tls_failed(w, k, ev == RC_TLS_CLIENT_CLOSED ? "closed" : "TLS handshake");
      return;
    }
    /* on_data or a failed send may have closed it, wolfSSL object and all. */
    if (c->state != ST_HANDSHAKE && c->state != ST_OPEN) return;
  }
  tls_flush(w, k); /* what wolfSSL answered on its own: handshake messages, key updates */
}

/* The TCP connection is up: the ClientHello, or the upgrade request. */
static void on_connected(struct worker *w, unsigned k) {
  struct conn *c = &w->c[k];
  c->state = ST_HANDSHAKE;
  if (!sub_tls) {
    const void *req;
    size_t rl;
    upgrade_request(c, &req, &rl);
    send_static(w, k, req, rl, OP_SEND);
  } else if (rc_tls_client_start(sub_tls, &c->tls) < 0) {
    tls_failed(w, k, "starting TLS");
    return;
  } else {
    tls_flush(w, k);
  }
  arm_recv(w, k);
}

/* A TLS send completed, maybe one of an earlier connection on this slot: its
 * buffer is freed whatever the generation, and the current one sends on. */
static void on_tls_sent(struct worker *w, unsigned k, int res, bool current) {
  struct conn *c = &w->c[k];
  int ret = rc_tls_client_sent(&c->tls, res);
  if (c->state != ST_HANDSHAKE && c->state != ST_OPEN) return;
  if (current && ret < 0) {
    if (w->st.failed < 3 && c->state == ST_HANDSHAKE)
      fprintf(stderr, "ringcast-bench: TLS send: %s\n", strerror(-ret));
    tls_failed(w, k, "sending");
    return;
  }
  tls_flush(w, k);
}

static void return_buffer(struct worker *w, unsigned bid) {
  io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                        io_uring_buf_ring_mask(BUF_COUNT), (int)w->bufs_pending++);
}

static void handle_cqe(struct worker *w, struct io_uring_cqe *cqe) {
  unsigned op = (unsigned)(cqe->user_data >> 56);
  unsigned k = (unsigned)cqe->user_data;
  uint32_t gen = (uint32_t)(cqe->user_data >> 32) & 0xffffff;
  struct conn *c = &w->c[k];
  bool current = (c->gen & 0xffffff) == gen;
  switch (op) {
  case OP_CONNECT:
    if (!current) return;
    if (cqe->res < 0) {
      if (w->st.failed < 3) fprintf(stderr, "ringcast-bench: connect: %s\n", strerror(-cqe->res));
      count_failed(w);
      setup_done(w, c);
      c->state = ST_CLOSED;
      return;
    }
    on_connected(w, k);
    return;
  case OP_RECV: {
    if (cqe->flags & IORING_CQE_F_BUFFER) {
      unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      if (current && cqe->res > 0 && (c->state == ST_HANDSHAKE || c->state == ST_OPEN)) {
        uint8_t *p = w->bufs + (size_t)bid * BUF_SIZE;
        if (sub_tls) on_cipher(w, k, p, (size_t)cqe->res);
        else on_data(w, k, p, (size_t)cqe->res);
      }
      return_buffer(w, bid);
    }
    if (!current || (cqe->flags & IORING_CQE_F_MORE)) return;
    c->recv_armed = false;
    if (c->state != ST_HANDSHAKE && c->state != ST_OPEN) return;
    if (cqe->res == -ENOBUFS || cqe->res > 0) {
      if (c->paused) return;
      if (cqe->res > 0) arm_recv(w, k);
      else w->rearm[w->n_rearm++ % w->n] = k;
    } else if (cqe->res == -ECANCELED && c->stopped) {
      /* The slow scenario stopped reading on purpose; if it resumed before the
       * cancel completed, read again. */
      if (!c->paused) arm_recv(w, k);
    } else {
      if (c->state == ST_HANDSHAKE) {
        /* Cut before its 101 (a server's handshake timeout, say): failed, not
         * left to look stuck. */
        if (w->st.failed < 3) fprintf(stderr, "ringcast-bench: closed during the handshake\n");
        count_failed(w);
      }
      if (c->state == ST_OPEN) {
        if (c->stopped) {
          w->st.slow_closed++;
        } else {
          w->st.closed_by_server++;
          c->lost = true;
        }
      }
      close_conn(w, k);
    }
    return;
  }
  case OP_PONG:
    if (current) c->pong_inflight = false;
    return;
  case OP_TLS_SEND:
    on_tls_sent(w, k, cqe->res, current);
    return;
  case OP_CLOSE:
    w->pending_closes--;
    if (current) c->closing = false;
    return;
  default:
    return; /* sends, cancels and closes: only failures get here */
  }
}

static void stats_add(struct stats *into, const struct stats *src) {
  into->frames += src->frames;
  into->bytes += src->bytes;
  into->closed_by_server += src->closed_by_server;
  into->failed += src->failed;
  into->slow_closed_1008 += src->slow_closed_1008;
  into->slow_closed += src->slow_closed;
  into->slow_frames += src->slow_frames;
  into->reconnects += src->reconnects;
  into->since_asked += src->since_asked;
  into->since_unavailable += src->since_unavailable;
  into->churn_drops += src->churn_drops;
  into->since_unanswered += src->since_unanswered;
  rc_resume_totals_add(&into->cont, &src->cont);
  rc_resume_totals_add(&into->slow_cont, &src->slow_cont);
  into->seq.gaps += src->seq.gaps;
  into->seq.duplicates += src->seq.duplicates;
  into->seq.reorders += src->seq.reorders;
  rc_hist_merge(&into->lat, &src->lat);
  rc_hist_merge(&into->connect, &src->connect);
}

/* splitmix64: a subscriber's own stream of draws. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double next_unit(uint64_t *state) {
  return ((double)(next_random(state) >> 11) + 1.0) / 9007199254740992.0;
}

/* When a subscriber drops next: exponential, mean --churn-every (its drops
 * are a Poisson process: every moment is as likely as another). */
static uint64_t churn_next_drop(struct conn *c, uint64_t now) {
  return now + (uint64_t)(-log(next_unit(&c->rng)) * opt.churn_every * 1e9);
}

/* How long it stays away: uniform in [0, 2 x --churn-down). */
static uint64_t churn_away_for(struct conn *c) {
  return (uint64_t)((1.0 - next_unit(&c->rng)) * 2.0 * opt.churn_down * 1e9);
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The churn scenario's drops and returns: due ones happen, and churn_due
 * becomes the next one's time. A dropped slot connects again once its close
 * has completed and its time away is over. One pass over the thread's slots
 * per due moment, at most one a millisecond. */
static void churn_tick(struct worker *w, uint64_t now) {
  uint64_t due = UINT64_MAX, soon = now + 1000000; /* a close or a set-up to wait for */
  for (unsigned k = 0; k < w->n; k++) {
    struct conn *c = &w->c[k];
    if (c->churned) {
      if (now < c->churn_at) {
        due = min_u64(due, c->churn_at);
      } else if (c->closing || w->inflight_connects >= CONNECTS_IN_FLIGHT) {
        due = min_u64(due, soon);
      } else {
        c->churned = false;
        w->churn_away--;
        c->churn_at = churn_next_drop(c, now);
        if (start_connect(w, k) < 0) count_failed(w);
        else due = min_u64(due, c->churn_at);
      }
      continue;
    }
    if (!w->churning || c->slow || c->state == ST_CLOSED || c->state == ST_FREE) continue;
    if (now < c->churn_at) {
      due = min_u64(due, c->churn_at);
    } else if (c->state != ST_OPEN) {
      due = min_u64(due, soon); /* due while still setting up: it drops once open */
    } else {
      close_conn(w, k);
      c->churned = true;
      w->churn_away++;
      w->st.churn_drops++;
      c->churn_at = now + churn_away_for(c);
      due = min_u64(due, soon);
    }
  }
  w->churn_due = due;
}

static void do_command(struct worker *w, int cmd) {
  switch (cmd) {
  case CMD_RESET:
    /* Per-phase figures start again; the subscribers' sequence streams go on,
     * and so do the run's totals: a close or a gap in an earlier phase must
     * still show in the summary. */
    stats_add(&w->past, &w->st);
    memset(&w->st, 0, sizeof w->st);
    rc_hist_init(&w->st.lat);
    rc_hist_init(&w->st.connect);
    break;
  case CMD_STORM_CLOSE: {
    for (unsigned k = 0; k < w->n; k++)
      if (w->c[k].state == ST_OPEN || w->c[k].state == ST_HANDSHAKE) close_conn(w, k);
    /* A slot is reconnected only after its close ran, or the close would hit
     * the new socket. */
    struct io_uring_cqe *cqes[512];
    while (w->pending_closes) {
      io_uring_submit_and_wait(&w->ring, 1);
      unsigned n;
      while ((n = io_uring_peek_batch_cqe(&w->ring, cqes, 512)) > 0) {
        for (unsigned i = 0; i < n; i++) handle_cqe(w, cqes[i]);
        io_uring_cq_advance(&w->ring, n);
      }
    }
    break;
  }
  case CMD_RECONNECT:
    for (unsigned k = 0; k < w->n; k++) w->c[k].got_since_reconnect = false;
    w->next_connect = 0;
    w->connecting = true;
    break;
  case CMD_SLOW_STOP:
    for (unsigned k = 0; k < w->n; k++) {
      struct conn *c = &w->c[k];
      if (!c->slow || c->state != ST_OPEN) continue;
      /* paused also keeps a receive that ends now (-ENOBUFS, a full CQ) from
       * being re-armed. */
      c->paused = c->stopped = true;
      atomic_fetch_add_explicit(&w->slow_open_live, 1, memory_order_relaxed);
      if (!c->recv_armed) continue;
      struct io_uring_sqe *sqe = get_sqe(w);
      io_uring_prep_cancel64(sqe, ud_make(OP_RECV, c->gen, k), 0);
      io_uring_sqe_set_data64(sqe, ud_make(OP_CANCEL, c->gen, k));
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    break;
  case CMD_SLOW_RESUME:
    for (unsigned k = 0; k < w->n; k++) {
      struct conn *c = &w->c[k];
      if (!c->paused) continue;
      c->paused = false;
      /* A multishot recv whose cancel has not completed yet is still armed and
       * keeps reading; its -ECANCELED end re-arms nothing, see OP_RECV. */
      if (c->state == ST_OPEN && !c->recv_armed) arm_recv(w, k);
    }
    break;
  case CMD_SNAPSHOT: {
    bool skip_slow = atomic_load(&snapshot_skip_slow);
    w->snap_missing = w->snap_expected = 0;
    w->snap_unrecovered = 0;
    for (unsigned k = 0; k < w->n; k++) {
      struct conn *c = &w->c[k];
      if ((c->state != ST_OPEN && !c->lost) || (skip_slow && c->slow)) continue;
      uint64_t pub = atomic_load_explicit(&published[c->topic], memory_order_relaxed);
      uint64_t first = c->seq_floor ? c->seq_floor : c->seq.last ? c->seq.first : 1;
      w->snap_missing += rc_seq_missing(&c->seq, first, pub);
      w->snap_expected += pub >= first ? pub - first + 1 : 0;
      w->snap_unrecovered += !c->got_since_reconnect;
    }
    break;
  }
  case CMD_CHURN_START: {
    uint64_t now = now_ns();
    for (unsigned k = 0; k < w->n; k++) w->c[k].churn_at = churn_next_drop(&w->c[k], now);
    w->churning = true;
    w->churn_due = now;
    break;
  }
  case CMD_CHURN_STOP:
    w->churning = false; /* the ones away still come back */
    break;
  case CMD_STOP: w->stop = true; break;
  default: break;
  }
}

static int setup_ring(struct worker *w) {
  struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                       IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
                              .cq_entries = 65536};
  int ret = io_uring_queue_init_params(4096, &w->ring, &p);
  if (ret == -EINVAL) {
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    p.cq_entries = 65536;
    ret = io_uring_queue_init_params(4096, &w->ring, &p);
  }
  if (ret < 0) return ret;
  if ((ret = io_uring_register_files_sparse(&w->ring, w->n)) < 0) return ret;
  void *br;
  if (posix_memalign(&br, 4096, BUF_COUNT * sizeof(struct io_uring_buf))) return -ENOMEM;
  w->br = br;
  struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = BUF_COUNT, .bgid = 0};
  if ((ret = io_uring_register_buf_ring(&w->ring, &reg, 0)) < 0) return ret;
  io_uring_buf_ring_init(w->br);
  w->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
  if (!w->bufs) return -ENOMEM;
  for (unsigned i = 0; i < BUF_COUNT; i++) return_buffer(w, i);
  io_uring_buf_ring_advance(w->br, (int)w->bufs_pending);
  w->bufs_pending = 0;
  return 0;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  int ret = setup_ring(w);
  if (ret < 0) {
    fprintf(stderr, "ringcast-bench: io_uring set-up failed: %s\n", strerror(-ret));
    exit(2);
  }
  unsigned seen_cmd = 0;
  struct io_uring_cqe *cqes[512];
  while (!w->stop) {
    unsigned cs = atomic_load_explicit(&cmd_seq, memory_order_acquire);
    if (cs != seen_cmd) {
      do_command(w, atomic_load(&cmd_value));
      seen_cmd = cs;
      atomic_store_explicit(&w->ack, cs, memory_order_release);
    }
    uint64_t now = now_ns();
    while (w->connecting && w->next_connect < w->n && w->inflight_connects < CONNECTS_IN_FLIGHT &&
           now >= w->next_connect_ns) {
      unsigned k = w->next_connect++;
      if (start_connect(w, k) < 0) {
        w->st.failed++;
        atomic_fetch_add_explicit(&w->failed_live, 1, memory_order_relaxed);
      }
      if (w->connect_interval_ns) w->next_connect_ns = now + w->connect_interval_ns;
    }
    if (w->next_connect >= w->n) w->connecting = false;
    if ((w->churning || w->churn_away) && now >= w->churn_due) churn_tick(w, now);
    while (w->n_rearm) {
      unsigned k = w->rearm[--w->n_rearm];
      if ((w->c[k].state == ST_OPEN || w->c[k].state == ST_HANDSHAKE) && !w->c[k].paused &&
          !w->c[k].recv_armed)
        arm_recv(w, k);
    }
    struct __kernel_timespec ts = {.tv_nsec = 5000000};
    struct io_uring_cqe *cqe;
    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
    unsigned n;
    while ((n = io_uring_peek_batch_cqe(&w->ring, cqes, 512)) > 0) {
      for (unsigned i = 0; i < n; i++) handle_cqe(w, cqes[i]);
      io_uring_cq_advance(&w->ring, n);
    }
    if (w->bufs_pending) {
      io_uring_buf_ring_advance(w->br, (int)w->bufs_pending);
      w->bufs_pending = 0;
    }
    atomic_store_explicit(&w->frames_live, w->past.frames + w->st.frames, memory_order_relaxed);
  }
  io_uring_queue_exit(&w->ring);
  rc_tls_client_thread_exit();
  return NULL;
}

static void command(int cmd) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* main thread only, but be safe */
  pthread_mutex_lock(&lock);
  atomic_store(&cmd_value, cmd);
  unsigned cs = atomic_fetch_add_explicit(&cmd_seq, 1, memory_order_acq_rel) + 1;
  for (unsigned i = 0; i < opt.threads; i++)
    while (atomic_load_explicit(&workers[i].ack, memory_order_acquire) != cs) usleep(200);
  pthread_mutex_unlock(&lock);
}

/* ---- publisher ------------------------------------------------------------------ */

struct publisher {
  pthread_t thread;
  double rate;
  uint64_t end_ns;
  int fd;
  struct WOLFSSL *ssl; /* over https:// and wss:// (blocking, on fd) */
  struct rc_url url;
  _Atomic uint64_t sent;
  _Atomic int stop;
  bool lagging;
  char err[256];
};

/* The publisher's TLS settings (NULL over http:// and ws://). */
static struct rc_tls_client_ctx *pub_tls;

static int pub_write(struct publisher *pb, const void *p, size_t n) {
  return pb->ssl ? rc_tls_client_write_fd(pb->ssl, p, n) : rc_write_all(pb->fd, p, n);
}

/* Bytes read, 0 at the end of the stream, or -errno. */
static long pub_read(struct publisher *pb, void *p, size_t n) {
  if (pb->ssl) return rc_tls_client_read_fd(pb->ssl, p, n);
  ssize_t r = read(pb->fd, p, n);
  return r < 0 ? -errno : (long)r;
}

/* Reads what has arrived without waiting for more (over TLS, a record already
 * begun is read to its end). The ws publisher's acknowledgements are
 * discarded this way so they never back up. */
static void pub_discard_input(struct publisher *pb) {
  char buf[65536];
  if (!pb->ssl) {
    while (recv(pb->fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
      /* discarded */
    }
    return;
  }
  struct pollfd pfd = {.fd = pb->fd, .events = POLLIN};
  while (rc_tls_client_has_buffered(pb->ssl) || poll(&pfd, 1, 0) > 0)
    if (rc_tls_client_read_fd(pb->ssl, buf, sizeof buf) <= 0) break;
}

/* Adds --token's header to a request head ending in its blank line; size has
 * room (the token is bounded at parse). Returns the new length. */
static size_t add_auth(char *req, size_t len, size_t size) {
  size_t al = strlen(opt.auth);
  if (!al || len < 2 || len + al + 1 > size) return len;
  memcpy(req + len - 2, opt.auth, al);
  memcpy(req + len - 2 + al, "\r\n", 3);
  return len + al;
}

static int read_http_response(struct publisher *pb) {
  char buf[4096];
  size_t n = 0;
  for (;;) {
    long r = pub_read(pb, buf + n, sizeof buf - 1 - n);
    if (r <= 0) {
      snprintf(pb->err, sizeof pb->err, "publish connection closed");
      return -1;
    }
    n += (size_t)r;
    buf[n] = '\0';
    char *e = strstr(buf, "\r\n\r\n");
    if (!e) continue;
    /* The status is checked before the body is read over it. */
    if (strncmp(buf + 9, "200", 3) != 0 && strncmp(buf + 9, "201", 3) != 0 &&
        strncmp(buf + 9, "202", 3) != 0) {
      snprintf(pb->err, sizeof pb->err, "publish answered: %.*s", (int)strcspn(buf, "\r"), buf);
      return -1;
    }
    char *cl = strcasestr(buf, "Content-Length:");
    size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t have = n - (size_t)(e + 4 - buf);
    while (have < body) {
      r = pub_read(pb, buf, sizeof buf);
      if (r <= 0) {
        snprintf(pb->err, sizeof pb->err, "publish connection closed in a response body");
        return -1;
      }
      have += (size_t)r;
    }
    return 0;
  }
}

static size_t make_payload(char *out, unsigned topic, uint64_t seq) {
  int n = snprintf(out, opt.size + 64, "{\"s\":%llu,\"t\":%llu,\"p\":\"", (unsigned long long)seq,
                   (unsigned long long)now_ns());
  (void)topic;
  if ((unsigned)n + 2 < opt.size) {
    memset(out + n, 'x', opt.size - 2 - (unsigned)n);
    n = (int)opt.size - 2;
  }
  out[n++] = '"';
  out[n++] = '}';
  return (size_t)n;
}

static void *publisher_main(void *arg) {
  struct publisher *pb = arg;
  size_t cap = 1 << 20;
  char *body = malloc(cap), *payload = malloc(opt.size + 64), *req = malloc(cap + 4096);
  uint64_t start = now_ns(), sent = 0, skipped = 0;
  unsigned topic_rr = 0;
  uint8_t *frame = malloc(cap + 16);
  while (!atomic_load(&pb->stop) && now_ns() < pb->end_ns) {
    uint64_t now = now_ns();
    uint64_t due = pb->rate > 0 ? (uint64_t)((double)(now - start) / 1e9 * pb->rate) + 1 : sent + 64;
    if (due > sent + 20000) pb->lagging = true;
    size_t bl = 0;
    while (sent < due && bl + opt.size + 256 < cap) {
      unsigned t = topic_rr++ % opt.ntopics;
      uint64_t seq = atomic_load_explicit(&published[t], memory_order_relaxed) + 1;
      if (opt.inject_gap_every && (sent + skipped + 1) % opt.inject_gap_every == 0) {
        seq++; /* skip one number: the subscribers must report a gap */
        skipped++;
      }
      size_t pl = make_payload(payload, t, seq);
      int ok = 0;
      if (opt.pub_mode == PUB_BATCH) {
        bl += (size_t)sprintf(body + bl, "%s %zu\n", opt.topics[t], pl);
        memcpy(body + bl, payload, pl);
        bl += pl;
        body[bl++] = '\n';
      } else if (opt.pub_mode == PUB_SINGLE) {
        char path[2048];
        build_from_template(path, sizeof path, pb->url.path, opt.topics[t]);
        int hl = snprintf(req, 4096, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n", path,
                          pb->url.host, opt.auth, pl);
        memcpy(req + hl, payload, pl);
        ok = pub_write(pb, req, (size_t)hl + pl) < 0 || read_http_response(pb) < 0;
      } else {
        int cl = snprintf(req, cap, "{\"op\":\"publish\",\"topic\":\"%s\",\"data\":%.*s}", opt.topics[t],
                          (int)pl, payload);
        size_t fl = rc_client_frame(frame, RC_WS_OP_TEXT, req, (size_t)cl);
        ok = pub_write(pb, frame, fl) < 0;
        pub_discard_input(pb);
      }
      if (ok) goto out;
      atomic_store_explicit(&published[t], seq, memory_order_relaxed);
      sent++;
      atomic_store_explicit(&pb->sent, sent, memory_order_relaxed);
    }
    if (bl) {
      int hl = snprintf(req, 4096, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n",
                        pb->url.path, pb->url.host, opt.auth, bl);
      if (pub_write(pb, req, (size_t)hl) < 0 || pub_write(pb, body, bl) < 0 || read_http_response(pb) < 0)
        goto out;
    }
    if (pb->rate > 0) nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
  }
out:
  free(body);
  free(payload);
  free(req);
  free(frame);
  rc_tls_client_thread_exit();
  return NULL;
}

/* The WebSocket publisher's upgrade; 0 or -1 (said on stderr). */
static int publisher_upgrade(struct publisher *pb) {
  char req[4096], acc[29], head[4096], why[256];
  size_t rl = add_auth(req, rc_client_upgrade_request(&pb->url, req, sizeof req, acc), sizeof req);
  long n = pub_write(pb, req, rl) < 0 ? -1 : pub_read(pb, head, sizeof head - 1);
  if (n <= 0 || rc_client_check_upgrade(head, (size_t)n, acc, why, sizeof why) < 0) {
    fprintf(stderr, "ringcast-bench: publisher WebSocket handshake failed\n");
    return -1;
  }
  /* Acks come back on this socket; a reader thread is not worth it: the
   * kernel buffer holds them and the connection closes at the end. */
  return 0;
}

static void publisher_close(struct publisher *pb) {
  rc_tls_client_close_fd(pb->ssl);
  pb->ssl = NULL;
  close(pb->fd);
}

static int publisher_start(struct publisher *pb, double rate, double seconds) {
  memset(pb, 0, sizeof *pb);
  pb->rate = rate;
  pb->end_ns = now_ns() + (uint64_t)(seconds * 1e9);
  if (rc_url_parse(opt.publish, &pb->url) < 0) {
    fprintf(stderr, "ringcast-bench: bad --publish URL %s\n", opt.publish);
    return -1;
  }
  pb->fd = rc_client_connect(&pb->url);
  if (pb->fd < 0) {
    fprintf(stderr, "ringcast-bench: cannot connect the publisher: %s\n", strerror(-pb->fd));
    return -1;
  }
  int one = 1;
  setsockopt(pb->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (pub_tls && !(pb->ssl = rc_tls_client_connect_fd(pub_tls, pb->fd, pb->err, sizeof pb->err))) {
    fprintf(stderr, "ringcast-bench: publisher: %s\n", pb->err);
    close(pb->fd);
    return -1;
  }
  if ((opt.pub_mode == PUB_WS && publisher_upgrade(pb) < 0) ||
      pthread_create(&pb->thread, NULL, publisher_main, pb)) {
    publisher_close(pb);
    return -1;
  }
  return 0;
}

static uint64_t publisher_join(struct publisher *pb) {
  pthread_join(pb->thread, NULL);
  publisher_close(pb);
  if (pb->err[0]) fprintf(stderr, "ringcast-bench: %s\n", pb->err);
  return atomic_load(&pb->sent);
}

/* ---- measurement helpers ------------------------------------------------------ */

static void proc_stat(int pid, double *cpu_s, long *rss_kb) {
  char path[64], buf[2048];
  *cpu_s = 0;
  *rss_kb = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  if (!(f = fopen(path, "r"))) return;
  while (fgets(buf, sizeof buf, f))
    if (sscanf(buf, "VmRSS: %ld kB", rss_kb) == 1) break;
  fclose(f);
}

/* Non-idle seconds of one CPU (/proc/stat cpuN: user, nice, system, irq, softirq,
 * steal): everything that ran there, the server's deferred softirq work in
 * ksoftirqd included, which the server's own CPU time does not show. */
static double cpu_busy_s(int cpu) {
  char want[16], line[512];
  int wl = snprintf(want, sizeof want, "cpu%d ", cpu);
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  double s = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, want, (size_t)wl)) continue;
    unsigned long long v[8] = {0};
    sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
           &v[6], &v[7]);
    s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    break;
  }
  fclose(f);
  return s;
}

static double thread_cpu_s(pthread_t t) {
  clockid_t cid;
  struct timespec ts;
  if (pthread_getcpuclockid(t, &cid) || clock_gettime(cid, &ts)) return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct totals {
  uint64_t open;
  struct stats s;
};

/* This phase's figures, or (whole_run) the whole run's. Read while the workers
 * run, as the progress lines are: a moment old, exact once they have stopped. */
static void collect(struct totals *t, bool whole_run) {
  memset(t, 0, sizeof *t);
  rc_hist_init(&t->s.lat);
  rc_hist_init(&t->s.connect);
  for (unsigned i = 0; i < opt.threads; i++) {
    stats_add(&t->s, &workers[i].st);
    if (whole_run) stats_add(&t->s, &workers[i].past);
    t->open += atomic_load(&workers[i].open_live);
  }
}

static void command(int cmd);

/* Asks every worker to count, on its own thread, what its open subscribers lack
 * of everything published so far. */
static void snapshot(bool skip_slow, uint64_t *missing, uint64_t *expected_per_sub_sum,
                     unsigned *unrecovered) {
  atomic_store(&snapshot_skip_slow, skip_slow);
  command(CMD_SNAPSHOT);
  *missing = *expected_per_sub_sum = 0;
  if (unrecovered) *unrecovered = 0;
  for (unsigned i = 0; i < opt.threads; i++) {
    *missing += workers[i].snap_missing;
    *expected_per_sub_sum += workers[i].snap_expected;
    if (unrecovered) *unrecovered += workers[i].snap_unrecovered;
  }
}

static unsigned open_now(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < opt.threads; i++) n += atomic_load(&workers[i].open_live);
  return n;
}
static unsigned failed_now(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < opt.threads; i++) n += atomic_load(&workers[i].failed_live);
  return n;
}
static unsigned slow_open_now(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < opt.threads; i++) n += atomic_load(&workers[i].slow_open_live);
  return n;
}
static uint64_t frames_now(void) {
  uint64_t n = 0;
  for (unsigned i = 0; i < opt.threads; i++) n += atomic_load(&workers[i].frames_live);
  return n;
}
static void tls_handshakes_now(uint64_t *full, uint64_t *resumed) {
  *full = *resumed = 0;
  for (unsigned i = 0; i < opt.threads; i++) {
    *full += atomic_load_explicit(&workers[i].tls_full, memory_order_relaxed);
    *resumed += atomic_load_explicit(&workers[i].tls_resumed, memory_order_relaxed);
  }
}
static uint64_t published_total(void) {
  uint64_t n = 0;
  for (unsigned t = 0; t < opt.ntopics; t++) n += atomic_load(&published[t]);
  return n;
}
/* ---- the run -------------------------------------------------------------------- */

static struct {
  double t[MAX_SERIES];
  double deliveries[MAX_SERIES];
  unsigned n;
} series;
static uint64_t series_last_frames;
static uint64_t run_start_ns, phase_start_ns;

static void progress_tick(const char *phase) {
  uint64_t f = frames_now();
  double t = (double)(now_ns() - run_start_ns) / 1e9;
  double rate = (double)(f - series_last_frames);
  series_last_frames = f;
  /* The plotted series starts with the first publishing phase. */
  if (strcmp(phase, "connect") && strcmp(phase, "idle") && series.n < MAX_SERIES) {
    if (!phase_start_ns) phase_start_ns = now_ns() - 1000000000ull;
    series.t[series.n] = (double)(now_ns() - phase_start_ns) / 1e9;
    series.deliveries[series.n++] = rate;
  }
  fprintf(stderr, "[%5.1fs] %-8s open %u/%u  failed %u  published %llu  deliveries/s %.0f\n", t, phase,
          open_now(), opt.conns, failed_now(), (unsigned long long)published_total(), rate);
}

/* Sleeps `seconds`, printing progress every second. */
static void wait_with_progress(double seconds, const char *phase) {
  uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
  while (now_ns() < end) {
    uint64_t left = end - now_ns();
    usleep((useconds_t)((left < 1000000000ull ? left : 1000000000ull) / 1000));
    progress_tick(phase);
  }
}

/* Waits (at most --drain seconds) until no open subscriber lacks anything. */
static void drain(bool skip_slow) {
  uint64_t end = now_ns() + (uint64_t)(opt.drain * 1e9), missing, expected;
  do {
    snapshot(skip_slow, &missing, &expected, NULL);
    if (!missing) return;
    usleep(20000);
  } while (now_ns() < end);
}

/* Waits until every subscriber is open or failed, or until none has got there
 * for 60 s: 15,000 TLS handshakes take longer than that on one bench core, and
 * a stall, not the total, is what says something is wrong. */
static bool connect_all(void) {
  uint64_t stall = 60000000000ull, limit = now_ns() + stall;
  uint64_t last = now_ns();
  unsigned done = 0;
  while (open_now() + failed_now() < opt.conns && now_ns() < limit) {
    if (open_now() + failed_now() > done) {
      done = open_now() + failed_now();
      limit = now_ns() + stall;
    }
    usleep(10000);
    if (now_ns() - last >= 1000000000ull) {
      progress_tick("connect");
      last = now_ns();
    }
  }
  return open_now() == opt.conns;
}

struct step_result {
  double rate, deliveries_per_s, bytes_per_s, p50, p99, p999, max, cpu_per_million;
  double cpu_frac;                            /* server CPU s per second of the phase */
  double cpu_busy_per_million, cpu_busy_frac; /* --server-cpu */
  uint64_t published, missing, delivered;
  bool ok;
};

/* One publishing phase. with_slow: the slow subscribers have stopped reading;
 * they are left out of the loss count and read again as soon as publishing
 * stops (see the slow scenario in main). */
static struct step_result run_publish_phase(double rate, double seconds, bool with_slow) {
  bool skip_slow = with_slow;
  struct step_result r = {.rate = rate};
  struct publisher pb;
  double cpu0 = 0, cpu1 = 0;
  long rss;
  command(CMD_RESET);
  uint64_t missing0, expected0;
  snapshot(skip_slow, &missing0, &expected0, NULL);
  uint64_t pub0 = published_total();
  if (opt.server_pid) proc_stat(opt.server_pid, &cpu0, &rss);
  double busy0 = opt.server_cpu >= 0 ? cpu_busy_s(opt.server_cpu) : 0;
  uint64_t t0 = now_ns();
  if (publisher_start(&pb, rate, seconds) < 0) exit(2);
  wait_with_progress(seconds, "publish");
  atomic_store(&pb.stop, 1);
  publisher_join(&pb);
  if (with_slow) command(CMD_SLOW_RESUME);
  drain(skip_slow);
  double secs = (double)(now_ns() - t0) / 1e9;
  if (opt.server_pid) proc_stat(opt.server_pid, &cpu1, &rss);
  double busy1 = opt.server_cpu >= 0 ? cpu_busy_s(opt.server_cpu) : 0;
  struct totals tt;
  collect(&tt, false);
  const struct stats t = tt.s;
  r.published = published_total() - pub0;
  r.delivered = t.frames;
  r.deliveries_per_s = (double)t.frames / secs;
  r.bytes_per_s = (double)t.bytes / secs;
  r.max = (double)t.lat.max / 1e6;
  r.p50 = (double)rc_hist_quantile(&t.lat, 0.5) / 1e6;
  r.p99 = (double)rc_hist_quantile(&t.lat, 0.99) / 1e6;
  r.p999 = (double)rc_hist_quantile(&t.lat, 0.999) / 1e6;
  uint64_t missing1, expected1;
  snapshot(skip_slow, &missing1, &expected1, NULL);
  r.missing = missing1 > missing0 ? missing1 - missing0 : 0;
  r.cpu_per_million = t.frames ? (cpu1 - cpu0) / ((double)t.frames / 1e6) : 0;
  r.cpu_frac = (cpu1 - cpu0) / secs;
  r.cpu_busy_per_million = t.frames ? (busy1 - busy0) / ((double)t.frames / 1e6) : 0;
  r.cpu_busy_frac = (busy1 - busy0) / secs;
  r.ok = r.missing == 0 && t.seq.gaps == 0 && r.p99 <= opt.p99_bound_ms &&
         (rate <= 0 || (double)r.published >= rate * seconds * 0.95);
  return r;
}

struct storm_result {
  double reconnect_s, recover_s; /* from the drop until all are back / all receive; -1: not within the wait */
  uint64_t tls_full, tls_resumed; /* handshakes from the drop until all are back */
  double server_cpu_s;            /* the server's CPU time over the same span (--server-pid) */
};

/* Polls until every subscriber is back (reconnected or failed) and every one
 * has received since, at most twice --duration after the drop at t0. */
static void await_recovery(struct storm_result *r, uint64_t t0) {
  uint64_t limit = t0 + (uint64_t)(opt.duration * 2 * 1e9), full0, resumed0, missing, expected;
  double cpu0 = 0, cpu1 = 0;
  long rss;
  tls_handshakes_now(&full0, &resumed0);
  if (opt.server_pid) proc_stat(opt.server_pid, &cpu0, &rss);
  unsigned unrecovered = opt.conns;
  while (now_ns() < limit) {
    if (r->reconnect_s < 0 && open_now() + failed_now() >= opt.conns) {
      r->reconnect_s = (double)(now_ns() - t0) / 1e9;
      tls_handshakes_now(&r->tls_full, &r->tls_resumed);
      r->tls_full -= full0;
      r->tls_resumed -= resumed0;
      if (opt.server_pid) proc_stat(opt.server_pid, &cpu1, &rss);
      r->server_cpu_s = cpu1 - cpu0;
    }
    snapshot(false, &missing, &expected, &unrecovered);
    if (r->reconnect_s >= 0 && unrecovered == 0) {
      r->recover_s = (double)(now_ns() - t0) / 1e9;
      return;
    }
    usleep(20000);
  }
}

/* Every subscriber drops at once a third into --duration and reconnects (over
 * TLS offering its last session unless --no-resume) while publishing goes on. */
static int run_storm(struct storm_result *r) {
  struct publisher pb;
  if (publisher_start(&pb, opt.rate, opt.duration) < 0) return -1;
  wait_with_progress(opt.duration / 3, "steady");
  uint64_t t0 = now_ns();
  /* The drop itself is the bench's work: the handshakes and the server's CPU
   * are counted from here. */
  command(CMD_STORM_CLOSE);
  command(CMD_RECONNECT);
  await_recovery(r, t0);
  fprintf(stderr, "ringcast-bench: storm: all reconnected after %.2f s, all receiving after %.2f s\n",
          r->reconnect_s, r->recover_s);
  /* Keep publishing to the end of --duration: the recovered streams must hold. */
  double left = (double)(pb.end_ns > now_ns() ? pb.end_ns - now_ns() : 0) / 1e9;
  if (left > 0) wait_with_progress(left, "after");
  atomic_store(&pb.stop, 1);
  publisher_join(&pb);
  drain(false);
  return 0;
}

/* Every subscriber drops at random moments (--churn-every, --churn-down) and
 * connects again, asking since= under --resume, while the publisher runs for
 * --duration; then the ones away come back and every stream drains. back_s:
 * from the end of publishing until all were back (-1: not within the wait). */
static int run_churn(double *back_s) {
  struct publisher pb;
  if (publisher_start(&pb, opt.rate, opt.duration) < 0) return -1;
  command(CMD_CHURN_START);
  wait_with_progress(opt.duration, "churn");
  command(CMD_CHURN_STOP);
  atomic_store(&pb.stop, 1);
  publisher_join(&pb);
  uint64_t t0 = now_ns(), last = t0;
  uint64_t limit = t0 + (uint64_t)((2 * opt.churn_down + 10) * 1e9);
  *back_s = -1;
  while (now_ns() < limit) {
    if (open_now() + failed_now() >= opt.conns) {
      *back_s = (double)(now_ns() - t0) / 1e9;
      break;
    }
    usleep(10000);
    if (now_ns() - last >= 1000000000ull) {
      progress_tick("back");
      last = now_ns();
    }
  }
  drain(false);
  return 0;
}

/* Once the workers have stopped: each topic's streams end at the topic's last
 * number (rc_resume_topic_end), and what a reader lacks of it is silent loss
 * no later message revealed. Adds to t; returns the streams counted. */
static unsigned continuity_end(struct rc_resume_totals *t, bool skip_slow) {
  unsigned *start = calloc(opt.ntopics + 1, sizeof *start);
  struct rc_resume_stream **v = malloc(opt.conns * sizeof *v);
  unsigned streams = 0;
  if (!start || !v) {
    fprintf(stderr, "ringcast-bench: out of memory at the end; the streams' tails are not checked\n");
    goto out;
  }
  /* Grouped by topic: counts, their running sums, then the streams. */
  for (int pass = 0; pass < 2; pass++) {
    for (unsigned i = 0; i < opt.threads; i++) {
      for (unsigned k = 0; k < workers[i].n; k++) {
        struct conn *c = &workers[i].c[k];
        if ((c->state != ST_OPEN && !c->lost) || (skip_slow && c->slow)) continue;
        if (pass == 0) start[c->topic + 1]++;
        else v[start[c->topic]++] = &c->rs;
      }
    }
    if (pass == 0)
      for (unsigned tp = 0; tp < opt.ntopics; tp++) start[tp + 1] += start[tp];
  }
  /* start[tp] now holds the end of topic tp's streams, the start of tp + 1's. */
  for (unsigned tp = 0, from = 0; tp < opt.ntopics; from = start[tp++]) {
    rc_resume_topic_end(v + from, start[tp] - from, t);
    for (unsigned j = from; j < start[tp]; j++) streams += v[j]->anchored;
  }
out:
  free(start);
  free(v);
  return streams;
}

/* ---- options ------------------------------------------------------------------ */

static void usage(FILE *out) {
  fprintf(out,
          "Usage: ringcast-bench [OPTIONS]\n"
          "WebSocket fan-out load generator (io_uring). Subscribers check every message's\n"
          "sequence number; the publisher stamps each payload with its send time.\n\n"
          "Target (templates: {topic} is replaced):\n"
          "  --url URL            subscribe URL (default ws://127.0.0.1:8080/ws?topics={topic})\n"
          "  --sub-message TEXT   text message sent after the handshake, e.g.\n"
          "                       '{\"op\":\"subscribe\",\"topics\":[\"{topic}\"]}'\n"
          "  --publish URL        publish target (default http://127.0.0.1:8080/publish)\n"
          "  --publish-mode M     batch (ringcast POST /publish), single (one POST per message\n"
          "                       to the URL template) or ws (ringcast publish commands)\n"
          "  --tls                speak TLS to the server, subscribers and publisher, whatever\n"
          "                       the URLs say (a wss:// or https:// URL implies it for its side)\n"
          "  --ca FILE            verify the server's certificate against FILE (and its name\n"
          "                       against the URL's host); without it NOTHING is verified\n"
          "  --tls-ciphers LIST   offer these suites, in this order (wolfSSL names, e.g.\n"
          "                       TLS13-CHACHA20-POLY1305-SHA256); default: wolfSSL's\n"
          "  --no-tls-resume      no TLS session resumption: every reconnect is a full handshake\n"
          "                       (by default a slot's reconnect offers its last session);\n"
          "                       --no-resume is the same (an older spelling; not --resume's opposite)\n"
          "  --token TOKEN        send 'Authorization: Bearer TOKEN' with every upgrade and\n"
          "                       publish request\n"
          "Load:\n"
          "  --conns N            subscribers (default 1000)\n"
          "  --topics N|a,b,...   topic count (bench.0 ...) or names (default 1)\n"
          "  --distribution D     one, round-robin (default) or zipf: subscribers per topic\n"
          "  --connect-rate R     new connections per second (default: unlimited, 256 in flight)\n"
          "  --source-ips A-B     127.0.0.x source addresses, past the ephemeral-port limit\n"
          "  --threads T          subscriber threads, one io_uring each (default 1)\n"
          "  --rate R             messages per second over all topics; 0: unlimited (default 100)\n"
          "  --size B             payload bytes (default 128)\n"
          "  --duration S         seconds of load (default 10)\n"
          "Scenario (--scenario):\n"
          "  fanout               steady --rate for --duration (default)\n"
          "  ramp                 --ramp-start, times --ramp-factor every --ramp-step seconds, until\n"
          "                       p99 passes --p99-bound ms or a message is lost (max --ramp-steps)\n"
          "  idle                 connect and hold for --duration; memory per connection\n"
          "  storm                all subscribers drop and reconnect at once mid-run; time to recover\n"
          "  slow                 --slow-fraction of subscribers stop reading; the others' latency\n"
          "  churn                every subscriber drops at random moments and connects again while\n"
          "                       --rate is published for --duration; each topic's stream must hold\n"
          "                       across reconnects (with --resume: every message exactly once)\n"
          "  --churn-every S      mean seconds between one subscriber's drops (exponential; default 5)\n"
          "  --churn-down S       mean seconds it stays away (uniform, 0 to twice it; default 0.5)\n"
          "  --seed N             the churn's random drops (default 1)\n"
          "Resume (ringcast's history, docs/protocol.md):\n"
          "  --resume             every reconnect (storm, churn) asks since=TOPIC:EPOCH:SEQ from\n"
          "                       the epoch of its topic's ack and the last server seq it has, in\n"
          "                       the URL or, with --sub-message, as the command's \"since\" member;\n"
          "                       the publisher's numbering is then checked across reconnects too\n"
          "Results:\n"
          "  --server-pid PID     report the server's CPU per million deliveries and memory\n"
          "  --server-cpu N       also report CPU N's busy time (every task on it, ksoftirqd\n"
          "                       included) per million deliveries: for a server pinned to N\n"
          "  --json FILE          write the results as JSON\n"
          "  --max-loss N         exit 1 when more messages than this were lost (default 0); any\n"
          "                       duplicate, reordering or protocol error exits 1 too\n"
          "  --max-failed N       exit 1 when more connections than this failed (default 0)\n"
          "  --drain S            seconds to wait for stragglers after publishing (default 5)\n");
}

static int parse_src(const char *s) {
  char a[32], b[32];
  const char *dash = strchr(s, '-');
  snprintf(a, sizeof a, "%.*s", dash ? (int)(dash - s) : (int)strlen(s), s);
  snprintf(b, sizeof b, "%s", dash ? dash + 1 : s);
  struct in_addr x, y;
  if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1) return -1;
  for (uint32_t v = ntohl(x.s_addr); v <= ntohl(y.s_addr) && opt.n_src < 64; v++)
    opt.src[opt.n_src++].s_addr = htonl(v);
  return opt.n_src ? 0 : -1;
}

static int bad(const char *flag, const char *value, const char *want) {
  fprintf(stderr, "ringcast-bench: invalid value '%s' for %s: %s\n", value, flag, want);
  return 2;
}

static int parse_args(int argc, char **argv) {
  static const struct option lo[] = {
      {"url", 1, 0, 'u'}, {"sub-message", 1, 0, 'm'}, {"publish", 1, 0, 'p'},
      {"publish-mode", 1, 0, 'M'}, {"conns", 1, 0, 'c'}, {"topics", 1, 0, 'T'},
      {"distribution", 1, 0, 'D'}, {"connect-rate", 1, 0, 'C'}, {"source-ips", 1, 0, 's'},
      {"threads", 1, 0, 'j'}, {"rate", 1, 0, 'r'}, {"size", 1, 0, 'z'}, {"duration", 1, 0, 'd'},
      {"scenario", 1, 0, 'S'}, {"ramp-start", 1, 0, 1}, {"ramp-factor", 1, 0, 2},
      {"ramp-step", 1, 0, 3}, {"p99-bound", 1, 0, 4}, {"ramp-steps", 1, 0, 5},
      {"slow-fraction", 1, 0, 6}, {"server-pid", 1, 0, 'P'}, {"json", 1, 0, 'J'},
      {"max-loss", 1, 0, 7}, {"max-failed", 1, 0, 8}, {"drain", 1, 0, 9},
      {"inject-gap-every", 1, 0, 10}, {"server-cpu", 1, 0, 11}, {"tls", 0, 0, 12}, {"ca", 1, 0, 13},
      {"no-resume", 0, 0, 14}, {"no-tls-resume", 0, 0, 14}, {"token", 1, 0, 15}, {"tls-ciphers", 1, 0, 16},
      {"resume", 0, 0, 17}, {"churn-every", 1, 0, 18}, {"churn-down", 1, 0, 19}, {"seed", 1, 0, 20},
      {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  int o;
  char *end;
  while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (o) {
    case 'u': snprintf(opt.url, sizeof opt.url, "%s", optarg); break;
    case 'm': snprintf(opt.sub_message, sizeof opt.sub_message, "%s", optarg); break;
    case 'p': snprintf(opt.publish, sizeof opt.publish, "%s", optarg); break;
    case 'M':
      opt.pub_mode_set = true;
      if (!strcmp(optarg, "batch")) opt.pub_mode = PUB_BATCH;
      else if (!strcmp(optarg, "single")) opt.pub_mode = PUB_SINGLE;
      else if (!strcmp(optarg, "ws")) opt.pub_mode = PUB_WS;
      else return bad("--publish-mode", optarg, "batch, single or ws");
      break;
    case 'c':
      opt.conns = (unsigned)strtoul(optarg, &end, 10);
      if (*end || !opt.conns) return bad("--conns", optarg, "a positive number");
      break;
    case 'T':
      if (strchr(optarg, ',') || !isdigit((unsigned char)optarg[0])) {
        opt.ntopics = 0;
        for (char *tok = strtok(optarg, ","); tok && opt.ntopics < MAX_TOPICS; tok = strtok(NULL, ","))
          snprintf(opt.topics[opt.ntopics++], 129, "%s", tok);
      } else {
        opt.ntopics = (unsigned)strtoul(optarg, &end, 10);
        if (*end || !opt.ntopics || opt.ntopics > MAX_TOPICS) return bad("--topics", optarg, "1 to 1024, or a list");
        for (unsigned t = 0; t < opt.ntopics; t++) snprintf(opt.topics[t], 129, "bench.%u", t);
      }
      break;
    case 'D':
      if (!strcmp(optarg, "one")) opt.dist = DIST_ONE;
      else if (!strcmp(optarg, "round-robin")) opt.dist = DIST_RR;
      else if (!strcmp(optarg, "zipf")) opt.dist = DIST_ZIPF;
      else return bad("--distribution", optarg, "one, round-robin or zipf");
      break;
    case 'C': opt.connect_rate = atof(optarg); break;
    case 's': if (parse_src(optarg) < 0) return bad("--source-ips", optarg, "A.B.C.D-A.B.C.E"); break;
    case 'j':
      opt.threads = (unsigned)strtoul(optarg, &end, 10);
      if (*end || !opt.threads || opt.threads > MAX_THREADS) return bad("--threads", optarg, "1 to 16");
      break;
    case 'r': opt.rate = strtod(optarg, &end); if (*end || opt.rate < 0) return bad("--rate", optarg, "messages per second, 0 for unlimited"); break;
    case 'z':
      opt.size = (unsigned)strtoul(optarg, &end, 10);
      if (*end || opt.size < 48 || opt.size > (1u << 20)) return bad("--size", optarg, "48 to 1048576 bytes (room for the sequence number and timestamp)");
      break;
    case 'd': opt.duration = strtod(optarg, &end); if (*end || opt.duration <= 0) return bad("--duration", optarg, "seconds"); break;
    case 'S': {
      bool ok = false;
      for (unsigned i = 0; i < SCENARIOS; i++)
        if (!strcmp(optarg, scenario_names[i])) opt.scenario = (enum scenario)i, ok = true;
      if (!ok) return bad("--scenario", optarg, "fanout, ramp, idle, storm, slow or churn");
      break;
    }
    case 1: opt.ramp_start = atof(optarg); break;
    case 2: opt.ramp_factor = atof(optarg); break;
    case 3: opt.ramp_step = atof(optarg); break;
    case 4: opt.p99_bound_ms = atof(optarg); break;
    case 5: opt.ramp_steps = (unsigned)atoi(optarg); break;
    case 6:
      opt.slow_fraction = atof(optarg);
      if (opt.slow_fraction <= 0 || opt.slow_fraction >= 1) return bad("--slow-fraction", optarg, "between 0 and 1");
      break;
    case 'P': opt.server_pid = atoi(optarg); break;
    case 'J': snprintf(opt.json, sizeof opt.json, "%s", optarg); break;
    case 7: opt.max_loss = strtoull(optarg, NULL, 10); break;
    case 8: opt.max_failed = strtoull(optarg, NULL, 10); break;
    case 9: opt.drain = atof(optarg); break;
    case 10: opt.inject_gap_every = strtoull(optarg, NULL, 10); break;
    case 11:
      opt.server_cpu = (int)strtol(optarg, &end, 10);
      if (*end || opt.server_cpu < 0) return bad("--server-cpu", optarg, "a CPU number");
      break;
    case 12: opt.tls = true; break;
    case 13:
      if (strlen(optarg) >= sizeof opt.ca) return bad("--ca", optarg, "a shorter path");
      snprintf(opt.ca, sizeof opt.ca, "%s", optarg);
      break;
    case 14: opt.no_tls_resume = true; break;
    case 16:
      if (strlen(optarg) >= sizeof opt.ciphers) return bad("--tls-ciphers", optarg, "a shorter list");
      snprintf(opt.ciphers, sizeof opt.ciphers, "%s", optarg);
      break;
    case 15:
      /* Bounded so it fits every request head (see add_auth); no CR, LF or
       * other control byte can smuggle in a header. */
      if (!*optarg || strlen(optarg) > 1024) return bad("--token", optarg, "1 to 1024 characters");
      for (const char *q = optarg; *q; q++)
        if ((unsigned char)*q < 0x21 || *q == 0x7f) return bad("--token", optarg, "printable characters, no spaces");
      snprintf(opt.auth, sizeof opt.auth, "Authorization: Bearer %s\r\n", optarg);
      break;
    case 17: opt.resume = true; break;
    case 18:
      opt.churn_every = strtod(optarg, &end);
      if (*end || !(opt.churn_every > 0)) return bad("--churn-every", optarg, "seconds, more than 0");
      break;
    case 19:
      opt.churn_down = strtod(optarg, &end);
      if (*end || !(opt.churn_down >= 0)) return bad("--churn-down", optarg, "seconds, 0 or more");
      break;
    case 20:
      opt.seed = strtoull(optarg, &end, 10);
      if (*end || !*optarg) return bad("--seed", optarg, "a number");
      break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) return bad("arguments", argv[optind], "no positional arguments");
  if (opt.ntopics == 1 && !opt.topics[0][0]) snprintf(opt.topics[0], 129, "bench.0");
  if (!opt.pub_mode_set) {
    size_t n = strlen(opt.publish);
    opt.pub_mode = !strncmp(opt.publish, "ws://", 5) || !strncmp(opt.publish, "wss://", 6) ? PUB_WS
                   : (n >= 8 && !strcmp(opt.publish + n - 8, "/publish")) ? PUB_BATCH
                                                                          : PUB_SINGLE;
  }
  return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static unsigned pick_topic(unsigned i, uint64_t *rng, const double *cdf) {
  switch (opt.dist) {
  case DIST_ONE: return 0;
  case DIST_RR: return i % opt.ntopics;
  default: {
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(*rng >> 11) / 9007199254740992.0;
    unsigned t = 0;
    while (t + 1 < opt.ntopics && cdf[t] < u) t++;
    return t;
  }
  }
}

/* The server's numbering, when it sent any (acks or numbered messages). */
static void print_continuity(const struct stats *t, const struct rc_resume_totals *c, unsigned streams) {
  if (!streams && !c->acks && !t->reconnects) return;
  printf("  server seq: %u streams, %llu reconnects (%llu asked since=%s), %llu resumed, %llu not recovered, "
         "%llu dropped before their ack, %llu replayed\n",
         streams, (unsigned long long)t->reconnects, (unsigned long long)t->since_asked,
         opt.resume ? "" : "; no --resume", (unsigned long long)c->recovered,
         (unsigned long long)c->not_recovered, (unsigned long long)t->since_unanswered,
         (unsigned long long)c->replayed);
  printf("  server seq: lost %llu (silent %llu, announced %llu in %llu gap messages, %llu conflated), "
         "epoch changes %llu, duplicates %llu, reorders %llu, protocol errors %llu, heartbeats %llu\n",
         (unsigned long long)rc_resume_lost(c), (unsigned long long)c->lost_silent,
         (unsigned long long)c->lost_announced, (unsigned long long)c->gap_messages,
         (unsigned long long)c->conflated_gaps, (unsigned long long)c->epoch_changes,
         (unsigned long long)c->duplicates, (unsigned long long)c->reorders,
         (unsigned long long)c->protocol_errors, (unsigned long long)c->heartbeats);
  if (c->epoch_changes)
    printf("  NOTE: %llu resumes found their topic in a new epoch: the server forgot it (restarted, or let the\n"
           "  topic go) while it had subscribers coming back; what the old epoch held is lost, in unknown\n"
           "  amount (the publisher's numbering above counts it)\n",
           (unsigned long long)c->epoch_changes);
  if (opt.resume && t->since_unavailable)
    printf("  NOTE: %llu reconnects could not ask since= (no epoch known: the server sent no ack with one)\n",
           (unsigned long long)t->since_unavailable);
}

static void json_continuity(FILE *f, const struct stats *t, const struct rc_resume_totals *c, unsigned streams,
                            double churn_back_s) {
  fprintf(f, "  \"resume\": %s, \"churn_every_s\": %.3f, \"churn_down_s\": %.3f, \"seed\": %llu,"
             " \"churn_drops\": %llu, \"churn_back_s\": %.3f,\n",
          opt.resume ? "true" : "false", opt.churn_every, opt.churn_down, (unsigned long long)opt.seed,
          (unsigned long long)t->churn_drops, churn_back_s);
  fprintf(f, "  \"continuity\": {\"streams\": %u, \"reconnects\": %llu, \"since_asked\": %llu,"
             " \"since_unavailable\": %llu, \"since_unanswered\": %llu, \"acks\": %llu, \"recovered\": %llu, \"not_recovered\": %llu,"
             " \"received\": %llu, \"replayed\": %llu, \"lost\": %llu, \"lost_silent\": %llu,"
             " \"lost_announced\": %llu, \"gap_messages\": %llu, \"conflated_gaps\": %llu,"
             " \"epoch_changes\": %llu, \"duplicates\": %llu, \"reorders\": %llu, \"protocol_errors\": %llu,"
             " \"heartbeats\": %llu},\n",
          streams, (unsigned long long)t->reconnects, (unsigned long long)t->since_asked,
          (unsigned long long)t->since_unavailable, (unsigned long long)t->since_unanswered,
          (unsigned long long)c->acks,
          (unsigned long long)c->recovered, (unsigned long long)c->not_recovered,
          (unsigned long long)c->received, (unsigned long long)c->replayed,
          (unsigned long long)rc_resume_lost(c), (unsigned long long)c->lost_silent,
          (unsigned long long)c->lost_announced, (unsigned long long)c->gap_messages,
          (unsigned long long)c->conflated_gaps, (unsigned long long)c->epoch_changes,
          (unsigned long long)c->duplicates, (unsigned long long)c->reorders,
          (unsigned long long)c->protocol_errors, (unsigned long long)c->heartbeats);
}

static void print_storm(const struct storm_result *r) {
  printf("  storm: reconnected in %.2f s, all receiving again in %.2f s\n", r->reconnect_s, r->recover_s);
  if (!sub_tls || r->reconnect_s <= 0) return;
  uint64_t all = r->tls_full + r->tls_resumed;
  printf("  storm TLS: %llu full + %llu resumed handshakes, %.0f handshakes/s until all were back",
         (unsigned long long)r->tls_full, (unsigned long long)r->tls_resumed, (double)all / r->reconnect_s);
  if (opt.server_pid && r->server_cpu_s > 0)
    printf("; server %.2f CPU s: %.0f handshakes per server CPU second", r->server_cpu_s,
           (double)all / r->server_cpu_s);
  printf("\n");
}

/* The TLS figures: whole-run handshakes, and the storm's (zero when none). */
static void json_tls(FILE *f, const struct storm_result *r) {
  uint64_t full, resumed;
  tls_handshakes_now(&full, &resumed);
  double all = (double)(r->tls_full + r->tls_resumed);
  fprintf(f, "  \"tls\": %s, \"tls_verified\": %s, \"tls_resume\": %s, \"tls_full\": %llu, \"tls_resumed\": %llu,\n",
          sub_tls ? "true" : "false", opt.ca[0] ? "true" : "false", opt.no_tls_resume ? "false" : "true",
          (unsigned long long)full, (unsigned long long)resumed);
  fprintf(f, "  \"storm_tls_full\": %llu, \"storm_tls_resumed\": %llu, \"storm_handshakes_per_s\": %.1f,"
             " \"storm_server_cpu_s\": %.3f, \"storm_handshakes_per_cpu_s\": %.1f,\n",
          (unsigned long long)r->tls_full, (unsigned long long)r->tls_resumed,
          r->reconnect_s > 0 ? all / r->reconnect_s : 0, r->server_cpu_s,
          r->server_cpu_s > 0 ? all / r->server_cpu_s : 0);
}

static void json_hist(FILE *f, const char *name, const struct rc_hist *h, bool comma) {
  fprintf(f, "  \"%s\": {\"count\": %llu, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f}%s\n",
          name, (unsigned long long)h->count, (double)rc_hist_quantile(h, 0.5) / 1e6,
          (double)rc_hist_quantile(h, 0.9) / 1e6, (double)rc_hist_quantile(h, 0.99) / 1e6,
          (double)rc_hist_quantile(h, 0.999) / 1e6, (double)h->max / 1e6, comma ? "," : "");
}

/* The subscribers' TLS context (over wss:// or with --tls) and the publisher's
 * (https://, wss:// or --tls). 0, or 2 when one cannot be made. */
static int make_tls_contexts(const struct rc_url *sub) {
  struct rc_url pu;
  char err[256];
  if (rc_url_parse(opt.publish, &pu) < 0) return bad("--publish", opt.publish, "http(s):// or ws(s)://HOST:PORT/PATH");
  struct rc_tls_client_config cfg = {.ca_file = opt.ca[0] ? opt.ca : NULL, .host = sub->host,
                                     .ciphers = opt.ciphers[0] ? opt.ciphers : NULL,
                                     .resume = !opt.no_tls_resume, .memory_io = true};
  if ((opt.tls || sub->tls) && rc_tls_client_ctx_create(&cfg, &sub_tls, err, sizeof err) < 0) {
    fprintf(stderr, "ringcast-bench: subscribers' TLS: %s\n", err);
    return 2;
  }
  cfg.host = pu.host;
  cfg.resume = false; /* one connection per phase: nothing worth resuming */
  cfg.memory_io = false;
  if ((opt.tls || pu.tls) && rc_tls_client_ctx_create(&cfg, &pub_tls, err, sizeof err) < 0) {
    fprintf(stderr, "ringcast-bench: publisher's TLS: %s\n", err);
    return 2;
  }
  if (opt.ca[0] && !sub_tls && !pub_tls)
    fprintf(stderr, "ringcast-bench: --ca is unused: no URL is wss:// or https:// and --tls is not given\n");
  return 0;
}

int main(int argc, char **argv) {
  int ret = parse_args(argc, argv);
  if (ret) return ret;
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  unsigned per_thread = (opt.conns + opt.threads - 1) / opt.threads;
  if (per_thread > rl.rlim_cur) {
    fprintf(stderr, "ringcast-bench: %u connections per thread exceed RLIMIT_NOFILE %lu (each ring's "
                    "direct-descriptor table is bounded by it); add --threads\n",
            per_thread, (unsigned long)rl.rlim_cur);
    return 2;
  }
  /* Resolve the first topic's URL; every topic shares host and port. */
  char url0[2048];
  build_from_template(url0, sizeof url0, opt.url, opt.topics[0]);
  struct rc_url u;
  if (rc_url_parse(url0, &u) < 0) return bad("--url", opt.url, "ws:// or wss://HOST:PORT/PATH");
  if (rc_url_resolve(&u, &dst, &dst_len) < 0) return bad("--url", opt.url, "a resolvable host");
  if ((ret = make_tls_contexts(&u)) != 0) return ret;
  /* One key for all connections keeps the requests static; fine for a load tool. */
  char scratch[4096];
  rc_client_upgrade_request(&u, scratch, sizeof scratch, accept_key);
  const char *key_line = strstr(scratch, "Sec-WebSocket-Key: ");
  char key[32] = "";
  if (key_line) sscanf(key_line + 19, "%31[^\r]", key);
  for (unsigned t = 0; t < opt.ntopics; t++) {
    char full[2048];
    build_from_template(full, sizeof full, opt.url, opt.topics[t]);
    struct rc_url tu;
    if (rc_url_parse(full, &tu) < 0) return bad("--url", full, "ws:// or wss://HOST:PORT/PATH");
    topic_req[t] = malloc(4096);
    topic_req_len[t] = (size_t)snprintf(topic_req[t], 4096,
        "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n", tu.path, tu.host, tu.port, key, opt.auth);
    topic_path_end[t] = 4 + strlen(tu.path);
    if (opt.sub_message[0]) {
      char msg[1024];
      build_from_template(msg, sizeof msg, opt.sub_message, opt.topics[t]);
      sub_text[t] = strdup(msg);
      char probe[sizeof msg + SINCE_ROOM];
      struct rc_since one = {.topic = opt.topics[t], .epoch = "0", .seq = 0};
      if (opt.resume && rc_resume_command_with_since(probe, sizeof probe, msg, strlen(msg), &one, 1) < 0)
        return bad("--sub-message", msg, "a JSON object, to which --resume adds \"since\"");
      sub_frame[t] = malloc(strlen(msg) + 16);
      sub_frame_len[t] = rc_client_frame(sub_frame[t], RC_WS_OP_TEXT, msg, strlen(msg));
    }
  }
  double *cdf = calloc(opt.ntopics, sizeof *cdf), norm = 0;
  for (unsigned t = 0; t < opt.ntopics; t++) norm += 1.0 / (t + 1);
  for (unsigned t = 0; t < opt.ntopics; t++) cdf[t] = (t ? cdf[t - 1] : 0) + 1.0 / (t + 1) / norm;
  uint64_t rng = 42;
  unsigned slow_every = opt.scenario == SC_SLOW ? (unsigned)(1.0 / opt.slow_fraction + 0.5) : 0;

  double server_cpu0 = 0;
  long rss0 = 0, rss_after_connect = 0;
  if (opt.server_pid) proc_stat(opt.server_pid, &server_cpu0, &rss0);
  run_start_ns = now_ns();
  for (unsigned i = 0; i < opt.threads; i++) {
    struct worker *w = &workers[i];
    w->id = i;
    w->n = (opt.conns - i + opt.threads - 1) / opt.threads;
    w->c = calloc(w->n, sizeof *w->c);
    w->rearm = calloc(w->n, sizeof *w->rearm);
    for (unsigned k = 0; k < w->n; k++) {
      unsigned global = i + k * opt.threads;
      w->c[k].topic = (uint16_t)pick_topic(global, &rng, cdf);
      w->c[k].slow = slow_every && global % slow_every == 0;
      w->c[k].rng = opt.seed * 0x9e3779b97f4a7c15ull + global;
    }
    rc_hist_init(&w->st.lat);
    rc_hist_init(&w->st.connect);
    w->connecting = true;
    w->connect_interval_ns = opt.connect_rate > 0 ? (uint64_t)(1e9 * opt.threads / opt.connect_rate) : 0;
    pthread_create(&w->thread, NULL, worker_main, w);
  }
  (void)connect_all(); /* failures are counted and reported below */
  double connect_s = (double)(now_ns() - run_start_ns) / 1e9;
  /* Connections still in the handshake when connecting timed out count as failed. */
  unsigned stuck = opt.conns - open_now() - failed_now();
  if (stuck) fprintf(stderr, "ringcast-bench: %u connections did not complete their handshake in time\n", stuck);
  struct totals ct;
  collect(&ct, false);
  fprintf(stderr, "ringcast-bench: %u connected, %u failed in %.2f s\n", open_now(), failed_now(), connect_s);
  usleep(300000); /* let subscriptions settle on every shard */
  if (opt.server_pid) proc_stat(opt.server_pid, &server_cpu0, &rss_after_connect);

  struct step_result steps[32];
  unsigned nsteps = 0;
  struct storm_result storm = {.reconnect_s = -1, .recover_s = -1};
  unsigned slow_stopped = 0, slow_still_open = 0;
  double churn_back_s = -1;
  double wall0 = (double)now_ns() / 1e9;
  switch (opt.scenario) {
  case SC_IDLE:
    wait_with_progress(opt.duration, "idle");
    break;
  case SC_FANOUT:
    steps[nsteps++] = run_publish_phase(opt.rate, opt.duration, false);
    break;
  case SC_SLOW:
    /* First everyone reads (the baseline), then the slow ones stop: the others'
     * latency in the two phases shows whether the slow ones cost them anything. */
    steps[nsteps++] = run_publish_phase(opt.rate, opt.duration / 2, false);
    command(CMD_SLOW_STOP);
    slow_stopped = slow_open_now();
    /* The server closes a slow subscriber once its queue passes --max-queue,
     * then gives it a grace period (ringcast: 3 s from the close) to read the
     * rest and the close frame. The phase resumes the slow ones the moment
     * publishing stops, before waiting for the readers, so they read within
     * that window however long the readers take to catch up. */
    steps[nsteps++] = run_publish_phase(opt.rate, opt.duration / 2, true);
    {
      uint64_t limit = now_ns() + (uint64_t)(SLOW_CLOSE_WAIT_S * 1e9);
      while (slow_open_now() && now_ns() < limit) usleep(10000);
      slow_still_open = slow_open_now();
    }
    command(CMD_NONE);
    break;
  case SC_RAMP: {
    double rate = opt.ramp_start;
    for (unsigned i = 0; i < opt.ramp_steps && nsteps < 32; i++, rate *= opt.ramp_factor) {
      steps[nsteps] = run_publish_phase(rate, opt.ramp_step, false);
      fprintf(stderr, "ringcast-bench: step %.0f msg/s: %.0f deliveries/s, p99 %.2f ms, missing %llu%s\n",
              rate, steps[nsteps].deliveries_per_s, steps[nsteps].p99,
              (unsigned long long)steps[nsteps].missing, steps[nsteps].ok ? "" : " (over the bound)");
      if (!steps[nsteps++].ok) break;
    }
    break;
  }
  case SC_STORM:
    if (run_storm(&storm) < 0) return 2;
    break;
  case SC_CHURN:
    if (run_churn(&churn_back_s) < 0) return 2;
    break;
  }
  double wall = (double)now_ns() / 1e9 - wall0;
  double server_cpu1 = 0;
  long rss1 = 0;
  if (opt.server_pid) proc_stat(opt.server_pid, &server_cpu1, &rss1);
  uint64_t missing = 0, expected = 0;
  snapshot(opt.scenario == SC_SLOW, &missing, &expected, NULL);
  double max_thread_cpu = 0;
  for (unsigned i = 0; i < opt.threads; i++) {
    double c = thread_cpu_s(workers[i].thread);
    if (c > max_thread_cpu) max_thread_cpu = c;
  }
  double total_wall = (double)(now_ns() - run_start_ns) / 1e9;
  bool saturated = max_thread_cpu > 0.9 * total_wall;
  command(CMD_STOP);
  for (unsigned i = 0; i < opt.threads; i++) pthread_join(workers[i].thread, NULL);
  struct totals tt;
  collect(&tt, true);
  struct rc_resume_totals cont = tt.s.cont;
  unsigned streams = continuity_end(&cont, opt.scenario == SC_SLOW);
  const struct stats t = tt.s;
  uint64_t pub = published_total();
  /* Per connection held right after connecting (later closes do not change it). */
  double rss_per_conn = opt.server_pid && ct.open ? (double)(rss_after_connect - rss0) * 1024.0 / (double)ct.open : 0;

  /* Human summary. */
  unsigned failed_total = failed_now() + stuck;
  printf("\nringcast-bench %s: %u subscribers (%u failed) over %u topic(s), %u-byte payloads\n",
         scenario_names[opt.scenario], opt.conns, failed_total, opt.ntopics, opt.size);
  printf("  connect: %.2f s, p50 %.2f ms, p99 %.2f ms\n", connect_s,
         (double)rc_hist_quantile(&ct.s.connect, 0.5) / 1e6, (double)rc_hist_quantile(&ct.s.connect, 0.99) / 1e6);
  if (nsteps) {
    printf("  %-9s %8s %10s %13s %9s %8s %8s %9s %9s %8s %9s\n", "phase", "rate/s", "published",
           "deliveries/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "missing", "cpu s/M");
    for (unsigned i = 0; i < nsteps; i++) {
      const char *phase = opt.scenario == SC_SLOW ? (i == 0 ? "baseline" : "with-slow")
                          : opt.scenario == SC_RAMP ? "step" : "steady";
      printf("  %-9s %8.0f %10llu %13.0f %9.2f %8.2f %8.2f %9.2f %9.2f %8llu %9.3f%s\n", phase,
             steps[i].rate, (unsigned long long)steps[i].published, steps[i].deliveries_per_s,
             steps[i].bytes_per_s / 1e6, steps[i].p50, steps[i].p99, steps[i].p999, steps[i].max,
             (unsigned long long)steps[i].missing, steps[i].cpu_per_million,
             opt.scenario != SC_RAMP || steps[i].ok ? "" : "  <- over the bound");
    }
    if (opt.server_cpu >= 0)
      for (unsigned i = 0; i < nsteps; i++)
        printf("  CPU %d busy (every task, ksoftirqd included): %.3f s per million deliveries, %.1f%%"
               " (server process: %.1f%%)\n", opt.server_cpu, steps[i].cpu_busy_per_million,
               100 * steps[i].cpu_busy_frac, 100 * steps[i].cpu_frac);
  }
  double best = 0;
  for (unsigned i = 0; i < nsteps; i++)
    if (steps[i].ok && steps[i].deliveries_per_s > best) best = steps[i].deliveries_per_s;
  if (opt.scenario == SC_RAMP) printf("  highest sustainable: %.0f deliveries/s (p99 <= %.0f ms, no loss)\n", best, opt.p99_bound_ms);
  printf("  messages published %llu, frames delivered %llu, missing %llu, gaps %llu, duplicates %llu, reordered %llu\n",
         (unsigned long long)pub, (unsigned long long)t.frames, (unsigned long long)missing,
         (unsigned long long)t.seq.gaps, (unsigned long long)t.seq.duplicates, (unsigned long long)t.seq.reorders);
  printf("  closed by the server: %llu\n", (unsigned long long)t.closed_by_server);
  uint64_t slow_closed = t.slow_closed_1008 + t.slow_closed;
  unsigned slow_count = slow_every ? (opt.conns + slow_every - 1) / slow_every : 0;
  if (opt.scenario == SC_SLOW) {
    printf("  slow subscribers: %u (%u stopped reading), closed by the server: %llu (with 1008: %llu), "
           "frames they read after resuming: %llu\n", slow_count, slow_stopped,
           (unsigned long long)slow_closed, (unsigned long long)t.slow_closed_1008,
           (unsigned long long)t.slow_frames);
    if (slow_still_open)
      printf("  %u slow subscribers were still open %.0f s after they read again: the server's queue for\n"
             "  them never passed --max-queue during the with-slow phase (publish more: --duration, --size)\n",
             slow_still_open, SLOW_CLOSE_WAIT_S);
  }
  if (opt.scenario == SC_STORM) print_storm(&storm);
  if (opt.scenario == SC_CHURN)
    printf("  churn: %llu drops (one a subscriber every %.1f s on average, away %.2f s on average); "
           "all back %.2f s after publishing ended\n",
           (unsigned long long)t.churn_drops, opt.churn_every, opt.churn_down, churn_back_s);
  print_continuity(&t, &cont, streams);
  if (sub_tls) {
    uint64_t full, resumed;
    tls_handshakes_now(&full, &resumed);
    printf("  TLS handshakes (whole run): %llu full, %llu resumed%s%s\n", (unsigned long long)full,
           (unsigned long long)resumed, opt.no_tls_resume ? " (--no-resume)" : "",
           opt.ca[0] ? "" : "; the server's certificate was not verified (no --ca)");
  }
  if (opt.server_pid) {
    printf("  server: %.2f CPU s over %.1f s", server_cpu1 - server_cpu0, wall);
    if (t.frames) printf(", %.3f CPU s per million deliveries", (server_cpu1 - server_cpu0) / ((double)t.frames / 1e6));
    printf(", RSS %ld KiB, %.0f bytes per connection\n", rss1, rss_per_conn);
  }
  if (saturated) printf("  NOTE: a bench thread was busy >90%% of the run: figures are lower bounds; add --threads\n");

  if (opt.json[0]) {
    FILE *f = fopen(opt.json, "w");
    if (!f) {
      fprintf(stderr, "ringcast-bench: cannot write %s: %s\n", opt.json, strerror(errno));
      return 2;
    }
    fprintf(f, "{\n  \"scenario\": \"%s\", \"conns\": %u, \"topics\": %u, \"size\": %u, \"threads\": %u,\n",
            scenario_names[opt.scenario], opt.conns, opt.ntopics, opt.size, opt.threads);
    fprintf(f, "  \"publish_mode\": \"%s\", \"rate\": %.1f, \"duration\": %.1f,\n", pub_mode_names[opt.pub_mode], opt.rate, opt.duration);
    fprintf(f, "  \"connected\": %u, \"failed\": %u, \"connect_s\": %.3f,\n", (unsigned)ct.open, failed_total, connect_s);
    fprintf(f, "  \"published\": %llu, \"delivered\": %llu, \"bytes\": %llu, \"missing\": %llu, \"gaps\": %llu, \"duplicates\": %llu, \"reorders\": %llu,\n",
            (unsigned long long)pub, (unsigned long long)t.frames, (unsigned long long)t.bytes, (unsigned long long)missing,
            (unsigned long long)t.seq.gaps, (unsigned long long)t.seq.duplicates, (unsigned long long)t.seq.reorders);
    fprintf(f, "  \"closed_by_server\": %llu, \"slow_closed\": %llu, \"saturated\": %s,\n",
            (unsigned long long)t.closed_by_server, (unsigned long long)slow_closed, saturated ? "true" : "false");
    fprintf(f, "  \"slow_subscribers\": %u, \"slow_stopped\": %u, \"slow_closed_1008\": %llu, \"slow_still_open\": %u, \"slow_delivered\": %llu,\n",
            slow_count, slow_stopped, (unsigned long long)t.slow_closed_1008, slow_still_open,
            (unsigned long long)t.slow_frames);
    fprintf(f, "  \"server_cpu_s\": %.3f, \"server_rss_kb\": %ld, \"rss_per_conn_bytes\": %.0f,\n",
            server_cpu1 - server_cpu0, rss1, rss_per_conn);
    fprintf(f, "  \"storm_reconnect_s\": %.3f, \"storm_recover_s\": %.3f, \"highest_sustainable_per_s\": %.0f,\n",
            storm.reconnect_s, storm.recover_s, best);
    json_tls(f, &storm);
    json_continuity(f, &t, &cont, streams, churn_back_s);
    json_hist(f, "latency_ms", &t.lat, true);
    json_hist(f, "connect_ms", &ct.s.connect, true);
    fprintf(f, "  \"steps\": [");
    for (unsigned i = 0; i < nsteps; i++)
      fprintf(f, "%s\n    {\"rate\": %.1f, \"published\": %llu, \"delivered\": %llu, \"deliveries_per_s\": %.0f, \"bytes_per_s\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f, \"missing\": %llu, \"cpu_s_per_million\": %.4f, \"server_cpu_frac\": %.4f, \"cpu_busy_s_per_million\": %.4f, \"cpu_busy_frac\": %.4f, \"ok\": %s}",
              i ? "," : "", steps[i].rate, (unsigned long long)steps[i].published,
              (unsigned long long)steps[i].delivered, steps[i].deliveries_per_s,
              steps[i].bytes_per_s, steps[i].p50, steps[i].p99, steps[i].p999, steps[i].max,
              (unsigned long long)steps[i].missing,
              steps[i].cpu_per_million, steps[i].cpu_frac, steps[i].cpu_busy_per_million,
              steps[i].cpu_busy_frac, steps[i].ok ? "true" : "false");
    fprintf(f, "\n  ],\n  \"series\": [");
    for (unsigned i = 0; i < series.n; i++)
      fprintf(f, "%s[%.2f, %.0f]", i ? ", " : "", series.t[i], series.deliveries[i]);
    fprintf(f, "]\n}\n");
    fclose(f);
  }
  /* Loss up to --max-loss, of either numbering; a duplicate, a reordering or a
   * broken protocol never; nor, with no loss allowed, a forgotten epoch (loss
   * whose amount the server's numbering cannot tell). */
  bool fail = missing > opt.max_loss || t.seq.gaps > opt.max_loss || failed_total > opt.max_failed ||
              rc_resume_lost(&cont) > opt.max_loss || t.seq.duplicates || t.seq.reorders ||
              cont.duplicates || cont.reorders || cont.protocol_errors ||
              (cont.epoch_changes && opt.max_loss == 0);
  for (unsigned i = 0; i < opt.threads; i++) {
    for (unsigned k = 0; k < workers[i].n; k++) {
      free(workers[i].c[k].carry);
      free(workers[i].c[k].req);
      free(workers[i].c[k].sub);
      rc_tls_client_fini(&workers[i].c[k].tls); /* the ring is gone: no send is in flight */
    }
    free(workers[i].c);
    free(workers[i].rearm);
    free(workers[i].bufs);
    free(workers[i].br);
  }
  for (unsigned tp = 0; tp < opt.ntopics; tp++) {
    free(topic_req[tp]);
    free(sub_frame[tp]);
    free(sub_text[tp]);
  }
  free(cdf);
  rc_tls_client_ctx_destroy(sub_tls);
  rc_tls_client_ctx_destroy(pub_tls);
  if (missing && !t.seq.gaps && !t.closed_by_server)
    printf("  %llu deliveries had not arrived after --drain %.0f s, with no gap and no connection closed:\n"
           "  still queued at the server rather than dropped; a longer --drain tells\n",
           (unsigned long long)missing, opt.drain);
  if (fail) printf("  FAILED: loss or failed connections beyond --max-loss %llu / --max-failed %llu, or a"
                   " duplicate, a reordering or a protocol error\n",
                   (unsigned long long)opt.max_loss, (unsigned long long)opt.max_failed);
  return fail ? 1 : 0;
}
