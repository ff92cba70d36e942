/* SPDX-License-Identifier: MIT */
/* Measures the two inbox designs DESIGN.md names: the intrusive Vyukov MPSC queue
 * ringcast uses (src/mpsc.c) against one bounded single-producer lane per producer
 * (head and tail on separate cache lines, acquire/release only), with P producer
 * threads and one consumer. Prints items per second for each; see
 * docs/architecture.md for the figures and the choice.
 *   ringcast-queue-bench [items-per-producer]   */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ringcast/util/mpsc.h"

#define MAX_P 4
#define LANE_CAP 1024

struct item {
  struct rc_mpsc_node node;
  uint32_t producer, seq;
};

struct lane {
  alignas(64) _Atomic uint32_t head;  /* consumer */
  alignas(64) _Atomic uint32_t tail;  /* producer */
  alignas(64) struct item *slot[LANE_CAP];
};

static struct rc_mpsc mpsc;
static struct lane lanes[MAX_P];
static struct item *items;
static unsigned per_producer, producers;
static _Atomic int go;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *produce_mpsc(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  while (!atomic_load(&go)) {}
  for (unsigned i = 0; i < per_producer; i++) rc_mpsc_push(&mpsc, &items[id * per_producer + i].node);
  return NULL;
}

static void *produce_lane(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  struct lane *l = &lanes[id];
  while (!atomic_load(&go)) {}
  for (unsigned i = 0; i < per_producer; i++) {
    uint32_t t = atomic_load_explicit(&l->tail, memory_order_relaxed);
    while (t - atomic_load_explicit(&l->head, memory_order_acquire) == LANE_CAP) {} /* full */
    l->slot[t % LANE_CAP] = &items[id * per_producer + i];
    atomic_store_explicit(&l->tail, t + 1, memory_order_release);
  }
  return NULL;
}

static double run(bool use_lanes) {
  pthread_t th[MAX_P];
  rc_mpsc_init(&mpsc);
  for (unsigned p = 0; p < MAX_P; p++) {
    atomic_store(&lanes[p].head, 0);
    atomic_store(&lanes[p].tail, 0);
  }
  atomic_store(&go, 0);
  for (unsigned p = 0; p < producers; p++)
    pthread_create(&th[p], NULL, use_lanes ? produce_lane : produce_mpsc, (void *)(uintptr_t)p);
  uint64_t total = (uint64_t)producers * per_producer, got = 0, bad = 0;
  unsigned next[MAX_P] = {0};
  double t0 = now_s();
  atomic_store(&go, 1);
  while (got < total) {
    if (use_lanes) {
      for (unsigned p = 0; p < producers; p++) {
        struct lane *l = &lanes[p];
        uint32_t h = atomic_load_explicit(&l->head, memory_order_relaxed);
        uint32_t t = atomic_load_explicit(&l->tail, memory_order_acquire);
        for (; h != t; h++, got++) {
          struct item *x = l->slot[h % LANE_CAP];
          bad += x->seq != next[x->producer]++;
        }
        atomic_store_explicit(&l->head, h, memory_order_release);
      }
    } else {
      struct item *x;
      while ((x = (struct item *)rc_mpsc_try_pop(&mpsc))) {
        bad += x->seq != next[x->producer]++;
        got++;
      }
    }
  }
  double dt = now_s() - t0;
  for (unsigned p = 0; p < producers; p++) pthread_join(th[p], NULL);
  if (bad) {
    fprintf(stderr, "queue-bench: %llu items out of order\n", (unsigned long long)bad);
    exit(1);
  }
  return (double)total / dt;
}

int main(int argc, char **argv) {
  per_producer = argc > 1 ? (unsigned)atoi(argv[1]) : 2000000;
  items = calloc((size_t)MAX_P * per_producer, sizeof *items);
  for (unsigned p = 0; p < MAX_P; p++)
    for (unsigned i = 0; i < per_producer; i++) {
      items[p * per_producer + i].producer = p;
      items[p * per_producer + i].seq = i;
    }
  printf("%-10s %12s %14s %14s\n", "producers", "items", "mpsc items/s", "lanes items/s");
  for (producers = 1; producers <= 3; producers++) {
    double best_m = 0, best_l = 0;
    for (int rep = 0; rep < 3; rep++) {
      double m = run(false), l = run(true);
      if (m > best_m) best_m = m;
      if (l > best_l) best_l = l;
    }
    printf("%-10u %12u %14.0f %14.0f\n", producers, producers * per_producer, best_m, best_l);
  }
  free(items);
  return 0;
}
