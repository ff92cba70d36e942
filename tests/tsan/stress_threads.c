/* SPDX-License-Identifier: MIT */
/* Cross-thread stress tests as a plain program, because Criterion cannot run
 * under ThreadSanitizer (Snaipe/Criterion#274). scripts/test.sh runs it in the
 * TSan build; the release build runs it too. Prints "N passed, N failed". */
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/io/doorbell.h"
#include "ringcast/proto/topic_pattern.h"
#include "ringcast/pubsub/pubsub.h"
#include "ringcast/pubsub/subscription.h"
#include "ringcast/pubsub/topic.h"
#include "ringcast/util/frame.h"
#include "ringcast/util/mpsc.h"

static int passed, failed;
#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (cond) {                                                                           \
      passed++;                                                                           \
    } else {                                                                              \
      failed++;                                                                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                \
      fprintf(stderr, __VA_ARGS__);                                                       \
      fputc('\n', stderr);                                                                \
    }                                                                                     \
  } while (0)

/* MPSC: producers push items holding data written before the push; the consumer
 * checks per-producer order and reads the data (a race if publication is wrong). */
#define PRODUCERS 4
#define PER_PRODUCER 50000

struct item {
  struct rc_mpsc_node node;
  unsigned producer, seq;
  uint64_t payload;
};

static struct rc_mpsc queue;
static struct item *items;

static void *produce(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < PER_PRODUCER; i++) {
    struct item *x = &items[id * PER_PRODUCER + i];
    x->producer = id;
    x->seq = i;
    x->payload = (uint64_t)id << 32 | i;
    rc_mpsc_push(&queue, &x->node);
  }
  return NULL;
}

static void test_mpsc(void) {
  rc_mpsc_init(&queue);
  items = calloc(PRODUCERS * PER_PRODUCER, sizeof *items);
  pthread_t th[PRODUCERS];
  for (unsigned i = 0; i < PRODUCERS; i++) pthread_create(&th[i], NULL, produce, (void *)(uintptr_t)i);
  unsigned next[PRODUCERS] = {0}, total = 0, bad = 0;
  while (total < PRODUCERS * PER_PRODUCER) {
    struct item *x = (struct item *)rc_mpsc_try_pop(&queue);
    if (!x) continue;
    if (x->seq != next[x->producer] || x->payload != ((uint64_t)x->producer << 32 | x->seq)) bad++;
    next[x->producer]++;
    total++;
  }
  for (unsigned i = 0; i < PRODUCERS; i++) pthread_join(th[i], NULL);
  CHECK(bad == 0, "mpsc: %u items out of order or torn", bad);
  CHECK(rc_mpsc_is_empty(&queue), "mpsc: empty after draining");
  free(items);
}

/* Split reference counts: several "shards" read each message, then drop their
 * reference; exactly one frees it, after every read. */
#define ROUNDS 20000
#define SHARDS 4
static struct rc_frame *msgs[ROUNDS];
static _Atomic unsigned frees;

static void *shard_release(void *arg) {
  uintptr_t sum = (uintptr_t)arg;
  for (unsigned i = 0; i < ROUNDS; i++) {
    sum += msgs[i]->data[i % 16];
    if (rc_frame_shard_unref(msgs[i])) {
      atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
      rc_frame_destroy(msgs[i]);
    }
  }
  return (void *)sum;
}

static void test_refcount(void) {
  for (unsigned i = 0; i < ROUNDS; i++) {
    msgs[i] = rc_frame_create(0, 16);
    memset(msgs[i]->data, (int)i, 16);
    atomic_store_explicit(&msgs[i]->shard_refs, SHARDS, memory_order_relaxed);
  }
  pthread_t th[SHARDS];
  for (uintptr_t i = 0; i < SHARDS; i++) pthread_create(&th[i], NULL, shard_release, (void *)i);
  for (int i = 0; i < SHARDS; i++) pthread_join(th[i], NULL);
  CHECK(atomic_load(&frees) == ROUNDS, "refcount: %u frees for %u messages", atomic_load(&frees), ROUNDS);
}

/* The topic table: concurrent creation agrees on one topic per name, and the
 * interest bitmap is updated by several shards at once. */
static struct rc_topic_table *table;
static struct rc_topic *seen[SHARDS][256];
static struct rc_subscriber subscribers[SHARDS];

static void *create_topics(void *arg) {
  unsigned s = (unsigned)(uintptr_t)arg;
  char name[32];
  for (int i = 0; i < 256; i++) {
    snprintf(name, sizeof name, "stress.%d", i);
    if (rc_topic_acquire(table, name, strlen(name), true, &seen[s][i]) < 0) return arg;
    rc_subscription_add(s, &subscribers[s], seen[s][i], 1024, 0);
    (void)rc_subscription_remove(s, &subscribers[s], seen[s][i]);
    rc_subscription_add(s, &subscribers[s], seen[s][i], 1024, 0);
  }
  return NULL;
}

static void dropped(void *ctx, struct rc_topic *tp) {
  (void)ctx;
  (void)tp;
}

static void test_topics(void) {
  table = rc_topic_table_create(1024, SHARDS, NULL);
  pthread_t th[SHARDS];
  for (uintptr_t i = 0; i < SHARDS; i++) pthread_create(&th[i], NULL, create_topics, (void *)i);
  unsigned errors = 0;
  for (int i = 0; i < SHARDS; i++) {
    void *r;
    pthread_join(th[i], &r);
    errors += r != NULL;
  }
  CHECK(errors == 0, "topics: creation failed");
  unsigned mismatched = 0, bits = 0;
  for (int i = 0; i < 256; i++) {
    for (int s = 1; s < SHARDS; s++) mismatched += seen[s][i] != seen[0][i];
    bits += atomic_load(&seen[0][i]->interest) == (1u << SHARDS) - 1;
  }
  CHECK(mismatched == 0, "topics: %u names resolved to different topics", mismatched);
  CHECK(bits == 256, "topics: %u of 256 interest bitmaps complete", bits);
  CHECK(rc_topic_count(table) == 256, "topics: count %u", rc_topic_count(table));
  for (unsigned i = 0; i < SHARDS; i++) rc_subscription_remove_all(i, &subscribers[i], dropped, NULL);
  /* Every thread's reference, then the table is empty. */
  for (int s = 0; s < SHARDS; s++)
    for (int i = 0; i < 256; i++) rc_topic_release(table, seen[s][i]);
  CHECK(rc_topic_count(table) == 0, "topics: %u left after every release", rc_topic_count(table));
  rc_topic_table_destroy(table);
}

/* Wildcards: one shard subscribes and unsubscribes a pattern over and over
 * while other threads create and release matching topics. Right after each
 * subscribe, every topic that exists and matches must carry the shard's
 * wildcard bit (the creation hook or the scan set it, never neither); once
 * everything is released and swept, no pin is left and the table is empty. */
#define W_SHARDS 2
#define W_CREATORS 2
#define W_ROUNDS 300
static struct rc_pubsub *wps;
static struct rc_pubsub_shard *wshard[W_SHARDS];
static _Atomic bool w_stop;
static _Atomic unsigned w_missing, w_created;

static struct rc_subscriber *w_resolve(void *ctx, uint64_t token) {
  (void)ctx;
  (void)token;
  return NULL;
}
static bool w_joined(void *ctx, struct rc_subscriber *sub, const struct rc_join_result *r) {
  (void)ctx, (void)sub, (void)r;
  return false;
}
static void w_deliver(void *ctx, struct rc_subscriber *sub, struct rc_topic *tp, struct rc_hold *h) {
  (void)tp;
  (void)ctx, (void)sub, (void)h;
}
static void w_published(void *ctx, const struct rc_publish_result *r) { (void)ctx, (void)r; }
static void w_wake(void *ctx, uint64_t mask) { (void)ctx, (void)mask; }

static void *w_create(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  char name[32];
  for (unsigned i = 0; !atomic_load(&w_stop); i++) {
    snprintf(name, sizeof name, "%s.%u", (i + id) % 3 ? "w" : "x", (i * 7 + id) % 97);
    struct rc_topic *tp;
    if (rc_topic_acquire(rc_pubsub_topics(wps), name, strlen(name), true, &tp) == 0) {
      rc_topic_release(rc_pubsub_topics(wps), tp);
      atomic_fetch_add_explicit(&w_created, 1, memory_order_relaxed);
    }
  }
  return NULL;
}

static unsigned w_check(void *ctx, struct rc_topic *tp) {
  (void)ctx;
  if (rc_topic_pattern_match("w.*", 3, tp->name, tp->name_len) &&
      !(atomic_load(&tp->pattern_interest) & 1))
    atomic_fetch_add(&w_missing, 1);
  return 0;
}

static void *w_home(void *arg) {
  (void)arg;
  while (!atomic_load(&w_stop)) {
    rc_pubsub_drain(wshard[1], 64, 1 << 20);
    rc_pubsub_flush(wshard[1]);
  }
  return NULL;
}

static void test_wildcards(void) {
  struct rc_pubsub_limits lim = {.max_patterns = 16};
  wps = rc_pubsub_create(W_SHARDS, 4096, &lim);
  static struct rc_frame_arena ar[W_SHARDS];
  static struct rc_frame_arena *const all[W_SHARDS] = {&ar[0], &ar[1]};
  struct rc_pubsub_callbacks cb = {.resolve = w_resolve, .joined = w_joined, .deliver = w_deliver,
                                   .published = w_published, .wake = w_wake};
  for (unsigned i = 0; i < W_SHARDS; i++) {
    rc_frame_arena_init(&ar[i], i, all);
    rc_pubsub_shard_create(wps, i, &ar[i], &cb, &wshard[i]);
  }
  pthread_t th[W_CREATORS + 1];
  for (uintptr_t i = 0; i < W_CREATORS; i++) pthread_create(&th[i], NULL, w_create, (void *)i);
  pthread_create(&th[W_CREATORS], NULL, w_home, NULL);
  struct rc_subscriber sub = {0};
  unsigned subscribed = 0;
  /* Rounds go on until the creators made plenty, however the threads are scheduled. */
  int r = 0;
  for (; r < W_ROUNDS || atomic_load(&w_created) < 20 * W_ROUNDS; r++) {
    subscribed += rc_pubsub_subscribe_pattern(wshard[0], &sub, "w.*", 3, 8, 8) == 0;
    rc_topic_foreach(rc_pubsub_topics(wps), w_check, NULL);
    rc_pubsub_unsubscribe_pattern(wshard[0], &sub, "w.*", 3);
    if (r % 8 == 0) rc_pubsub_tick(wshard[0]); /* sweeps now and then: pins pile up between */
    rc_pubsub_drain(wshard[0], 64, 1 << 20);
    rc_pubsub_flush(wshard[0]);
  }
  atomic_store(&w_stop, true);
  for (unsigned i = 0; i <= W_CREATORS; i++) pthread_join(th[i], NULL);
  CHECK(subscribed == (unsigned)r, "wildcards: %u of %d subscribes", subscribed, r);
  CHECK(atomic_load(&w_missing) == 0, "wildcards: %u matching topics without the pin after a subscribe",
        atomic_load(&w_missing));
  rc_pubsub_unsubscribe_all(wshard[0], &sub);
  rc_pubsub_tick(wshard[0]);
  for (int k = 0; k < 100; k++)
    for (unsigned i = 0; i < W_SHARDS; i++) {
      rc_pubsub_drain(wshard[i], 1024, 1 << 20);
      rc_pubsub_flush(wshard[i]);
    }
  CHECK(rc_pubsub_pattern_count(wps) == 0, "wildcards: %zu patterns left", rc_pubsub_pattern_count(wps));
  CHECK(rc_topic_count(rc_pubsub_topics(wps)) == 0, "wildcards: %u topics left (stale pins)",
        rc_topic_count(rc_pubsub_topics(wps)));
  for (unsigned i = 0; i < W_SHARDS; i++) rc_pubsub_shard_destroy(wshard[i]);
  rc_pubsub_destroy(wps);
  for (unsigned i = 0; i < W_SHARDS; i++) rc_frame_arena_fini(&ar[i]);
}

/* The sleep/wake handshake: producers push in bursts with pauses, so the
 * consumer goes to sleep often; it must never sleep through work that was pushed
 * (a poll that times out with the queue non-empty is a lost wake-up). */
#define DB_PRODUCERS 3
#define DB_PER_PRODUCER 10000

static struct rc_mpsc db_queue;
static struct rc_doorbell bell;
static int bell_fd;
static struct item *db_items;

static void *db_produce(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < DB_PER_PRODUCER; i++) {
    struct item *x = &db_items[id * DB_PER_PRODUCER + i];
    x->producer = id;
    x->seq = i;
    rc_mpsc_push(&db_queue, &x->node);
    atomic_thread_fence(memory_order_seq_cst);
    if (rc_doorbell_claim(&bell)) (void)!eventfd_write(bell_fd, 1);
    if (i % 25 == 24) usleep(200 + (useconds_t)(id * 37));
  }
  return NULL;
}

static void test_doorbell(void) {
  rc_mpsc_init(&db_queue);
  rc_doorbell_init(&bell);
  bell_fd = eventfd(0, EFD_NONBLOCK);
  db_items = calloc(DB_PRODUCERS * DB_PER_PRODUCER, sizeof *db_items);
  pthread_t th[DB_PRODUCERS];
  for (unsigned i = 0; i < DB_PRODUCERS; i++) pthread_create(&th[i], NULL, db_produce, (void *)(uintptr_t)i);
  unsigned total = 0, lost = 0, sleeps = 0;
  while (total < DB_PRODUCERS * DB_PER_PRODUCER) {
    /* Like the loop reaping its doorbell completion at the top of a turn. */
    eventfd_t v;
    (void)!eventfd_read(bell_fd, &v);
    while (rc_mpsc_try_pop(&db_queue)) total++;
    rc_doorbell_prepare_sleep(&bell);
    /* Widen the race window (any schedule must be safe): producers now often
     * see the announcement while their work is already queued. */
    for (volatile int spin = 0; spin < 20000; spin++) {
    }
    if (!rc_mpsc_is_empty(&db_queue)) {
      rc_doorbell_awake(&bell);
      continue;
    }
    sleeps++;
    struct pollfd pfd = {.fd = bell_fd, .events = POLLIN};
    /* 500 ms is the bounded wait; a healthy handshake never needs it here. */
    if (poll(&pfd, 1, 500) == 0 && !rc_mpsc_is_empty(&db_queue)) lost++;
    rc_doorbell_awake(&bell);
  }
  for (unsigned i = 0; i < DB_PRODUCERS; i++) pthread_join(th[i], NULL);
  CHECK(lost == 0, "doorbell: %u lost wake-ups in %u sleeps", lost, sleeps);
  close(bell_fd);
  free(db_items);
}

int main(void) {
  test_mpsc();
  test_refcount();
  test_topics();
  test_wildcards();
  test_doorbell();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
