/*
 * core/sync.h - group commit (see sync.c).
 */
#ifndef MERPATI_SYNC_H
#define MERPATI_SYNC_H

/* Returns once a syncfs() of dir's file system that began after the
 * call has completed: everything written before the call, on that file
 * system, is on disk. Concurrent callers share one syncfs(). 0, or -1
 * with errno. */
int mp_sync_group(const char *dir);

#endif
