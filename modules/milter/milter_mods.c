/*
 * modules/milter/milter_mods.c - carries out a milter's end-of-message
 * modifications through the host's txn_* calls (module.h, since 2.1):
 * header add/insert/change/delete, sender change, recipient add and
 * delete, quarantine (txn_hold) and body replacement, gathered in a
 * temporary file up to MILTER_MAX_BODY and handed over after the
 * milter's verdict (in memory: see body_file). A modification the host refuses is logged and
 * skipped; a milter that floods (over MILTER_MAX_MODS) has failed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "milter.h"

void
milter_header_value(const char *in, char *out)
{
	size_t k = 0;

	for (const char *p = in; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p != '\n') {
			out[k++] = *p;
			continue;
		}
		if (p[1] == '\0' || (p[1] == '\r' && p[2] == '\0'))
			break;	/* a line end at the very end */
		out[k++] = '\r';
		out[k++] = '\n';
		if (p[1] != ' ' && p[1] != '\t')
			out[k++] = '\t';	/* keep it one field */
	}
	out[k] = '\0';
}

static int
header_mod(struct milter_apply *a, const struct milter_reply *r)
{
	const struct mp_host *host = a->host;
	char *value = malloc(2 * strlen(r->value) + 1);
	int rc = MP_ERROR;

	if (value == NULL)
		return MP_ERROR;
	milter_header_value(r->value, value);
	if (r->code == SMFIR_ADDHEADER)
		rc = host->txn_header_insert(a->txn, SIZE_MAX, r->name, value);
	else if (r->code == SMFIR_INSHEADER)
		rc = host->txn_header_insert(a->txn, r->index, r->name, value);
	else {
		/* libmilter counts from 1; an empty value deletes */
		unsigned nth = r->index ? r->index : 1;
		rc = host->txn_header_change(a->txn, r->name, nth,
		    value[0] ? value : NULL);
		if (rc == MP_DECLINED && value[0])	/* not there: add it */
			rc = host->txn_header_insert(a->txn, SIZE_MAX, r->name, value);
		else if (rc == MP_DECLINED)
			rc = MP_OK;	/* deleting what is not there */
	}
	free(value);
	return rc;
}

static int
envelope_mod(struct milter_apply *a, const struct milter_reply *r)
{
	const struct mp_host *host = a->host;
	char addr[1024];

	if (milter_addr_unwrap(r->value, addr, sizeof(addr)) < 0)
		return MP_ERROR;
	switch (r->code) {
	case SMFIR_CHGFROM: return host->txn_sender_set(a->txn, addr);
	case SMFIR_DELRCPT: return host->txn_rcpt_delete(a->txn, addr);
	default: return host->txn_rcpt_add(a->txn, addr);
	}
}

/* An unnamed memory file: the daemon is confined (landlock) to its own
 * paths, so no temporary directory is at hand, and the host copies the
 * body away at once. */
static FILE *
body_file(void)
{
	int fd = memfd_create("milter-body", MFD_CLOEXEC);
	FILE *f;

	if (fd < 0)
		return NULL;
	if ((f = fdopen(fd, "w+")) == NULL)
		close(fd);
	return f;
}

static int
body_chunk(struct milter_apply *a, const struct milter_reply *r,
    const char **error_r)
{
	if (a->body_len + (long)r->data_len > MILTER_MAX_BODY) {
		*error_r = "replacement body too large";
		return -1;
	}
	if (a->body == NULL && (a->body = body_file()) == NULL) {
		*error_r = "cannot create a file for the replacement body";
		return -1;
	}
	if (r->data_len && fwrite(r->data, 1, r->data_len, a->body) != r->data_len) {
		*error_r = "cannot write the replacement body";
		return -1;
	}
	a->body_len += (long)r->data_len;
	return 0;
}

int
milter_apply_mod(void *arg, const struct milter_reply *r, const char **error_r)
{
	struct milter_apply *a = arg;
	const struct mp_host *host = a->host;
	int rc;

	if (r->code == SMFIR_REPLBODY)
		return body_chunk(a, r, error_r);
	if (++a->count > MILTER_MAX_MODS) {
		*error_r = "too many modifications";
		return -1;
	}
	switch (r->code) {
	case SMFIR_ADDHEADER: case SMFIR_INSHEADER: case SMFIR_CHGHEADER:
		rc = header_mod(a, r);
		break;
	case SMFIR_QUARANTINE:
		rc = host->txn_hold(a->txn, r->value[0] ? r->value : "quarantined by milter");
		if (rc == MP_OK)
			host->log(MP_LOG_NOTICE, "milter %s: quarantine: %s", a->milter, r->value);
		break;
	default:
		rc = envelope_mod(a, r);
	}
	if (rc != MP_OK)
		host->log(MP_LOG_WARNING, "milter %s: modification '%c' (%.100s) refused by the host",
		    a->milter, r->code, r->name ? r->name : r->value ? r->value : "");
	return 0;
}

/* A reader over the replacement body file. */
static ssize_t
file_read(struct mp_reader *r, void *buf, size_t len)
{
	size_t n = fread(buf, 1, len, r->priv);

	return n == 0 && ferror((FILE *)r->priv) ? -1 : (ssize_t)n;
}

int
milter_apply_finish(struct milter_apply *a, int keep)
{
	int rc = MP_OK;

	if (a->body == NULL)
		return MP_OK;
	if (keep) {
		struct mp_reader r = { sizeof(r), file_read, a->body_len, a->body };
		rewind(a->body);
		rc = a->host->txn_body_replace(a->txn, &r);
		if (rc != MP_OK)
			a->host->log(MP_LOG_WARNING, "milter %s: body replacement refused by the host",
			    a->milter);
	}
	fclose(a->body);
	a->body = NULL;
	a->body_len = 0;
	return rc;
}
