/*
 * tests/unit/mock_txn.h - a mock SMTP transaction and DNS zone for the
 * unit tests of filter modules that use the 2.1 host calls (spf, dkim,
 * dmarc): txn_info, notes, header insert/change, hold; dns_lookup over a
 * table of records, packed as resolve.h describes. Header-only (one
 * test binary each). mock_txn_host() fills a copy of mock_host.
 */
#ifndef MERPATI_MOCK_TXN_H
#define MERPATI_MOCK_TXN_H

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/merpati.h>

#include "mock_host.h"

#define MOCK_MAX 32

struct mp_txn {
	struct mp_txn_info info;
	struct mp_conn_info conn;
	char note_names[MOCK_MAX][64];
	char *note_values[MOCK_MAX];
	size_t nnotes;
	/* what the module asked for, in order: "insert NAME: VALUE" or
	 * "delete NAME #n" or "change NAME #n: VALUE", one per line */
	char calls[16384];
	char held[300];
};

/* One record of the fake zone; data is text (TXT, PTR, MX exchange) or
 * an address in presentation form (A, AAAA). status other than FOUND
 * makes the name answer that for the type. */
struct mock_rr {
	const char *name;
	int type;
	const char *data;
	int status;
	unsigned short pref;
};

static const struct mock_rr *mock_zone;
static size_t mock_lookups;

static void
mock_txn_init(struct mp_txn *t, const char *peer, const char *helo,
    int submission)
{
	memset(t, 0, sizeof(*t));
	t->conn = (struct mp_conn_info){ .struct_size = sizeof(t->conn),
	    .peer = peer, .tls_desc = "", .listener = "mock.smtp" };
	t->info = (struct mp_txn_info){ .struct_size = sizeof(t->info),
	    .conn = &t->conn, .helo = helo, .submission = submission };
}

static void
mock_txn_clear(struct mp_txn *t)
{
	for (size_t i = 0; i < t->nnotes; i++)
		free(t->note_values[i]);
	t->nnotes = 0;
}

static const struct mp_txn_info *
mock_txn_info(struct mp_txn *t)
{
	return &t->info;
}

static int
mock_note_set(struct mp_txn *t, const char *name, const char *value)
{
	for (size_t i = 0; i < t->nnotes; i++)
		if (strcmp(t->note_names[i], name) == 0) {
			free(t->note_values[i]);
			t->note_values[i] = strdup(value);
			return MP_OK;
		}
	if (t->nnotes == MOCK_MAX || strlen(name) >= 64)
		return MP_ERROR;
	strcpy(t->note_names[t->nnotes], name);
	t->note_values[t->nnotes++] = strdup(value);
	return MP_OK;
}

static const char *
mock_note(struct mp_txn *t, const char *name)
{
	for (size_t i = 0; i < t->nnotes; i++)
		if (strcmp(t->note_names[i], name) == 0)
			return t->note_values[i];
	return NULL;
}

static void
mock_call(struct mp_txn *t, const char *fmt, const char *name, unsigned n,
    const char *value)
{
	size_t used = strlen(t->calls);

	snprintf(t->calls + used, sizeof(t->calls) - used, fmt, name, n,
	    value ? value : "");
}

static int
mock_header_insert(struct mp_txn *t, size_t index, const char *name,
    const char *value)
{
	mock_call(t, "insert %s #%u: %s\n", name, (unsigned)index, value);
	return MP_OK;
}

static int
mock_header_change(struct mp_txn *t, const char *name, unsigned nth,
    const char *value)
{
	mock_call(t, value ? "change %s #%u: %s\n" : "delete %s #%u%s\n", name,
	    nth, value);
	return MP_OK;
}

static int
mock_hold(struct mp_txn *t, const char *reason)
{
	snprintf(t->held, sizeof(t->held), "%s", reason);
	return MP_OK;
}

static int
mock_discard(struct mp_txn *t)
{
	(void)t;
	return MP_OK;
}

static int
mock_pack(unsigned char *buf, size_t size, struct mp_dns_answer *a,
    const void *data, size_t len)
{
	if (a->used + 2 + len > size) {
		a->truncated = 1;
		return -1;
	}
	buf[a->used] = (unsigned char)(len >> 8);
	buf[a->used + 1] = (unsigned char)len;
	memcpy(buf + a->used + 2, data, len);
	a->used += 2 + len;
	a->count++;
	return 0;
}

static int
mock_dns_lookup(const char *name, int type, unsigned char *buf, size_t size,
    struct mp_dns_answer *a)
{
	int name_exists = 0;

	mock_lookups++;
	a->status = MP_DNS_NODATA;
	a->count = 0;
	a->used = 0;
	a->truncated = 0;
	for (size_t i = 0; mock_zone && mock_zone[i].name; i++) {
		const struct mock_rr *rr = &mock_zone[i];
		unsigned char bin[16 + 256];
		size_t len;

		if (strcasecmp(rr->name, name) != 0)
			continue;
		name_exists = 1;
		if (rr->type != type)
			continue;
		if (rr->status != MP_DNS_FOUND) {
			a->status = (uint32_t)rr->status;
			return rr->status == MP_DNS_TEMPFAIL ? MP_TEMPFAIL : MP_PERMFAIL;
		}
		if (type == MP_DNS_A || type == MP_DNS_AAAA) {
			inet_pton(type == MP_DNS_A ? AF_INET : AF_INET6,
			    rr->data, bin);
			len = type == MP_DNS_A ? 4 : 16;
		} else if (type == MP_DNS_MX) {
			bin[0] = (unsigned char)(rr->pref >> 8);
			bin[1] = (unsigned char)rr->pref;
			len = strlen(rr->data);
			memcpy(bin + 2, rr->data, len);
			len += 2;
		} else {
			mock_pack(buf, size, a, rr->data, strlen(rr->data));
			a->status = MP_DNS_FOUND;
			continue;
		}
		mock_pack(buf, size, a, bin, len);
		a->status = MP_DNS_FOUND;
	}
	if (!name_exists)
		a->status = MP_DNS_NXDOMAIN;
	return a->status == MP_DNS_FOUND ? MP_OK : MP_PERMFAIL;
}

/* Whether a setting is present: the group itself stands for the member
 * (the mock's config is flat key/value pairs). */
static const struct mp_conf *
mock_conf_member(const struct mp_conf *group, const char *name)
{
	for (size_t i = 0; group && group->kv && group->kv[i]; i += 2)
		if (strcmp(group->kv[i], name) == 0)
			return group;
	return NULL;
}

/* h: a copy of mock_host with the 2.1 calls; dns says whether it has a
 * resolver. */
static void
mock_txn_host(struct mp_host *h, int dns)
{
	*h = mock_host;
	h->conf_member = mock_conf_member;
	h->dns_lookup = dns ? mock_dns_lookup : NULL;
	h->txn_info = mock_txn_info;
	h->txn_note_set = mock_note_set;
	h->txn_note = mock_note;
	h->txn_header_insert = mock_header_insert;
	h->txn_header_change = mock_header_change;
	h->txn_hold = mock_hold;
	h->txn_discard = mock_discard;
}

/* A reader over text for a hook's msg argument. */
#define MOCK_MSG(name, text) \
	struct mock_text name##_t = { (text), 0, 7 }; \
	struct mp_reader name = { sizeof(struct mp_reader), mock_text_read, \
	    (off_t)strlen(text), &name##_t }

#endif
