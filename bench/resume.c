/* SPDX-License-Identifier: MIT */
#include "resume.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(RC_RESUME_WINDOW == 128, "the window is two words; shift_window assumes it");

/* Moves the window's bit 0 from last to last + d. */
static void shift_window(uint64_t w[2], uint64_t d) {
  if (d >= 128) {
    w[0] = w[1] = 0;
  } else if (d >= 64) {
    w[1] = w[0] << (d - 64);
    w[0] = 0;
  } else if (d > 0) {
    w[1] = (w[1] << d) | (w[0] >> (64 - d));
    w[0] <<= d;
  }
}

static void advance(struct rc_resume_stream *s, uint64_t to, bool received) {
  shift_window(s->window, to - s->last);
  s->last = to;
  if (received) s->window[0] |= 1;
}

static void set_epoch(struct rc_resume_stream *s, const char *epoch, size_t len) {
  /* An epoch too long to keep cannot be asked for again: the stream then
   * forgets it rather than resume from a truncated one. */
  if (!epoch || len > RC_RESUME_EPOCH_MAX) len = 0;
  if (len) memcpy(s->epoch, epoch, len);
  s->epoch[len] = '\0';
}

static bool epoch_is(const struct rc_resume_stream *s, const char *epoch, size_t len) {
  return epoch && len <= RC_RESUME_EPOCH_MAX && strlen(s->epoch) == len &&
         memcmp(s->epoch, epoch, len) == 0;
}

/* Numbering starts again after seq: nothing before it is expected. */
static void anchor(struct rc_resume_stream *s, uint64_t seq) {
  s->last = seq;
  s->first = seq + 1;
  s->window[0] = s->window[1] = 0;
  s->replay_end = 0;
  s->expect_gap = false;
  s->anchored = true;
}

/* A "recovered":false ack said live messages start after rebase_to; what no
 * gap message covered of the numbers up to it is silent loss. */
static void settle_rebase(struct rc_resume_stream *s, struct rc_resume_totals *t) {
  s->expect_gap = false;
  if (s->rebase_to > s->last) {
    t->lost_silent += s->rebase_to - s->last;
    advance(s, s->rebase_to, false);
  }
  s->rebase_to = 0;
}

void rc_resume_connecting(struct rc_resume_stream *s, bool asked_since) {
  s->awaiting_ack = true;
  s->asked_since = asked_since;
  /* A gap the last connection did not live to read is asked for again: the
   * new request resumes from the same last number. */
  s->expect_gap = false;
  s->rebase_to = 0;
  if (!asked_since) s->anchored = false;
}

bool rc_resume_can_ask(const struct rc_resume_stream *s) {
  return s->anchored && s->epoch[0] != '\0';
}

void rc_resume_on_ack(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t seq,
                      const char *epoch, size_t epoch_len, int recovered, uint64_t now) {
  t->acks++;
  if (!s->awaiting_ack) return; /* a repeated subscribe's ack: the stream goes on */
  s->awaiting_ack = false;
  s->acked_at = now;
  if (!s->asked_since || !s->anchored) {
    set_epoch(s, epoch, epoch_len);
    anchor(s, seq);
    return;
  }
  if (!epoch_is(s, epoch, epoch_len)) t->epoch_changes++;
  if (recovered == 1) {
    t->recovered++;
    if (!epoch_is(s, epoch, epoch_len) || seq < s->last) {
      /* History of another numbering, or behind what this stream already
       * had: nothing it replays can be checked against the stream. */
      t->protocol_errors++;
      set_epoch(s, epoch, epoch_len);
      anchor(s, seq);
      return;
    }
    s->replay_end = seq;
    return;
  }
  t->not_recovered++;
  if (epoch_is(s, epoch, epoch_len) && seq >= s->last) {
    /* Same numbering: last moves when the gap message says what was lost. */
    s->rebase_to = seq;
  } else {
    /* New numbering (or one behind ours: the server forgot the topic without
     * saying so): the old epoch's loss is only known from the gap message. */
    if (epoch_is(s, epoch, epoch_len)) t->protocol_errors++;
    set_epoch(s, epoch, epoch_len);
    anchor(s, seq);
    s->rebase_to = seq;
  }
  s->expect_gap = true;
}

enum rc_resume_result rc_resume_on_msg(struct rc_resume_stream *s, struct rc_resume_totals *t,
                                       uint64_t seq) {
  t->received++;
  s->received++;
  if (seq == 0) {
    t->protocol_errors++; /* numbering starts at 1 */
    return RC_RESUME_LATE;
  }
  if (s->awaiting_ack) {
    s->awaiting_ack = false;
    if (s->asked_since || s->epoch[0]) {
      t->protocol_errors++; /* this server acks subscriptions: the ack must come first */
    } else {
      /* A server that sends no ack: the first message starts the numbering. */
      s->acked_at = 0;
      if (!s->anchored) anchor(s, seq - 1);
    }
  }
  if (s->expect_gap) {
    t->protocol_errors++;
    settle_rebase(s, t);
  }
  if (!s->anchored) anchor(s, seq - 1);
  if (seq > s->last) {
    enum rc_resume_result r = RC_RESUME_NEXT;
    if (seq > s->last + 1) {
      t->lost_silent += seq - s->last - 1;
      r = RC_RESUME_SKIPPED;
    }
    advance(s, seq, true);
    if (seq <= s->replay_end) {
      t->replayed++;
      if (r == RC_RESUME_NEXT) r = RC_RESUME_REPLAYED;
    }
    return r;
  }
  uint64_t back = s->last - seq;
  if (back < RC_RESUME_WINDOW) {
    uint64_t bit = 1ull << (back % 64);
    if (!(s->window[back / 64] & bit)) {
      s->window[back / 64] |= bit; /* a second copy of it is then a duplicate */
      t->reorders++;
      return RC_RESUME_LATE;
    }
  }
  /* Further back than the window: a replay from too early is the likely fault. */
  t->duplicates++;
  return RC_RESUME_DUPLICATE;
}

void rc_resume_on_gap(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t from,
                      uint64_t to, const char *epoch, size_t epoch_len, bool conflated) {
  t->gap_messages++;
  if (conflated) t->conflated_gaps++;
  if (!s->anchored) return;
  if (s->expect_gap) {
    /* The gap a failed resume announces: all it names is this subscriber's
     * loss, in whichever numbering it names it. */
    t->lost_announced += to >= from ? to - from + 1 : 0;
    /* Past the ack's number it would say more than the ack did (and after a
     * new epoch its numbers may be the old one's): the ack decides. */
    uint64_t upto = to < s->rebase_to ? to : s->rebase_to;
    if (upto > s->last) advance(s, upto, false);
    settle_rebase(s, t);
    return;
  }
  if (epoch && epoch_len && !epoch_is(s, epoch, epoch_len)) {
    t->protocol_errors++; /* a gap in another numbering, with no resume asking */
    t->lost_announced += to >= from ? to - from + 1 : 0;
    set_epoch(s, epoch, epoch_len);
    anchor(s, to);
    return;
  }
  /* Mid-stream (conflation): only what lies past the last number is news. */
  uint64_t lo = from > s->last ? from : s->last + 1;
  if (to >= lo) {
    t->lost_announced += to - lo + 1;
    advance(s, to, false);
  }
}

void rc_resume_on_hb(struct rc_resume_stream *s, struct rc_resume_totals *t, uint64_t seq) {
  t->heartbeats++;
  if (!s->anchored || s->awaiting_ack || s->expect_gap || seq <= s->last) return;
  t->lost_silent += seq - s->last;
  advance(s, seq, false);
}

uint64_t rc_resume_topic_end(struct rc_resume_stream *const *streams, size_t n,
                             struct rc_resume_totals *t) {
  const struct rc_resume_stream *newest = NULL;
  for (size_t i = 0; i < n; i++) {
    const struct rc_resume_stream *s = streams[i];
    if (s->anchored && (!newest || s->acked_at > newest->acked_at)) newest = s;
  }
  if (!newest) return 0;
  char epoch[RC_RESUME_EPOCH_MAX + 1];
  memcpy(epoch, newest->epoch, sizeof epoch);
  size_t el = strlen(epoch);
  uint64_t top = 0;
  for (size_t i = 0; i < n; i++)
    if (streams[i]->anchored && epoch_is(streams[i], epoch, el) && streams[i]->last > top)
      top = streams[i]->last;
  for (size_t i = 0; i < n; i++) {
    struct rc_resume_stream *s = streams[i];
    if (!s->anchored) continue;
    if (!epoch_is(s, epoch, el)) {
      t->protocol_errors++;
      continue;
    }
    if (s->expect_gap) {
      t->protocol_errors++;
      settle_rebase(s, t);
    }
    if (top > s->last) {
      t->lost_silent += top - s->last;
      advance(s, top, false);
    }
  }
  return top;
}

void rc_resume_totals_add(struct rc_resume_totals *into, const struct rc_resume_totals *from) {
  into->received += from->received;
  into->replayed += from->replayed;
  into->lost_silent += from->lost_silent;
  into->lost_announced += from->lost_announced;
  into->gap_messages += from->gap_messages;
  into->conflated_gaps += from->conflated_gaps;
  into->duplicates += from->duplicates;
  into->reorders += from->reorders;
  into->acks += from->acks;
  into->recovered += from->recovered;
  into->not_recovered += from->not_recovered;
  into->epoch_changes += from->epoch_changes;
  into->heartbeats += from->heartbeats;
  into->protocol_errors += from->protocol_errors;
}

uint64_t rc_resume_lost(const struct rc_resume_totals *t) {
  return t->lost_silent + t->lost_announced;
}

/* ---- since= and "since" ---------------------------------------------------- */

struct out {
  char *p;
  size_t size, len;
  bool full;
};

static void put(struct out *o, const char *s, size_t n) {
  if (o->full || o->size - o->len <= n) {
    o->full = true;
    return;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
  o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void put_u64(struct out *o, uint64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  put(o, b, (size_t)n);
}

/* Query text: RFC 3986's unreserved characters, and ':', '/' and '@', which a
 * query may hold as they are; everything else (',' above all) as %XX. */
static void put_query(struct out *o, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~' || c == ':' || c == '/' || c == '@') {
      put(o, (const char *)&c, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      put(o, e, 3);
    }
  }
}

static void put_json_string(struct out *o, const char *s) {
  put(o, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(o, e, 2);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      put(o, e, 6);
    } else {
      put(o, (const char *)&c, 1);
    }
  }
  put(o, "\"", 1);
}

static void put_since_query(struct out *o, const struct rc_since *items, size_t n) {
  puts_(o, "since=");
  for (size_t i = 0; i < n; i++) {
    if (i) put(o, ",", 1);
    put_query(o, items[i].topic);
    put(o, ":", 1);
    put_query(o, items[i].epoch);
    put(o, ":", 1);
    put_u64(o, items[i].seq);
  }
}

static void put_since_json(struct out *o, const struct rc_since *items, size_t n) {
  puts_(o, "\"since\":{");
  for (size_t i = 0; i < n; i++) {
    if (i) put(o, ",", 1);
    put_json_string(o, items[i].topic);
    puts_(o, ":{\"epoch\":");
    put_json_string(o, items[i].epoch);
    puts_(o, ",\"seq\":");
    put_u64(o, items[i].seq);
    put(o, "}", 1);
  }
  put(o, "}", 1);
}

static ssize_t done(const struct out *o) { return o->full ? -ENOSPC : (ssize_t)o->len; }

ssize_t rc_resume_since_query(char *out, size_t size, const struct rc_since *items, size_t n) {
  struct out o = {.p = out, .size = size, .full = size == 0};
  if (size) out[0] = '\0';
  put_since_query(&o, items, n);
  return done(&o);
}

ssize_t rc_resume_since_json(char *out, size_t size, const struct rc_since *items, size_t n) {
  struct out o = {.p = out, .size = size, .full = size == 0};
  if (size) out[0] = '\0';
  put_since_json(&o, items, n);
  return done(&o);
}

ssize_t rc_resume_path_with_since(char *out, size_t size, const char *path,
                                  const struct rc_since *items, size_t n) {
  struct out o = {.p = out, .size = size, .full = size == 0};
  if (size) out[0] = '\0';
  size_t pl = strlen(path);
  puts_(&o, path);
  if (!strchr(path, '?'))
    put(&o, "?", 1);
  else if (pl && path[pl - 1] != '?' && path[pl - 1] != '&')
    put(&o, "&", 1);
  put_since_query(&o, items, n);
  return done(&o);
}

ssize_t rc_resume_command_with_since(char *out, size_t size, const char *cmd, size_t cmd_len,
                                     const struct rc_since *items, size_t n) {
  size_t end = cmd_len;
  while (end && (cmd[end - 1] == ' ' || cmd[end - 1] == '\t' || cmd[end - 1] == '\n' ||
                 cmd[end - 1] == '\r'))
    end--;
  if (!end || cmd[end - 1] != '}') return -EINVAL;
  size_t brace = end - 1, before = brace;
  while (before && (cmd[before - 1] == ' ' || cmd[before - 1] == '\t' || cmd[before - 1] == '\n' ||
                    cmd[before - 1] == '\r'))
    before--;
  if (!before) return -EINVAL;
  struct out o = {.p = out, .size = size, .full = size == 0};
  if (size) out[0] = '\0';
  put(&o, cmd, brace);
  if (cmd[before - 1] != '{') put(&o, ",", 1); /* an empty object takes no comma */
  put_since_json(&o, items, n);
  put(&o, cmd + brace, cmd_len - brace);
  return done(&o);
}
