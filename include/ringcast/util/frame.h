/* SPDX-License-Identifier: MIT */
/* Refcounted, pre-encoded wire bytes shared by every shard and every connection.
 *
 * A struct rc_frame holds complete bytes encoded once, with up to two views, each
 * one contiguous buffer (so a send of one frame is a plain send, not a sendmsg):
 * view 0 is data[0..len), view 1 (when alt_len is set) data[alt_off..alt_off +
 * alt_len). What the bytes mean (a topic's message, an HTTP response) is the
 * business of whoever built them.
 *
 * The count is split. The atomic shard_refs counts shards holding the frame;
 * inside a shard a struct rc_hold counts that shard's references with a plain
 * integer, so queueing one frame to 10,000 local connections costs no atomic
 * operation. The last shard reference sends the frame back to the shard that
 * allocated it (its arena's return queue), so jemalloc frees on the allocating
 * thread. */
#ifndef RINGCAST_UTIL_FRAME_H
#define RINGCAST_UTIL_FRAME_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ringcast/util/budget.h"
#include "ringcast/util/mpsc.h"
#include "ringcast/util/pool.h"

enum rc_frame_view { RC_FRAME_VIEW_MAIN = 0, RC_FRAME_VIEW_ALT = 1 };

/* One connection's own frame (a reply, a pong), never shared: more of that
 * connection's own bytes may be appended to it while it waits to be sent. */
#define RC_FRAME_PRIVATE 0x01

struct rc_frame {
  struct rc_mpsc_node node;      /* on the owner's return queue, after the last unref */
  _Atomic uint32_t shard_refs;
  uint16_t owner;                /* arena (shard) that allocated it and frees it */
  uint8_t flags;                 /* RC_FRAME_* */
  uint32_t len;                  /* view 0: data[0..len) */
  uint32_t cap;                  /* bytes allocated for data */
  uint32_t alt_off, alt_len;     /* view 1: data[alt_off..alt_off+alt_len); 0: view 0 */
  uint32_t charge;               /* bytes charged to budget, given back when freed */
  struct rc_budget *budget;
  uint64_t tag;                  /* what the bytes are, in their maker's terms (0 unless set) */
  /* When the publish it carries was accepted (CLOCK_MONOTONIC ns, a loop turn's
   * clock); 0: not a message, or not measured. Written by its maker before any
   * other thread sees the frame, read-only after. */
  uint64_t stamp_ns;
  uint8_t data[];
};

/* A hold whose sends say nothing about send latency: a replay from history or a
 * snapshot, whose stamp is when it was first published, not when it was asked for. */
#define RC_HOLD_UNTIMED 0x01

/* One shard's references to a frame; lives in that shard's arena. */
struct rc_hold {
  struct rc_frame *frame;
  uint32_t refs;
  uint32_t flags;                /* RC_HOLD_* (in what was padding) */
};

/* Per shard: the pool of holds and the queue of frames other shards hand back.
 * Every function taking an arena runs on that arena's shard thread, except that
 * any thread may push onto another arena's return queue through rc_frame_release. */
struct rc_frame_arena {
  unsigned id;
  struct rc_frame_arena *const *all;  /* every shard's arena, indexed by id */
  struct rc_pool holds;
  alignas(64) struct rc_mpsc returns;
};

/* Allocates a frame of len bytes for arena `owner`, shard_refs = 1; the caller
 * fills data[0..len). NULL on ENOMEM or len over 4 GiB. */
struct rc_frame *rc_frame_create(uint16_t owner, size_t len);
/* A server WebSocket frame (unmasked, FIN set) with the given payload. */
struct rc_frame *rc_frame_create_ws(uint16_t owner, uint8_t opcode, const void *payload,
                                    size_t len);
/* A close frame with code and reason (the reason cut to fit 125 bytes). */
struct rc_frame *rc_frame_create_close(uint16_t owner, unsigned code, const char *reason);
/* Charges the frame's memory to b (given back when it is freed): with force,
 * always; otherwise only within the budget's limit. Returns whether it was
 * charged. A frame is charged once. */
bool rc_frame_charge(struct rc_frame *f, struct rc_budget *b, bool force);
/* Appends n bytes to a private frame no one else sees (one view), growing it to
 * at most max bytes: the frame may move (*fp is updated) and its budget charge
 * follows its size. 0, -EMSGSIZE (over max) or -ENOMEM (nothing changed). */
int rc_frame_append(struct rc_frame **fp, const void *p, size_t n, size_t max);
/* Frees a frame no other thread can see (shard_refs never shared). */
void rc_frame_destroy(struct rc_frame *f);

/* The bytes of one view (a frame without an alternate view shows view 0). */
static inline const uint8_t *rc_frame_view(const struct rc_frame *f, enum rc_frame_view view,
                                           size_t *len) {
  if (view == RC_FRAME_VIEW_ALT && f->alt_len) {
    *len = f->alt_len;
    return f->data + f->alt_off;
  }
  *len = f->len;
  return f->data;
}
/* Bytes of one view on the wire. */
static inline size_t rc_frame_view_len(const struct rc_frame *f, enum rc_frame_view view) {
  return view == RC_FRAME_VIEW_ALT && f->alt_len ? f->alt_len : f->len;
}

/* Drops one shard reference. Returns true if it was the last: the caller then owns
 * the frame alone. acq_rel: every shard's reads happen before the free. */
bool rc_frame_shard_unref(struct rc_frame *f);

/* Arena owner's thread. `all` must outlive the arena. */
void rc_frame_arena_init(struct rc_frame_arena *a, unsigned id, struct rc_frame_arena *const *all);
/* Frees what the return queue still holds and the pool; no other shard may run. */
void rc_frame_arena_fini(struct rc_frame_arena *a);
/* Drops one of this shard's references on f: frees it here when this shard
 * allocated it, or hands it back to its owner, when that was the last one. */
void rc_frame_release(struct rc_frame_arena *a, struct rc_frame *f);
/* Frees the frames other shards handed back. Returns how many. */
unsigned rc_frame_arena_reclaim(struct rc_frame_arena *a);
/* Wraps one shard reference to f (which the hold takes over) with refs = 1.
 * NULL on ENOMEM (the reference is still the caller's). */
struct rc_hold *rc_hold_create(struct rc_frame_arena *a, struct rc_frame *f);
static inline void rc_hold_ref(struct rc_hold *h) { h->refs++; }
/* Drops one plain reference; the last releases the shard reference. */
void rc_hold_unref(struct rc_frame_arena *a, struct rc_hold *h);

#endif
