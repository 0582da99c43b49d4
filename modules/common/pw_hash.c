/*
 * modules/common/pw_hash.c - crypt(3) hashes and the login cache, one
 * copy for auth_sqlite and auth_pgsql (linked into both through
 * <m>_SRCS in Makefile.in).
 *
 * Hashes are $y$ yescrypt when libcrypt has it, $6$ sha512-crypt
 * otherwise, so users move between the two modules by copying rows.
 *
 * The cache remembers a verified login as an HMAC-SHA256, under a key
 * drawn at start, of (address, stored hash, password): the next login
 * with the same password against the same stored hash skips crypt_r
 * (yescrypt costs ~90 ms of CPU). The caller reads the stored hash
 * from its database on every login, so a password changed anywhere
 * (on any node, for auth_pgsql) changes the name and misses at once;
 * failures are never cached.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pw_hash.h"

char *
pw_hash_new(const char *password)
{
	static const char *const methods[] = { "$y$", "$6$" };
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	char *out = NULL;

	for (size_t i = 0; cd && out == NULL && i < 2; i++) {
		if (crypt_gensalt_rn(methods[i], 0, NULL, 0, salt, sizeof(salt)) == NULL)
			continue;
		const char *h = crypt_r(password, salt, cd);
		if (h && h[0] == '$')
			out = strdup(h);
	}
	free(cd);
	return out;
}

int
pw_hash_check(const char *password, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h = cd ? crypt_r(password, hash, cd) : NULL;
	size_t len = strlen(hash);
	unsigned char diff = 0;

	if (cd == NULL)
		return -1;
	if (h == NULL || h[0] != '$' || strlen(h) != len) {
		free(cd);
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(h[i] ^ hash[i]);
	free(cd);
	return diff == 0;
}

char *
pw_hash_dummy(void)
{
	unsigned char rnd[16];
	char dummy[2 * sizeof(rnd) + 1];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 7, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(dummy + 2 * i, 3, "%02x", rnd[i]);
	return pw_hash_new(dummy);
}

void
login_cache_init(struct login_cache *c, long long ttl)
{
	memset(c->slot, 0, sizeof(c->slot));
	pthread_mutex_init(&c->lock, NULL);
	c->ttl = ttl;
	if (getrandom(c->key, sizeof(c->key), 0) != sizeof(c->key))
		c->ttl = 0;
}

void
login_cache_fini(struct login_cache *c)
{
	OPENSSL_cleanse(c->key, sizeof(c->key));
	pthread_mutex_destroy(&c->lock);
}

/* The cache's name for the login; -1 when out of memory (then it
 * names nothing and must not be used). */
static int
login_mac(const struct login_cache *c, const char *addr, const char *hash,
    const char *password, unsigned char mac[32])
{
	size_t la = strlen(addr) + 1, lh = strlen(hash) + 1, lp = strlen(password);
	unsigned char *buf = malloc(la + lh + lp + 1);
	unsigned int len = 32;

	if (buf == NULL)
		return -1;
	memcpy(buf, addr, la);
	memcpy(buf + la, hash, lh);
	memcpy(buf + la + lh, password, lp);
	HMAC(EVP_sha256(), c->key, sizeof(c->key), buf, la + lh + lp, mac, &len);
	OPENSSL_cleanse(buf, la + lh + lp);
	free(buf);
	return 0;
}

static size_t
slot_of(const unsigned char mac[32])
{
	return (size_t)(mac[0] | mac[1] << 8) % LOGIN_CACHE_SLOTS;
}

int
login_cache_hit(struct login_cache *c, const char *address, const char *hash,
    const char *password)
{
	unsigned char mac[32], diff = 0;
	time_t now = time(NULL);
	int fresh;

	if (c->ttl <= 0 || login_mac(c, address, hash, password, mac) < 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	size_t i = slot_of(mac);
	for (size_t k = 0; k < 32; k++)
		diff |= (unsigned char)(c->slot[i].mac[k] ^ mac[k]);
	fresh = c->slot[i].at != 0 && now >= c->slot[i].at &&
	    now - c->slot[i].at < c->ttl;
	pthread_mutex_unlock(&c->lock);
	return diff == 0 && fresh;
}

void
login_cache_put(struct login_cache *c, const char *address, const char *hash,
    const char *password)
{
	unsigned char mac[32];

	if (c->ttl <= 0 || login_mac(c, address, hash, password, mac) < 0)
		return;
	pthread_mutex_lock(&c->lock);
	size_t i = slot_of(mac);
	memcpy(c->slot[i].mac, mac, 32);
	c->slot[i].at = time(NULL);
	pthread_mutex_unlock(&c->lock);
}

int
pw_verify(struct login_cache *c, const char *address, const char *hash,
    const char *dummy_hash, const char *password)
{
	if (hash != NULL && login_cache_hit(c, address, hash, password))
		return 1;
	int match = pw_hash_check(password, hash != NULL ? hash : dummy_hash);
	if (match < 0)
		return -1;
	if (hash != NULL && match)
		login_cache_put(c, address, hash, password);
	return hash != NULL && match;
}
