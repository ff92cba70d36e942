/* SPDX-License-Identifier: MIT */
/* A shard's drain (--drain-seconds): every connection open when it begins is
 * told when to reconnect and closed at its own time, so a fleet's reconnect
 * storm becomes a ramp. Shard thread only, except rc_drain_offset_ms (pure). */
#ifndef RINGCAST_SESSION_DRAIN_H
#define RINGCAST_SESSION_DRAIN_H

#include <stdint.h>

#include "session.h"

/* When, counted from the start of a window of window_ms, the index-th of count
 * connections closes: evenly spaced, each shifted by phase_num/phase_den of a
 * spacing (< 1), so shards given different phases do not close in step.
 * Always < window_ms when index < count and phase_num < phase_den; 0 when
 * count or phase_den is 0. */
uint32_t rc_drain_offset_ms(uint32_t index, uint32_t count, uint32_t window_ms, uint32_t phase_num,
                            uint32_t phase_den);
/* The loop's on_drain hook: schedules every open connection, sends each
 * enveloped WebSocket its {"type":"reconnect","after_ms":J}. */
void rc_drain_start(struct rc_loop *l);
/* A WebSocket that opened after the drain began (on a connection accepted
 * before the listeners were handed over): told to reconnect when the window
 * ends, and closed then. */
void rc_drain_late_upgrade(struct rc_loop *l, struct rc_session *s);
/* The shard stops: no more drain timers. */
void rc_drain_stop(struct rc_loop *l);
/* Frees what the drain holds (after the loop's thread ended). */
void rc_drain_fini(struct rc_session_shard *ss);

#endif
