/*
 * core/queue.c - the durable queue (see queue.h).
 *
 * Envelope format, one field per line, values never contain CR or LF:
 *   MERPATI-QUEUE 1
 *   id <ID>
 *   arrival <epoch>
 *   sender <address or empty>
 *   helo <text>  client <text>  auth <text>
 *   rcpt <address>          (one line each)
 *   ret <FULL|HDRS>  envid <xtext>          (DSN, optional)
 *   notify <index> <list>  orcpt <index> <type;xtext>   (optional)
 *   relay <index> <host[:port]>                         (optional)
 *   size <20-digit message length>
 *   .
 * then exactly `size` bytes of message, then optionally header lines that
 * filters added at the end of DATA, each "H <header line>\n", which
 * are served before the message. size is written last (pwrite), so a
 * file cut short by a crash can never look complete.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "queue.h"
#include "sync.h"
#include "util.h"

#define QUEUE_MAGIC "MERPATI-QUEUE 1\n"
#define MAX_ENVELOPE (1024 * 1024)

/* A message stays in memory until it outgrows MEM_LIMIT or is committed:
 * mail delivered straight into the mailboxes then never costs a queue
 * file (create, write, unlink). */
#define MEM_LIMIT (128 * 1024)

struct mp_qwriter {
	int fd;			/* -1 while the message is only in mem */
	int on_disk;		/* tmp/ file exists */
	struct mp_buf mem;	/* envelope + data until spilled */
	char id[MP_QID_SIZE];
	char tmp[4096];
	char final[4096];
	char qdir[4096];
	off_t size_field;	/* offset of the size digits */
	off_t data_start;
	off_t written;
	char *added;		/* "H <header>\n" lines from filters */
	size_t nadded;
};

int
mp_queue_setup(const char *state_dir)
{
	char path[4096];
	static const char *const subdirs[] = { "queue", "queue/tmp", "corrupt" };

	if (mp_mkdir_p(state_dir, 0700) < 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", state_dir, subdirs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

int
mp_queue_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n < 8 || n >= MP_QID_SIZE)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'A' && id[i] <= 'F')))
			return 0;
	return 1;
}

/* Time-ordered, so `ls` and queue list read in arrival order. */
static void
make_id(char id[MP_QID_SIZE])
{
	static _Atomic uint32_t counter;
	static _Atomic int seeded;
	struct timeval tv;

	if (!atomic_exchange(&seeded, 1)) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)getpid();
		atomic_store(&counter, r);
	}
	gettimeofday(&tv, NULL);
	snprintf(id, MP_QID_SIZE, "%010" PRIX64 "%05lX%05" PRIX32,
	    (uint64_t)tv.tv_sec, (unsigned long)tv.tv_usec,
	    (uint32_t)(atomic_fetch_add(&counter, 1) & 0xFFFFF));
}

static int
clean_field(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;
}

static const char *
opt(char *const *v, size_t i)
{
	return v && v[i] ? v[i] : "";
}

static char *
format_envelope(const struct mp_qmsg *env, const char *id, size_t *len_r,
    size_t *size_field_r)
{
	size_t cap = 512 + strlen(env->sender) + strlen(env->ret ? env->ret : "") +
	    strlen(env->envid ? env->envid : "");
	char *buf, *p;

	for (size_t i = 0; i < env->nrcpt; i++)
		cap += strlen(env->rcpts[i]) + strlen(opt(env->notify, i)) +
		    strlen(opt(env->orcpt, i)) + strlen(opt(env->relay, i)) + 96;
	cap += strlen(env->helo ? env->helo : "") +
	    strlen(env->client ? env->client : "") +
	    strlen(env->auth_user ? env->auth_user : "");
	p = buf = mp_xmalloc(cap);
	p += sprintf(p, QUEUE_MAGIC "id %s\narrival %lld\nsender %s\n"
	    "helo %s\nclient %s\nauth %s\n", id, (long long)env->arrival,
	    env->sender, env->helo ? env->helo : "",
	    env->client ? env->client : "",
	    env->auth_user ? env->auth_user : "");
	for (size_t i = 0; i < env->nrcpt; i++)
		p += sprintf(p, "rcpt %s\n", env->rcpts[i]);
	if (env->ret && env->ret[0])
		p += sprintf(p, "ret %s\n", env->ret);
	if (env->envid && env->envid[0])
		p += sprintf(p, "envid %s\n", env->envid);
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (opt(env->notify, i)[0])
			p += sprintf(p, "notify %zu %s\n", i, env->notify[i]);
		if (opt(env->orcpt, i)[0])
			p += sprintf(p, "orcpt %zu %s\n", i, env->orcpt[i]);
		if (opt(env->relay, i)[0])
			p += sprintf(p, "relay %zu %s\n", i, env->relay[i]);
	}
	*size_field_r = (size_t)(p - buf) + 5;
	p += sprintf(p, "size %020d\n.\n", 0);
	*len_r = (size_t)(p - buf);
	return buf;
}

static int
envelope_ok(const struct mp_qmsg *env)
{
	if (env->nrcpt == 0 || !clean_field(env->sender) ||
	    !clean_field(env->helo) || !clean_field(env->client) ||
	    !clean_field(env->auth_user) || !clean_field(env->ret) ||
	    !clean_field(env->envid))
		return 0;
	for (size_t i = 0; i < env->nrcpt; i++)
		if (!clean_field(env->rcpts[i]) || env->rcpts[i][0] == '\0' ||
		    !clean_field(opt(env->notify, i)) ||
		    !clean_field(opt(env->orcpt, i)) ||
		    !clean_field(opt(env->relay, i)))
			return 0;
	return 1;
}

/* A writer for message id (its tmp/ file named id + tmp_suffix). */
static struct mp_qwriter *
begin(const char *qdir, const struct mp_qmsg *env, const char *id,
    const char *tmp_suffix)
{
	struct mp_qwriter *w;
	size_t len, size_field;

	if (!envelope_ok(env)) {
		errno = EINVAL;
		return NULL;
	}
	w = mp_xcalloc(1, sizeof(*w));
	w->fd = -1;
	mp_strlcpy(w->qdir, qdir, sizeof(w->qdir));
	mp_strlcpy(w->id, id, sizeof(w->id));
	snprintf(w->tmp, sizeof(w->tmp), "%s/tmp/%s%s", qdir, w->id, tmp_suffix);
	snprintf(w->final, sizeof(w->final), "%s/%s", qdir, w->id);
	w->mem.p = format_envelope(env, w->id, &len, &size_field);
	w->mem.len = len;
	w->mem.cap = len + 1;	/* format_envelope NUL-terminates */
	w->size_field = (off_t)size_field;
	w->data_start = (off_t)len;
	return w;
}

struct mp_qwriter *
mp_queue_begin(const char *qdir, const struct mp_qmsg *env,
    char id_r[MP_QID_SIZE])
{
	char id[MP_QID_SIZE];
	struct mp_qwriter *w;

	make_id(id);
	if ((w = begin(qdir, env, id, "")) != NULL)
		memcpy(id_r, w->id, MP_QID_SIZE);
	return w;
}

struct mp_qwriter *
mp_queue_rewrite(struct mp_qwriter *w, const struct mp_qmsg *env,
    struct mp_reader *msg)
{
	/* the same id (the client is told it; Received carries it), in a
	 * tmp/ file of its own until the old one is gone */
	struct mp_qwriter *n = begin(w->qdir, env, w->id, ".new");
	char buf[16384];
	ssize_t got = -1;

	if (n == NULL)
		return NULL;
	while ((got = msg->read(msg, buf, sizeof(buf))) > 0)
		if (mp_queue_write(n, buf, (size_t)got) < 0)
			break;
	if (got != 0) {
		mp_queue_abort(n);
		return NULL;
	}
	mp_queue_abort(w);
	return n;
}

/* Move what is in memory into the queue's tmp/ file. */
static int
spill(struct mp_qwriter *w)
{
	w->fd = open(w->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return -1;
	w->on_disk = 1;
	if (mp_write_all(w->fd, w->mem.p, w->mem.len) < 0)
		return -1;
	free(w->mem.p);
	memset(&w->mem, 0, sizeof(w->mem));
	return 0;
}

int
mp_queue_write(struct mp_qwriter *w, const void *buf, size_t len)
{
	if (w->fd < 0 && w->mem.len + len <= MEM_LIMIT)
		mp_buf_put(&w->mem, buf, len);
	else if ((w->fd < 0 && spill(w) < 0) || mp_write_all(w->fd, buf, len) < 0)
		return -1;
	w->written += (off_t)len;
	return 0;
}

off_t
mp_queue_written(const struct mp_qwriter *w)
{
	return w->written;
}

/* Each new header goes above those added before it: "at the top", as
 * filter.h says add_header and txn_header_insert(txn, 0, ...) do. */
int
mp_queue_add_header(struct mp_qwriter *w, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 8, n;
	char *p;

	if (!clean_field(name) || !clean_field(value) || name[0] == '\0' ||
	    strchr(name, ':') || strchr(name, ' ') || w->nadded + len > 65536) {
		errno = EINVAL;
		return -1;
	}
	p = malloc(w->nadded + len);
	if (p == NULL)
		return -1;
	n = (size_t)snprintf(p, len, "H %s: %s\n", name, value);
	if (w->nadded)
		memcpy(p + n, w->added, w->nadded);
	free(w->added);
	w->added = p;
	w->nadded += n;
	return 0;
}

char *
mp_queue_take_added(struct mp_qwriter *w, size_t *len_r)
{
	char *out = mp_xmalloc(w->nadded + w->nadded / 2 + 1), *o = out;

	/* "H Name: value\n" lines become "Name: value\r\n" */
	for (size_t i = 0; i < w->nadded;) {
		char *nl = memchr(w->added + i + 2, '\n', w->nadded - i - 2);
		size_t n = (size_t)(nl - (w->added + i + 2));
		memcpy(o, w->added + i + 2, n);
		o += n;
		*o++ = '\r';
		*o++ = '\n';
		i += n + 3;
	}
	*o = '\0';
	*len_r = (size_t)(o - out);
	free(w->added);
	w->added = NULL;
	w->nadded = 0;
	return out;
}

int
mp_queue_has_added(const struct mp_qwriter *w)
{
	return w->nadded > 0;
}

struct wreader {
	int fd;
	const char *mem;	/* the writer's memory when fd < 0 */
	off_t pos, end;
};

static ssize_t
wreader_read(struct mp_reader *r, void *buf, size_t len)
{
	struct wreader *q = r->priv;
	ssize_t n;

	if (q->pos >= q->end)
		return 0;
	if ((off_t)len > q->end - q->pos)
		len = (size_t)(q->end - q->pos);
	if (q->fd < 0) {
		memcpy(buf, q->mem + q->pos, len);
		n = (ssize_t)len;
	} else
		n = pread(q->fd, buf, len, q->pos);
	if (n > 0)
		q->pos += n;
	return n;
}

int
mp_queue_writer_reader(struct mp_qwriter *w, struct mp_reader *r)
{
	struct wreader *q = mp_xcalloc(1, sizeof(*q));

	q->fd = w->fd;
	q->mem = w->mem.p;
	q->pos = w->data_start;
	q->end = w->data_start + w->written;
	r->struct_size = sizeof(*r);
	r->read = wreader_read;
	r->size = w->written;
	r->priv = q;
	return 0;
}

void
mp_queue_writer_reader_close(struct mp_reader *r)
{
	free(r->priv);
	r->priv = NULL;
}

static int group_commit = 1;

void
mp_queue_set_group_commit(int on)
{
	group_commit = on;
}

/* The file's bytes on disk, before its name enters the queue. */
static int
file_durable(struct mp_qwriter *w)
{
	char tmpdir[4200];

	if (!group_commit)
		return fsync(w->fd);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", w->qdir);
	return mp_sync_group(tmpdir);
}

int
mp_queue_commit(struct mp_qwriter *w)
{
	char digits[21];
	int rc = -1, saved;

	snprintf(digits, sizeof(digits), "%020lld", (long long)w->written);
	if (w->fd < 0 && spill(w) < 0)
		goto fail;
	if (w->nadded && mp_write_all(w->fd, w->added, w->nadded) < 0)
		goto fail;
	if (pwrite(w->fd, digits, 20, w->size_field) != 20)
		goto fail;
	if (file_durable(w) < 0 || close(w->fd) < 0) {
		w->fd = -1;
		goto fail;
	}
	w->fd = -1;
	if (rename(w->tmp, w->final) < 0)
		goto fail;
	if ((group_commit ? mp_sync_group(w->qdir) : mp_fsync_dir(w->qdir)) < 0)
		goto fail;
	free(w->added);
	free(w);
	return 0;
fail:
	saved = errno;
	mp_queue_abort(w);
	errno = saved;
	return rc;
}

int
mp_queue_commit_held(struct mp_qwriter *w, size_t nrcpt, const char *reason)
{
	struct mp_qmsg m = { 0 };
	char id[MP_QID_SIZE], qdir[4096];
	int rc, e;

	mp_strlcpy(m.id, w->id, sizeof(m.id));
	m.nrcpt = nrcpt;
	m.done = mp_xcalloc(nrcpt ? nrcpt : 1, 1);
	m.held = 1;
	mp_strlcpy(m.hold_reason, reason, sizeof(m.hold_reason));
	for (char *p = m.hold_reason; *p; p++)	/* the file is line based */
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	rc = mp_queue_save_status(w->qdir, &m);
	free(m.done);
	if (rc < 0) {
		e = errno;
		mp_queue_abort(w);
		errno = e;
		return -1;
	}
	memcpy(id, w->id, sizeof(id));
	memcpy(qdir, w->qdir, sizeof(qdir));
	if (mp_queue_commit(w) < 0) {
		e = errno;
		mp_queue_remove(qdir, id);	/* its status */
		errno = e;
		return -1;
	}
	return 0;
}

void
mp_queue_abort(struct mp_qwriter *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->on_disk)
		unlink(w->tmp);
	free(w->mem.p);
	free(w->added);
	free(w);
}

/* ---- reading ---------------------------------------------------------- */

static int
corrupt(char *err, size_t errsize, const char *why)
{
	snprintf(err, errsize, "%s", why);
	return -2;
}

static void
add_rcpt(struct mp_qmsg *m, const char *addr)
{
	m->rcpts = mp_xresize(m->rcpts, m->nrcpt + 1, sizeof(char *));
	m->rcpts[m->nrcpt++] = mp_xstrdup(addr);
}

/* "notify 3 SUCCESS": set v[3] (arrays sized to nrcpt on first use). */
static int
indexed(struct mp_qmsg *m, char ***v, const char *val)
{
	char *end;
	unsigned long i = strtoul(val, &end, 10);

	if (*end != ' ' || i >= m->nrcpt)
		return -1;
	if (*v == NULL)
		*v = mp_xcalloc(m->nrcpt, sizeof(char *));
	free((*v)[i]);
	(*v)[i] = mp_xstrdup(end + 1);
	return 0;
}

/* A field given twice keeps the last value (and frees the first). */
static void
set_field(char **field, const char *val)
{
	free(*field);
	*field = mp_xstrdup(val);
}

/* The per-recipient arrays are sized to nrcpt when first used, so a
 * recipient after them would index past their end: corrupt. */
static int
rcpt_line(struct mp_qmsg *m, const char *val)
{
	if (m->notify || m->orcpt || m->relay)
		return -1;
	add_rcpt(m, val);
	return 0;
}

static int
envelope_line(struct mp_qmsg *m, char *line)
{
	char *sp = strchr(line, ' ');
	const char *val = sp ? sp + 1 : "";

	if (sp)
		*sp = '\0';
	if (strcmp(line, "id") == 0)
		return mp_strlcpy(m->id, val, sizeof(m->id)) ? -1 : 0;
	if (strcmp(line, "arrival") == 0)
		m->arrival = (time_t)strtoll(val, NULL, 10);
	else if (strcmp(line, "sender") == 0)
		set_field(&m->sender, val);
	else if (strcmp(line, "helo") == 0)
		set_field(&m->helo, val);
	else if (strcmp(line, "client") == 0)
		set_field(&m->client, val);
	else if (strcmp(line, "auth") == 0)
		set_field(&m->auth_user, val);
	else if (strcmp(line, "rcpt") == 0 && val[0])
		return rcpt_line(m, val);
	else if (strcmp(line, "size") == 0)
		m->size = (off_t)strtoll(val, NULL, 10);
	else if (strcmp(line, "ret") == 0)
		set_field(&m->ret, val);
	else if (strcmp(line, "envid") == 0)
		set_field(&m->envid, val);
	else if (strcmp(line, "notify") == 0)
		return indexed(m, &m->notify, val);
	else if (strcmp(line, "orcpt") == 0)
		return indexed(m, &m->orcpt, val);
	else if (strcmp(line, "relay") == 0)
		return indexed(m, &m->relay, val);
	else
		return -1;
	return 0;
}

static int
parse_envelope(struct mp_qmsg *m, char *buf, size_t len, char *err,
    size_t errsize)
{
	char *p = buf, *end = buf + len;

	if (len < sizeof(QUEUE_MAGIC) - 1 ||
	    memcmp(buf, QUEUE_MAGIC, sizeof(QUEUE_MAGIC) - 1) != 0)
		return corrupt(err, errsize, "bad magic line");
	p += sizeof(QUEUE_MAGIC) - 1;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return corrupt(err, errsize, "envelope cut short");
		*nl = '\0';
		if (strcmp(p, ".") == 0) {
			m->data_offset = (off_t)(nl + 1 - buf);
			return 0;
		}
		if (envelope_line(m, p) < 0)
			return corrupt(err, errsize, "bad envelope line");
		p = nl + 1;
	}
	return corrupt(err, errsize, "envelope has no end marker");
}

static int
validate(const struct mp_qmsg *m, const char *id, off_t file_size,
    char *err, size_t errsize)
{
	if (strcmp(m->id, id) != 0)
		return corrupt(err, errsize, "id does not match file name");
	if (m->sender == NULL || m->nrcpt == 0)
		return corrupt(err, errsize, "no sender or no recipients");
	/* size comes from the file: compared without adding, so a huge or
	 * negative one cannot overflow */
	if (m->size < 0 || m->size > file_size - m->data_offset)
		return corrupt(err, errsize, m->size < 0 ? "negative size" : "message cut short");
	return 0;
}

/* Filters' header lines after the message, as served: "Name: v\r\n". */
static int
load_added(int fd, struct mp_qmsg *m, off_t file_size, char *err,
    size_t errsize)
{
	size_t len = (size_t)(file_size - m->data_offset - m->size), o = 0;
	char *raw;

	if (len == 0)
		return 0;
	if (len > 65536)
		return corrupt(err, errsize, "trailer too big");
	raw = mp_xmalloc(len + 1);
	m->added = mp_xmalloc(len + 1);
	if (pread(fd, raw, len, m->data_offset + m->size) != (ssize_t)len) {
		free(raw);
		return corrupt(err, errsize, "cannot read trailer");
	}
	raw[len] = '\0';
	for (char *p = raw, *nl; *p; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL || p[0] != 'H' || p[1] != ' ') {
			free(raw);
			return corrupt(err, errsize, "bad trailer line");
		}
		*nl = '\0';
		o += (size_t)sprintf(m->added + o, "%s\r\n", p + 2);
	}
	char *fit = realloc(m->added, o + 1);	/* only ever shrinks */
	if (fit != NULL)
		m->added = fit;
	m->nadded = o;
	free(raw);
	return 0;
}

static void
status_line(struct mp_qmsg *m, char *line)
{
	char *sp = strchr(line, ' ');
	const char *val = sp ? sp + 1 : "";

	if (sp)
		*sp = '\0';
	if (strcmp(line, "attempts") == 0)
		m->attempts = (unsigned)strtoul(val, NULL, 10);
	else if (strcmp(line, "last") == 0)
		m->last_attempt = (time_t)strtoll(val, NULL, 10);
	else if (strcmp(line, "next") == 0)
		m->next_attempt = (time_t)strtoll(val, NULL, 10);
	else if (strcmp(line, "warned") == 0)
		m->warned = atoi(val);
	else if (strcmp(line, "error") == 0)
		mp_strlcpy(m->last_error, val, sizeof(m->last_error));
	else if (strcmp(line, "hold") == 0) {
		m->held = 1;
		mp_strlcpy(m->hold_reason, val, sizeof(m->hold_reason));
	}
	else if (strcmp(line, "done") == 0) {
		size_t i = (size_t)strtoul(val, NULL, 10);
		if (i < m->nrcpt)
			m->done[i] = 1;
	}
}

/* A missing or unreadable status file just means "not tried yet". */
static void
load_status(const char *qdir, struct mp_qmsg *m)
{
	char path[4096], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.st", qdir, m->id);
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		status_line(m, line);
	}
	fclose(f);
}

static ssize_t
read_head(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
		if (memmem(buf, got, "\n.\n", 3))
			break;
	}
	return (ssize_t)got;
}

int
mp_queue_load(const char *qdir, const char *id, struct mp_qmsg *m,
    char *err, size_t errsize)
{
	char path[4096];
	struct stat st;
	char *buf;
	ssize_t n;
	int fd, rc;

	memset(m, 0, sizeof(*m));
	if (!mp_queue_id_valid(id))
		return corrupt(err, errsize, "bad queue id");
	snprintf(path, sizeof(path), "%s/%s", qdir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	buf = mp_xmalloc(MAX_ENVELOPE);
	n = read_head(fd, buf, MAX_ENVELOPE);
	if (n < 0) {
		close(fd);
		free(buf);
		return -1;
	}
	rc = parse_envelope(m, buf, (size_t)n, err, errsize);
	free(buf);
	if (rc == 0)
		rc = validate(m, id, st.st_size, err, errsize);
	if (rc == 0)
		rc = load_added(fd, m, st.st_size, err, errsize);
	close(fd);
	if (rc != 0) {
		mp_qmsg_free(m);
		return rc;
	}
	m->done = mp_xcalloc(m->nrcpt, 1);
	load_status(qdir, m);
	return 0;
}

void
mp_qmsg_free(struct mp_qmsg *m)
{
	free(m->sender);
	free(m->helo);
	free(m->client);
	free(m->auth_user);
	for (size_t i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i]);
		free(m->notify ? m->notify[i] : NULL);
		free(m->orcpt ? m->orcpt[i] : NULL);
		free(m->relay ? m->relay[i] : NULL);
	}
	free(m->relay);
	free(m->rcpts);
	free(m->notify);
	free(m->orcpt);
	free(m->ret);
	free(m->envid);
	free(m->added);
	free(m->done);
	memset(m, 0, sizeof(*m));
}

int
mp_queue_save_status(const char *qdir, const struct mp_qmsg *m)
{
	char tmp[4096], path[4096], *buf;
	size_t cap = 256 + sizeof(m->last_error) + sizeof(m->hold_reason) +
	    m->nrcpt * 24, len;
	int fd, rc = -1;

	buf = mp_xmalloc(cap);
	len = (size_t)snprintf(buf, cap,
	    "attempts %u\nlast %lld\nnext %lld\nwarned %d\nerror %s\n",
	    m->attempts, (long long)m->last_attempt,
	    (long long)m->next_attempt, m->warned, m->last_error);
	if (m->held)
		len += (size_t)snprintf(buf + len, cap - len, "hold %s\n",
		    m->hold_reason);
	for (size_t i = 0; i < m->nrcpt && len < cap; i++)
		if (m->done[i])
			len += (size_t)snprintf(buf + len, cap - len,
			    "done %zu\n", i);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s.st", qdir, m->id);
	snprintf(path, sizeof(path), "%s/%s.st", qdir, m->id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (mp_write_all(fd, buf, len) == 0 && fsync(fd) == 0 &&
		    rename(tmp, path) == 0)
			rc = mp_fsync_dir(qdir);
		close(fd);
	}
	if (rc < 0)
		unlink(tmp);
	free(buf);
	return rc;
}

int
mp_queue_remove(const char *qdir, const char *id)
{
	char path[4096];
	int rc;

	snprintf(path, sizeof(path), "%s/%s.st", qdir, id);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", qdir, id);
	rc = unlink(path);
	/* No directory fsync: should a crash undo the unlink, the message
	 * is delivered again (at-least-once), never lost. */
	return rc;
}

int
mp_queue_quarantine(const char *qdir, const char *id)
{
	char from[4096], to[4096];

	snprintf(from, sizeof(from), "%s/%s.st", qdir, id);
	snprintf(to, sizeof(to), "%s/../corrupt/%s.st", qdir, id);
	rename(from, to);
	snprintf(from, sizeof(from), "%s/%s", qdir, id);
	snprintf(to, sizeof(to), "%s/../corrupt/%s", qdir, id);
	return rename(from, to);
}

int
mp_queue_scan(const char *qdir, void (*each)(void *arg, const char *id),
    void *arg)
{
	DIR *d = opendir(qdir);
	struct dirent *e;
	int count = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '.') ||
		    strcmp(e->d_name, "tmp") == 0)
			continue;
		each(arg, e->d_name);
		count++;
	}
	closedir(d);
	return count;
}

/* ---- message reader --------------------------------------------------- */

struct qreader {
	int fd;
	off_t pos, end;
	const char *added;	/* served first */
	size_t nadded, apos;
};

static ssize_t
qreader_read(struct mp_reader *r, void *buf, size_t len)
{
	struct qreader *q = r->priv;
	ssize_t n;

	if (q->apos < q->nadded) {
		size_t k = q->nadded - q->apos < len ? q->nadded - q->apos : len;
		memcpy(buf, q->added + q->apos, k);
		q->apos += k;
		return (ssize_t)k;
	}
	if (q->pos >= q->end)
		return 0;
	if ((off_t)len > q->end - q->pos)
		len = (size_t)(q->end - q->pos);
	do
		n = pread(q->fd, buf, len, q->pos);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		q->pos += n;
	else if (n == 0) {
		errno = EIO;	/* the file shrank under us */
		return -1;
	}
	return n;
}

int
mp_queue_reader_open(const char *qdir, const struct mp_qmsg *m,
    struct mp_reader *r)
{
	char path[4096];
	struct qreader *q = mp_xcalloc(1, sizeof(*q));

	snprintf(path, sizeof(path), "%s/%s", qdir, m->id);
	q->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (q->fd < 0) {
		free(q);
		return -1;
	}
	q->pos = m->data_offset;
	q->end = m->data_offset + m->size;
	q->added = m->added;
	q->nadded = m->nadded;
	r->struct_size = sizeof(*r);
	r->read = qreader_read;
	r->size = m->size + (off_t)m->nadded;
	r->priv = q;
	return 0;
}

void
mp_queue_reader_close(struct mp_reader *r)
{
	struct qreader *q = r->priv;

	if (q) {
		close(q->fd);
		free(q);
	}
	r->priv = NULL;
}
