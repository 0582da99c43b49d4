/*
 * modules/deliver_maildir/maildir_names.c - names on disk: the user's
 * Maildir path, folder directories (Maildir++ ".a.b" for "a/b"), the
 * Maildir spec's unique names, and flags in file names (":2," then
 * D F R S T for Draft, Flagged, Replied, Seen, Trashed). No I/O here
 * beyond making directories.
 */
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildir_private.h"

static int
safe_part(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == '\\' || (unsigned char)s[i] < 0x20 ||
		    s[i] == 0x7f)
			return 0;
	return 1;
}

int
maildir_user_path(const char *root, const char *address, char *out,
    size_t size, const char **why)
{
	const char *at = strrchr(address, '@');
	int n;

	if (at == NULL || !safe_part(address, (size_t)(at - address)) ||
	    !safe_part(at + 1, strlen(at + 1))) {
		*why = "unsafe or malformed mailbox address";
		return -1;
	}
	n = snprintf(out, size, "%s/%s/%.*s", root, at + 1,
	    (int)(at - address), address);
	if (n < 0 || (size_t)n >= size) {
		*why = "mailbox path too long";
		return -1;
	}
	for (char *p = out + strlen(root); *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

int
md_folder_dir(const struct mp_mailbox *mb, const char *name, char *out,
    size_t size)
{
	size_t len = strlen(name);

	if (strcasecmp(name, "INBOX") == 0) {
		snprintf(out, size, "%s", mb->path);
		return 0;
	}
	if (len == 0 || len > 200 || name[0] == '/' || name[len - 1] == '/' ||
	    strstr(name, "//") || strchr(name, '.') || strchr(name, '\\'))
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return -1;
	if ((size_t)snprintf(out, size, "%s/.%s", mb->path, name) >= size)
		return -1;
	for (char *p = out + strlen(mb->path) + 2; *p; p++)
		if (*p == '/')
			*p = '.';
	return 0;
}

int
maildir_make(const char *dir)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char path[PATH_MAX];

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int
mkdir_parents(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

int
maildir_make_path(const char *dir)
{
	return mkdir_parents(dir) < 0 ? -1 : maildir_make(dir);
}

void
maildir_unique_name(const struct mp_host *host, char *out, size_t size)
{
	static _Atomic unsigned counter;
	struct timeval tv;
	char hostpart[128];
	size_t o = 0;

	for (const char *h = host->hostname(); *h && o + 5 < sizeof(hostpart); h++) {
		if (*h == '/' || *h == ':')
			o += (size_t)snprintf(hostpart + o, sizeof(hostpart) - o,
			    "\\%03o", (unsigned char)*h);
		else
			hostpart[o++] = *h;
	}
	hostpart[o] = '\0';
	gettimeofday(&tv, NULL);
	snprintf(out, size, "%lld.M%06ldP%dQ%u.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (int)getpid(), atomic_fetch_add(&counter, 1),
	    hostpart);
}

static const struct { char letter; uint32_t flag; } flag_letters[] = {
	{ 'D', MP_FLAG_DRAFT }, { 'F', MP_FLAG_FLAGGED },
	{ 'R', MP_FLAG_ANSWERED }, { 'S', MP_FLAG_SEEN },
	{ 'T', MP_FLAG_DELETED },
};

uint32_t
md_flags_of(const char *file)
{
	const char *info = strstr(file, ":2,");
	uint32_t flags = 0;

	for (const char *p = info ? info + 3 : ""; *p; p++)
		for (size_t i = 0; i < 5; i++)
			if (*p == flag_letters[i].letter)
				flags |= flag_letters[i].flag;
	return flags;
}

void
md_file_name(const char *base, uint32_t flags, char *out, size_t size)
{
	size_t o = (size_t)snprintf(out, size, "%s:2,", base);

	for (size_t i = 0; i < 5 && o + 1 < size; i++)
		if (flags & flag_letters[i].flag)
			out[o++] = flag_letters[i].letter;
	out[o < size ? o : size - 1] = '\0';
}

void
md_base_of(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%.*s", (int)strcspn(name, ":"), name);
}
