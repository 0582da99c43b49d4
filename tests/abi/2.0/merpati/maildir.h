/*
 * include/merpati/maildir.h - Maildir conventions shared by the core's
 * queue (a Maildir-like tmp/ + new/ layout) and Maildir mail stores.
 * Header-only: nothing here crosses the module ABI.
 */
#ifndef MERPATI_MAILDIR_H
#define MERPATI_MAILDIR_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A tmp/ file untouched for 36 hours was left by a crash: nothing will
 * ever finish it (the Maildir convention, maildir(5) of qmail). */
#define MP_MAILDIR_TMP_MAX_AGE (36 * 3600)

/*
 * Remove the files of dir/tmp/ whose data and inode have not changed for
 * max_age seconds, never following a symlink (unlinkat removes the link
 * itself) and leaving subdirectories alone. The inode change time counts
 * because a save in progress may already carry an old mtime: IMAP APPEND
 * sets the INTERNALDATE as the tmp/ file's mtime before its rename, and
 * only ctime, which nobody can set back, says the file is fresh.
 * Returns how many were removed, or -1 (errno) when tmp/ cannot be opened.
 */
static inline int
mp_maildir_clean_tmp(const char *dir, time_t max_age)
{
	time_t cutoff = time(NULL) - max_age;
	struct dirent *e;
	struct stat st;
	int removed = 0, fd;
	DIR *d;

	fd = openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int tmp = openat(fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(fd);
	if (tmp < 0 || (d = fdopendir(tmp)) == NULL) {
		if (tmp >= 0)
			close(tmp);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode) || st.st_mtime >= cutoff || st.st_ctime >= cutoff)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

#endif
