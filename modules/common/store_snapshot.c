/*
 * modules/common/store_snapshot.c - an open folder's view of messages
 * and \Recent claims, one copy for store_sqlite and store_pgsql (linked
 * into both through <m>_SRCS in Makefile.in). See store_snapshot.h.
 */
#include <stdlib.h>
#include <string.h>

#include <merpati/util.h>

#include "store_snapshot.h"

void
snapshot_clear(struct store_snapshot *ss)
{
	for (size_t i = 0; i < ss->n; i++)
		free(ss->keywords[i]);
	free(ss->keywords);
	free(ss->info);
	ss->keywords = NULL;
	ss->info = NULL;
	ss->n = ss->info_cap = ss->keywords_cap = 0;
}

void
snapshot_fini(struct store_snapshot *ss)
{
	snapshot_clear(ss);
	free(ss->claims);
	free(ss->result);
	ss->claims = NULL;
	ss->result = NULL;
	ss->nclaims = 0;
}

int
snapshot_reserve(struct store_snapshot *ss, size_t n)
{
	struct mp_msg_info *info;
	char **kw;

	if ((info = mp_array_grow(ss->info, &ss->info_cap, n, sizeof(*info))) == NULL)
		return -1;
	ss->info = info;
	if ((kw = mp_array_grow(ss->keywords, &ss->keywords_cap, n, sizeof(*kw))) == NULL)
		return -1;
	ss->keywords = kw;
	return 0;
}

int
snapshot_put(struct store_snapshot *ss, size_t i, const struct mp_msg_info *m)
{
	char *kw;

	if (i == ss->n) {
		if (snapshot_reserve(ss, ss->n + 1) < 0)
			return -1;
		ss->keywords[i] = NULL;
	}
	if ((kw = strdup(m->keywords ? m->keywords : "")) == NULL)
		return -1;
	free(ss->keywords[i]);
	ss->keywords[i] = kw;
	ss->info[i] = *m;
	ss->info[i].struct_size = sizeof(ss->info[i]);
	ss->info[i].keywords = kw;
	ss->info[i].flags &= ~(uint32_t)MP_FLAG_RECENT;
	if (snapshot_is_recent(ss, m->uid))
		ss->info[i].flags |= MP_FLAG_RECENT;
	if (m->uid >= ss->uidnext)
		ss->uidnext = m->uid + 1;
	if (i == ss->n)
		ss->n++;
	return 0;
}

size_t
snapshot_find(const struct store_snapshot *ss, uint32_t uid)
{
	size_t lo = 0, hi = ss->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ss->info[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ss->n && ss->info[lo].uid == uid ? lo : ss->n;
}

int
snapshot_merge(struct store_snapshot *ss, const struct mp_msg_info *m)
{
	size_t i = snapshot_find(ss, m->uid);

	if (i == ss->n && ss->n > 0 && m->uid < ss->info[ss->n - 1].uid)
		return 1;
	return snapshot_put(ss, i, m);
}

int
snapshot_claim(struct store_snapshot *ss, long long seen, int claim,
    int (*cas)(void *arg, long long seen, uint32_t last), void *arg)
{
	struct store_claim *grown;
	int won;

	ss->seen_uid = (uint32_t)seen;
	if (ss->read_only || !claim || seen + 1 >= ss->uidnext)
		return 0;
	if ((won = cas(arg, seen, ss->uidnext - 1)) <= 0)
		return won;	/* lost: another session claimed them first */
	grown = realloc(ss->claims, (ss->nclaims + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	ss->claims = grown;
	ss->claims[ss->nclaims++] = (struct store_claim){ (uint32_t)seen + 1, ss->uidnext - 1 };
	return 0;
}

int
snapshot_is_recent(const struct store_snapshot *ss, uint32_t uid)
{
	if (ss->read_only)
		return uid > ss->seen_uid;
	for (size_t i = ss->nclaims; i-- > 0;)	/* the newest claims first */
		if (uid >= ss->claims[i].first && uid <= ss->claims[i].last)
			return 1;
	return 0;
}

void
snapshot_mark_recent(struct store_snapshot *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct mp_msg_info *m = &ss->info[i];
		m->flags &= ~(uint32_t)MP_FLAG_RECENT;
		if (snapshot_is_recent(ss, m->uid))
			m->flags |= MP_FLAG_RECENT;
	}
}

void
snapshot_folder_info(const struct store_snapshot *ss, struct mp_folder_info *info)
{
	info->unseen = info->recent = 0;	/* struct_size is the caller's */
	info->uidvalidity = ss->uidvalidity;
	info->uidnext = ss->uidnext;
	info->messages = (uint32_t)ss->n;
	for (size_t i = 0; i < ss->n; i++) {
		info->unseen += !(ss->info[i].flags & MP_FLAG_SEEN);
		info->recent += !!(ss->info[i].flags & MP_FLAG_RECENT);
	}
}

void
snapshot_flags_changed(struct store_snapshot *ss, uint32_t uid, uint32_t flags,
    char *kw, uint32_t *flags_r, const char **keywords_r)
{
	size_t i = snapshot_find(ss, uid);

	if (snapshot_is_recent(ss, uid))
		flags |= MP_FLAG_RECENT;
	if (i < ss->n) {
		ss->info[i].flags = flags;
		free(ss->keywords[i]);
		ss->keywords[i] = strdup(kw);
		ss->info[i].keywords = ss->keywords[i] ? ss->keywords[i] : "";
	}
	snapshot_result(ss, kw);
	if (flags_r)
		*flags_r = flags;
	if (keywords_r)
		*keywords_r = kw;
}

const char *
snapshot_result(struct store_snapshot *ss, char *text)
{
	free(ss->result);
	ss->result = text;
	return text ? text : "";
}

int
snapshot_expunge_gone(const struct store_snapshot *ss, uint32_t uid, const char **error_r)
{
	if (snapshot_find(ss, uid) < ss->n)
		return MP_OK;
	*error_r = "no such message";
	return MP_DECLINED;
}
