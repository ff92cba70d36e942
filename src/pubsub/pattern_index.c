/* SPDX-License-Identifier: MIT */
/* The pattern index as a trie with one node per segment: literal children in an
 * open-addressed table keyed by segment text, a "*" child, and at each node the
 * pattern ending there and the pattern ending there plus ".>". Adding builds any
 * missing nodes off to the side and links them in with one step that cannot
 * fail; removing prunes the nodes left empty and shrinks their parents' tables. */
#include "ringcast/pubsub/pattern_index.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ringcast/util/siphash.h"

/* A 128-byte string of dots has 129 empty segments. */
#define MAX_SEGS (RC_TOPIC_PATTERN_MAX + 1)
#define MIN_KIDS 4

/* A pattern's copy of its text, so a match can hand it to the caller. */
struct pi_term {
  void *value;
  uint8_t len;
  char text[];
};

struct pi_node {
  /* Literal children, linear probing on seg_hash; NULL while there are none. A
   * table rather than a sorted array so that adding the 10,000th sibling
   * ("quotes.SYM.*" for every symbol) costs no more than the first. */
  struct pi_node **kids;
  uint32_t nkids;
  uint32_t kcap; /* a power of two, 0 while kids is NULL */
  struct pi_node *star;
  struct pi_term *exact; /* the pattern whose segments end here */
  struct pi_term *tail;  /* the same segments followed by ">" */
  uint64_t seg_hash;     /* of seg under the index's key: probe start and quick compare */
  uint8_t seg_len;
  char seg[]; /* empty for a "*" child */
};

struct rc_pattern_index {
  /* SipHash under a per-index random key, because patterns come from clients and
   * a known hash would let one client pile all its segments into one probe run. */
  uint8_t key[16];
  size_t count;
  size_t bytes;
  struct pi_node *root;
};

/* A string cut at its dots; offsets and lengths fit a byte as strings are at
 * most 128 bytes. */
struct pi_segs {
  size_t n;
  uint8_t off[MAX_SEGS];
  uint8_t len[MAX_SEGS];
};

static void split(const char *s, size_t len, struct pi_segs *out) {
  size_t start = 0;
  out->n = 0;
  for (size_t i = 0; i <= len; i++)
    if (i == len || s[i] == '.') {
      out->off[out->n] = (uint8_t)start;
      out->len[out->n++] = (uint8_t)(i - start);
      start = i + 1;
    }
}

static bool is_star(const char *s, const struct pi_segs *sg, size_t i) {
  return sg->len[i] == 1 && s[sg->off[i]] == '*';
}

/* Splits pattern p and drops a final ">" segment, which is not a node but which
 * terminal of the last node the pattern ends in. */
static bool split_pattern(const char *p, size_t len, struct pi_segs *out) {
  split(p, len, out);
  size_t last = out->n - 1;
  if (out->len[last] == 1 && p[out->off[last]] == '>') {
    out->n--;
    return true;
  }
  return false;
}


static uint64_t seg_hash(const struct rc_pattern_index *ix, const char *s, size_t len) {
  return rc_siphash24(ix->key, s, len);
}

static size_t node_size(size_t seg_len) { return sizeof(struct pi_node) + seg_len; }
static size_t term_size(size_t len) { return sizeof(struct pi_term) + len; }
static size_t table_size(size_t cap) { return cap * sizeof(struct pi_node *); }

static struct pi_node *node_new(struct rc_pattern_index *ix, const char *seg, size_t len,
                                uint64_t h) {
  struct pi_node *n = calloc(1, node_size(len));
  if (!n) return NULL;
  n->seg_hash = h;
  n->seg_len = (uint8_t)len;
  if (len) memcpy(n->seg, seg, len);
  ix->bytes += node_size(len);
  return n;
}

static void term_free(struct rc_pattern_index *ix, struct pi_term *t) {
  if (!t) return;
  ix->bytes -= term_size(t->len);
  free(t);
}

/* A node with its whole subtree, patterns included; the caller settles the
 * count. Depth is at most MAX_SEGS, so recursion is bounded. */
static void subtree_free(struct rc_pattern_index *ix, struct pi_node *n) {
  if (!n) return;
  for (uint32_t i = 0; i < n->kcap; i++)
    subtree_free(ix, n->kids[i]);
  if (n->kids) ix->bytes -= table_size(n->kcap);
  free(n->kids);
  subtree_free(ix, n->star);
  term_free(ix, n->exact);
  term_free(ix, n->tail);
  ix->bytes -= node_size(n->seg_len);
  free(n);
}

static bool node_is_empty(const struct pi_node *n) {
  return !n->nkids && !n->star && !n->exact && !n->tail;
}

static struct pi_node *kids_find(const struct pi_node *n, const char *seg, size_t len, uint64_t h) {
  if (!n->kids) return NULL;
  uint32_t mask = n->kcap - 1;
  for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
    struct pi_node *c = n->kids[i];
    if (!c) return NULL;
    if (c->seg_hash == h && c->seg_len == len && memcmp(c->seg, seg, len) == 0) return c;
  }
}

/* Places c in a table with a free slot and no entry equal to c. */
static void table_put(struct pi_node **t, uint32_t cap, struct pi_node *c) {
  uint32_t mask = cap - 1, i = (uint32_t)c->seg_hash & mask;
  while (t[i])
    i = (i + 1) & mask;
  t[i] = c;
}

/* Moves n's children to a table of cap slots (a power of two above nkids). */
static int kids_resize(struct rc_pattern_index *ix, struct pi_node *n, uint32_t cap) {
  struct pi_node **t = calloc(cap, sizeof *t);
  if (!t) return -ENOMEM;
  for (uint32_t i = 0; i < n->kcap; i++)
    if (n->kids[i]) table_put(t, cap, n->kids[i]);
  if (n->kids) ix->bytes -= table_size(n->kcap);
  free(n->kids);
  n->kids = t;
  n->kcap = cap;
  ix->bytes += table_size(cap);
  return 0;
}

/* Room for one more child, keeping the load at most 3/4 so probe runs stay short. */
static int kids_reserve(struct rc_pattern_index *ix, struct pi_node *n) {
  if ((n->nkids + 1) * 4 <= n->kcap * 3) return 0;
  return kids_resize(ix, n, n->kcap ? n->kcap * 2 : MIN_KIDS);
}

/* After kids_reserve; cannot fail. */
static void kids_add(struct pi_node *n, struct pi_node *c) {
  table_put(n->kids, n->kcap, c);
  n->nkids++;
}

static void kids_remove(struct rc_pattern_index *ix, struct pi_node *n, struct pi_node *c) {
  uint32_t mask = n->kcap - 1, i = (uint32_t)c->seg_hash & mask;
  while (n->kids[i] != c)
    i = (i + 1) & mask;
  /* Backward-shift deletion: pull later entries of the probe run into the hole
   * unless their home slot lies cyclically in (hole, entry], so every remaining
   * entry stays reachable from its home without tombstones. */
  for (uint32_t j = i;;) {
    j = (j + 1) & mask;
    struct pi_node *e = n->kids[j];
    if (!e) break;
    uint32_t home = (uint32_t)e->seg_hash & mask;
    bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    n->kids[i] = e;
    i = j;
  }
  n->kids[i] = NULL;
  n->nkids--;
  if (!n->nkids) {
    ix->bytes -= table_size(n->kcap);
    free(n->kids);
    n->kids = NULL;
    n->kcap = 0;
  } else if (n->kcap > MIN_KIDS && n->nkids * 8 <= n->kcap) {
    /* A quarter of the size leaves the load at 1/2, below the 3/4 that grows it
     * again, so add/remove at the boundary does not resize every time. When the
     * smaller table cannot be had, the larger one still works. */
    (void)kids_resize(ix, n, n->kcap / 4 > MIN_KIDS ? n->kcap / 4 : MIN_KIDS);
  }
}

struct rc_pattern_index *rc_pattern_index_create(void) {
  struct rc_pattern_index *ix = calloc(1, sizeof *ix);
  if (!ix) return NULL;
  ix->bytes = sizeof *ix;
  rc_siphash_random_key(ix->key);
  ix->root = node_new(ix, NULL, 0, 0);
  if (!ix->root) {
    free(ix);
    return NULL;
  }
  return ix;
}

void rc_pattern_index_destroy(struct rc_pattern_index *ix) {
  if (!ix) return;
  subtree_free(ix, ix->root);
  free(ix);
}

/* The child of n for segment i of s, or NULL. */
static struct pi_node *child_of(const struct rc_pattern_index *ix, const struct pi_node *n,
                                const char *s, const struct pi_segs *sg, size_t i) {
  if (is_star(s, sg, i)) return n->star;
  const char *seg = s + sg->off[i];
  return kids_find(n, seg, sg->len[i], seg_hash(ix, seg, sg->len[i]));
}

/* Makes the nodes for segments from..n-1 of p, the last holding term, as a chain
 * not yet linked to the trie. On ENOMEM frees what it made, term included. */
static struct pi_node *chain_build(struct rc_pattern_index *ix, const char *p,
                                   const struct pi_segs *sg, size_t from, bool tail,
                                   struct pi_term *term) {
  struct pi_node *below = NULL;
  for (size_t i = sg->n; i-- > from;) {
    bool star = is_star(p, sg, i);
    const char *seg = p + sg->off[i];
    size_t len = star ? 0 : sg->len[i];
    struct pi_node *n = node_new(ix, seg, len, star ? 0 : seg_hash(ix, seg, len));
    if (!n) goto fail;
    if (!below) {
      if (tail)
        n->tail = term;
      else
        n->exact = term;
      term = NULL;
    } else if (is_star(p, sg, i + 1)) {
      n->star = below;
    } else if (kids_reserve(ix, n) == 0) {
      kids_add(n, below);
    } else {
      subtree_free(ix, n);
      goto fail;
    }
    below = n;
  }
  return below;
fail:
  subtree_free(ix, below);
  term_free(ix, term);
  return NULL;
}

void **rc_pattern_index_slot(struct rc_pattern_index *ix, const char *p, size_t len, bool create) {
  if (len == 0 || len > RC_TOPIC_PATTERN_MAX) return NULL;
  struct pi_segs sg;
  bool tail = split_pattern(p, len, &sg);
  struct pi_node *n = ix->root;
  size_t depth = 0;
  for (struct pi_node *c; depth < sg.n && (c = child_of(ix, n, p, &sg, depth)); depth++)
    n = c;
  if (depth == sg.n) {
    struct pi_term **slot = tail ? &n->tail : &n->exact;
    if (*slot) return &(*slot)->value;
    if (!create) return NULL;
  } else if (!create) {
    return NULL;
  }

  struct pi_term *term = malloc(term_size(len));
  if (!term) return NULL;
  term->value = NULL;
  term->len = (uint8_t)len;
  memcpy(term->text, p, len);
  ix->bytes += term_size(len);

  if (depth == sg.n) {
    if (tail)
      n->tail = term;
    else
      n->exact = term;
  } else {
    /* Everything below n is made first and linked in last, so running out of
     * memory part way leaves the trie as it was: n's table grows only once the
     * chain exists, and nothing after that can fail. */
    struct pi_node *chain = chain_build(ix, p, &sg, depth, tail, term);
    if (!chain) return NULL;
    if (is_star(p, &sg, depth)) {
      n->star = chain;
    } else if (kids_reserve(ix, n) == 0) {
      kids_add(n, chain);
    } else {
      subtree_free(ix, chain);
      return NULL;
    }
  }
  ix->count++;
  return &term->value;
}

void *rc_pattern_index_remove(struct rc_pattern_index *ix, const char *p, size_t len) {
  if (len == 0 || len > RC_TOPIC_PATTERN_MAX) return NULL;
  struct pi_segs sg;
  bool tail = split_pattern(p, len, &sg);
  struct pi_node *path[MAX_SEGS];
  struct pi_node *n = ix->root;
  for (size_t i = 0; i < sg.n; i++) {
    path[i] = n;
    n = child_of(ix, n, p, &sg, i);
    if (!n) return NULL;
  }
  struct pi_term **slot = tail ? &n->tail : &n->exact;
  if (!*slot) return NULL;
  void *value = (*slot)->value;
  term_free(ix, *slot);
  *slot = NULL;
  ix->count--;
  for (size_t d = sg.n; d > 0 && node_is_empty(n); d--) {
    struct pi_node *parent = path[d - 1];
    if (parent->star == n)
      parent->star = NULL;
    else
      kids_remove(ix, parent, n);
    subtree_free(ix, n);
    n = parent;
  }
  return value;
}

struct pi_match {
  const struct rc_pattern_index *ix;
  const char *name;
  struct pi_segs sg;
  /* tail_ok[i]: segments i.. of the name are all non-empty, so a ">" after the
   * first i segments matches; false at n, where nothing is left for it. */
  bool tail_ok[MAX_SEGS + 1];
  bool reserved; /* the name is reserved: no wildcard takes its first segment */
  void (*fn)(void *ctx, const char *p, size_t plen, void *value);
  void *ctx;
  size_t found;
};

static void report(struct pi_match *m, const struct pi_term *t) {
  m->found++;
  if (m->fn) m->fn(m->ctx, t->text, t->len, t->value);
}

/* Every pattern under n that matches the name's segments from depth on. Depth is
 * at most MAX_SEGS, so recursion is bounded; each call follows at most one
 * literal and one "*" edge. */
static void match_from(struct pi_match *m, const struct pi_node *n, size_t depth) {
  bool wild_ok = depth > 0 || !m->reserved;
  if (n->tail && m->tail_ok[depth] && wild_ok) report(m, n->tail);
  if (depth == m->sg.n) {
    if (n->exact) report(m, n->exact);
    return;
  }
  const char *seg = m->name + m->sg.off[depth];
  size_t len = m->sg.len[depth];
  if (n->kids) {
    const struct pi_node *c = kids_find(n, seg, len, seg_hash(m->ix, seg, len));
    if (c) match_from(m, c, depth + 1);
  }
  /* "*" takes one non-empty segment. */
  if (n->star && len && wild_ok) match_from(m, n->star, depth + 1);
}

size_t rc_pattern_index_match(const struct rc_pattern_index *ix, const char *name, size_t len,
                              void (*fn)(void *ctx, const char *p, size_t plen, void *value),
                              void *ctx) {
  /* Out of contract, but the segment arrays are sized for valid names. */
  if (len == 0 || len > RC_TOPIC_NAME_MAX) return 0;
  struct pi_match m = {.ix = ix, .name = name, .fn = fn, .ctx = ctx,
                       .reserved = rc_topic_name_is_reserved(name, len)};
  split(name, len, &m.sg);
  m.tail_ok[m.sg.n] = false;
  bool all_nonempty = true;
  for (size_t i = m.sg.n; i-- > 0;) {
    all_nonempty = all_nonempty && m.sg.len[i] > 0;
    m.tail_ok[i] = all_nonempty;
  }
  match_from(&m, ix->root, 0);
  return m.found;
}

size_t rc_pattern_index_count(const struct rc_pattern_index *ix) { return ix->count; }

size_t rc_pattern_index_bytes(const struct rc_pattern_index *ix) { return ix->bytes; }

/* Depth-first; the trie's depth is bounded by MAX_SEGS, so is the recursion. */
static void each_under(const struct pi_node *n,
                       void (*fn)(void *ctx, const char *p, size_t plen, void *value), void *ctx) {
  if (n->exact) fn(ctx, n->exact->text, n->exact->len, n->exact->value);
  if (n->tail) fn(ctx, n->tail->text, n->tail->len, n->tail->value);
  for (uint32_t i = 0; i < n->kcap; i++)
    if (n->kids[i]) each_under(n->kids[i], fn, ctx);
  if (n->star) each_under(n->star, fn, ctx);
}

void rc_pattern_index_foreach(const struct rc_pattern_index *ix,
                              void (*fn)(void *ctx, const char *p, size_t plen, void *value),
                              void *ctx) {
  if (ix->root) each_under(ix->root, fn, ctx);
}
