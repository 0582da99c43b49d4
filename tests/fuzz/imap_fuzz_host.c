/*
 * tests/fuzz/imap_fuzz_host.c - the IMAP fuzz targets' host (see
 * imap_fuzz_host.h): mock_host with a memory connection, the in-memory
 * store, one known user, and the core's base64 for AUTHENTICATE PLAIN.
 * Everything a session touches is made and freed per input, so runs
 * are independent and LeakSanitizer sees what a session leaks.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <merpati/merpati.h>

#include "imap_fuzz_host.h"
#include "mem_store.h"
#include "../../core/util.h"

extern const struct mp_module merpati_module;	/* the IMAP module's */

static struct mp_store *current_store;

static const struct mp_store *
fuzz_store(void)
{
	return current_store;
}

static int
verify(void *ctx, const char *address, const char *password, const char **error_r)
{
	(void)ctx;
	(void)error_r;
	return strcasecmp(address, FUZZ_USER) == 0 && strcmp(password, FUZZ_PASS) == 0;
}

static const struct mp_auth_ops auth_ops = {
	.struct_size = sizeof(struct mp_auth_ops),
	.verify = verify,
};
static const struct mp_auth fuzz_auth_provider = { sizeof(fuzz_auth_provider), &auth_ops, NULL };

static const struct mp_auth *
fuzz_auth(void)
{
	return &fuzz_auth_provider;
}

/*
 * A failed LOGIN waits (imap_auth.c: poll(NULL, 0, seconds)) to slow
 * password guessing; in a fuzzer that is seconds per input for nothing.
 * Such a pure sleep returns at once here; any poll on descriptors is
 * the real one.
 */
int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	if (nfds == 0)
		return 0;
	struct timespec ts = { timeout / 1000, (long)(timeout % 1000) * 1000000 };
	return (int)syscall(SYS_ppoll, fds, nfds, timeout < 0 ? NULL : &ts, NULL, 0);
}

struct mp_conn *
imap_fuzz_session(const char *const *conf_kv, const void *input, size_t len, size_t keep,
    mock_conn_refill *refill, void *arg)
{
	static struct mp_host host;
	struct mp_conf conf = { conf_kv, NULL };
	const char *err = NULL;
	struct mp_conn *c;
	void *ctx;

	if (host.struct_size == 0) {
		host = mock_host;
		mock_conn_host(&host);
		host.store = fuzz_store;
		host.auth = fuzz_auth;
		host.base64_decode = mp_base64_decode;
		host.base64_encode = mp_base64_encode;
	}
	if (merpati_module.init(&host, &conf, &ctx, &err) != MP_OK)
		abort();
	current_store = mem_store_new(FUZZ_USER);
	c = mock_conn_new(input, len, keep);
	mock_conn_source(c, refill, arg);
	merpati_module.protocol->session(ctx, c);
	mem_store_free(current_store);
	current_store = NULL;
	merpati_module.fini(ctx);
	return c;
}
