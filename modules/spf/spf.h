/*
 * modules/spf/spf.h - the SPF engine (RFC 7208) inside the spf module:
 * record parser, macro expander and check_host() evaluation.
 *
 * The engine does no I/O of its own: every DNS question goes through a
 * struct spf_dns callback table, so the host's resolver (or a test's fake
 * zone) plugs in. It is not the filter glue (spf.c) and keeps no state
 * between calls; one check may run per thread at the same time.
 */
#ifndef MERPATI_SPF_H
#define MERPATI_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

/* "none", "neutral", ... as RFC 8601 and Received-SPF spell them. */
const char *spf_result_name(enum spf_result result);

/* ---- DNS through callbacks ---------------------------------------------- */

/*
 * What a lookup found. NXDOMAIN and NODATA are both "void" for the
 * RFC 7208 4.6.4 limit; TEMPFAIL (timeout, SERVFAIL) and PERMFAIL (any
 * other RCODE) both end in temperror, as RFC 7208 4.4 and 5 ask, but
 * stay distinct so a log can say which.
 */
enum spf_dns_status {
	SPF_DNS_FOUND,
	SPF_DNS_NXDOMAIN,
	SPF_DNS_NODATA,
	SPF_DNS_TEMPFAIL,
	SPF_DNS_PERMFAIL,
};

/* One answer record: text for TXT (strings already joined, RFC 7208
 * 3.3), MX (the exchange) and PTR (the name); addr for A (4 bytes) and
 * AAAA (16 bytes). */
struct spf_dns_rr {
	char *text;
	unsigned char addr[16];
};

struct spf_dns_answer {
	struct spf_dns_rr *rr;
	size_t count, cap;
};

/* Append to an answer (for lookup callbacks). 0, or -1 out of memory. */
int spf_answer_add_text(struct spf_dns_answer *a, const char *text, size_t len);
int spf_answer_add_addr(struct spf_dns_answer *a, const void *addr, size_t len);
void spf_answer_clear(struct spf_dns_answer *a);

/*
 * The resolver. Each lookup fills *answer (empty on entry) and returns
 * its status; SPF_DNS_FOUND with no records counts as NODATA. Names come
 * without a trailing dot. Callbacks must be bounded in time themselves
 * (RFC 7208 4.6.4 suggests 20 s per query).
 */
struct spf_dns {
	void *ctx;
	enum spf_dns_status (*txt)(void *ctx, const char *name, struct spf_dns_answer *answer);
	enum spf_dns_status (*a)(void *ctx, const char *name, struct spf_dns_answer *answer);
	enum spf_dns_status (*aaaa)(void *ctx, const char *name, struct spf_dns_answer *answer);
	enum spf_dns_status (*mx)(void *ctx, const char *name, struct spf_dns_answer *answer);
	enum spf_dns_status (*ptr)(void *ctx, const char *name, struct spf_dns_answer *answer);
};

/* ---- a check ------------------------------------------------------------- */

struct spf_ip {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* 4 or 16 bytes used */
};

/* Parse "192.0.2.1" or "2001:db8::1" (an IPv4-mapped IPv6 address
 * becomes IPv4, RFC 7208 5). 0, or -1 when it is neither. */
int spf_ip_parse(const char *text, struct spf_ip *ip_r);

struct spf_request {
	struct spf_ip ip;		/* the SMTP client */
	const char *sender;		/* MAIL FROM address; "" for <> */
	const char *helo;		/* HELO/EHLO name */
	const char *receiver;		/* %{r}: our host name; NULL = "unknown" */
	time_t now;			/* %{t} */
};

#define SPF_EXPLANATION_MAX 512
#define SPF_PROBLEM_MAX 200

struct spf_outcome {
	enum spf_result result;
	/* The expanded exp= text for a fail, else "" (the caller's default). */
	char explanation[SPF_EXPLANATION_MAX];
	/* Why a permerror/temperror/none, for logs and Received-SPF. */
	char problem[SPF_PROBLEM_MAX];
	unsigned lookups;		/* DNS-querying terms evaluated */
	unsigned void_lookups;
};

/*
 * check_host() of RFC 7208 4 for domain (the sender's domain, or the
 * HELO name). Returns out->result.
 */
enum spf_result spf_check_host(const struct spf_dns *dns,
    const struct spf_request *req, const char *domain, struct spf_outcome *out);

/*
 * The MAIL FROM identity: the domain of req->sender, or for the null
 * sender the HELO identity with postmaster@helo as sender (RFC 7208 2.4).
 */
enum spf_result spf_check_mailfrom(const struct spf_dns *dns,
    const struct spf_request *req, struct spf_outcome *out);

/* ---- the parts, public for tests and fuzzing ----------------------------- */

enum spf_mech {
	SPF_MECH_ALL, SPF_MECH_INCLUDE, SPF_MECH_A, SPF_MECH_MX,
	SPF_MECH_PTR, SPF_MECH_IP4, SPF_MECH_IP6, SPF_MECH_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	char qualifier;			/* '+', '-', '~' or '?' */
	char *domain_spec;		/* unexpanded; NULL = the current domain */
	int cidr4, cidr6;		/* prefix lengths (32/128 when absent) */
	unsigned char net[16];		/* ip4/ip6 network */
};

struct spf_record {
	struct spf_term *terms;
	size_t count;
	char *redirect;			/* unexpanded domain-spec or NULL */
	char *exp;
};

/*
 * Parse one "v=spf1 ..." record (RFC 7208 4.6, 12). 0 with *rec_r set,
 * or -1 with *error_r saying what is wrong (a permerror). Cost is
 * linear in the length.
 */
int spf_record_parse(const char *text, struct spf_record **rec_r, const char **error_r);
void spf_record_free(struct spf_record *rec);

/* True if text is an SPF version 1 record ("v=spf1" alone or before SP). */
bool spf_is_v1(const char *text);

/* Values for the macro letters (RFC 7208 7.2). */
struct spf_macro_env {
	const char *sender, *local, *sender_domain, *domain, *helo, *receiver;
	struct spf_ip ip;
	time_t now;
	/* %{p}: the validated name of ip; called only when used. */
	const char *(*validated_name)(void *ctx);
	void *ctx;
};

/*
 * Expand a macro-string (RFC 7208 7). explain allows c, r, t and spaces
 * (explain-string); domain applies the 253-octet rule of 7.3 by dropping
 * labels from the left. 0 with out filled, or -1 with *error_r (a syntax
 * error, a permerror; or output longer than out_size).
 */
int spf_macro_expand(const char *in, size_t len, const struct spf_macro_env *env,
    bool explain, bool domain, char *out, size_t out_size, const char **error_r);

#endif
