/*
 * modules/dmarc/dmarc.h - the DMARC engine (RFC 7489) inside the dmarc
 * module: record parser, Public Suffix List and organisational domain,
 * policy discovery, identifier alignment and the disposition.
 *
 * SPF and DKIM results are inputs (the spf and dkim modules produce
 * them); DNS goes through a struct dmarc_dns callback and randomness for
 * pct= through an injectable function, so tests are deterministic. Not
 * the filter glue (dmarc.c). No state between calls; thread-safe given a
 * loaded PSL, which is read-only.
 */
#ifndef MERPATI_DMARC_H
#define MERPATI_DMARC_H

#include <stdbool.h>
#include <stddef.h>

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

const char *dmarc_policy_name(enum dmarc_policy p);

/* One parsed record (RFC 7489 6.3). Strings are copies, freed by
 * dmarc_record_clear. */
struct dmarc_record {
	enum dmarc_policy p, sp;	/* sp is p when absent */
	bool p_valid;			/* false: p= missing/invalid, rua made it "none" */
	int pct;			/* 0..100, default 100 */
	bool adkim_strict, aspf_strict;	/* default relaxed */
	char *rua, *ruf;		/* raw URI lists, NULL when absent */
	char *fo, *rf;
	unsigned long ri;		/* default 86400 */
};

/* True if text starts with the "v=DMARC1" tag (RFC 7489 6.4). */
bool dmarc_is_v1(const char *text);

/*
 * Parse a DMARC record. 0 with *rec filled, or -1 with *error_r when it
 * is no usable policy (not v=DMARC1 first; p= missing or invalid and no
 * rua=). Other invalid tags fall back to their defaults (6.3). Linear.
 */
int dmarc_record_parse(const char *text, struct dmarc_record *rec, const char **error_r);
void dmarc_record_clear(struct dmarc_record *rec);

/* ---- the Public Suffix List --------------------------------------------- */

struct dmarc_psl;

/* The list from a file (Debian: /usr/share/publicsuffix/
 * public_suffix_list.dat) or from text. 0, or -1 with *error_r. */
int dmarc_psl_load_file(const char *path, struct dmarc_psl **psl_r, const char **error_r);
int dmarc_psl_load_text(const char *text, struct dmarc_psl **psl_r, const char **error_r);
void dmarc_psl_free(struct dmarc_psl *psl);

/*
 * The organisational domain of domain (RFC 7489 3.2): its public suffix
 * (exception rules first, then the longest normal or wildcard rule, "*"
 * by default) plus one label, lower-cased. A domain that is itself a
 * public suffix is its own organisational domain. 0, or -1 when domain
 * is empty or does not fit in size.
 */
int dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *out, size_t size);

/* ---- a check ------------------------------------------------------------- */

enum dmarc_dns_status {
	DMARC_DNS_FOUND, DMARC_DNS_NXDOMAIN, DMARC_DNS_NODATA,
	DMARC_DNS_TEMPFAIL, DMARC_DNS_PERMFAIL,
};

struct dmarc_txt_answer {
	char **texts;			/* one per record, strings joined */
	size_t count, cap;
};

/* Append a record (for the callback). 0, or -1 out of memory. */
int dmarc_answer_add(struct dmarc_txt_answer *a, const char *text, size_t len);
void dmarc_answer_clear(struct dmarc_txt_answer *a);

struct dmarc_dns {
	void *ctx;
	enum dmarc_dns_status (*txt)(void *ctx, const char *name, struct dmarc_txt_answer *answer);
};

/* An authenticated identifier: the SPF MAIL FROM domain, or a DKIM d=. */
struct dmarc_auth {
	const char *domain;
	bool pass;
};

struct dmarc_input {
	const char *from_domain;	/* RFC 5322.From domain */
	struct dmarc_auth spf;		/* domain NULL when SPF was not checked */
	const struct dmarc_auth *dkim;
	size_t dkim_count;
};

enum dmarc_result {
	DMARC_RESULT_NONE,		/* no policy published */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};

const char *dmarc_result_name(enum dmarc_result r);

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;	/* the policy that applies (p or sp) */
	enum dmarc_policy disposition;	/* after pct: what to do with the mail */
	bool sampled_out;		/* pct excluded it: one step milder */
	bool spf_aligned, dkim_aligned;
	char policy_domain[256];	/* where the record was found */
	char org_domain[256];		/* of the From domain */
	struct dmarc_record record;	/* kept for reports (rua/ruf) */
	char problem[200];
};

/*
 * Policy discovery (6.6.3), alignment (3.1) and disposition (6.6.4,
 * pct with random(rctx) % 100). Fills *out (clear out->record with
 * dmarc_record_clear) and returns out->result.
 */
enum dmarc_result dmarc_check(const struct dmarc_dns *dns, const struct dmarc_psl *psl,
    const struct dmarc_input *in, unsigned (*random)(void *rctx), void *rctx,
    struct dmarc_outcome *out);

/* Alignment of two domains, strict (equal) or relaxed (same
 * organisational domain). */
bool dmarc_aligned(const struct dmarc_psl *psl, const char *a, const char *b, bool strict);

#endif
