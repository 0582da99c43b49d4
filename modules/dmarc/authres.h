/*
 * modules/dmarc/authres.h - what the spf, dkim and dmarc modules share
 * to produce ONE Authentication-Results header (RFC 8601) per message,
 * whichever of them are loaded and in whatever order. Header-only
 * (static inline) because the three are separate shared objects; dkim
 * and spf include it as "../dmarc/authres.h".
 *
 * The protocol, through transaction notes (docs/modules.md):
 *   - each checker leaves its result as a method clause in the note
 *     "authres.<method>" ("spf=pass smtp.mailfrom=example.test");
 *   - at end_of_data the first of them removes the Authentication-Results
 *     headers that claim our authserv-id (forged: only we add those),
 *     and marks it done with the note "authres.cleaned";
 *   - at before_queue, when every end_of_data has run, the first of them
 *     writes the header from all clauses and sets "authres.written".
 * So a second or third module finds the work done and does nothing.
 */
#ifndef MERPATI_AUTHRES_H
#define MERPATI_AUTHRES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/merpati.h>
#include <merpati/util.h>

/* The methods in the order the header lists them. */
static const char *const authres_methods[] = { "spf", "dkim", "dmarc" };

/* The header section is read up to this much: a forged header hidden
 * further down would be far beyond any real header section. */
#define AUTHRES_HEADER_MAX (1024 * 1024)

/* True when host offers every 2.1 transaction call the modules use. */
static inline int
authres_host_ok(const struct mp_host *host)
{
	return MP_HOST_HAS(txn_discard) && host->txn_info != NULL &&
	    host->txn_note_set != NULL && host->txn_note != NULL &&
	    host->txn_header_insert != NULL &&
	    host->txn_header_change != NULL;
}

/* Leave method's clause for the header writer. */
static inline void
authres_note(const struct mp_host *host, struct mp_txn *txn,
    const char *method, const char *clause)
{
	char name[32];

	snprintf(name, sizeof(name), "authres.%s", method);
	host->txn_note_set(txn, name, clause);
}

/*
 * The authserv-id of an Authentication-Results value (RFC 8601 2.2): its
 * first token after CFWS, up to ';', space or a comment. 1 if it equals
 * id (any case).
 */
static inline int
authres_claims_id(const char *value, size_t len, const char *id)
{
	size_t i = 0, start, depth = 0;

	while (i < len) {
		char c = value[i];

		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' &&
		    c != '\n')
			break;
		i++;
	}
	start = i;
	while (i < len && value[i] != ';' && value[i] != ' ' &&
	    value[i] != '\t' && value[i] != '(' && value[i] != '\r' &&
	    value[i] != '\n')
		i++;
	return i - start == strlen(id) &&
	    strncasecmp(value + start, id, i - start) == 0;
}

/* The header section of msg (up to the empty line or
 * AUTHRES_HEADER_MAX), malloc()ed and NUL-terminated; NULL on error. */
static inline char *
authres_read_header(struct mp_reader *msg, size_t *len_r)
{
	struct mp_str s = { 0 };
	char buf[4096];
	ssize_t n;

	while (s.len < AUTHRES_HEADER_MAX &&
	    (n = msg->read(msg, buf, sizeof(buf))) > 0) {
		/* Look for the empty line only where it can newly be. */
		size_t from = s.len >= 2 ? s.len - 2 : 0;

		mp_str_put(&s, buf, (size_t)n);
		if (s.failed)
			break;
		if (memmem(s.p + from, s.len - from, "\n\n", 2) != NULL ||
		    memmem(s.p + from, s.len - from, "\n\r\n", 3) != NULL)
			break;
	}
	if (s.failed || s.p == NULL) {
		free(s.p);
		return NULL;
	}
	*len_r = s.len;
	return s.p;
}

/* The whole message, malloc()ed and NUL-terminated; NULL on error. Its
 * size is bounded by the SMTP server's message size limit. */
static inline char *
authres_read_all(struct mp_reader *msg, size_t *len_r)
{
	struct mp_str s = { 0 };
	char buf[16384];
	ssize_t n;

	mp_str_put(&s, "", 0);
	while ((n = msg->read(msg, buf, sizeof(buf))) > 0 && !s.failed)
		mp_str_put(&s, buf, (size_t)n);
	if (s.failed || n < 0) {
		free(s.p);
		return NULL;
	}
	*len_r = s.len;
	return s.p;
}

/*
 * The next header field of hdr from *at: its name (name_len octets) and
 * value (to the end of its last line, line ends included). 0 at the end
 * of the header section.
 */
static inline int
authres_next_field(const char *hdr, size_t len, size_t *at,
    const char **name_r, size_t *name_len_r, const char **value_r,
    size_t *value_len_r)
{
	size_t start = *at, end = start, colon;

	if (start >= len || hdr[start] == '\r' || hdr[start] == '\n')
		return 0;
	for (;;) {
		const char *lf = memchr(hdr + end, '\n', len - end);

		end = lf == NULL ? len : (size_t)(lf - hdr) + 1;
		if (end >= len || (hdr[end] != ' ' && hdr[end] != '\t'))
			break;
	}
	*at = end;
	for (colon = start; colon < end && hdr[colon] != ':'; colon++)
		;
	*name_r = hdr + start;
	*name_len_r = colon - start;
	while (*name_len_r > 0 && (hdr[start + *name_len_r - 1] == ' ' ||
	    hdr[start + *name_len_r - 1] == '\t'))
		(*name_len_r)--;
	*value_r = colon < end ? hdr + colon + 1 : hdr + end;
	*value_len_r = colon < end ? end - colon - 1 : 0;
	return 1;
}

/* 1 if the field name (len octets) is name, any case. */
static inline int
authres_name_is(const char *field, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(field, name, len) == 0;
}

/*
 * The domain of the RFC 5322.From address in hdr, lower case, into out.
 * 0, or -1 when there is no From, more than one From field or address
 * (RFC 7489 6.6.1 leaves those to local policy: we check nothing), or
 * no domain. Comments and display names are skipped: the address is
 * the one in <...> when there are angle brackets.
 */
static inline int
authres_from_domain(const char *hdr, size_t len, char *out, size_t size)
{
	const char *name, *value = NULL, *v, *lt, *at, *end;
	size_t name_len, vlen = 0, off = 0, i, n = 0, froms = 0;

	while (authres_next_field(hdr, len, &off, &name, &name_len, &v, &i))
		if (authres_name_is(name, name_len, "From")) {
			value = v;
			vlen = i;
			froms++;
		}
	if (froms != 1)
		return -1;
	end = value + vlen;
	lt = memchr(value, '<', vlen);
	if (lt != NULL) {
		const char *gt = memchr(lt, '>', (size_t)(end - lt));

		if (gt == NULL || memchr(gt, ',', (size_t)(end - gt)) != NULL)
			return -1;
		value = lt + 1;
		end = gt;
	} else if (memchr(value, ',', vlen) != NULL) {
		return -1;
	}
	at = NULL;
	for (v = value; v < end; v++)
		if (*v == '@')
			at = v;
	if (at == NULL)
		return -1;
	for (v = at + 1; v < end && n + 1 < size; v++) {
		char c = *v;

		/* a space, control or NUL ends it, as a comment does */
		if ((unsigned char)c <= ' ' || c == 0x7f || c == '(' ||
		    c == '>' || c == ';')
			break;
		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	return n > 0 && n + 1 < size ? 0 : -1;
}

/*
 * Remove every Authentication-Results header of hdr (the header section
 * as text) that claims id. Counting by position: deleting the nth leaves
 * the later ones one lower, so the index is the count of those kept.
 */
static inline void
authres_remove_claiming(const struct mp_host *host, struct mp_txn *txn,
    const char *hdr, size_t len, const char *id)
{
	const char *name, *value;
	size_t name_len, value_len, at = 0;
	unsigned kept = 0;

	while (authres_next_field(hdr, len, &at, &name, &name_len, &value,
	    &value_len)) {
		if (!authres_name_is(name, name_len, "Authentication-Results"))
			continue;
		if (!authres_claims_id(value, value_len, id)) {
			kept++;
			continue;
		}
		host->txn_header_change(txn, "Authentication-Results",
		    kept + 1, NULL);
		host->log(MP_LOG_NOTICE, "removed an Authentication-Results "
		    "header claiming %s", id);
	}
}

/* At end_of_data, with the message (or its header section) as text:
 * the forged headers go, once per message. */
static inline void
authres_clean_text(const struct mp_host *host, struct mp_txn *txn,
    const char *text, size_t len)
{
	if (host->txn_note(txn, "authres.cleaned") != NULL)
		return;
	host->txn_note_set(txn, "authres.cleaned", "1");
	authres_remove_claiming(host, txn, text, len, host->hostname());
}

/* The same, reading the header section from msg. */
static inline void
authres_clean(const struct mp_host *host, struct mp_txn *txn,
    struct mp_reader *msg)
{
	char *hdr;
	size_t len;

	if (host->txn_note(txn, "authres.cleaned") != NULL)
		return;
	if ((hdr = authres_read_header(msg, &len)) == NULL)
		return;
	authres_clean_text(host, txn, hdr, len);
	free(hdr);
}

/* At before_queue: the one header, from every clause left, once. */
static inline void
authres_write(const struct mp_host *host, struct mp_txn *txn)
{
	struct mp_str s = { 0 };
	size_t i, clauses = 0;

	if (host->txn_note(txn, "authres.written") != NULL)
		return;
	host->txn_note_set(txn, "authres.written", "1");
	mp_str_puts(&s, host->hostname());
	for (i = 0; i < sizeof(authres_methods) / sizeof(*authres_methods);
	    i++) {
		char name[32];
		const char *clause;

		snprintf(name, sizeof(name), "authres.%s", authres_methods[i]);
		if ((clause = host->txn_note(txn, name)) == NULL)
			continue;
		mp_str_puts(&s, ";\r\n\t");
		mp_str_puts(&s, clause);
		clauses++;
	}
	if (clauses > 0 && !s.failed)
		host->txn_header_insert(txn, 0, "Authentication-Results",
		    s.p);
	free(s.p);
}

#endif
