/*
 * modules/common/store_folders.c - mailbox handles, folder names and
 * the LIST answer, one copy for store_sqlite and store_pgsql. See
 * store_folders.h.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <merpati/merpati.h>

#include "store_folders.h"

int
store_mailbox_new(struct store *s, const char *user, struct mp_mailbox **mb_r,
    const char **error_r)
{
	size_t len = strlen(user);
	struct mp_mailbox *mb;

	if (len >= sizeof(mb->user) || !strchr(user, '@') ||
	    (mb = calloc(1, sizeof(*mb))) == NULL) {
		*error_r = "bad mailbox address";
		return MP_ERROR;
	}
	mb->s = s;
	for (size_t i = 0; i < len; i++)
		mb->user[i] = (char)tolower((unsigned char)user[i]);
	*mb_r = mb;
	return MP_OK;
}

void
store_mailbox_close(struct mp_mailbox *mb)
{
	free(mb);
}

int
store_folder_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 200 || name[0] == '/' || name[len - 1] == '/' || strstr(name, "//"))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

const char *
store_folder_canonical(const char *name)
{
	return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

void
store_folders_report(struct store_folder_row *rows, size_t n,
    void (*each)(void *, const char *, unsigned), void *arg)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(rows[i].name);
		for (size_t k = 0; k < n; k++)
			if (strncmp(rows[k].name, rows[i].name, len) == 0 && rows[k].name[len] == '/')
				rows[i].attrs |= MP_FOLDER_HAS_CHILDREN;
		each(arg, rows[i].name, rows[i].attrs);
	}
}
