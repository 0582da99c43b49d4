/*
 * modules/common/store_keywords.h - a message's keywords changed by
 * STORE or APPEND, spelled as the folder first spelled them (store.h
 * contract 4), for the SQL stores (store_keywords.c). Each store keeps
 * the folder's table; it answers one question through a callback.
 */
#ifndef MERPATI_COMMON_STORE_KEYWORDS_H
#define MERPATI_COMMON_STORE_KEYWORDS_H

#include <stddef.h>

#include <merpati/merpati.h>

/*
 * The folder's spelling of word (NUL-terminated, size octets of room),
 * written over word; a word the folder never had is added to its table
 * as given. 0, -1 (database error) or -2 (refused, such as a full
 * table; *why says so).
 */
typedef int store_spelling_fn(void *arg, char *word, size_t size, const char **why);

/*
 * current (the stored keywords) changed by how and given (may be NULL),
 * each word in the folder's spelling, as a malloc'd list in *kw_r.
 * Invalid words in current are dropped; an invalid word in given is
 * refused. 0, -1 (spelling's database error) or -2 (refused or out of
 * memory, with *why; *why is left alone on success).
 */
int store_keywords_apply(const char *current, enum mp_flags_how how, const char *given,
    store_spelling_fn *spelling, void *arg, char **kw_r, const char **why);

#endif
