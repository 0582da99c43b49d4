/*
 * header_stamp.c - an example third-party merpati module (filter kind).
 *
 * It adds "X-Stamp: <text>" to every accepted message, and refuses
 * messages containing the `refuse` string (when set) with 554 5.7.1.
 * It builds out of tree against the installed headers:
 *     cc -shared -fPIC $(pkg-config --cflags merpati) -o header_stamp.so header_stamp.c
 * and loads with
 *     modules = { header_stamp = { path = "/path/header_stamp.so"; text = "hello"; }; };
 */
#include <stddef.h>
#include <string.h>

#include <merpati/merpati.h>

struct stamp {
	const struct mp_host *host;
	const char *text;	/* owned by the host, valid until fini */
	const char *refuse;	/* "" = refuse nothing */
};

static const struct mp_option stamp_options[] = {
	MP_OPT("text", MP_OPT_STRING, offsetof(struct stamp, text), NULL, 0, 0),
	MP_OPT("refuse", MP_OPT_STRING, offsetof(struct stamp, refuse), "", 0, 0),
	MP_OPT_END
};

/* 1 if needle occurs in the stream; reads in bounded chunks, so big
 * messages are never held in memory. */
static int
stream_contains(struct mp_reader *r, const char *needle)
{
	size_t nlen = strlen(needle);
	char buf[8192 + 256];
	size_t keep = 0;
	ssize_t n;

	if (nlen == 0 || nlen > 256)
		return 0;
	while ((n = r->read(r, buf + keep, 8192)) > 0) {
		size_t len = keep + (size_t)n;
		if (memmem(buf, len, needle, nlen))
			return 1;
		keep = nlen - 1 < len ? nlen - 1 : len;
		memmove(buf, buf + len - keep, keep);
	}
	return 0;
}

static int
stamp_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *txn, const char *name, const char *value),
    struct mp_status *status_r)
{
	struct stamp *s = ctx;

	if (s->refuse[0] && stream_contains(msg, s->refuse)) {
		mp_status_set(status_r, 554, "5.7.1", "");
		strncpy(status_r->text, "refused by header_stamp", sizeof(status_r->text) - 1);
		s->host->log(MP_LOG_NOTICE, "refused a message from <%s>", env->sender);
		return MP_PERMFAIL;
	}
	return add_header(txn, "X-Stamp", s->text) == MP_OK ? MP_OK : MP_TEMPFAIL;
}

static int
stamp_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct stamp *s = host->alloc(sizeof(*s));

	if (s == NULL) {
		*error_r = "header_stamp: out of memory";
		return MP_ERROR;
	}
	s->host = host;
	if (host->conf_options(conf, stamp_options, s, error_r) != MP_OK) {
		host->free(s);
		return MP_ERROR;
	}
	*ctx_r = s;
	return MP_OK;
}

static void
stamp_fini(void *ctx)
{
	struct stamp *s = ctx;

	s->host->free(s);
}

static const struct mp_filter_ops stamp_filter = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = stamp_end_of_data,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "header_stamp",
	.kinds = MP_KIND_FILTER,
	.init = stamp_init,
	.fini = stamp_fini,
	.filter = &stamp_filter,
};
