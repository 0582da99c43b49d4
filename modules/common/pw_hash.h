/*
 * modules/common/pw_hash.h - password hashes (crypt_r) and the login
 * cache shared by auth_sqlite and auth_pgsql (pw_hash.c).
 */
#ifndef MERPATI_COMMON_PW_HASH_H
#define MERPATI_COMMON_PW_HASH_H

#include <pthread.h>
#include <time.h>

/* A new hash of password (yescrypt, else sha512-crypt); NULL on
 * failure. Caller frees. */
char *pw_hash_new(const char *password);
/* 1 password matches hash (constant-time compare), 0 not, -1 no memory. */
int pw_hash_check(const char *password, const char *hash);
/* A hash of a random password, checked against for unknown users so
 * that timing does not reveal who exists; NULL on failure. Caller frees. */
char *pw_hash_dummy(void);

#define LOGIN_CACHE_SLOTS 4096

struct login_cache {
	pthread_mutex_t lock;
	long long ttl;			/* seconds; 0: off */
	unsigned char key[32];
	struct {
		unsigned char mac[32];
		time_t at;
	} slot[LOGIN_CACHE_SLOTS];
};

/* Key drawn at random; no key turns the cache off. */
void login_cache_init(struct login_cache *c, long long ttl);
void login_cache_fini(struct login_cache *c);
/* 1 when (address, stored hash, password) was verified less than ttl
 * ago. The stored hash is part of the name, so a changed password
 * misses at once. */
int login_cache_hit(struct login_cache *c, const char *address,
    const char *hash, const char *password);
void login_cache_put(struct login_cache *c, const char *address,
    const char *hash, const char *password);

/*
 * A login once the module has looked address up: hash is its stored
 * hash, NULL for an unknown user (then dummy_hash is checked instead,
 * for the same time either way). The cache is asked first and told of
 * a success. 1 match, 0 not, -1 out of memory.
 */
int pw_verify(struct login_cache *c, const char *address, const char *hash,
    const char *dummy_hash, const char *password);

#endif
