/* SPDX-License-Identifier: MIT */
/* Redis Cluster's key slots (docs/deploy/redis.md, Redis Cluster): CRC16
 * XMODEM of a key, or of its hash tag, modulo 16384, as the cluster
 * specification defines it. Pure: no I/O, no allocation, no globals. */
#ifndef RINGCAST_PROTO_REDIS_SLOT_H
#define RINGCAST_PROTO_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define RC_REDIS_SLOTS 16384

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0, no reflection) of
 * p[0..len): Redis Cluster's key hash. "123456789" is 0x31C3. */
uint16_t rc_redis_crc16(const void *p, size_t len);

/* The slot of key[0..len): the CRC16 of its hash tag (what lies between the
 * first '{' and the first '}' after it, when that is not empty) or else of
 * the whole key, modulo RC_REDIS_SLOTS. Every key of topic T is "rc:{T}...",
 * so all of them live in the slot of T. */
unsigned rc_redis_key_slot(const char *key, size_t len);

#endif
