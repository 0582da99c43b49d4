/*
 * core/util.c - generic helpers (see util.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <merpati/util.h>

#include "util.h"

int
mp_parse_duration(const char *text, long long *seconds_r)
{
	char *end;
	long long n, unit = 1;

	if (text == NULL || !isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (n > (long long)1 << 40)
		return -1;
	*seconds_r = n * unit;
	return 0;
}

int
mp_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
mp_mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*p = saved;
		if (saved == '\0')
			break;
	}
	return 0;
}

int
mp_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
mp_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size == 0)
		return 1;
	if (len >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return 1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

void
mp_lowercase(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Drop "." and "name/.." components of an absolute path, in place. */
static void
normalize(char *path)
{
	char *out = path, *p = path;

	while (*p) {
		while (*p == '/')
			p++;
		size_t len = strcspn(p, "/");
		if (len == 0)
			break;
		if (len == 1 && p[0] == '.') {
			p += len;
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (out > path && *--out != '/')
				;
			p += len;
			continue;
		}
		*out++ = '/';
		memmove(out, p, len);
		out += len;
		p += len;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

int
mp_path_join(char *out, size_t size, const char *dir, const char *rel)
{
	int n;

	if (rel[0] == '/' || dir == NULL || dir[0] == '\0')
		n = snprintf(out, size, "%s", rel);
	else
		n = snprintf(out, size, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= size)
		return -1;
	if (out[0] == '/')
		normalize(out);
	return 0;
}

void
mp_rfc5322_date(char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

void
mp_buf_put(struct mp_buf *b, const void *s, size_t n)
{
	char *grown = n < SIZE_MAX - b->len ?
	    mp_array_grow(b->p, &b->cap, b->len + n + 1, 1) : NULL;

	if (grown == NULL) {
		fputs("merpati: out of memory\n", stderr);
		abort();
	}
	b->p = grown;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void *
mp_xresize(void *v, size_t n, size_t elem)
{
	void *p = mp_array_resize(v, n, elem);

	if (p == NULL) {
		fputs("merpati: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *
mp_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL) {
		fputs("merpati: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *
mp_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		fputs("merpati: out of memory\n", stderr);
		abort();
	}
	return p;
}

char *
mp_xstrdup(const char *s)
{
	size_t len = strlen(s) + 1;

	return memcpy(mp_xmalloc(len), s, len);
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

int
mp_base64_decode(const char *in, char *out, size_t size)
{
	size_t len = strlen(in), o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad || (v[k] = b64_value(in[i + k])) < 0)
				return -1;
		}
		unsigned n = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		if (o + 3 - (size_t)pad >= size)
			return -1;
		out[o++] = (char)(n >> 16);
		if (pad < 2)
			out[o++] = (char)(n >> 8 & 0xff);
		if (pad < 1)
			out[o++] = (char)(n & 0xff);
	}
	out[o] = '\0';
	return (int)o;
}

void
mp_base64_encode(const void *in, size_t len, char *out, size_t size)
{
	const unsigned char *p = in;
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < size; i += 3) {
		unsigned n = (unsigned)p[i] << 16;
		if (i + 1 < len)
			n |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			n |= p[i + 2];
		out[o++] = b64[n >> 18 & 63];
		out[o++] = b64[n >> 12 & 63];
		out[o++] = i + 1 < len ? b64[n >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? b64[n & 63] : '=';
	}
	if (size)
		out[o < size ? o : size - 1] = '\0';
}
