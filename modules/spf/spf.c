/*
 * modules/spf/spf.c - the spf module: a filter that checks the MAIL FROM
 * identity (the HELO identity for the null sender, RFC 7208 2.4) at the
 * mail_from hook with the engine of spf.h, its DNS going through the
 * host's dns_lookup (the resolver the dns_mx module provides).
 *
 * The result is left in transaction notes for DMARC ("spf",
 * "spf.domain"; docs/modules.md) and as a clause of the one
 * Authentication-Results header (../dmarc/authres.h). By default that
 * is all; the reject_fail, defer_temperror and reject_permerror
 * settings turn results into refusals at MAIL FROM. Authenticated and
 * local submissions are not checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <merpati/merpati.h>
#include <merpati/util.h>

#include "spf.h"
#include "../dmarc/authres.h"

/* Room for one answer: a 64 KiB DNS message cannot carry more. */
#define SPF_DNS_BUF 65536

struct spf_module {
	const struct mp_host *host;
	int reject_fail;
	int reject_softfail;
	int defer_temperror;
	int reject_permerror;
};

#define O(f) offsetof(struct spf_module, f)
static const struct mp_option spf_options[] = {
	MP_OPT("reject_fail", MP_OPT_BOOL, O(reject_fail), "false", 0, 0),
	MP_OPT("reject_softfail", MP_OPT_BOOL, O(reject_softfail), "false", 0, 0),
	MP_OPT("defer_temperror", MP_OPT_BOOL, O(defer_temperror), "false", 0, 0),
	MP_OPT("reject_permerror", MP_OPT_BOOL, O(reject_permerror), "false", 0, 0),
	MP_OPT_END
};

/* ---- DNS: host->dns_lookup onto struct spf_dns ----------------------- */

struct spf_lookup_ctx {
	const struct mp_host *host;
	unsigned char *buf;
};

static enum spf_dns_status
spf_status_of(uint32_t status)
{
	switch (status) {
	case MP_DNS_FOUND: return SPF_DNS_FOUND;
	case MP_DNS_NXDOMAIN: return SPF_DNS_NXDOMAIN;
	case MP_DNS_NODATA: return SPF_DNS_NODATA;
	case MP_DNS_PERMFAIL: return SPF_DNS_PERMFAIL;
	default: return SPF_DNS_TEMPFAIL;
	}
}

/* One lookup of type at name into answer: addresses as addresses, MX as
 * the exchange name, TXT and PTR as text. */
static enum spf_dns_status
spf_lookup(void *arg, const char *name, int type, struct spf_dns_answer *answer)
{
	struct spf_lookup_ctx *c = arg;
	const struct mp_host *host = c->host;
	struct mp_dns_answer a = { .struct_size = sizeof(a) };
	const unsigned char *data;
	size_t off = 0, len;

	if (!MP_HOST_HAS(dns_lookup) || host->dns_lookup == NULL)
		return SPF_DNS_TEMPFAIL;
	a.status = MP_DNS_TEMPFAIL;
	host->dns_lookup(name, type, c->buf, SPF_DNS_BUF, &a);
	if (a.status != MP_DNS_FOUND)
		return spf_status_of(a.status);
	while (mp_dns_next(c->buf, &a, &off, &data, &len)) {
		int r;

		if (type == MP_DNS_A || type == MP_DNS_AAAA) {
			if (len != (type == MP_DNS_A ? 4u : 16u))
				continue;
			r = spf_answer_add_addr(answer, data, len);
		} else if (type == MP_DNS_MX) {
			if (len < 2)
				continue;
			r = spf_answer_add_text(answer, (const char *)data + 2,
			    len - 2);
		} else {
			r = spf_answer_add_text(answer, (const char *)data, len);
		}
		if (r < 0)
			return SPF_DNS_TEMPFAIL;
	}
	return answer->count > 0 ? SPF_DNS_FOUND : SPF_DNS_NODATA;
}

static enum spf_dns_status
spf_txt(void *c, const char *name, struct spf_dns_answer *a)
{
	return spf_lookup(c, name, MP_DNS_TXT, a);
}

static enum spf_dns_status
spf_a(void *c, const char *name, struct spf_dns_answer *a)
{
	return spf_lookup(c, name, MP_DNS_A, a);
}

static enum spf_dns_status
spf_aaaa(void *c, const char *name, struct spf_dns_answer *a)
{
	return spf_lookup(c, name, MP_DNS_AAAA, a);
}

static enum spf_dns_status
spf_mx(void *c, const char *name, struct spf_dns_answer *a)
{
	return spf_lookup(c, name, MP_DNS_MX, a);
}

static enum spf_dns_status
spf_ptr(void *c, const char *name, struct spf_dns_answer *a)
{
	return spf_lookup(c, name, MP_DNS_PTR, a);
}

/* ---- the hook ------------------------------------------------------------ */

/* The refusal the settings ask for result: MP_OK (record only),
 * MP_PERMFAIL or MP_TEMPFAIL with status_r filled. RFC 7372 codes. */
static int
spf_policy(const struct spf_module *m, const struct spf_outcome *out,
    const char *domain, struct mp_status *status_r)
{
	const char *why = out->explanation[0] != '\0' ? out->explanation :
	    "SPF check failed";

	if ((out->result == SPF_RESULT_FAIL && m->reject_fail) ||
	    (out->result == SPF_RESULT_SOFTFAIL && m->reject_softfail)) {
		*status_r = (struct mp_status)MP_STATUS(550, "5.7.23", "");
		snprintf(status_r->text, sizeof(status_r->text),
		    "%.120s (SPF %s for %.100s)", why,
		    spf_result_name(out->result), domain);
		return MP_PERMFAIL;
	}
	if (out->result == SPF_RESULT_TEMPERROR && m->defer_temperror) {
		*status_r = (struct mp_status)MP_STATUS(451, "4.7.24",
		    "SPF temporary error, try again later");
		return MP_TEMPFAIL;
	}
	if (out->result == SPF_RESULT_PERMERROR && m->reject_permerror) {
		*status_r = (struct mp_status)MP_STATUS(550, "5.7.24", "");
		snprintf(status_r->text, sizeof(status_r->text),
		    "SPF record of %.200s is broken", domain);
		return MP_PERMFAIL;
	}
	return MP_OK;
}

/* Leave the result for DMARC and the Authentication-Results clause. */
static void
spf_record_result(const struct mp_host *host, struct mp_txn *txn,
    const struct spf_outcome *out, const char *sender, const char *helo,
    const char *domain)
{
	char clause[600];
	const char *name = spf_result_name(out->result);

	host->txn_note_set(txn, "spf", name);
	host->txn_note_set(txn, "spf.domain", domain);
	host->txn_note_set(txn, "spf.identity", *sender ? "mailfrom" : "helo");
	if (*sender)
		snprintf(clause, sizeof(clause), "spf=%s smtp.mailfrom=%s",
		    name, sender);
	else
		snprintf(clause, sizeof(clause), "spf=%s smtp.helo=%s", name,
		    helo);
	authres_note(host, txn, "spf", clause);
}

static int
spf_mail_from(void *ctx, struct mp_txn *txn, const char *sender,
    struct mp_status *status_r)
{
	struct spf_module *m = ctx;
	const struct mp_host *host = m->host;
	const struct mp_txn_info *info;
	struct spf_lookup_ctx lc = { host, NULL };
	struct spf_dns dns = { &lc, spf_txt, spf_a, spf_aaaa, spf_mx, spf_ptr };
	struct spf_request req = { 0 };
	struct spf_outcome out;
	const char *helo, *at, *domain;

	if (!authres_host_ok(host) || (info = host->txn_info(txn)) == NULL ||
	    info->submission || info->auth_user != NULL ||
	    info->conn == NULL || info->conn->peer == NULL)
		return MP_OK;
	if (spf_ip_parse(info->conn->peer, &req.ip) < 0) {
		host->log(MP_LOG_WARNING, "client address %s unusable",
		    info->conn->peer);
		return MP_OK;
	}
	helo = info->helo != NULL ? info->helo : "";
	at = strrchr(sender, '@');
	domain = *sender ? (at != NULL ? at + 1 : sender) : helo;
	if ((lc.buf = malloc(SPF_DNS_BUF)) == NULL)
		return MP_OK;
	req.sender = sender;
	req.helo = helo;
	req.receiver = host->hostname();
	req.now = host->now();
	spf_check_mailfrom(&dns, &req, &out);
	free(lc.buf);
	host->log(MP_LOG_INFO, "%s for %s from %s%s%s",
	    spf_result_name(out.result), domain, info->conn->peer,
	    out.problem[0] ? ": " : "", out.problem);
	spf_record_result(host, txn, &out, sender, helo, domain);
	return spf_policy(m, &out, domain, status_r);
}

static int
spf_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	struct spf_module *m = ctx;

	(void)env; (void)add_header; (void)status_r;
	if (authres_host_ok(m->host))
		authres_clean(m->host, txn, msg);
	return MP_OK;
}

static int
spf_before_queue(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, struct mp_status *status_r)
{
	struct spf_module *m = ctx;

	(void)env; (void)msg; (void)status_r;
	if (authres_host_ok(m->host))
		authres_write(m->host, txn);
	return MP_OK;
}

/* ---- the module ---------------------------------------------------------- */

static int
spf_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct spf_module *m = host->alloc(sizeof(*m));

	if (m == NULL) {
		*error_r = "out of memory";
		return MP_ERROR;
	}
	memset(m, 0, sizeof(*m));
	m->host = host;
	if (host->conf_options(conf, spf_options, m, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	if (!authres_host_ok(host))
		host->log(MP_LOG_WARNING, "the host has no filter hooks "
		    "(ABI 2.1): nothing is checked");
	else if (!MP_HOST_HAS(dns_lookup) || host->dns_lookup == NULL)
		host->log(MP_LOG_WARNING, "the host has no DNS lookups "
		    "(ABI 2.1): every check is a temperror");
	*ctx_r = m;
	return MP_OK;
}

static void
spf_fini(void *ctx)
{
	struct spf_module *m = ctx;

	m->host->free(m);
}

static const struct mp_filter_ops spf_filter_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = spf_end_of_data,
	.mail_from = spf_mail_from,
	.before_queue = spf_before_queue,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "spf",
	.kinds = MP_KIND_FILTER,
	.init = spf_init,
	.fini = spf_fini,
	.filter = &spf_filter_ops,
};
