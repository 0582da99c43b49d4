/*
 * modules/imap/imap_cache.c - rendered ENVELOPEs shared by every session
 * of the process (the module's context holds it).
 *
 * A message under one UIDVALIDITY never changes (RFC 3501 2.3.1.1, and
 * point 1 of the store contract in merpati/store.h: a UID names one
 * message, whose bytes never change, and is never reused), so (user,
 * folder, UIDVALIDITY, UID) names its envelope for good and an entry is
 * never stale. Both stores give a recreated folder a new UIDVALIDITY
 * (greater than any the mailbox used), so a folder deleted and created
 * again under the same name cannot meet old entries. (import, which
 * keeps UIDVALIDITY, fills the store `merpati mailbox migrate` moves to,
 * which the daemon serves only after a restart, with an empty cache.)
 * The cache only forgets: when it reaches its budget it is emptied at
 * once, which keeps it simple and bounded.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"

#define BUCKETS 65536

struct centry {
	struct centry *next;
	uint64_t hash;
	size_t keylen, len;
	char data[];		/* key, then the envelope text */
};

struct imap_cache {
	struct centry **buckets;
	size_t used, budget;
	pthread_rwlock_t lock;
};

struct imap_cache *
imap_cache_new(size_t budget)
{
	struct imap_cache *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->buckets = calloc(BUCKETS, sizeof(*c->buckets))) == NULL) {
		free(c);
		return NULL;
	}
	c->budget = budget;
	pthread_rwlock_init(&c->lock, NULL);
	return c;
}

/* FNV-1a over the folder key and the two numbers. */
static uint64_t
hash_of(const char *key, size_t keylen)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < keylen; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
	return h;
}

static size_t
make_key(char *buf, size_t size, const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	size_t n = strlen(folder);

	if (n + 9 > size)
		return 0;
	memcpy(buf, folder, n);
	buf[n] = '\0';
	memcpy(buf + n + 1, &uidvalidity, 4);
	memcpy(buf + n + 5, &uid, 4);
	return n + 9;
}

static struct centry *
find(struct imap_cache *c, uint64_t h, const char *key, size_t keylen)
{
	for (struct centry *e = c->buckets[h % BUCKETS]; e; e = e->next)
		if (e->hash == h && e->keylen == keylen && memcmp(e->data, key, keylen) == 0)
			return e;
	return NULL;
}

char *
imap_cache_get(struct imap_cache *c, const char *folder, uint32_t uidvalidity, uint32_t uid, size_t *len_r)
{
	char key[700], *copy = NULL;
	size_t keylen = make_key(key, sizeof(key), folder, uidvalidity, uid);
	uint64_t h = hash_of(key, keylen);
	struct centry *e;

	if (c == NULL || keylen == 0)
		return NULL;
	pthread_rwlock_rdlock(&c->lock);
	if ((e = find(c, h, key, keylen)) != NULL && (copy = malloc(e->len + 1)) != NULL) {
		memcpy(copy, e->data + keylen, e->len);
		copy[e->len] = '\0';
		*len_r = e->len;
	}
	pthread_rwlock_unlock(&c->lock);
	return copy;
}

static void
empty_all(struct imap_cache *c)
{
	for (size_t i = 0; i < BUCKETS; i++)
		while (c->buckets[i]) {
			struct centry *e = c->buckets[i];
			c->buckets[i] = e->next;
			free(e);
		}
	c->used = 0;
}

void
imap_cache_put(struct imap_cache *c, const char *folder, uint32_t uidvalidity, uint32_t uid, const char *text,
    size_t len)
{
	char key[700];
	size_t keylen = make_key(key, sizeof(key), folder, uidvalidity, uid);
	uint64_t h = hash_of(key, keylen);
	struct centry *e;

	size_t size = sizeof(*e) + keylen + len;

	if (c == NULL || keylen == 0 || size > c->budget || (e = malloc(size)) == NULL)
		return;
	e->hash = h;
	e->keylen = keylen;
	e->len = len;
	memcpy(e->data, key, keylen);
	memcpy(e->data + keylen, text, len);
	pthread_rwlock_wrlock(&c->lock);
	if (find(c, h, key, keylen) != NULL) {
		free(e);	/* another session was first */
	} else {
		if (c->used + size > c->budget)
			empty_all(c);
		e->next = c->buckets[h % BUCKETS];
		c->buckets[h % BUCKETS] = e;
		c->used += size;
	}
	pthread_rwlock_unlock(&c->lock);
}

void
imap_cache_free(struct imap_cache *c)
{
	if (c == NULL)
		return;
	empty_all(c);
	pthread_rwlock_destroy(&c->lock);
	free(c->buckets);
	free(c);
}
