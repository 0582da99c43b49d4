/*
 * core/host.c - the host table handed to modules (struct mp_host).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "runner.h"
#include "settings.h"
#include "util.h"

static void *host_alloc(size_t size) { return malloc(size ? size : 1); }
static void host_free(void *p) { free(p); }
static const char *host_hostname(void) { return mp_core.server.hostname; }
static time_t host_now(void) { return time(NULL); }

static const struct mp_auth *
host_auth(void)
{
	return mp_core.auth.ops ? &mp_core.auth : NULL;
}

static int
copy_reader(struct mp_qwriter *w, struct mp_reader *msg)
{
	char buf[16384];
	ssize_t n;

	while ((n = msg->read(msg, buf, sizeof(buf))) > 0)
		if (mp_queue_write(w, buf, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

static int
host_queue_inject(const char *sender, const char *const *rcpts, size_t nrcpt,
    struct mp_reader *msg, char *id_r, size_t id_size, const char **error_r)
{
	struct mp_qmsg env = { 0 };
	struct mp_qwriter *w;
	char id[MP_QID_SIZE];

	env.sender = (char *)sender;
	env.rcpts = (char **)rcpts;
	env.nrcpt = nrcpt;
	env.arrival = time(NULL);
	env.helo = (char *)"";
	env.client = (char *)"";
	env.auth_user = (char *)"";
	w = mp_queue_begin(mp_core.queue_dir, &env, id);
	if (w == NULL) {
		*error_r = errno == EINVAL ? "bad envelope" :
		    "cannot create queue file";
		return MP_ERROR;
	}
	if (copy_reader(w, msg) < 0) {
		mp_queue_abort(w);
		*error_r = "cannot write queue file";
		return MP_TEMPFAIL;
	}
	if (mp_queue_commit(w) < 0) {
		*error_r = "cannot commit queue file";
		return MP_TEMPFAIL;
	}
	if (id_r && id_size)
		mp_strlcpy(id_r, id, id_size);
	mp_runner_notify(id);
	return MP_OK;
}

const struct mp_host mp_host_table = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_host),
	.log = mp_log,
	.log_errno = mp_log_errno,
	.conf_options = mp_cfg_options,
	.alloc = host_alloc,
	.free = host_free,
	.hostname = host_hostname,
	.now = host_now,
	.is_local_domain = mp_core_is_local_domain,
	.queue_inject = host_queue_inject,
	.auth = host_auth,
};
