/*
 * modules/imap/imap_view.c - the selected folder as this session's
 * client knows it: the message list (sequence number = index + 1), its
 * synchronisation with the store and the untagged replies that keep
 * the client in step (EXISTS, RECENT, EXPUNGE, FETCH FLAGS, and FLAGS /
 * PERMANENTFLAGS when keywords appear), flag changes, and loading a
 * message. Not the commands themselves (imap_message.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/util.h>

#include "imap.h"

#define SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

/* Most messages have no keywords: they share this empty string instead
 * of an allocation each, which also keeps the per-command flag
 * comparison of a large folder from chasing 10,000 pointers. */
static char no_keywords[1];

int
imap_msg_set_keywords(struct imap_msg *m, const char *keywords)
{
	char *copy = keywords && *keywords ? strdup(keywords) : no_keywords;

	if (copy == NULL)
		return -1;
	imap_msg_free_keywords(m);
	m->keywords = copy;
	return 0;
}

void
imap_msg_free_keywords(struct imap_msg *m)
{
	if (m->keywords != no_keywords)
		free(m->keywords);
	m->keywords = NULL;
}

static void
free_view(struct imap *s)
{
	for (size_t i = 0; i < s->n; i++)
		imap_msg_free_keywords(&s->msgs[i]);
	free(s->msgs);
	s->msgs = NULL;
	s->n = s->msgs_cap = 0;
	free(s->kw_known);
	s->kw_known = NULL;
}

void
imap_view_close(struct imap *s)
{
	if (s->f)
		s->st->ops->folder_close(s->f);
	s->f = NULL;
	free_view(s);
}

/* Add the keywords of kw not yet in s->kw_known; 1 if any was new. */
static int
learn_keywords(struct imap *s, const char *kw)
{
	const char *p = kw ? kw : "", *w;
	int added = 0;
	size_t n;

	while ((n = mp_words_next(&p, &w)) > 0)
		if (!mp_words_find(s->kw_known, w, n)) {
			if (mp_words_add(&s->kw_known, w, n) < 0)
				return added;
			added = 1;
		}
	return added;
}

static void
announce_flags(struct imap *s)
{
	const char *kw = s->kw_known ? s->kw_known : "";
	const char *sep = kw[0] ? " " : "";

	imap_untagged(s, "FLAGS (" SYSTEM_FLAGS "%s%s)", sep, kw);
	imap_untagged(s, "OK [PERMANENTFLAGS (" SYSTEM_FLAGS "%s%s \\*)] Flags permitted",
	    sep, kw);
}

/* A client must see a keyword in FLAGS before a FETCH shows it on a
 * message (RFC 3501 7.2.6; imaptest checks it): announce new ones. */
void
imap_view_keywords(struct imap *s, const char *keywords)
{
	if (keywords && keywords[0] && learn_keywords(s, keywords))
		announce_flags(s);
}

static int
has_folder_keywords(const struct imap *s)
{
	const struct mp_store_ops *o = s->st->ops;

	return MP_HAS(o, o->struct_size, folder_keywords) && o->folder_keywords;
}

/* Append v to the view; -1 when out of memory (logged: the view then
 * ends before v, and the next sync tries again from there). */
static int
add_message(struct imap *s, const struct mp_msg_info *v)
{
	struct imap_msg *grown = mp_array_grow(s->msgs, &s->msgs_cap, s->n + 1,
	    sizeof(*s->msgs));

	if (grown != NULL) {
		s->msgs = grown;
		s->msgs[s->n] = (struct imap_msg){ v->uid, v->flags, v->size,
		    v->internal_date, NULL };
		if (imap_msg_set_keywords(&s->msgs[s->n], v->keywords) == 0) {
			s->n++;
			return 0;
		}
	}
	s->h->log(MP_LOG_ERR, "out of memory for the view of a folder (%zu messages)", s->n);
	return -1;
}

static size_t
count_recent(const struct imap *s)
{
	size_t r = 0;

	for (size_t i = 0; i < s->n; i++)
		r += (s->msgs[i].flags & MP_FLAG_RECENT) != 0;
	return r;
}

int
imap_view_open(struct imap *s)
{
	const struct mp_msg_info *v;
	const char *err, *kw = NULL;
	size_t n;

	if (s->st->ops->messages(s->f, &v, &n, &err) != MP_OK)
		return -1;
	for (size_t j = 0; j < n; j++)
		if (add_message(s, MP_ELEM(v, j)) < 0)
			break;	/* the view ends there; the next sync goes on */
	if (has_folder_keywords(s) && s->st->ops->folder_keywords(s->f, &kw, &err) == MP_OK)
		learn_keywords(s, kw);
	for (size_t i = 0; i < s->n; i++)	/* a store may know fewer */
		learn_keywords(s, s->msgs[i].keywords);
	announce_flags(s);
	imap_untagged(s, "%zu EXISTS", s->n);
	imap_untagged(s, "%zu RECENT", count_recent(s));
	return 0;
}

void
imap_view_remove(struct imap *s, size_t i, int announce)
{
	if (announce)
		imap_untagged(s, "%zu EXPUNGE", i + 1);
	imap_msg_free_keywords(&s->msgs[i]);
	memmove(&s->msgs[i], &s->msgs[i + 1], (s->n - i - 1) * sizeof(*s->msgs));
	s->n--;
}

/* Drop what the store no longer has, announcing each EXPUNGE highest
 * first so the numbers sent are the ones the client knows. Both lists
 * are in UID order: one merge pass. */
static void
sync_expunges(struct imap *s, const struct mp_msg_info *v, size_t n)
{
	size_t j = 0, gone = 0, *idx = malloc((s->n ? s->n : 1) * sizeof(size_t));

	if (idx == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		while (j < n && MP_ELEM(v, j)->uid < s->msgs[i].uid)
			j++;
		if (j == n || MP_ELEM(v, j)->uid != s->msgs[i].uid)
			idx[gone++] = i;
	}
	while (gone-- > 0)
		imap_view_remove(s, idx[gone], 1);
	free(idx);
}

static int
same_flags(const struct imap_msg *m, const struct mp_msg_info *v)
{
	const char *a = m->keywords, *b = v->keywords ? v->keywords : "";

	if (m->flags != v->flags)
		return 0;
	if (a == no_keywords)	/* no need to look at this session's copy */
		return *b == '\0';
	return strcmp(a, b) == 0;
}

void
imap_view_set_flags(struct imap *s, size_t i, uint32_t flags, const char *keywords)
{
	struct imap_msg *m = &s->msgs[i];

	if (imap_msg_set_keywords(m, keywords) < 0)
		return;
	m->flags = flags;
	imap_view_keywords(s, keywords);
}

void
imap_view_fetch_flags(struct imap *s, size_t i, int with_uid)
{
	char text[1024];

	imap_flags_text(s->msgs[i].flags, s->msgs[i].keywords, text, sizeof(text));
	if (with_uid)
		imap_untagged(s, "%zu FETCH (UID %u FLAGS %s)", i + 1, s->msgs[i].uid, text);
	else
		imap_untagged(s, "%zu FETCH (FLAGS %s)", i + 1, text);
}

/* Flag changes made by others: FETCH FLAGS for each. */
static void
sync_flags(struct imap *s, const struct mp_msg_info *v, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < s->n; i++) {
		while (j < n && MP_ELEM(v, j)->uid < s->msgs[i].uid)
			j++;
		if (j == n || MP_ELEM(v, j)->uid != s->msgs[i].uid || same_flags(&s->msgs[i], MP_ELEM(v, j)))
			continue;
		imap_view_set_flags(s, i, MP_ELEM(v, j)->flags, MP_ELEM(v, j)->keywords);
		imap_view_fetch_flags(s, i, 0);
	}
}

/* New messages: EXISTS, and RECENT when some of them are \Recent. */
static void
sync_new(struct imap *s, const struct mp_msg_info *v, size_t n)
{
	uint32_t last = s->n ? s->msgs[s->n - 1].uid : 0;
	size_t before = s->n, recent = 0;

	for (size_t j = 0; j < n; j++) {
		if (MP_ELEM(v, j)->uid <= last)
			continue;
		if (add_message(s, MP_ELEM(v, j)) < 0)
			break;	/* no gap: the rest come at the next sync */
		imap_view_keywords(s, MP_ELEM(v, j)->keywords);
		recent += (MP_ELEM(v, j)->flags & MP_FLAG_RECENT) != 0;
	}
	if (s->n == before)
		return;
	imap_untagged(s, "%zu EXISTS", s->n);
	if (recent)
		imap_untagged(s, "%zu RECENT", count_recent(s));
}

void
imap_view_sync(struct imap *s, int quiet_expunge)
{
	const struct mp_msg_info *v;
	const char *err;
	size_t n;

	if (s->f == NULL || s->st->ops->messages(s->f, &v, &n, &err) != MP_OK)
		return;
	if (!quiet_expunge)
		sync_expunges(s, v, n);
	sync_flags(s, v, n);
	sync_new(s, v, n);	/* EXISTS is allowed at any time */
}

/* flags_change when the store has it; else the old replace over this
 * session's copy (stores from before the contract). */
static int
change_in_store(struct imap *s, size_t i, enum mp_flags_how how, uint32_t flags,
    const char *keywords, uint32_t *flags_r, const char **keywords_r)
{
	const struct mp_store_ops *o = s->st->ops;
	const struct imap_msg *m = &s->msgs[i];
	const char *err;

	if (MP_HAS(o, o->struct_size, flags_change) && o->flags_change)
		return o->flags_change(s->f, m->uid, how, flags, keywords, flags_r,
		    keywords_r, &err);
	static _Thread_local char kw[1024];
	imap_keywords_apply(m->keywords, how, keywords, kw, sizeof(kw));
	*flags_r = mp_flags_apply(m->flags & ~(uint32_t)MP_FLAG_RECENT, how, flags);
	*keywords_r = kw;
	return o->flags_set(s->f, m->uid, *flags_r, kw, &err);
}

int
imap_view_change(struct imap *s, size_t i, enum mp_flags_how how, uint32_t flags,
    const char *keywords)
{
	uint32_t stored = 0;
	const char *kw = NULL;
	uint32_t recent = s->msgs[i].flags & MP_FLAG_RECENT;
	int rc = change_in_store(s, i, how, flags & ~(uint32_t)MP_FLAG_RECENT, keywords,
	    &stored, &kw);

	if (rc != MP_OK)
		return rc;
	imap_view_set_flags(s, i, (stored & ~(uint32_t)MP_FLAG_RECENT) | recent, kw);
	return MP_OK;
}

void
imap_keywords_apply(const char *have, enum mp_flags_how how, const char *change,
    char *out, size_t size)
{
	const char *src[2] = { how == MP_FLAGS_REPLACE ? "" : have,
	    how == MP_FLAGS_REMOVE ? "" : change };
	size_t o = 0;

	out[0] = '\0';
	for (int k = 0; k < 2; k++)
		for (const char *p = src[k] ? src[k] : ""; *p;) {
			size_t n = strcspn(p, " ");
			int drop = how == MP_FLAGS_REMOVE && mp_words_find(change, p, n) != NULL;
			if (n && !drop && mp_words_find(out, p, n) == NULL && o + n + 2 < size)
				o += (size_t)snprintf(out + o, size - o, "%s%.*s", o ? " " : "",
				    (int)n, p);
			p += n + (p[n] == ' ');
		}
}

int
imap_resolve_set(struct imap *s, const char *set, int uid, size_t **idx_r, size_t *n_r)
{
	struct imap_range r[256];
	size_t nr, k = 0;
	uint32_t max = uid ? (s->n ? s->msgs[s->n - 1].uid : 0) : (uint32_t)s->n;

	*idx_r = NULL;
	*n_r = 0;
	if (imap_seqset(set, max ? max : (uid ? 0xffffffffu : 0), r, 256, &nr) < 0)
		return -1;
	if (!uid)
		for (size_t i = 0; i < nr; i++)
			if (r[i].hi > s->n && !(s->n == 0))
				return -1;	/* RFC 3501 6.4.8: invalid sequence number */
	*idx_r = calloc(s->n ? s->n : 1, sizeof(size_t));
	if (*idx_r == NULL)
		return -1;
	for (size_t i = 0; i < s->n; i++)
		if (imap_in_set(r, nr, uid ? s->msgs[i].uid : (uint32_t)(i + 1)))
			(*idx_r)[k++] = i;
	*n_r = k;
	return 0;
}

char *
imap_load(struct imap *s, size_t i, enum mp_msg_part part, size_t *len_r)
{
	struct mp_reader r = { .struct_size = sizeof(r) };
	const char *err;
	size_t cap = 0, len = 0;	/* cap counts the NUL's byte too */
	char *buf;
	ssize_t n;

	if (s->st->ops->message_open(s->f, s->msgs[i].uid, part, &r, &err) != MP_OK)
		return NULL;
	buf = mp_array_grow(NULL, &cap, (size_t)s->msgs[i].size + 2, 1);
	while (buf && (n = r.read(&r, buf + len, cap - 1 - len)) > 0) {
		len += (size_t)n;
		if (len == cap - 1) {
			char *grown = mp_array_grow(buf, &cap, cap + 1, 1);
			if (grown == NULL)
				free(buf);
			buf = grown;
		}
	}
	s->st->ops->message_close(&r);
	if (buf)
		buf[len] = '\0';
	*len_r = len;
	return buf;
}
