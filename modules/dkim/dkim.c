/*
 * dkim.c - the dkim module (filter kind): the glue between the engine
 * (dkim_lib.h) and the host's hooks.
 *
 *   end_of_data   inbound mail: every DKIM-Signature is verified (keys
 *                 through host->dns_lookup), the verdicts go into the
 *                 notes "dkim" and "dkim.domains" for DMARC and into the
 *                 dkim clause of the one Authentication-Results header
 *                 (../dmarc/authres.h).
 *   before_queue  submissions (authenticated or local) whose From domain
 *                 (else envelope sender domain) is in `sign` get a
 *                 DKIM-Signature per entry of that domain, over the
 *                 message as it will be queued.
 *
 * Settings:
 *   modules.dkim = {
 *     sign = ( { domain = "example.test"; selector = "s1";
 *                key = "dkim/example.test.s1.key"; } );
 *     verify = { allow_length = false; min_rsa_bits = 1024;
 *                max_signatures = 8; };
 *   };
 * Both are optional: `modules.dkim = { }` verifies and records only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/merpati.h>
#include <merpati/util.h>

#include "dkim_lib.h"
#include "../dmarc/authres.h"

/* Room for one DNS answer: a 64 KiB DNS message cannot carry more. */
#define DKIM_DNS_BUF 65536
#define DKIM_MAX_VERDICTS 16

struct dkim_sign_entry {
	const char *domain, *selector, *key;
	struct dkim_signer signer;
	int loaded;
};

struct dkim_verify_settings {
	int allow_length;
	long long min_rsa_bits;
	long long max_signatures;
};

struct dkim_module {
	const struct mp_host *host;
	struct dkim_verify_settings verify;
	struct dkim_sign_entry *signs;
	size_t nsigns;
};

#define V(f) offsetof(struct dkim_verify_settings, f)
static const struct mp_option dkim_verify_options[] = {
	MP_OPT("allow_length", MP_OPT_BOOL, V(allow_length), "false", 0, 0),
	MP_OPT("min_rsa_bits", MP_OPT_INT, V(min_rsa_bits), "1024", 1024, 8192),
	MP_OPT("max_signatures", MP_OPT_INT, V(max_signatures), "8", 1,
	    DKIM_MAX_VERDICTS),
	MP_OPT_END
};

#define S(f) offsetof(struct dkim_sign_entry, f)
static const struct mp_option dkim_sign_options[] = {
	MP_OPT("domain", MP_OPT_STRING, S(domain), NULL, 0, 0),
	MP_OPT("selector", MP_OPT_STRING, S(selector), NULL, 0, 0),
	MP_OPT("key", MP_OPT_PATH, S(key), NULL, 0, 0),
	MP_OPT_END
};

/* ---- DNS ------------------------------------------------------------------ */

/* The key record at name (dkim_txt_fn): the first TXT that starts like
 * a key record (or the first TXT at all) goes to out. */
static int
dkim_key_txt(void *ctx, const char *name, char *out, size_t size)
{
	const struct mp_host *host = ctx;
	struct mp_dns_answer a = { .struct_size = sizeof(a) };
	const unsigned char *data, *first = NULL;
	size_t off = 0, len, first_len = 0;
	int first_is_key = 0;
	unsigned char *buf;

	if (!MP_HOST_HAS(dns_lookup) || host->dns_lookup == NULL ||
	    (buf = malloc(DKIM_DNS_BUF)) == NULL)
		return -1;
	a.status = MP_DNS_TEMPFAIL;
	host->dns_lookup(name, MP_DNS_TXT, buf, DKIM_DNS_BUF, &a);
	while (a.status == MP_DNS_FOUND &&
	    mp_dns_next(buf, &a, &off, &data, &len)) {
		int is_key = len >= 7 && memcmp(data, "v=DKIM1", 7) == 0;

		if (first == NULL || (is_key && !first_is_key)) {
			first = data;
			first_len = len;
			first_is_key = is_key;
		}
	}
	if (first != NULL) {
		len = first_len < size - 1 ? first_len : size - 1;
		memcpy(out, first, len);
		out[len] = '\0';
	}
	free(buf);
	switch (a.status) {
	case MP_DNS_FOUND: return first != NULL ? 1 : 0;
	case MP_DNS_NXDOMAIN: case MP_DNS_NODATA: return 0;
	case MP_DNS_PERMFAIL: return -2;
	default: return -1;
	}
}

/* ---- verifying ------------------------------------------------------------ */

/* The notes for DMARC: "dkim" (pass when any signature passed, else the
 * first verdict, else none) and "dkim.domains" (the passing d=). */
static void
dkim_record_verdicts(const struct mp_host *host, struct mp_txn *txn,
    const struct dkim_verdict *v, size_t n)
{
	struct mp_str domains = { 0 };
	char clause[4096];
	const char *overall = n > 0 ? dkim_result_name(v[0].result) : "none";

	mp_str_put(&domains, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (v[i].result != DKIM_PASS)
			continue;
		overall = "pass";
		if (mp_words_find(domains.p, v[i].domain, strlen(v[i].domain)))
			continue;
		if (domains.len > 0)
			mp_str_putc(&domains, ' ');
		mp_str_puts(&domains, v[i].domain);
	}
	host->txn_note_set(txn, "dkim", overall);
	if (!domains.failed)
		host->txn_note_set(txn, "dkim.domains", domains.p);
	free(domains.p);
	dkim_auth_results(v, n, clause, sizeof(clause));
	authres_note(host, txn, "dkim", clause);
}

static void
dkim_verify_message(struct dkim_module *m, struct mp_txn *txn,
    const char *msg, size_t len)
{
	const struct mp_host *host = m->host;
	struct dkim_verify_opts opts = {
		.allow_length = m->verify.allow_length,
		.min_rsa_bits = (int)m->verify.min_rsa_bits,
		.now = host->now(),
		.max_sigs = (size_t)m->verify.max_signatures,
	};
	struct dkim_verdict *v = calloc(DKIM_MAX_VERDICTS, sizeof(*v));
	size_t n;

	if (v == NULL)
		return;
	n = dkim_verify(msg, len, &opts, dkim_key_txt, (void *)host, v,
	    DKIM_MAX_VERDICTS);
	for (size_t i = 0; i < n; i++)
		host->log(MP_LOG_INFO, "%s d=%s s=%s%s%s",
		    dkim_result_name(v[i].result), v[i].domain, v[i].selector,
		    v[i].reason[0] ? ": " : "", v[i].reason);
	dkim_record_verdicts(host, txn, v, n);
	free(v);
}

static int
dkim_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg,
    int (*add_header)(struct mp_txn *txn, const char *name, const char *value),
    struct mp_status *status_r)
{
	struct dkim_module *m = ctx;
	const struct mp_host *host = m->host;
	const struct mp_txn_info *info;
	char *text;
	size_t len;

	(void)env; (void)add_header; (void)status_r;
	if (!authres_host_ok(host) || (info = host->txn_info(txn)) == NULL)
		return MP_OK;
	if (info->submission || info->auth_user != NULL) {
		/* not verified: the header section is all we need */
		authres_clean(host, txn, msg);
		return MP_OK;
	}
	if ((text = authres_read_all(msg, &len)) == NULL) {
		host->log(MP_LOG_WARNING, "cannot read the message");
		return MP_OK;
	}
	authres_clean_text(host, txn, text, len);
	dkim_verify_message(m, txn, text, len);
	free(text);
	return MP_OK;
}

/* ---- signing -------------------------------------------------------------- */

/* 1 if some sign entry is for domain. */
static int
dkim_signs_for(const struct dkim_module *m, const char *domain)
{
	for (size_t i = 0; domain != NULL && i < m->nsigns; i++)
		if (strcasecmp(m->signs[i].domain, domain) == 0)
			return 1;
	return 0;
}

/* The domain to sign as: the message's From domain, else the envelope
 * sender's domain; NULL when neither is ours to sign. */
static const char *
dkim_sign_domain(const struct dkim_module *m, const char *msg, size_t len,
    const char *sender, char *from, size_t size)
{
	const char *at = sender != NULL ? strrchr(sender, '@') : NULL;

	if (authres_from_domain(msg, len, from, size) == 0 &&
	    dkim_signs_for(m, from))
		return from;
	return dkim_signs_for(m, at != NULL ? at + 1 : NULL) ? at + 1 : NULL;
}

/* Put the signature (a whole "DKIM-Signature: ...CRLF" line) on top. */
static void
dkim_insert_signature(const struct mp_host *host, struct mp_txn *txn,
    const char *header)
{
	const char *value = strchr(header, ':');
	size_t len;
	char *copy;

	if (value == NULL)
		return;
	value++;
	while (*value == ' ')
		value++;
	len = strlen(value);
	while (len > 0 && (value[len - 1] == '\r' || value[len - 1] == '\n'))
		len--;
	if ((copy = strndup(value, len)) == NULL)
		return;
	if (host->txn_header_insert(txn, 0, "DKIM-Signature", copy) != MP_OK)
		host->log(MP_LOG_ERR, "the host refused the signature");
	free(copy);
}

/* Sign with every entry of the domain (an RSA and an Ed25519 key may
 * both sign, RFC 8463 5), each signature over the message as queued. */
static void
dkim_sign_message(struct dkim_module *m, struct mp_txn *txn,
    const struct mp_envelope *env, struct mp_reader *msg)
{
	const struct mp_host *host = m->host;
	const char *domain;
	char *text, from[256];
	size_t len;

	if ((text = authres_read_all(msg, &len)) == NULL) {
		host->log(MP_LOG_WARNING, "cannot read the message");
		return;
	}
	domain = dkim_sign_domain(m, text, len, env != NULL ? env->sender : NULL,
	    from, sizeof(from));
	for (size_t i = 0; domain != NULL && i < m->nsigns; i++) {
		const struct dkim_sign_entry *e = &m->signs[i];
		const char *error = NULL;
		char *header = NULL;

		if (strcasecmp(e->domain, domain) != 0)
			continue;
		if (dkim_sign(&e->signer, text, len, host->now(), &header,
		    &error) == 0) {
			dkim_insert_signature(host, txn, header);
			host->log(MP_LOG_INFO, "signed d=%s s=%s",
			    e->domain, e->selector);
		} else {
			host->log(MP_LOG_ERR, "signing as %s s=%s failed: %s",
			    e->domain, e->selector, error ? error : "?");
		}
		free(header);
	}
	free(text);
}

static int
dkim_before_queue(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, struct mp_status *status_r)
{
	struct dkim_module *m = ctx;
	const struct mp_host *host = m->host;
	const struct mp_txn_info *info;

	(void)status_r;
	if (!authres_host_ok(host) || (info = host->txn_info(txn)) == NULL)
		return MP_OK;
	authres_write(host, txn);
	if ((info->submission || info->auth_user != NULL) && m->nsigns > 0)
		dkim_sign_message(m, txn, env, msg);
	return MP_OK;
}

/* ---- the module ------------------------------------------------------------ */

static int
dkim_fail(const struct mp_host *host, const struct mp_conf *where,
    const char *why, const char **error_r)
{
	static _Thread_local char msg[512];
	char path[256] = "modules.dkim";

	if (where != NULL)
		host->conf_where(where, path, sizeof(path));
	snprintf(msg, sizeof(msg), "%s: %s", path, why);
	*error_r = msg;
	return MP_ERROR;
}

/* Only sign, verify (and the host's path) belong in modules.dkim. */
static int
dkim_check_keys(const struct mp_host *host, const struct mp_conf *conf,
    const char **error_r)
{
	for (unsigned i = 0; i < host->conf_length(conf); i++) {
		const struct mp_conf *c = host->conf_elem(conf, i);
		const char *name = host->conf_name(c);

		if (name == NULL || (strcmp(name, "sign") != 0 &&
		    strcmp(name, "verify") != 0 && strcmp(name, "path") != 0))
			return dkim_fail(host, c, "unknown setting", error_r);
	}
	return MP_OK;
}

static int
dkim_load_signs(struct dkim_module *m, const struct mp_conf *list,
    const char **error_r)
{
	const struct mp_host *host = m->host;
	unsigned n = host->conf_length(list);

	if (list != NULL && host->conf_string(list) != NULL)
		return dkim_fail(host, list, "must be a list ( { ... } )",
		    error_r);
	if (n == 0)
		return MP_OK;
	if ((m->signs = calloc(n, sizeof(*m->signs))) == NULL)
		return dkim_fail(host, list, "out of memory", error_r);
	for (unsigned i = 0; i < n; i++, m->nsigns++) {
		const struct mp_conf *g = host->conf_elem(list, i);
		struct dkim_sign_entry *e = &m->signs[i];
		const char *error;

		if (host->conf_options(g, dkim_sign_options, e, error_r) != MP_OK)
			return MP_ERROR;
		if (dkim_signer_load(&e->signer, e->domain, e->selector, e->key,
		    &error) < 0) {
			char why[400];

			snprintf(why, sizeof(why), "%.200s: %.150s", e->key,
			    error);
			return dkim_fail(host, g, why, error_r);
		}
		e->loaded = 1;
	}
	return MP_OK;
}

static void
dkim_fini(void *ctx)
{
	struct dkim_module *m = ctx;

	for (size_t i = 0; i < m->nsigns; i++)
		if (m->signs[i].loaded)
			dkim_signer_free(&m->signs[i].signer);
	free(m->signs);
	m->host->free(m);
}

static int
dkim_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct dkim_module *m;

	if ((m = host->alloc(sizeof(*m))) == NULL) {
		*error_r = "out of memory";
		return MP_ERROR;
	}
	memset(m, 0, sizeof(*m));
	m->host = host;
	if (dkim_check_keys(host, conf, error_r) != MP_OK ||
	    host->conf_options(host->conf_member(conf, "verify"),
	    dkim_verify_options, &m->verify, error_r) != MP_OK ||
	    dkim_load_signs(m, host->conf_member(conf, "sign"), error_r) != MP_OK) {
		dkim_fini(m);
		return MP_ERROR;
	}
	if (!authres_host_ok(host))
		host->log(MP_LOG_WARNING, "the host has no filter hooks "
		    "(ABI 2.1): nothing is verified or signed");
	*ctx_r = m;
	return MP_OK;
}

static const struct mp_filter_ops dkim_filter = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = dkim_end_of_data,
	.before_queue = dkim_before_queue,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "dkim",
	.kinds = MP_KIND_FILTER,
	.init = dkim_init,
	.fini = dkim_fini,
	.filter = &dkim_filter,
};
