/*
 * tests/unit/test_auth_sqlite.c - users in SQLite: add, exists, verify,
 * list, passwd, del; hashes not passwords; malformed input; the file's
 * mode; concurrent verification.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mock_host.h"
#include "test.h"

extern const struct mp_module merpati_module;

static char dir[] = "/tmp/merpati-test-auth-XXXXXX";
static void *ctx;
static const struct mp_auth_ops *ops;

static void
collect(void *arg, const char *address)
{
	strcat(arg, address);
	strcat(arg, " ");
}

static void *
verify_many(void *arg)
{
	const char *err;
	long ok = 0;

	(void)arg;
	for (int i = 0; i < 10; i++)
		ok += ops->verify(ctx, "alice@example.test", "right", &err) == 1 &&
		    ops->verify(ctx, "alice@example.test", "wrong", &err) == 0;
	return (void *)ok;
}

int
main(void)
{
	char db[256], list[512] = "", cmd[300];
	const char *kv[] = { "database", "sub/users.db", NULL }, *err = NULL;
	struct mp_conf conf = { kv, dir };
	struct stat st;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/sub/users.db", dir);
	CHECK("init creates the database and its directory",
	    merpati_module.init(&mock_host, &conf, &ctx, &err) == MP_OK && access(db, F_OK) == 0);
	CHECK("database mode 0600", stat(db, &st) == 0 && (st.st_mode & 0777) == 0600);
	ops = merpati_module.auth;
	CHECK("add", ops->user_add(ctx, "Alice@Example.test", "right", &err) == MP_OK);
	CHECK("add bob", ops->user_add(ctx, "bob@example.test", "pw", &err) == MP_OK);
	CHECK("duplicate add declined", ops->user_add(ctx, "alice@example.test", "x", &err) == MP_DECLINED &&
	    strstr(err, "exists"));
	CHECK("exists (any case)", ops->user_exists(ctx, "ALICE@example.test", &err) == 1);
	CHECK("unknown does not exist", ops->user_exists(ctx, "carol@example.test", &err) == 0);
	CHECK("verify right", ops->verify(ctx, "alice@example.test", "right", &err) == 1);
	CHECK("verify wrong", ops->verify(ctx, "alice@example.test", "Right", &err) == 0);
	CHECK("verify unknown user", ops->verify(ctx, "nobody@example.test", "right", &err) == 0);
	CHECK("list in order", ops->user_list(ctx, collect, list, &err) == MP_OK);
	CHECK_STR("listed", list, "alice@example.test bob@example.test ");
	static const char *const bad[] = { "", "noat", "a@b@c", "@x", "x@", "a b@c", "a\n@c" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "malformed address %zu refused", i);
		CHECK(name, ops->user_add(ctx, bad[i], "pw", &err) == MP_ERROR);
	}
	CHECK("empty password refused", ops->user_add(ctx, "e@example.test", "", &err) == MP_ERROR);
	FILE *f = fopen(db, "rb");
	char *data = calloc(1, 1 << 20);
	size_t n = fread(data, 1, (1 << 20) - 1, f);
	fclose(f);
	CHECK("no clear-text password on disk", memmem(data, n, "right", 5) == NULL);
	CHECK("crypt hashes on disk", memmem(data, n, "$y$", 3) || memmem(data, n, "$6$", 3));
	free(data);
	pthread_t t[4];
	long all = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, verify_many, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		all += (long)r;
	}
	CHECK("concurrent verification", all == 40);
	CHECK("passwd", ops->user_passwd(ctx, "alice@example.test", "new", &err) == MP_OK &&
	    ops->verify(ctx, "alice@example.test", "new", &err) == 1 &&
	    ops->verify(ctx, "alice@example.test", "right", &err) == 0);
	CHECK("passwd of unknown declined", ops->user_passwd(ctx, "zz@example.test", "x", &err) == MP_DECLINED);
	CHECK("wrong password after a cached right one", ops->verify(ctx, "alice@example.test",
	    "new", &err) == 1 && ops->verify(ctx, "alice@example.test", "new ", &err) == 0);
	CHECK("bob verified (and cached)", ops->verify(ctx, "bob@example.test", "pw", &err) == 1);
	CHECK("del", ops->user_del(ctx, "bob@example.test", &err) == MP_OK &&
	    ops->user_exists(ctx, "bob@example.test", &err) == 0);
	CHECK("a deleted user's cached login fails", ops->verify(ctx, "bob@example.test", "pw",
	    &err) == 0);
	CHECK("del unknown declined", ops->user_del(ctx, "bob@example.test", &err) == MP_DECLINED);
	merpati_module.fini(ctx);
	const char *nocache_kv[] = { "database", "sub/users.db", "verify_cache", "0", NULL };
	struct mp_conf nocache = { nocache_kv, dir };
	CHECK("verify_cache = 0: verification still works",
	    merpati_module.init(&mock_host, &nocache, &ctx, &err) == MP_OK &&
	    ops->verify(ctx, "alice@example.test", "new", &err) == 1 &&
	    ops->verify(ctx, "alice@example.test", "new", &err) == 1 &&
	    ops->verify(ctx, "alice@example.test", "right", &err) == 0);
	merpati_module.fini(ctx);
	const char *bad_kv[] = { "database", "sub/users.db", "verify_cache", "2d", NULL };
	struct mp_conf badconf = { bad_kv, dir };
	CHECK("verify_cache over a day refused",
	    merpati_module.init(&mock_host, &badconf, &ctx, &err) == MP_ERROR);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
