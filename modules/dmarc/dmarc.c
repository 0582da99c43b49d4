/*
 * modules/dmarc/dmarc.c - the dmarc module: a filter that, at the end of
 * DATA, evaluates the DMARC policy (RFC 7489) of the message's From
 * domain with the engine of dmarc.h, its DNS going through the host's
 * dns_lookup and its SPF and DKIM inputs coming from the notes the spf
 * and dkim modules left ("spf", "spf.domain", "dkim.domains";
 * docs/modules.md). So it must come after spf and dkim in `modules`.
 *
 * By default it records only: the note "dmarc", the dmarc clause of the
 * one Authentication-Results header (authres.h) and, when report_file
 * is set, one line per message for a later aggregate-report generator.
 * With enforce = true a p=reject failure is refused (550 5.7.1) and a
 * p=quarantine failure is held in the queue (quarantine = "hold") or
 * accepted (quarantine = "accept"). Submissions are not checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <merpati/merpati.h>
#include <merpati/util.h>

#include "dmarc.h"
#include "authres.h"

#define DMARC_DNS_BUF 65536

struct dmarc_module {
	const struct mp_host *host;
	const char *public_suffix_list;
	int enforce;
	const char *quarantine;
	const char *report_file;
	struct dmarc_psl *psl;
};

#define D(f) offsetof(struct dmarc_module, f)
static const struct mp_option dmarc_options[] = {
	MP_OPT("public_suffix_list", MP_OPT_STRING, D(public_suffix_list),
	    "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0),
	MP_OPT("enforce", MP_OPT_BOOL, D(enforce), "false", 0, 0),
	MP_OPT("quarantine", MP_OPT_STRING, D(quarantine), "hold", 0, 0),
	MP_OPT("report_file", MP_OPT_PATH, D(report_file), "-", 0, 0),
	MP_OPT_END
};

/* ---- DNS and randomness --------------------------------------------------- */

static enum dmarc_dns_status
dmarc_txt(void *ctx, const char *name, struct dmarc_txt_answer *answer)
{
	const struct mp_host *host = ctx;
	struct mp_dns_answer a = { .struct_size = sizeof(a) };
	const unsigned char *data;
	size_t off = 0, len;
	unsigned char *buf;

	if (!MP_HOST_HAS(dns_lookup) || host->dns_lookup == NULL ||
	    (buf = malloc(DMARC_DNS_BUF)) == NULL)
		return DMARC_DNS_TEMPFAIL;
	a.status = MP_DNS_TEMPFAIL;
	host->dns_lookup(name, MP_DNS_TXT, buf, DMARC_DNS_BUF, &a);
	while (a.status == MP_DNS_FOUND &&
	    mp_dns_next(buf, &a, &off, &data, &len))
		if (dmarc_answer_add(answer, (const char *)data, len) < 0) {
			a.status = MP_DNS_TEMPFAIL;
			break;
		}
	free(buf);
	switch (a.status) {
	case MP_DNS_FOUND: return DMARC_DNS_FOUND;
	case MP_DNS_NXDOMAIN: return DMARC_DNS_NXDOMAIN;
	case MP_DNS_NODATA: return DMARC_DNS_NODATA;
	case MP_DNS_PERMFAIL: return DMARC_DNS_PERMFAIL;
	default: return DMARC_DNS_TEMPFAIL;
	}
}

/* For pct=: a sample needs no more than the kernel's random bytes. */
static unsigned
dmarc_random(void *rctx)
{
	unsigned v = 0;

	(void)rctx;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (unsigned)rand();
	return v;
}

/* ---- inputs from the other modules ---------------------------------------- */

/* The passing DKIM domains of the note "dkim.domains" (space separated),
 * at most max; the words point into a copy freed by the caller. */
static size_t
dmarc_dkim_inputs(const char *domains, char **copy_r, struct dmarc_auth *out,
    size_t max)
{
	char *p, *save = NULL, *w;
	size_t n = 0;

	*copy_r = NULL;
	if (domains == NULL || (*copy_r = strdup(domains)) == NULL)
		return 0;
	p = *copy_r;
	while (n < max && (w = strtok_r(p, " ", &save)) != NULL) {
		p = NULL;
		out[n].domain = w;
		out[n].pass = true;
		n++;
	}
	return n;
}

/* ---- outcome -------------------------------------------------------------- */

static void
dmarc_record_outcome(const struct dmarc_module *m, struct mp_txn *txn,
    const char *from, const struct dmarc_outcome *out)
{
	const struct mp_host *host = m->host;
	char clause[600];

	host->txn_note_set(txn, "dmarc", dmarc_result_name(out->result));
	if (out->result == DMARC_RESULT_PASS || out->result == DMARC_RESULT_FAIL)
		host->txn_note_set(txn, "dmarc.policy",
		    dmarc_policy_name(out->policy));
	if (out->result == DMARC_RESULT_PASS || out->result == DMARC_RESULT_FAIL)
		snprintf(clause, sizeof(clause), "dmarc=%s (p=%s dis=%s) "
		    "header.from=%s", dmarc_result_name(out->result),
		    dmarc_policy_name(out->policy),
		    dmarc_policy_name(out->disposition), from);
	else
		snprintf(clause, sizeof(clause), "dmarc=%s header.from=%s",
		    dmarc_result_name(out->result), from);
	authres_note(host, txn, "dmarc", clause);
	host->log(MP_LOG_INFO, "%s for %s (policy %s, disposition %s)%s%s",
	    dmarc_result_name(out->result), from,
	    dmarc_policy_name(out->policy), dmarc_policy_name(out->disposition),
	    out->problem[0] ? ": " : "", out->problem);
}

/*
 * One line per evaluated message for an aggregate-report generator
 * (RFC 7489 7.2: the rows of a report), tab separated:
 *   time source-ip header-from policy-domain result p disposition
 *   spf-domain spf-result spf-aligned dkim-domains dkim-aligned rua
 * Appended with O_APPEND in one write, so concurrent sessions do not mix.
 */
static void
dmarc_report_line(const struct dmarc_module *m, struct mp_txn *txn,
    const char *from, const struct dmarc_outcome *out)
{
	const struct mp_host *host = m->host;
	const struct mp_txn_info *info = host->txn_info(txn);
	const char *spf_dom = host->txn_note(txn, "spf.domain");
	const char *spf = host->txn_note(txn, "spf");
	const char *dkim = host->txn_note(txn, "dkim.domains");
	struct mp_str s = { 0 };
	int fd;

	if (m->report_file == NULL || *m->report_file == '\0' ||
	    out->policy_domain[0] == '\0')
		return;
	mp_str_printf(&s, "%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n",
	    (long long)host->now(),
	    info && info->conn && info->conn->peer ? info->conn->peer : "-",
	    from, out->policy_domain, dmarc_result_name(out->result),
	    dmarc_policy_name(out->policy), dmarc_policy_name(out->disposition),
	    spf_dom ? spf_dom : "-", spf ? spf : "none", out->spf_aligned,
	    dkim && *dkim ? dkim : "-", out->dkim_aligned,
	    out->record.rua ? out->record.rua : "-");
	if (s.failed || (fd = open(m->report_file,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		if (!s.failed)
			host->log_errno(MP_LOG_WARNING, "%s",
			    m->report_file);
		free(s.p);
		return;
	}
	if (write(fd, s.p, s.len) != (ssize_t)s.len)
		host->log_errno(MP_LOG_WARNING, "%s", m->report_file);
	close(fd);
	free(s.p);
}

/* What enforce asks for the disposition: MP_OK, a 550 5.7.1, or a hold. */
static int
dmarc_enforce(const struct dmarc_module *m, struct mp_txn *txn,
    const char *from, const struct dmarc_outcome *out,
    struct mp_status *status_r)
{
	if (!m->enforce || out->result != DMARC_RESULT_FAIL)
		return MP_OK;
	if (out->disposition == DMARC_POLICY_REJECT) {
		*status_r = (struct mp_status)MP_STATUS(550, "5.7.1", "");
		snprintf(status_r->text, sizeof(status_r->text),
		    "Rejected by the DMARC policy of %.200s",
		    out->policy_domain);
		return MP_PERMFAIL;
	}
	if (out->disposition == DMARC_POLICY_QUARANTINE &&
	    strcmp(m->quarantine, "hold") == 0) {
		char reason[300];

		snprintf(reason, sizeof(reason),
		    "DMARC quarantine policy of %.200s", out->policy_domain);
		if (m->host->txn_hold(txn, reason) != MP_OK)
			m->host->log(MP_LOG_ERR, "the host refused to "
			    "hold a message from %s", from);
	}
	return MP_OK;
}

static int
dmarc_end_of_data(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, int (*add_header)(struct mp_txn *, const char *, const char *),
    struct mp_status *status_r)
{
	struct dmarc_module *m = ctx;
	const struct mp_host *host = m->host;
	const struct mp_txn_info *info;
	struct dmarc_auth dkim[16];
	struct dmarc_input in = { 0 };
	struct dmarc_outcome out;
	char from[256], *hdr, *dkim_copy;
	size_t len;
	int rc;

	(void)env; (void)add_header;
	if (!authres_host_ok(host) || (info = host->txn_info(txn)) == NULL ||
	    (hdr = authres_read_header(msg, &len)) == NULL)
		return MP_OK;
	authres_clean_text(host, txn, hdr, len);
	rc = authres_from_domain(hdr, len, from, sizeof(from));
	free(hdr);
	if (info->submission || info->auth_user != NULL)
		return MP_OK;
	if (rc < 0) {
		host->txn_note_set(txn, "dmarc", "permerror");
		authres_note(host, txn, "dmarc",
		    "dmarc=permerror (no single From address)");
		return MP_OK;
	}
	in.from_domain = from;
	in.spf.domain = host->txn_note(txn, "spf.domain");
	in.spf.pass = in.spf.domain != NULL &&
	    strcmp(host->txn_note(txn, "spf") ? host->txn_note(txn, "spf") : "",
	    "pass") == 0;
	in.dkim = dkim;
	in.dkim_count = dmarc_dkim_inputs(host->txn_note(txn, "dkim.domains"),
	    &dkim_copy, dkim, sizeof(dkim) / sizeof(*dkim));
	dmarc_check(&(struct dmarc_dns){ (void *)host, dmarc_txt }, m->psl, &in,
	    dmarc_random, NULL, &out);
	dmarc_record_outcome(m, txn, from, &out);
	dmarc_report_line(m, txn, from, &out);
	rc = dmarc_enforce(m, txn, from, &out, status_r);
	dmarc_record_clear(&out.record);
	free(dkim_copy);
	return rc;
}

static int
dmarc_before_queue(void *ctx, struct mp_txn *txn, const struct mp_envelope *env,
    struct mp_reader *msg, struct mp_status *status_r)
{
	struct dmarc_module *m = ctx;

	(void)env; (void)msg; (void)status_r;
	if (authres_host_ok(m->host))
		authres_write(m->host, txn);
	return MP_OK;
}

/* ---- the module ------------------------------------------------------------ */

static int
dmarc_init(const struct mp_host *host, const struct mp_conf *conf,
    void **ctx_r, const char **error_r)
{
	struct dmarc_module *m = host->alloc(sizeof(*m));

	if (m == NULL) {
		*error_r = "out of memory";
		return MP_ERROR;
	}
	memset(m, 0, sizeof(*m));
	m->host = host;
	if (host->conf_options(conf, dmarc_options, m, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	/* An unset report_file resolves to the config directory: none. */
	if (host->conf_member(conf, "report_file") == NULL)
		m->report_file = NULL;
	if (strcmp(m->quarantine, "hold") != 0 &&
	    strcmp(m->quarantine, "accept") != 0) {
		*error_r = "modules.dmarc.quarantine: \"hold\" or \"accept\"";
		host->free(m);
		return MP_ERROR;
	}
	/* Without the list every domain is its own organisational domain
	 * (the "*" rule): relaxed alignment degrades to strict, so say so. */
	if (dmarc_psl_load_file(m->public_suffix_list, &m->psl, error_r) < 0) {
		host->log(MP_LOG_WARNING, "%s (%s): relaxed alignment "
		    "becomes strict", *error_r, m->public_suffix_list);
		m->psl = NULL;
	}
	if (!authres_host_ok(host))
		host->log(MP_LOG_WARNING, "the host has no filter hooks "
		    "(ABI 2.1): nothing is checked");
	*ctx_r = m;
	return MP_OK;
}

static void
dmarc_fini(void *ctx)
{
	struct dmarc_module *m = ctx;

	dmarc_psl_free(m->psl);
	m->host->free(m);
}

static const struct mp_filter_ops dmarc_filter_ops = {
	.struct_size = sizeof(struct mp_filter_ops),
	.end_of_data = dmarc_end_of_data,
	.before_queue = dmarc_before_queue,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "dmarc",
	.kinds = MP_KIND_FILTER,
	.init = dmarc_init,
	.fini = dmarc_fini,
	.filter = &dmarc_filter_ops,
};
