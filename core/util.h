/*
 * core/util.h - small generic helpers shared by the daemon and the CLI:
 * durations, file durability, directories, strings. No mail logic here.
 */
#ifndef MERPATI_CORE_UTIL_H
#define MERPATI_CORE_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* "15m", "4h", "5d", "30s" or a plain number of seconds. 0 ok, -1 bad. */
int mp_parse_duration(const char *text, long long *seconds_r);

/* fsync() the directory holding path (or the directory itself). */
int mp_fsync_dir(const char *dir);

/* mkdir -p with mode for every created component; 0 or -1 with errno. */
int mp_mkdir_p(const char *path, mode_t mode);

/* write() all of buf, retrying on EINTR and short writes. */
int mp_write_all(int fd, const void *buf, size_t len);

/* Copy at most size-1 bytes and terminate; returns 1 if it was cut. */
int mp_strlcpy(char *dst, const char *src, size_t size);

/* ASCII lower-case in place. */
void mp_lowercase(char *s);

/* Join dir and rel into out unless rel is absolute, then drop "." and
 * ".." components of an absolute result; -1 if too long. */
int mp_path_join(char *out, size_t size, const char *dir, const char *rel);

/* An RFC 5322 date for now, e.g. "Mon, 23 Nov 2026 03:51:47 +0000". */
void mp_rfc5322_date(char *out, size_t size);

/*
 * Base64 (RFC 4648) for SASL. decode: -1 on bad input or when the
 * result (NUL-terminated) does not fit; else the decoded length.
 */
int mp_base64_decode(const char *in, char *out, size_t size);
void mp_base64_encode(const void *in, size_t len, char *out, size_t size);

/* A growing, always NUL-terminated byte buffer (aborts when out of
 * memory, like mp_xmalloc). Zero-initialise; free p when done. */
struct mp_buf {
	char *p;
	size_t len, cap;
};
void mp_buf_put(struct mp_buf *b, const void *s, size_t n);

/* malloc that aborts the process on failure (core internals only). */
void *mp_xmalloc(size_t size);
void *mp_xcalloc(size_t n, size_t size);
char *mp_xstrdup(const char *s);
/* v resized to n elements of elem bytes (mp_array_resize of
 * <merpati/util.h>), aborting on overflow or out of memory. */
void *mp_xresize(void *v, size_t n, size_t elem);

#endif
