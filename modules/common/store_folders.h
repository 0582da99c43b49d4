/*
 * modules/common/store_folders.h - the mailbox handle and the rules for
 * folder names that the SQL stores share (store_folders.c), and their
 * LIST answer: what the folder table says plus \HasChildren.
 */
#ifndef MERPATI_COMMON_STORE_FOLDERS_H
#define MERPATI_COMMON_STORE_FOLDERS_H

#include <stddef.h>

#include <merpati/merpati.h>

/* An SQL store's mailbox handle: the module's state (struct store, the
 * module's own) and whose mailbox it is. */
struct store;
struct mp_mailbox {
	struct store *s;
	char user[330];		/* the address, lower-cased */
};
/* A handle on user's mailbox in s (not yet looked up in the database):
 * MP_OK, or MP_ERROR with *error_r when user is no address, too long,
 * or memory ran out. */
int store_mailbox_new(struct store *s, const char *user, struct mp_mailbox **mb_r,
    const char **error_r);
/* store.h's close(). */
void store_mailbox_close(struct mp_mailbox *mb);

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
