/*
 * core/cli_mailbox.c - `merpati mailbox migrate --from STORE --to STORE
 * USER...`: copies every folder and message of a user's mailbox from one
 * store module to another through the mailstore API, keeping UIDs,
 * UIDVALIDITY, flags, keywords, dates and subscriptions, so an ISP can
 * switch backends without clients re-downloading mail. Both stores must
 * be loaded by the config. It runs as server.user, like the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "modcall.h"
#include "privs.h"
#include "settings.h"

struct side {
	const struct mp_loaded *mod;
	const struct mp_store_ops *ops;
	struct mp_mailbox *mb;
};

struct folder_list {
	char names[256][210];
	unsigned attrs[256];
	size_t n;
};

static void
collect(void *arg, const char *name, unsigned attrs)
{
	struct folder_list *l = arg;

	if (l->n < 256) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
		l->attrs[l->n++] = attrs;
	}
}

static int
store_of(const char *name, struct side *s)
{
	struct mp_loaded *m = mp_modules_named(&mp_core.modules, name);

	if (m == NULL || !(m->mod->kinds & MP_KIND_STORE)) {
		fprintf(stderr, "merpati: %s is not a loaded store module\n", name);
		return -1;
	}
	if (m->mod->store->import == NULL) {	/* may be NULL (store.h) */
		fprintf(stderr, "merpati: store %s cannot import messages\n", name);
		return -1;
	}
	s->mod = m;
	s->ops = m->mod->store;
	return 0;
}

/* Copy one folder; returns messages copied or -1. */
static long
copy_folder(struct side *from, struct side *to, const char *name, unsigned attrs)
{
	struct mp_folder *f;
	struct mp_folder_info info = { .struct_size = sizeof(info) };
	const struct mp_msg_info *v;
	const char *err = NULL;
	size_t n;
	long copied = 0;

	if (from->ops->folder_open(from->mb, name, 1, &f, &err) != MP_OK ||
	    from->ops->folder_info(f, &info, &err) != MP_OK ||
	    from->ops->messages(f, &v, &n, &err) != MP_OK) {
		fprintf(stderr, "merpati: folder %s: %s\n", name, err ? err : "cannot read");
		return -1;
	}
	to->ops->folder_create(to->mb, name, &err);
	for (size_t i = 0; i < n; i++) {
		const struct mp_msg_info *m = MP_ELEM(v, i);
		struct mp_reader r = { .struct_size = sizeof(r) };
		if (from->ops->message_open(f, m->uid, MP_PART_ALL, &r, &err) != MP_OK)
			continue;	/* expunged meanwhile */
		int rc = to->ops->import(to->mb, name, info.uidvalidity, m->uid, &r,
		    m->flags & ~MP_FLAG_RECENT, m->keywords, m->internal_date, &err);
		from->ops->message_close(&r);
		if (rc == MP_OK)
			copied++;
		else if (rc != MP_DECLINED) {	/* DECLINED: already there */
			fprintf(stderr, "merpati: %s UID %u: %s\n", name, m->uid, err ? err : "failed");
			from->ops->folder_close(f);
			return -1;
		}
	}
	if (attrs & MP_FOLDER_SUBSCRIBED)
		to->ops->folder_subscribe(to->mb, name, 1, &err);
	from->ops->folder_close(f);
	return copied;
}

static int
migrate_user(struct side *from, struct side *to, const char *user)
{
	struct folder_list *l = calloc(1, sizeof(*l));
	const char *err = NULL;
	long total = 0;
	int rc = 0;

	if (mp_call_store_open(from->mod, user, &from->mb, &err) != MP_OK ||
	    mp_call_store_open(to->mod, user, &to->mb, &err) != MP_OK ||
	    from->ops->folders(from->mb, collect, l, &err) != MP_OK) {
		fprintf(stderr, "merpati: %s: %s\n", user, err ? err : "cannot open");
		free(l);
		return 1;
	}
	for (size_t i = 0; i < l->n && rc == 0; i++) {
		long k = copy_folder(from, to, l->names[i], l->attrs[i]);
		if (k < 0)
			rc = 1;
		else
			total += k;
	}
	from->ops->close(from->mb);
	to->ops->close(to->mb);
	if (rc == 0)
		printf("%s: %zu folder(s), %ld message(s) copied\n", user, l->n, total);
	free(l);
	return rc;
}

int
cli_mailbox(const char *config, char **overrides, size_t n, int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	struct side a = { 0 }, b = { 0 };
	char err[256];
	int i, rc = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else
			break;
	}
	if (argc < 1 || strcmp(argv[0], "migrate") != 0 || !from || !to || i >= argc) {
		fputs("usage: merpati mailbox migrate --from STORE --to STORE USER...\n", stderr);
		return 2;
	}
	cli_setup(config, overrides, n, 1);
	if (store_of(from, &a) < 0 || store_of(to, &b) < 0)
		return 1;
	if (mp_drop_privileges(mp_core.server.user, mp_core.server.state_dir, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "merpati: %s\n", err);
		return 1;
	}
	for (; i < argc; i++)
		rc |= migrate_user(&a, &b, argv[i]);
	mp_core_shutdown();
	return rc;
}
