/*
 * modules/deliver_maildir/maildir_flags.c - flag and keyword changes
 * (store.h contract 3 and 4). System flags live in the file name, so a
 * change is a rename computed from the name as it is now: under the
 * list lock (no one else renames then), from the handle's last known
 * name, or, when that went stale, the name found in cur/ or new/.
 * Keywords live in the UID list: changed on the list as it is under the
 * lock (the lock file's generation says whether a copy is current).
 * Keywords compare case-insensitively; the folder keeps the first
 * spelling it saw, in the list's "K" line (FLAGS / PERMANENTFLAGS).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "maildir_private.h"

/* ---- keywords as space-separated words (mp_words_ of <merpati/util.h>) ---- */

static size_t
count_words(const char *list)
{
	const char *p = list, *x;
	size_t n = 0;

	while (mp_words_next(&p, &x) > 0)
		n++;
	return n;
}

/* The folder's spelling of w, adding it when new. NULL: table full. */
static const char *
folder_spelling(struct md_list *l, const char *w, size_t len, const char **why)
{
	const char *known = mp_words_find(l->keywords, w, len);

	if (known)
		return known;
	if (count_words(l->keywords) >= KEYWORDS_MAX) {
		*why = "too many keywords in this folder";
		return NULL;
	}
	if (mp_words_add(&l->keywords, w, len) < 0) {
		*why = "out of memory";
		return NULL;
	}
	l->dirty = 1;
	return mp_words_find(l->keywords, w, len);
}

int
md_keywords_register(struct md_list *l, const char *kw)
{
	const char *p = kw, *w, *why;
	size_t len;

	while ((len = mp_words_next(&p, &w)) > 0)
		if (mp_keyword_valid(w, len) && folder_spelling(l, w, len, &why) == NULL &&
		    strcmp(why, "out of memory") == 0)
			return -1;
	return 0;
}

/* Add w (in folder spelling) to *out unless it is there already. */
static int
add_keyword(struct md_list *l, char **out, const char *w, size_t len,
    const char **why)
{
	const char *spelled;

	if (!mp_keyword_valid(w, len)) {
		*why = "invalid keyword";
		return -1;
	}
	if (mp_words_find(*out, w, len))
		return 0;
	if ((spelled = folder_spelling(l, w, len, why)) == NULL)
		return -1;
	if (mp_words_add(out, spelled, len) < 0) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

int
md_keywords_apply(struct md_list *l, const char *current,
    enum mp_flags_how how, const char *given, char **kw_r, const char **why)
{
	const char *p, *w;
	char *out = strdup("");
	size_t len;
	int rc = 0;

	if (out == NULL) {
		*why = "out of memory";
		return -1;
	}
	given = given ? given : "";
	for (p = how == MP_FLAGS_REPLACE ? "" : current; rc == 0 &&
	    (len = mp_words_next(&p, &w)) > 0;)
		if (how != MP_FLAGS_REMOVE || !mp_words_find(given, w, len))
			rc = mp_keyword_valid(w, len) ? add_keyword(l, &out, w, len, why) : 0;
	for (p = how == MP_FLAGS_REMOVE ? "" : given; rc == 0 &&
	    (len = mp_words_next(&p, &w)) > 0;)
		rc = add_keyword(l, &out, w, len, why);
	if (rc < 0) {
		free(out);
		return -1;
	}
	*kw_r = out;
	return 0;
}

int
md_folder_keywords(struct mp_folder *f, const char **keywords_r,
    const char **error_r)
{
	(void)error_r;
	*keywords_r = f->list.keywords ? f->list.keywords : "";
	return MP_OK;
}

/* ---- changes, under the list lock ---- */

/*
 * Rename the message's file for its new flags, from its name as it is
 * now; *name (in: the handle's last known name) gets the new one. The
 * result flags go to *flags_r. MP_DECLINED when the file is gone.
 */
static int
rename_for_flags(struct mp_folder *f, const char *base, char *name,
    size_t size, enum mp_flags_how how, uint32_t flags, uint32_t *flags_r,
    const char **error_r)
{
	char target[NAME_MAX_MD + 8];

	for (int tries = 0; tries < 2; tries++) {
		uint32_t now = mp_flags_apply(md_flags_of(name), how, flags);
		snprintf(target, sizeof(target), "cur/");
		md_file_name(base, now, target + 4, sizeof(target) - 4);
		*flags_r = now;
		if (strcmp(target, name) == 0 ?
		    faccessat(f->dir_fd, name, F_OK, 0) == 0 :
		    renameat(f->dir_fd, name, f->dir_fd, target) == 0) {
			snprintf(name, size, "%s", target);
			return MP_OK;
		}
		if (errno != ENOENT)
			return md_fail(error_r, "cannot change flags", MP_TEMPFAIL);
		/* Stale name: someone renamed it (or expunged it). */
		int found = md_locate(f, base, name, size);
		if (found < 0)
			return md_fail(error_r, "cannot read folder", MP_TEMPFAIL);
		if (found == 0)
			break;
	}
	*error_r = "message was expunged";
	return MP_DECLINED;
}

/* Does this change touch keywords at all? */
static int
changes_keywords(enum mp_flags_how how, const char *keywords)
{
	return how == MP_FLAGS_REPLACE || (keywords && keywords[0]);
}

/*
 * The UID list as it is now (lock held): the handle's view when no one
 * wrote the list since it was read, else the copy kept from the last
 * time this handle had to read it (f->fresh), read again only when
 * someone wrote since. NULL on error.
 */
static struct md_list *
current_list(struct mp_folder *f)
{
	struct md_lockstate st;

	md_lockstate_read(f->list_fd, &st, 0);
	if (st.gen == f->list.gen)
		return &f->list;
	if (f->fresh.keywords == NULL || st.gen != f->fresh.gen)
		if (md_list_read(f->path, f->mb->path, f->list_fd, &f->fresh) < 0) {
			md_list_free(&f->fresh);
			return NULL;
		}
	return &f->fresh;
}

/*
 * Apply the keyword change to the message's keywords in the list as it
 * is now. The handle's entry e and folder table get the result.
 */
static int
change_keywords(struct mp_folder *f, struct md_entry *e, enum mp_flags_how how,
    const char *keywords, const char **error_r)
{
	struct md_list *l = current_list(f);
	struct md_entry *le;
	char *kw = NULL;
	int rc = MP_OK;

	if (l == NULL)
		return md_fail(error_r, "cannot read UID list", MP_TEMPFAIL);
	if ((le = l == &f->list ? e : md_list_find(l, e->uid)) == NULL) {
		*error_r = "message was expunged";
		return MP_DECLINED;
	}
	if (md_keywords_apply(l, le->keywords, how, keywords, &kw, error_r) < 0)
		rc = MP_ERROR;
	else if (strcmp(kw, le->keywords) != 0 || l->dirty) {
		free(le->keywords);
		le->keywords = kw;
		kw = NULL;
		if (md_list_write(f->path, f->list_fd, l) < 0) {
			rc = md_fail(error_r, "cannot write UID list", MP_TEMPFAIL);
			l->gen--;	/* differs from the disk now: never current */
		}
	}
	free(kw);
	if (rc == MP_OK && l == &f->fresh) {	/* bring the handle's view along */
		char *k = strdup(le->keywords), *t = strdup(l->keywords);
		if (k && t) {
			free(e->keywords);
			e->keywords = k;
			free(f->list.keywords);
			f->list.keywords = t;
		} else {
			free(k);
			free(t);
		}
	}
	return rc;
}

int
md_flags_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *keywords, uint32_t *flags_r,
    const char **keywords_r, const char **error_r)
{
	struct md_entry *e = md_list_find(&f->list, uid);
	char name[PATH_MAX];
	uint32_t now = 0;
	int rc;

	if (e == NULL || e->file == NULL) {
		*error_r = "no such message";
		return MP_DECLINED;
	}
	if (f->read_only) {
		*error_r = "folder is read-only";
		return MP_ERROR;
	}
	snprintf(name, sizeof(name), "%s", e->file);
	if (md_list_lock(f->list_fd) < 0)
		return md_fail(error_r, "cannot lock UID list", MP_TEMPFAIL);
	rc = rename_for_flags(f, e->base, name, sizeof(name), how, flags, &now,
	    error_r);
	if (rc == MP_OK && changes_keywords(how, keywords))
		rc = change_keywords(f, e, how, keywords, error_r);
	md_list_unlock(f->list_fd);
	if (rc == MP_DECLINED) {
		free(e->file);
		e->file = NULL;
	}
	if (rc != MP_OK)
		return rc;
	/* out of memory, the stale name stays: open_message finds the file */
	char *file = strdup(name);
	if (file != NULL) {
		free(e->file);
		e->file = file;
	}
	e->flags = (e->flags & MP_FLAG_RECENT) | now;
	f->info[e - f->list.e].flags = e->flags;
	f->info[e - f->list.e].keywords = e->keywords;
	if (flags_r)
		*flags_r = e->flags;
	if (keywords_r)
		*keywords_r = e->keywords;
	return MP_OK;
}

int
md_flags_set(struct mp_folder *f, uint32_t uid, uint32_t flags,
    const char *keywords, const char **error_r)
{
	return md_flags_change(f, uid, MP_FLAGS_REPLACE, flags, keywords, NULL,
	    NULL, error_r);
}
