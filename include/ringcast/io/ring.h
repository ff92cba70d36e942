/* SPDX-License-Identifier: MIT */
/* One io_uring ring as the shard loop uses it: set-up with feature probing and a
 * clear fallback, the one place where user_data is encoded and decoded, an SQE
 * getter that never spins, and completions reaped in batches. Owner thread only. */
#ifndef RINGCAST_IO_RING_H
#define RINGCAST_IO_RING_H

#include <assert.h>
#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* io_uring user_data: [op:8][gen:24][idx:32]. */
enum rc_ring_op {
  RC_RING_OP_ACCEPT = 1,
  RC_RING_OP_RECV,
  RC_RING_OP_SEND,
  RC_RING_OP_CLOSE,
  RC_RING_OP_CANCEL,      /* result ignored: the cancelled op posts its own CQE */
  RC_RING_OP_DOORBELL,    /* a MSG_RING from another shard */
  RC_RING_OP_MSG_SENT,    /* our MSG_RING, only seen on failure */
  RC_RING_OP_EVENTFD,
  RC_RING_OP_SHUTDOWN,    /* lingering close; the slot stays open until it completes */
  RC_RING_OP_CONNECT,     /* an outbound connect; idx: its pending-connect entry */
  RC_RING_OP_CONNECT_TIMEOUT, /* the connect's linked timeout */
  RC_RING_OP_INSTALL,     /* FILES_UPDATE moving a connected socket into the table */
};

#define RC_RING_GEN_MASK 0xffffffu
static_assert(sizeof(uint64_t) == sizeof(((struct io_uring_cqe *)0)->user_data),
              "user_data is 64 bits");

static inline uint64_t rc_ring_ud(enum rc_ring_op op, uint32_t gen, uint32_t idx) {
  return ((uint64_t)op << 56) | ((uint64_t)(gen & RC_RING_GEN_MASK) << 32) | idx;
}
static inline enum rc_ring_op rc_ring_ud_op(uint64_t ud) { return (enum rc_ring_op)(ud >> 56); }
static inline uint32_t rc_ring_ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & RC_RING_GEN_MASK; }
static inline uint32_t rc_ring_ud_idx(uint64_t ud) { return (uint32_t)ud; }

struct rc_ring {
  struct io_uring ring;
  int fd;                        /* the ring's own fd, a MSG_RING target for other shards */
  bool has_msg_ring;             /* IORING_OP_MSG_RING (5.18) */
  bool deferred_taskrun;         /* DEFER_TASKRUN (6.1) was accepted */
  /* Completions moved out of the CQ when the kernel refused a submission until
   * the CQ drained (-EBUSY); reaped before the CQ, in order. */
  struct io_uring_cqe *stash;
  uint32_t stash_head, stash_n, stash_cap;
  uint64_t stashed_total;
};

/* What Debian's liburing 2.3 lacks or gets wrong for the kernels ringcast runs
 * on; it only fills SQE fields, so the kernel does not care which liburing built
 * them. 2.3's io_uring_prep_accept_direct adds 1 to the slot even for
 * IORING_FILE_INDEX_ALLOC, wrapping it to 0, which means "no direct descriptor"
 * (fixed in 2.4). Kernel 5.19+ reads file_index == IORING_FILE_INDEX_ALLOC as
 * "pick a free slot and return it in cqe->res". */
static inline void rc_ring_prep_accept_direct_alloc(struct io_uring_sqe *sqe, int fd,
                                                    struct sockaddr *addr, socklen_t *addr_len) {
  io_uring_prep_accept(sqe, fd, addr, addr_len, 0);
  sqe->file_index = IORING_FILE_INDEX_ALLOC;
}

/* Creates the ring in the calling thread (SINGLE_ISSUER binds it to this task).
 * Returns 0, or a negative errno with a message in err. */
int rc_ring_init(struct rc_ring *r, unsigned sq_entries, unsigned cq_entries, char *err,
                 size_t err_size);
void rc_ring_exit(struct rc_ring *r);
/* An SQE, submitting first when the SQ is full. When the kernel refuses the
 * submission until completions are reaped (-EBUSY, -EAGAIN), the ready
 * completions move to the stash and the submission is retried. Never NULL: a
 * failure here (out of memory for the stash, a broken ring) aborts. */
struct io_uring_sqe *rc_ring_get_sqe(struct rc_ring *r);
/* n SQEs (at most the SQ's size) that reach the kernel in one submission: a
 * linked chain split by the getter's own submit would lose its link (a linked
 * timeout submitted alone fails with -EINVAL). Never fails, as rc_ring_get_sqe. */
void rc_ring_get_sqes(struct rc_ring *r, struct io_uring_sqe **out, unsigned n);
/* Submits what is prepared now (the loop also submits before it waits). A
 * submission the kernel refuses until the CQ drains is retried after stashing. */
void rc_ring_submit(struct rc_ring *r);
/* Moves every completion ready in the CQ to the stash; returns how many, or
 * -ENOMEM. */
int rc_ring_stash(struct rc_ring *r);
/* Copies up to max completions, stashed ones first, into out and consumes them. */
unsigned rc_ring_reap(struct rc_ring *r, struct io_uring_cqe *out, unsigned max);
/* Whether a completion is waiting, stashed or in the CQ. */
bool rc_ring_has_cqe(struct rc_ring *r);

#endif
