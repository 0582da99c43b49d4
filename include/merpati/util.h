/*
 * include/merpati/util.h - small helpers shared by the core and the
 * modules: array growth with an overflow check, a growing string
 * buffer, an mp_reader over bytes in memory, space-separated word lists
 * (keywords), the special-use folder names (RFC 6154), and stepping
 * through a DNS answer's packed records. Header-only
 * (static inline): nothing here crosses the module ABI, and memory comes
 * from malloc/realloc (not host->alloc), so what these return is freed
 * with free().
 */
#ifndef MERPATI_UTIL_H
#define MERPATI_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <merpati/module.h>
#include <merpati/resolve.h>
#include <merpati/store.h>

/* ---- arrays ------------------------------------------------------------ */

/*
 * v (n elements of elem bytes, may be NULL) reallocated to exactly n
 * elements; NULL with errno ENOMEM when n * elem overflows or memory
 * runs out, and v is then untouched (still the caller's to free).
 */
static inline void *
mp_array_resize(void *v, size_t n, size_t elem)
{
	if (elem != 0 && n > SIZE_MAX / elem) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(v, n != 0 && elem != 0 ? n * elem : 1);
}

/*
 * Room for at least need elements of elem bytes in v, whose capacity is
 * *cap: v itself when it has room, else v reallocated to about twice
 * the capacity (so appending one at a time costs amortised O(1)) with
 * *cap updated. NULL with errno ENOMEM on overflow or out of memory;
 * v and *cap are then untouched.
 */
static inline void *
mp_array_grow(void *v, size_t *cap, size_t need, size_t elem)
{
	size_t want;
	void *grown;

	if (v != NULL && need <= *cap)
		return v;
	want = *cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2;
	if (want < need)
		want = need;
	if (want < 8)
		want = 8;
	if (elem != 0 && want > SIZE_MAX / elem)
		want = SIZE_MAX / elem;	/* the most there can be */
	if (want < need) {
		errno = ENOMEM;
		return NULL;
	}
	if ((grown = mp_array_resize(v, want, elem)) != NULL)
		*cap = want;
	return grown;
}

/* ---- string buffer ----------------------------------------------------- */

/*
 * A growing byte buffer, NUL-terminated after every put once p is set
 * (bytes may include NULs; len counts them). Zero-initialise. A failed
 * allocation sets failed and every later put is ignored, so a caller
 * builds the whole text and checks failed once; free(p) when done.
 */
struct mp_str {
	char *p;
	size_t len, cap;
	int failed;
};

/* Room for more bytes plus the NUL; 0, or -1 (and failed set). */
static inline int
mp_str_reserve(struct mp_str *b, size_t more)
{
	char *grown;

	if (b->failed)
		return -1;
	if (more > SIZE_MAX - b->len - 1 ||
	    (grown = mp_array_grow(b->p, &b->cap, b->len + more + 1, 1)) == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = grown;
	return 0;
}

static inline void
mp_str_put(struct mp_str *b, const void *s, size_t n)
{
	if (mp_str_reserve(b, n) < 0)
		return;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void
mp_str_puts(struct mp_str *b, const char *s)
{
	mp_str_put(b, s, strlen(s));
}

static inline void
mp_str_putc(struct mp_str *b, char c)
{
	mp_str_put(b, &c, 1);
}

/* printf onto the end; a format error sets failed. */
static inline void mp_str_printf(struct mp_str *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
mp_str_printf(struct mp_str *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (mp_str_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---- reading from memory ----------------------------------------------- */

/* An mp_reader over len bytes at p (borrowed, must outlive the reader). */
struct mp_mem_reader {
	struct mp_reader reader;
	const char *p;
	size_t len, pos;
};

static inline ssize_t
mp_mem_read(struct mp_reader *r, void *buf, size_t len)
{
	struct mp_mem_reader *m = r->priv;

	if (len > m->len - m->pos)
		len = m->len - m->pos;
	if (len > SIZE_MAX / 2)	/* what a read can report: SSIZE_MAX */
		len = SIZE_MAX / 2;
	if (len > 0)
		memcpy(buf, m->p + m->pos, len);
	m->pos += len;
	return (ssize_t)len;
}

/* Set m up over p[0..len) and return its reader (size len). */
static inline struct mp_reader *
mp_mem_reader_init(struct mp_mem_reader *m, const void *p, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->p = p;
	m->len = len;
	m->reader.struct_size = sizeof(m->reader);
	m->reader.read = mp_mem_read;
	m->reader.size = (off_t)len;
	m->reader.priv = m;
	return &m->reader;
}

/* ---- space-separated word lists (keywords) ----------------------------- */

/* The next word of *p (advanced past it); its length, 0 at the end. */
static inline size_t
mp_words_next(const char **p, const char **w)
{
	size_t len;

	*p += strspn(*p, " ");
	*w = *p;
	len = strcspn(*p, " ");
	*p += len;
	return len;
}

/* The word of list (may be NULL) equal to w[0..len) in any case, or NULL. */
static inline const char *
mp_words_find(const char *list, const char *w, size_t len)
{
	const char *p = list ? list : "", *x;
	size_t n;

	while ((n = mp_words_next(&p, &x)) > 0)
		if (n == len && strncasecmp(x, w, len) == 0)
			return x;
	return NULL;
}

/* Append w[0..len) to the malloc'd list *list (NULL is empty), space
 * separated; 0, or -1 (errno ENOMEM) with *list untouched. */
static inline int
mp_words_add(char **list, const char *w, size_t len)
{
	size_t have = *list ? strlen(*list) : 0;
	char *grown;

	if (len > SIZE_MAX - have - 2 ||
	    (grown = realloc(*list, have + len + 2)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (have)
		grown[have++] = ' ';
	memcpy(grown + have, w, len);
	grown[have + len] = '\0';
	*list = grown;
	return 0;
}

/* ---- special-use folders (RFC 6154) ------------------------------------ */

/* A special-use folder: the name it is created under at first login,
 * its RFC 6154 attribute and its MP_FOLDER_ flag. */
struct mp_special_use {
	const char *name;
	const char *attribute;
	unsigned flag;
};

#define MP_SPECIAL_USES 4

/* The i-th special use, i < MP_SPECIAL_USES. */
static inline const struct mp_special_use *
mp_special_use(size_t i)
{
	static const struct mp_special_use uses[MP_SPECIAL_USES] = {
		{ "Sent", "\\Sent", MP_FOLDER_SENT },
		{ "Drafts", "\\Drafts", MP_FOLDER_DRAFTS },
		{ "Trash", "\\Trash", MP_FOLDER_TRASH },
		{ "Junk", "\\Junk", MP_FOLDER_JUNK },
	};

	return &uses[i];
}

/* The MP_FOLDER_ flag of a folder by its name (any case), or 0. */
static inline unsigned
mp_special_use_flag(const char *folder)
{
	for (size_t i = 0; i < MP_SPECIAL_USES; i++)
		if (strcasecmp(folder, mp_special_use(i)->name) == 0)
			return mp_special_use(i)->flag;
	return 0;
}

/* ---- DNS answers (resolve.h) -------------------------------------------- */

/*
 * The next record of an answer packed in buf: *data_r and *len_r get it
 * and *offset moves past it. 1 when there was one, 0 at the end (or at
 * a length that runs past the used bytes).
 */
static inline int
mp_dns_next(const unsigned char *buf, const struct mp_dns_answer *a,
    size_t *offset, const unsigned char **data_r, size_t *len_r)
{
	size_t at = *offset, len;

	if (at + 2 > a->used)
		return 0;
	len = (size_t)buf[at] << 8 | buf[at + 1];
	if (len > a->used - at - 2)
		return 0;
	*data_r = buf + at + 2;
	*len_r = len;
	*offset = at + 2 + len;
	return 1;
}

#endif
