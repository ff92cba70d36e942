/* SPDX-License-Identifier: MIT */
/* SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash for tables whose keys
 * come from clients, so that without the key no one can make names collide. */
#ifndef RINGCAST_UTIL_SIPHASH_H
#define RINGCAST_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t rc_siphash24(const uint8_t key[16], const void *data, size_t len);
/* A fresh key from the kernel's random source (the clock and an address when it
 * has no entropy yet, early in boot: better than a fixed key, though guessable). */
void rc_siphash_random_key(uint8_t key[16]);

#endif
