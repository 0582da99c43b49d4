/*
 * tests/fuzz/fuzz_maildir_uidlist.c - libFuzzer target: the Maildir
 * module's parsers of what is on disk. The input is a merpati-uidlist
 * (any version) read through md_list_parse; each of its lines is also
 * a file name for the ":2,<flags>" parser and a folder name for
 * md_folder_dir. What must hold: entries come out in non-decreasing
 * UID order (md_list_find's bsearch relies on it), each UID is
 * non-zero and below UIDNEXT, every base name fits BASE_MAX; flags
 * round-trip through md_file_name; a folder directory stays one name
 * under the mailbox (no '/' after "<mailbox>/.").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/deliver_maildir/maildir_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* maildir_flags.c (linked for md_keywords_register) also changes flags
 * on disk through these; the parsers never reach them. */
int md_fail(const char **error_r, const char *what, int rc) { abort(); }
int md_locate(const struct mp_folder *f, const char *base, char *out,
    size_t size) { abort(); }

#define ALL_FLAGS (MP_FLAG_DRAFT | MP_FLAG_FLAGGED | MP_FLAG_ANSWERED | \
	MP_FLAG_SEEN | MP_FLAG_DELETED)

static void
check_list(const struct md_list *l, int version)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct md_entry *e = &l->e[i];
		if (e->uid == 0 || e->uid >= l->uidnext || e->base == NULL ||
		    strlen(e->base) >= BASE_MAX || e->keywords == NULL)
			abort();
		if (i > 0 && l->e[i - 1].uid > e->uid)
			abort();
		const struct md_entry *f = md_list_find(l, e->uid);
		if (f == NULL || f->uid != e->uid)
			abort();
	}
	if (version <= 0 && l->n != 0)
		abort();
	if (l->keywords == NULL)
		abort();
}

static void
check_name(const char *name)
{
	char base[BASE_MAX], file[NAME_MAX_MD], again[BASE_MAX];
	uint32_t flags = md_flags_of(name);

	if (flags & ~(uint32_t)ALL_FLAGS)
		abort();
	md_base_of(name, base, sizeof(base));
	if (strchr(base, ':'))
		abort();
	md_file_name(base, flags, file, sizeof(file));
	md_base_of(file, again, sizeof(again));
	if (strlen(base) + 10 < sizeof(file) &&
	    (md_flags_of(file) != flags || strcmp(again, base) != 0))
		abort();
}

static void
check_folder(const char *name)
{
	static struct mp_mailbox mb = { .path = "/mail/example.test/alice" };
	char dir[PATH_MAX];
	size_t plen = strlen(mb.path);

	if (md_folder_dir(&mb, name, dir, sizeof(dir)) < 0)
		return;
	if (strncmp(dir, mb.path, plen) != 0)
		abort();
	if (dir[plen] != '\0' && (strncmp(dir + plen, "/.", 2) != 0 ||
	    strchr(dir + plen + 2, '/') || dir[plen + 2] == '.' || dir[plen + 2] == '\0'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct md_list l = { 0 };
	FILE *fp = fmemopen(size ? (void *)data : (void *)"", size ? size : 1, "r");
	int version;

	if (fp == NULL)
		abort();
	version = md_list_parse(fp, &l);
	fclose(fp);
	check_list(&l, version);
	md_list_free(&l);

	char *text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		check_name(line);
		check_folder(line);
	}
	free(text);
	return 0;
}
