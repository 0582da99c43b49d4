/*
 * tests/unit/test_auth_pgsql.c - auth_pgsql without a database (the
 * e2e test tests/e2e/test_auth_pgsql.py runs it on a real PostgreSQL):
 * config errors (no conninfo, a relative or world-readable
 * password_file), a start while PostgreSQL is unreachable, every call
 * then a -1 with a reason (never "no" or "wrong password"), the
 * reconnect backoff answering at once inside its wait and trying again
 * after it, and the login cache named by the stored hash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "mock_host.h"
#include "test.h"
#include "../../modules/common/pw_hash.h"

extern const struct mp_module merpati_module;

static char dir[] = "/tmp/merpati-test-auth-pgsql-XXXXXX";

/* A loopback TCP port nothing listens on (bound, then closed). */
static int
closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int
init_with(const char **kv, void **ctx_r, const char **err_r)
{
	struct mp_conf conf = { kv, dir };

	*err_r = NULL;
	return merpati_module.init(&mock_host, &conf, ctx_r, err_r);
}

static void
test_config_errors(void)
{
	const char *kv_none[] = { NULL }, *err;
	const char *kv_rel[] = { "conninfo", "dbname=x", "password_file", "db.pass", NULL };
	char path[300];
	void *ctx = NULL;

	CHECK("config: conninfo is required",
	    init_with(kv_none, &ctx, &err) == MP_ERROR && err && strstr(err, "conninfo"));
	CHECK("config: password_file must be absolute",
	    init_with(kv_rel, &ctx, &err) == MP_ERROR && err && strstr(err, "absolute"));
	snprintf(path, sizeof(path), "%s/open.pass", dir);
	FILE *f = fopen(path, "w");
	fputs("secret\n", f);
	fclose(f);
	chmod(path, 0644);
	const char *kv_open[] = { "conninfo", "dbname=x", "password_file", path, NULL };
	CHECK("config: a password_file others can read is refused",
	    init_with(kv_open, &ctx, &err) == MP_ERROR && err && strstr(err, "others"));
	const char *kv_unknown[] = { "conninfo", "dbname=x", "pool", "3", NULL };
	CHECK("config: unknown keys are refused",
	    init_with(kv_unknown, &ctx, &err) == MP_ERROR);
}

static void
test_unreachable(void)
{
	char conninfo[128], path[300];
	const char *err = NULL;
	void *ctx = NULL;
	char **targets = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/db.pass", dir);
	FILE *f = fopen(path, "w");
	fputs("secret\n", f);
	fclose(f);
	chmod(path, 0600);
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=mail",
	    closed_port());
	const char *kv[] = { "conninfo", conninfo, "password_file", path,
	    "pool_size", "2", NULL };
	CHECK("unreachable: the daemon still starts",
	    init_with(kv, &ctx, &err) == MP_OK && ctx != NULL);
	if (ctx == NULL)
		return;
	CHECK("unreachable: the start is logged",
	    strstr(mock_log_text(), "not reachable at start") != NULL);
	const struct mp_auth_ops *ops = merpati_module.auth;
	err = NULL;
	CHECK("unreachable: verify is -1 (temporary), not 0 (wrong password)",
	    ops->verify(ctx, "a@example.test", "pw", &err) == -1 && err &&
	    strstr(err, "unavailable"));
	/* Each failed attempt doubles the wait (100 ms up to 2 s): some call
	 * soon falls inside it and is answered without a connect. */
	int waited = 0;
	for (int i = 0; i < 6 && !waited; i++) {
		err = NULL;
		waited = ops->verify(ctx, "a@example.test", "pw", &err) == -1 && err &&
		    strstr(err, "reconnecting") != NULL;
	}
	CHECK("unreachable: inside the backoff no connect is tried", waited);
	CHECK("unreachable: user_exists is -1",
	    ops->user_exists(ctx, "a@example.test", &err) == -1);
	CHECK("unreachable: domain_exists is -1",
	    ops->domain_exists(ctx, "example.test", &err) == -1);
	CHECK("unreachable: alias_expand is -1 with nothing returned",
	    ops->alias_expand(ctx, "a@example.test", &targets, &n, &err) == -1 &&
	    targets == NULL && n == 0);
	CHECK("unreachable: user_add is MP_ERROR",
	    ops->user_add(ctx, "a@example.test", "pw", &err) == MP_ERROR);
	/* After the wait (at most 2 s) a real attempt is made again. */
	usleep(2100 * 1000);
	err = NULL;
	CHECK("unreachable: after the backoff a connect is tried again",
	    ops->user_exists(ctx, "a@example.test", &err) == -1 && err &&
	    strstr(err, "connect") != NULL);
	CHECK("unreachable: malformed addresses need no database",
	    ops->user_exists(ctx, "no-at-sign", &err) == 0 &&
	    ops->domain_exists(ctx, "a@b", &err) == 0);
	merpati_module.fini(ctx);
}

static void
test_login_cache(void)
{
	struct login_cache *c = calloc(1, sizeof(*c));
	char *h1 = pw_hash_new("pw"), *h2 = pw_hash_new("pw");

	CHECK("hash: crypt, not the password, salted",
	    h1 && h2 && h1[0] == '$' && strstr(h1, "pw") == NULL && strcmp(h1, h2) != 0);
	CHECK("hash: checks", pw_hash_check("pw", h1) == 1 && pw_hash_check("px", h1) == 0);
	login_cache_init(c, 3600);
	CHECK("cache: empty misses", !login_cache_hit(c, "a@x.test", h1, "pw"));
	login_cache_put(c, "a@x.test", h1, "pw");
	CHECK("cache: a verified login hits", login_cache_hit(c, "a@x.test", h1, "pw"));
	CHECK("cache: another password misses", !login_cache_hit(c, "a@x.test", h1, "px"));
	CHECK("cache: a changed stored hash (new password set) misses",
	    !login_cache_hit(c, "a@x.test", h2, "pw"));
	CHECK("cache: another user misses", !login_cache_hit(c, "b@x.test", h1, "pw"));
	login_cache_fini(c);
	login_cache_init(c, 0);
	login_cache_put(c, "a@x.test", h1, "pw");
	CHECK("cache: verify_cache = 0 turns it off", !login_cache_hit(c, "a@x.test", h1, "pw"));
	login_cache_fini(c);
	free(c);
	free(h1);
	free(h2);
}

int
main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_config_errors();
	test_unreachable();
	test_login_cache();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
