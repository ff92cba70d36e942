/* SPDX-License-Identifier: MIT */
/* Ring set-up and the SQE/CQE plumbing every io module shares. */
#include "ringcast/io/ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/util/log.h"

int rc_ring_init(struct rc_ring *r, unsigned sq_entries, unsigned cq_entries, char *err,
                 size_t err_size) {
  memset(r, 0, sizeof *r);
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* SINGLE_ISSUER (6.0) + DEFER_TASKRUN (6.1): completions run only when this
   * thread waits, with no IPIs. TASKRUN_FLAG lets liburing see deferred work.
   * SUBMIT_ALL (5.18): one bad SQE does not stop the batch. CQSIZE: bursts of
   * multishot completions must not overflow the CQ. */
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  p.cq_entries = cq_entries;
  int ret = io_uring_queue_init_params(sq_entries, &r->ring, &p);
  r->deferred_taskrun = ret == 0;
  if (ret == -EINVAL) {
    rc_warn("io_uring without DEFER_TASKRUN (needs Linux 6.1); using COOP_TASKRUN");
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE |
              IORING_SETUP_CLAMP;
    p.cq_entries = cq_entries;
    ret = io_uring_queue_init_params(sq_entries, &r->ring, &p);
  }
  if (ret < 0) {
    snprintf(err, err_size, "io_uring_queue_init: %s (io_uring disabled by sysctl or seccomp?)",
             strerror(-ret));
    return ret;
  }
  if (!(p.features & IORING_FEAT_NODROP))
    rc_warn("kernel lacks IORING_FEAT_NODROP: completions may be lost on CQ overflow");
  struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
  static const struct { int op; const char *name; } need[] = {
      {IORING_OP_ACCEPT, "accept"}, {IORING_OP_RECV, "recv"}, {IORING_OP_SENDMSG, "sendmsg"},
      {IORING_OP_CLOSE, "close"}, {IORING_OP_ASYNC_CANCEL, "async_cancel"},
      {IORING_OP_READ, "read"}, {IORING_OP_SHUTDOWN, "shutdown"},
      {IORING_OP_CONNECT, "connect"}, {IORING_OP_LINK_TIMEOUT, "link_timeout"},
      {IORING_OP_FILES_UPDATE, "files_update"},
  };
  for (size_t i = 0; probe && i < sizeof need / sizeof need[0]; i++) {
    if (!io_uring_opcode_supported(probe, need[i].op)) {
      snprintf(err, err_size, "kernel io_uring lacks %s; ringcast needs Linux 6.0 or later",
               need[i].name);
      io_uring_free_probe(probe);
      io_uring_queue_exit(&r->ring);
      return -ENOSYS;
    }
  }
  r->has_msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
  if (!r->has_msg_ring) rc_warn("no IORING_OP_MSG_RING (5.18); shards wake each other by eventfd");
  if (probe) io_uring_free_probe(probe);
  r->fd = r->ring.ring_fd;
  (void)io_uring_register_ring_fd(&r->ring); /* an optimisation (5.18); fine if absent */
  return 0;
}

void rc_ring_exit(struct rc_ring *r) {
  io_uring_queue_exit(&r->ring);
  free(r->stash);
  r->stash = NULL;
}

int rc_ring_stash(struct rc_ring *r) {
  unsigned ready = io_uring_cq_ready(&r->ring);
  if (!ready) return 0;
  if (r->stash_head + r->stash_n + ready > r->stash_cap) {
    /* Compact first, then grow. */
    if (r->stash_head && r->stash_n)
      memmove(r->stash, r->stash + r->stash_head, r->stash_n * sizeof *r->stash);
    r->stash_head = 0;
    if (r->stash_n + ready > r->stash_cap) {
      uint32_t cap = r->stash_cap ? r->stash_cap : 256;
      while (cap < r->stash_n + ready) cap *= 2;
      struct io_uring_cqe *s = realloc(r->stash, cap * sizeof *s);
      if (!s) return -ENOMEM;
      r->stash = s;
      r->stash_cap = cap;
    }
  }
  unsigned head, n = 0;
  struct io_uring_cqe *cqe;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    r->stash[r->stash_head + r->stash_n + n] = *cqe;
    if (++n == ready) break;
  }
  io_uring_cq_advance(&r->ring, n);
  r->stash_n += n;
  r->stashed_total += n;
  return (int)n;
}

/* Submits until `want` SQEs are free. */
static void make_room(struct rc_ring *r, unsigned want) {
  while (io_uring_sq_space_left(&r->ring) < want) {
    int ret = io_uring_submit(&r->ring);
    if (ret >= 0 || ret == -EINTR) continue;
    if (ret == -EBUSY || ret == -EAGAIN) {
      /* The kernel holds completions it cannot post (an overflowing CQ) or is
       * short of request memory: make room by reaping into the stash; the loop
       * dispatches them on its next turn, so no handler runs re-entrantly. */
      int n = rc_ring_stash(r);
      if (n > 0) continue;
      if (n == 0) {
        /* Nothing to reap: what blocks is the kernel's own overflow list, which
         * entering with GETEVENTS flushes into the CQ. */
        ret = io_uring_get_events(&r->ring);
        if (ret >= 0 || ret == -EINTR || ret == -EBUSY || ret == -EAGAIN) continue;
      }
      rc_err("io_uring submit: %s, and no room to reap completions into", strerror(-ret));
      abort();
    }
    rc_err("io_uring_submit: %s", strerror(-ret));
    abort();
  }
}

struct io_uring_sqe *rc_ring_get_sqe(struct rc_ring *r) {
  make_room(r, 1);
  return io_uring_get_sqe(&r->ring);
}

void rc_ring_get_sqes(struct rc_ring *r, struct io_uring_sqe **out, unsigned n) {
  make_room(r, n);
  for (unsigned i = 0; i < n; i++) out[i] = io_uring_get_sqe(&r->ring);
}

void rc_ring_submit(struct rc_ring *r) {
  int ret = io_uring_submit(&r->ring);
  if ((ret == -EBUSY || ret == -EAGAIN) && rc_ring_stash(r) > 0) ret = io_uring_submit(&r->ring);
  /* Anything left stays in the SQ for the loop's next submit. */
  if (ret < 0 && ret != -EBUSY && ret != -EAGAIN && ret != -EINTR)
    rc_warn("io_uring submit: %s", strerror(-ret));
}

unsigned rc_ring_reap(struct rc_ring *r, struct io_uring_cqe *out, unsigned max) {
  unsigned n = 0;
  while (n < max && r->stash_n) {
    out[n++] = r->stash[r->stash_head++];
    if (--r->stash_n == 0) r->stash_head = 0;
  }
  if (n == max) return n;
  unsigned head, k = 0;
  struct io_uring_cqe *cqe;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    out[n++] = *cqe;
    k++;
    if (n == max) break;
  }
  io_uring_cq_advance(&r->ring, k);
  return n;
}

bool rc_ring_has_cqe(struct rc_ring *r) { return r->stash_n || io_uring_cq_ready(&r->ring); }
