/*
 * merpati/ratewin.h - sliding-window event counters keyed by a string
 * (a client address, a user, a domain), header-only so that the core
 * (AUTH failures per client address) and the ratelimit module share one
 * implementation. Since 2.1; not part of the host table: nothing here
 * crosses the module boundary.
 *
 * The window: each key keeps MP_RATEWIN_SLOTS + 1 counters of
 * window / MP_RATEWIN_SLOTS each (a ring indexed by slot number); the
 * count of a key is the sum of the slots not older than the window.
 * The counted span is therefore between window and window + window /
 * MP_RATEWIN_SLOTS long: an event is forgotten at most 1/8 of the window
 * late and never early, so no span of `window` ever holds more than
 * `limit` taken events (the error is on the strict side).
 *
 * Memory is bounded: at most `cap` keys. A new key in a full table
 * reuses the least recently used one (whose counts are lost), so a
 * flood of distinct keys costs a bounded table, not memory; it can only
 * make the table forget the quietest keys early.
 *
 * Thread-safe: one mutex per table, held for a hash lookup and a few
 * additions; every call may run concurrently from any thread.
 */
#ifndef MERPATI_RATEWIN_H
#define MERPATI_RATEWIN_H

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MP_RATEWIN_SLOTS 8
#define MP_RATEWIN_RING (MP_RATEWIN_SLOTS + 1)
#define MP_RATEWIN_KEY_MAX 320	/* longer keys are compared on this prefix */

struct mp_ratewin_entry {
	struct mp_ratewin_entry *chain;		/* next in its hash bucket */
	struct mp_ratewin_entry *older, *newer;	/* least-recently-used list */
	long long last_slot;		/* newest slot number counted in */
	uint32_t ring[MP_RATEWIN_RING];	/* events per slot, by slot % RING */
	uint32_t hash;
	char key[];
};

struct mp_ratewin {
	pthread_mutex_t lock;
	long long slot_ms;		/* window / MP_RATEWIN_SLOTS, >= 1 */
	size_t cap, n, nbuckets;	/* nbuckets: a power of two */
	struct mp_ratewin_entry **buckets;
	struct mp_ratewin_entry *newest, *oldest;
	unsigned long long evictions;	/* keys forgotten to make room */
	long long (*clock_ms)(void *arg);	/* tests inject a clock */
	void *clock_arg;
};

/* CLOCK_MONOTONIC in milliseconds: wall clock steps move no window. */
static inline long long
mp_ratewin_monotonic_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A table for windows of window_ms (>= 1) holding at most cap (>= 1)
 * keys. NULL when out of memory.
 */
static inline struct mp_ratewin *
mp_ratewin_new(long long window_ms, size_t cap)
{
	struct mp_ratewin *w = calloc(1, sizeof(*w));
	size_t nb = 16;

	if (w == NULL)
		return NULL;
	while (nb < cap && nb < ((size_t)1 << 24))
		nb <<= 1;
	w->buckets = calloc(nb, sizeof(*w->buckets));
	if (w->buckets == NULL) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->nbuckets = nb;
	w->cap = cap ? cap : 1;
	w->slot_ms = window_ms / MP_RATEWIN_SLOTS;
	if (w->slot_ms < 1)
		w->slot_ms = 1;
	w->clock_ms = mp_ratewin_monotonic_ms;
	return w;
}

/* Replace the clock (unit tests); call before the table is shared. */
static inline void
mp_ratewin_set_clock(struct mp_ratewin *w, long long (*clock_ms)(void *),
    void *arg)
{
	w->clock_ms = clock_ms;
	w->clock_arg = arg;
}

static inline void
mp_ratewin_free(struct mp_ratewin *w)
{
	struct mp_ratewin_entry *e, *next;

	if (w == NULL)
		return;
	for (e = w->newest; e != NULL; e = next) {
		next = e->older;
		free(e);
	}
	pthread_mutex_destroy(&w->lock);
	free(w->buckets);
	free(w);
}

/* FNV-1a over at most MP_RATEWIN_KEY_MAX octets. */
static inline uint32_t
mp_ratewin_hash(const char *key, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h;
}

static inline size_t
mp_ratewin_keylen(const char *key)
{
	size_t len = strlen(key);

	return len > MP_RATEWIN_KEY_MAX ? MP_RATEWIN_KEY_MAX : len;
}

static inline void
mp_ratewin_unlink_lru(struct mp_ratewin *w, struct mp_ratewin_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		w->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		w->oldest = e->newer;
	e->older = e->newer = NULL;
}

static inline void
mp_ratewin_push_newest(struct mp_ratewin *w, struct mp_ratewin_entry *e)
{
	e->older = w->newest;
	e->newer = NULL;
	if (w->newest)
		w->newest->newer = e;
	w->newest = e;
	if (w->oldest == NULL)
		w->oldest = e;
}

static inline void
mp_ratewin_unlink_chain(struct mp_ratewin *w, struct mp_ratewin_entry *e)
{
	struct mp_ratewin_entry **p = &w->buckets[e->hash & (w->nbuckets - 1)];

	while (*p != NULL && *p != e)
		p = &(*p)->chain;
	if (*p == e)
		*p = e->chain;
}

/* Make room for one more key: forget the least recently used. */
static inline void
mp_ratewin_evict(struct mp_ratewin *w)
{
	struct mp_ratewin_entry *e = w->oldest;

	if (e == NULL)
		return;
	mp_ratewin_unlink_chain(w, e);
	mp_ratewin_unlink_lru(w, e);
	free(e);
	w->n--;
	w->evictions++;
}

/* The entry for key, created (slots empty) when create is set; most
 * recently used from now on. NULL when absent or out of memory. */
static inline struct mp_ratewin_entry *
mp_ratewin_find(struct mp_ratewin *w, const char *key, int create,
    long long slot)
{
	size_t len = mp_ratewin_keylen(key);
	uint32_t h = mp_ratewin_hash(key, len);
	struct mp_ratewin_entry **head = &w->buckets[h & (w->nbuckets - 1)];
	struct mp_ratewin_entry *e;

	for (e = *head; e != NULL; e = e->chain)
		if (e->hash == h && strncmp(e->key, key, len) == 0 &&
		    e->key[len] == '\0')
			break;
	if (e == NULL && create) {
		if (w->n >= w->cap)
			mp_ratewin_evict(w);
		e = calloc(1, sizeof(*e) + len + 1);
		if (e == NULL)
			return NULL;
		memcpy(e->key, key, len);
		e->hash = h;
		e->last_slot = slot;
		e->chain = *head;
		*head = e;
		w->n++;
	} else if (e != NULL) {
		mp_ratewin_unlink_lru(w, e);
	}
	if (e != NULL)
		mp_ratewin_push_newest(w, e);
	return e;
}

/* Move e's ring up to slot: slots that passed since are emptied. */
static inline void
mp_ratewin_advance(struct mp_ratewin_entry *e, long long slot)
{
	if (slot <= e->last_slot)
		return;
	if (slot - e->last_slot >= MP_RATEWIN_RING)
		memset(e->ring, 0, sizeof(e->ring));
	else
		for (long long s = e->last_slot + 1; s <= slot; s++)
			e->ring[s % MP_RATEWIN_RING] = 0;
	e->last_slot = slot;
}

static inline unsigned long
mp_ratewin_sum(const struct mp_ratewin_entry *e)
{
	unsigned long sum = 0;

	for (size_t i = 0; i < MP_RATEWIN_RING; i++)
		sum += e->ring[i];
	return sum;
}

static inline long long
mp_ratewin_slot_now(const struct mp_ratewin *w)
{
	long long now = w->clock_ms(w->clock_arg);

	return (now < 0 ? 0 : now) / w->slot_ms;
}

/*
 * Count one event for key if that keeps its count within limit: 1 when
 * counted, 0 when the key already has limit events in the window
 * (nothing counted). Out of memory counts nothing and returns 1: a
 * limiter that cannot remember must not refuse everyone.
 */
static inline int
mp_ratewin_take(struct mp_ratewin *w, const char *key, unsigned long limit)
{
	int taken = 1;

	pthread_mutex_lock(&w->lock);
	long long slot = mp_ratewin_slot_now(w);
	struct mp_ratewin_entry *e = mp_ratewin_find(w, key, 1, slot);
	if (e != NULL) {
		mp_ratewin_advance(e, slot);
		if (mp_ratewin_sum(e) >= limit)
			taken = 0;
		else
			e->ring[slot % MP_RATEWIN_RING]++;
	}
	pthread_mutex_unlock(&w->lock);
	return taken;
}

/* Undo one mp_ratewin_take of key (the newest event still counted),
 * e.g. a reserved AUTH attempt that succeeded. */
static inline void
mp_ratewin_give(struct mp_ratewin *w, const char *key)
{
	pthread_mutex_lock(&w->lock);
	long long slot = mp_ratewin_slot_now(w);
	struct mp_ratewin_entry *e = mp_ratewin_find(w, key, 0, slot);
	if (e != NULL) {
		mp_ratewin_advance(e, slot);
		for (long long s = slot; s >= 0 && s > slot - MP_RATEWIN_RING;
		    s--) {
			uint32_t *n = &e->ring[s % MP_RATEWIN_RING];
			if (*n > 0) {
				(*n)--;
				break;
			}
		}
	}
	pthread_mutex_unlock(&w->lock);
}

/* Events of key in the window now (0 for an unknown key). */
static inline unsigned long
mp_ratewin_count(struct mp_ratewin *w, const char *key)
{
	unsigned long n = 0;

	pthread_mutex_lock(&w->lock);
	long long slot = mp_ratewin_slot_now(w);
	struct mp_ratewin_entry *e = mp_ratewin_find(w, key, 0, slot);
	if (e != NULL) {
		mp_ratewin_advance(e, slot);
		n = mp_ratewin_sum(e);
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* Keys held now (at most the cap). */
static inline size_t
mp_ratewin_keys(struct mp_ratewin *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->n;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/*
 * The key for a client address: an IPv4 address as it is, an IPv6
 * address as its /64 ("2001:db8:1:2::/64"), an IPv4-mapped one as
 * its IPv4 address, since one host commonly
 * holds a whole /64 and could otherwise step around any limit. Text
 * that is no address is used as it is. Returns buf.
 */
static inline char *
mp_ratewin_ip_key(const char *addr, char *buf, size_t size)
{
	unsigned char a6[16];
	char text[INET6_ADDRSTRLEN];

	static const unsigned char v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (strchr(addr, ':') != NULL && inet_pton(AF_INET6, addr, a6) == 1 &&
	    memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
		inet_ntop(AF_INET, a6 + 12, text, sizeof(text));
		snprintf(buf, size, "%s", text);
	} else if (strchr(addr, ':') != NULL &&
	    inet_pton(AF_INET6, addr, a6) == 1) {
		memset(a6 + 8, 0, 8);
		inet_ntop(AF_INET6, a6, text, sizeof(text));
		snprintf(buf, size, "%s/64", text);
	} else {
		snprintf(buf, size, "%s", addr);
	}
	return buf;
}

#endif
