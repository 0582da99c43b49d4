/*
 * modules/common/store_keywords.c - keyword lists changed in the
 * folder's spelling, one copy for store_sqlite and store_pgsql. See
 * store_keywords.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <merpati/util.h>

#include "store_keywords.h"

/* Append the folder's spelling of w to *out unless it holds it; 0, -1
 * or -2 as store_keywords_apply. */
static int
add_keyword(const char *w, size_t len, store_spelling_fn *spelling, void *arg,
    char **out, const char **why)
{
	char word[MP_KEYWORD_LEN_MAX + 1];
	int rc;

	if (!mp_keyword_valid(w, len)) {
		*why = "invalid keyword";
		return -2;
	}
	if (mp_words_find(*out, w, len))
		return 0;
	snprintf(word, sizeof(word), "%.*s", (int)len, w);
	if ((rc = spelling(arg, word, sizeof(word), why)) < 0)
		return rc;
	if (mp_words_add(out, word, strlen(word)) < 0) {
		*why = "out of memory";
		return -2;
	}
	return 0;
}

int
store_keywords_apply(const char *current, enum mp_flags_how how, const char *given,
    store_spelling_fn *spelling, void *arg, char **kw_r, const char **why)
{
	const char *p, *w;
	char *out = strdup("");
	size_t len;
	int rc = out ? 0 : -2;

	if (out == NULL)
		*why = "out of memory";
	given = given ? given : "";
	for (p = how == MP_FLAGS_REPLACE ? "" : current; rc == 0 &&
	    (len = mp_words_next(&p, &w)) > 0;)
		if (mp_keyword_valid(w, len) && (how != MP_FLAGS_REMOVE || !mp_words_find(given, w, len)))
			rc = add_keyword(w, len, spelling, arg, &out, why);
	for (p = how == MP_FLAGS_REMOVE ? "" : given; rc == 0 &&
	    (len = mp_words_next(&p, &w)) > 0;)
		rc = add_keyword(w, len, spelling, arg, &out, why);
	if (rc < 0) {
		free(out);
		return rc;
	}
	*kw_r = out;
	return 0;
}
