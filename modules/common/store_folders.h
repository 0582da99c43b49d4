/*
 * modules/common/store_folders.h - the rules for mailbox and folder
 * names that the SQL stores share (store_folders.c), and their LIST
 * answer: what the folder table says plus \HasChildren.
 */
#ifndef MERPATI_COMMON_STORE_FOLDERS_H
#define MERPATI_COMMON_STORE_FOLDERS_H

#include <stddef.h>

/* The mailbox name of address user: lower-cased into out (size octets).
 * 0, or -1 when it is no address or too long. */
int store_user_name(const char *user, char *out, size_t size);

/* 1 when name can be a folder: 1 to 200 octets, no control characters,
 * no empty hierarchy level ("/a", "a/", "a//b"); else 0. */
int store_folder_valid(const char *name);
/* "INBOX" for any case of it (RFC 3501 5.1), else name. */
const char *store_folder_canonical(const char *name);

struct store_folder_row {
	char name[210];		/* a valid folder name fits */
	unsigned attrs;		/* MP_FOLDER_* */
};
/* Add MP_FOLDER_HAS_CHILDREN where another row is below, then hand
 * each of the n rows to each (store.h's folders()). */
void store_folders_report(struct store_folder_row *rows, size_t n,
    void (*each)(void *, const char *, unsigned), void *arg);

#endif
