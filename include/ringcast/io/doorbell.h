/* SPDX-License-Identifier: MIT */
/* The sleep/wake handshake between a shard and the threads that queue work for
 * it. The shard announces that it is about to sleep, issues a full fence and
 * looks for work once more; a producer pushes its work, issues a full fence and
 * rings only if it then sees the shard asleep. One of the two always sees the
 * other. At most one producer rings per sleep. */
#ifndef RINGCAST_IO_DOORBELL_H
#define RINGCAST_IO_DOORBELL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>

enum rc_doorbell_state {
  RC_DOORBELL_AWAKE = 0,
  RC_DOORBELL_SLEEPING,      /* announced, nobody rang yet */
  RC_DOORBELL_RUNG,          /* announced and rung once: later producers stay quiet */
};

struct rc_doorbell {
  /* One word, so "asleep and not yet rung" is claimed in one step: a producer
   * that saw one sleep can never mark the next one as rung (with two flags it
   * could, and its ring, reaped early, then left the next sleep unrung). */
  alignas(64) _Atomic int state;
};

void rc_doorbell_init(struct rc_doorbell *d);
/* Consumer: announces the sleep, then a full fence; look for work after it. */
void rc_doorbell_prepare_sleep(struct rc_doorbell *d);
/* Consumer: awake again, whether work turned up after prepare_sleep or the wait
 * ended. The next sleep starts unrung: forgetting that on the "work turned up"
 * path made every later producer skip the doorbell of a sleeping shard (delivery
 * then waited for the bounded wait). */
void rc_doorbell_awake(struct rc_doorbell *d);
/* Producer, after its pushes and a seq_cst fence: true when the consumer sleeps
 * and nobody rang since it announced it; the caller must then ring. */
bool rc_doorbell_claim(struct rc_doorbell *d);

#endif
