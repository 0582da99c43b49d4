/*
 * modules/deliver_maildir/deliver_maildir.c - the deliver kind (and,
 * with maildir_store.c, the store kind) on Maildir.
 *
 * Delivery follows the Maildir spec: a unique name in tmp/, the message
 * written and fsync()ed there, link()ed into new/, the directory
 * fsync()ed; only then does the queue forget the recipient. The queue
 * holds SMTP wire form (CRLF); files are written with LF line ends, as
 * Postfix and qmail do, after Return-Path and Delivered-To.
 *
 * With sync = "group" (the default) the two durability points, file
 * written and file renamed, are each a group commit: one syncfs() on
 * the Maildir's file system covers every delivery that reached that
 * point before it began, so concurrent deliveries share one disk flush
 * instead of paying two fsync()s each. The order stays the spec's: the
 * data is on disk before the name in new/ is. sync = "file" is the
 * classic fsync() of the file and of new/.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir_store.h"

struct md_settings {
	const char *root;
	const char *sync;	/* "group" or "file" */
};

struct maildir {
	struct maildir_store_env env;	/* first: the store's view */
	struct md_settings set;
	int group_sync;
};

const struct maildir_store_env *
maildir_store_env(void *ctx)
{
	return &((struct maildir *)ctx)->env;
}

static void
status(struct mp_status *st, int reply, const char *enh, const char *text,
    int err)
{
	st->reply = reply;
	snprintf(st->enhanced, sizeof(st->enhanced), "%s", enh);
	if (err)
		snprintf(st->text, sizeof(st->text), "%s: %s", text, strerror(err));
	else
		snprintf(st->text, sizeof(st->text), "%s", text);
}

/* A failed write: the right temporary status for its errno. */
static int
io_failure(struct mp_status *st, const char *what, int err)
{
	if (err == ENOSPC)
		status(st, 452, "4.3.1", "mail system full", 0);
	else if (err == EDQUOT)
		status(st, 452, "4.2.2", "mailbox over quota", 0);
	else
		status(st, 451, "4.3.0", what, err);
	return MP_TEMPFAIL;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* CRLF -> LF for one buffer; a CR at its end waits in *pending_cr
 * for the next byte. Runs between CRs are copied at once. */
static size_t
crlf_to_lf(const char *in, size_t n, char *out, int *pending_cr)
{
	size_t i = 0, o = 0;

	if (*pending_cr && n > 0) {
		if (in[0] != '\n')
			out[o++] = '\r';
		*pending_cr = 0;
	}
	while (i < n) {
		const char *cr = memchr(in + i, '\r', n - i);
		size_t run = cr ? (size_t)(cr - (in + i)) : n - i;
		memcpy(out + o, in + i, run);
		o += run;
		i += run;
		if (cr == NULL)
			break;
		if (++i == n) {
			*pending_cr = 1;
			break;
		}
		if (in[i] != '\n')
			out[o++] = '\r';	/* a lone CR stays */
	}
	return o;
}

/* Copy the message, CRLF -> LF, through a bounded buffer. */
static int
copy_lf(int fd, struct mp_reader *msg)
{
	char in[16384], out[16384];
	int pending_cr = 0;
	ssize_t n;

	while ((n = msg->read(msg, in, sizeof(in))) > 0)
		if (write_all(fd, out, crlf_to_lf(in, (size_t)n, out, &pending_cr)) < 0)
			return -1;
	if (n == 0 && pending_cr && write_all(fd, "\r", 1) < 0)
		return -1;
	return n < 0 ? -1 : 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Open a new file in tmp/; a missing Maildir is made on first use. */
static int
open_tmp(const char *dir, const char *tmp)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 && errno == ENOENT && maildir_make_path(dir) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return fd;
}

static int
move_to_new(const char *dir, const char *tmp, const char *new)
{
	if (rename(tmp, new) == 0)
		return 0;
	if (errno != ENOENT || maildir_make(dir) < 0)
		return -1;
	return rename(tmp, new);
}

static int
write_file(int fd, const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, int group)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "Return-Path: <%s>\nDelivered-To: %s\n",
	    env->sender, rcpt);

	if (n < 0 || (size_t)n >= sizeof(head)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (write_all(fd, head, (size_t)n) < 0 || copy_lf(fd, msg) < 0)
		return -1;
	return group ? 0 : fsync(fd);
}

/* The file's bytes are on disk (before its name goes into new/). */
static int
file_durable(const struct maildir *m, const char *dir)
{
	char tmpdir[PATH_MAX];

	if (!m->group_sync)
		return 0;	/* write_file fsync()ed it */
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
	return m->env.host->sync_group(tmpdir);
}

/* The name in new/ is on disk. */
static int
name_durable(const struct maildir *m, const char *dir)
{
	char newdir[PATH_MAX];

	snprintf(newdir, sizeof(newdir), "%s/new", dir);
	return m->group_sync ? m->env.host->sync_group(newdir) : fsync_dir(newdir);
}

static int
md_deliver(void *ctx, const struct mp_envelope *env, const char *rcpt,
    struct mp_reader *msg, struct mp_status *st)
{
	struct maildir *m = ctx;
	char dir[PATH_MAX - 1024], tmp[PATH_MAX], new[PATH_MAX], name[512];
	const char *why;
	int fd, err;

	if (maildir_user_path(m->set.root, rcpt, dir, sizeof(dir), &why) < 0) {
		status(st, 550, "5.1.3", why, 0);
		return MP_PERMFAIL;
	}
	maildir_unique_name(m->env.host, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	snprintf(new, sizeof(new), "%s/new/%s", dir, name);
	fd = open_tmp(dir, tmp);
	if (fd < 0)
		return io_failure(st, "cannot create file in tmp/", errno);
	if (write_file(fd, env, rcpt, msg, m->group_sync) < 0 ||
	    file_durable(m, dir) < 0) {
		err = errno;
		close(fd);
		unlink(tmp);
		return io_failure(st, "cannot write message", err);
	}
	/* rename() is the one atomic step from tmp/ to new/ on Linux (the
	 * spec's link()+unlink() is two, for file systems without it). */
	if (close(fd) < 0 || move_to_new(dir, tmp, new) < 0) {
		err = errno;
		unlink(tmp);
		return io_failure(st, "cannot move message into new/", err);
	}
	if (name_durable(m, dir) < 0)
		return io_failure(st, "cannot sync new/", errno);
	status(st, 250, "2.0.0", "delivered to maildir", 0);
	return MP_OK;
}

static const struct mp_option md_options[] = {
	{ "root", MP_OPT_PATH, offsetof(struct md_settings, root), "../var/mail", 0, 0 },
	{ "sync", MP_OPT_STRING, offsetof(struct md_settings, sync), "group", 0, 0 },
	{ NULL, 0, 0, NULL, 0, 0 }
};

static int
md_init(const struct mp_host *host, const struct mp_conf *conf, void **ctx_r,
    const char **error_r)
{
	struct maildir *m = host->alloc(sizeof(*m));

	if (m == NULL) {
		*error_r = "deliver_maildir: out of memory";
		return MP_ERROR;
	}
	memset(m, 0, sizeof(*m));
	if (host->conf_options(conf, md_options, &m->set, error_r) != MP_OK) {
		host->free(m);
		return MP_ERROR;
	}
	if (strcmp(m->set.sync, "group") != 0 && strcmp(m->set.sync, "file") != 0) {
		*error_r = "deliver_maildir: sync must be \"group\" or \"file\"";
		host->free(m);
		return MP_ERROR;
	}
	/* A host without group commit gets the classic fsync pair. */
	m->group_sync = strcmp(m->set.sync, "group") == 0 &&
	    MP_HAS(host, host->struct_size, sync_group);
	m->env.host = host;
	m->env.root = m->set.root;
	*ctx_r = m;
	return MP_OK;
}

static void
md_fini(void *ctx)
{
	struct maildir *m = ctx;

	m->env.host->free(m);
}

static const struct mp_deliver_ops md_deliver_ops = {
	.struct_size = sizeof(struct mp_deliver_ops),
	.deliver = md_deliver,
};

MP_MODULE_EXPORT = {
	.abi_version = MP_ABI_VERSION,
	.struct_size = sizeof(struct mp_module),
	.name = "deliver_maildir",
	.kinds = MP_KIND_DELIVER | MP_KIND_STORE,
	.init = md_init,
	.fini = md_fini,
	.deliver = &md_deliver_ops,
	.store = &maildir_store_ops,
};
