/*
 * tests/unit/test_abi.c - the ABI 2 compatibility promise (module.h,
 * docs/modules.md "ABI 2"):
 *  - include/ keeps every ABI 2.0 member where the 2.0 fixture headers
 *    (tests/abi/2.0/) put it, and no struct shrinks;
 *  - tests/abi/compat.so, built against the fixture, loads and works in
 *    a host whose host table, mx array and status have grown since
 *    2.0, and writes nothing past the 2.0 members;
 *  - MP_HOST_HAS is false for a member past the host's struct_size, and
 *    that module refuses a host too small for it;
 *  - MP_SIZED_READ gives an older, smaller struct's missing members
 *    their defaults, MP_SIZED_WRITE never writes past a smaller one;
 *  - the loader refuses an ABI 1 module (naming the file and both
 *    versions) and a table whose required member is NULL.
 * Runs from the repo root after `make check` built the modules.
 */
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "settings.h"
#include "test.h"
#include "../abi/layout.h"

#define COMPAT "tests/abi/compat.so"
#define SENTINEL 0x5eed5eedu

static const struct abi_place now_members[] = { ABI_2_0_MEMBERS(ABI_MEMBER_PLACE) };
static const struct abi_place now_structs[] = { ABI_2_0_STRUCTS(ABI_STRUCT_PLACE) };

static void
test_layout(void)
{
	size_t moved = 0, shrunk = 0;

	CHECK("the member lists match", abi_2_0_nmembers ==
	    sizeof(now_members) / sizeof(now_members[0]));
	for (size_t i = 0; i < abi_2_0_nmembers; i++)
		if (abi_2_0_members[i].offset != now_members[i].offset ||
		    abi_2_0_members[i].size != now_members[i].size) {
			printf("# %s moved: 2.0 at %zu (%zu bytes), now at %zu (%zu)\n",
			    now_members[i].name, abi_2_0_members[i].offset,
			    abi_2_0_members[i].size, now_members[i].offset,
			    now_members[i].size);
			moved++;
		}
	for (size_t i = 0; i < abi_2_0_nstructs; i++)
		if (now_structs[i].size < abi_2_0_structs[i].size) {
			printf("# %s shrank\n", now_structs[i].name);
			shrunk++;
		}
	CHECK("every 2.0 member keeps its offset and size", moved == 0);
	CHECK("no 2.0 struct shrank", shrunk == 0);
}

/* The host of a later ABI 2.x: one more member at the end. */
struct grown_host {
	struct mp_host h;
	int (*since_2_1)(void);
};
struct grown_mx {
	struct mp_mx mx;
	uint32_t since_2_1;
};
struct grown_status {
	struct mp_status st;
	uint32_t since_2_1;
};

static int future_call(void) { return 21; }

static int
load(const char *name, const char *path, const struct mp_host *host,
    struct mp_loaded *m, char *err, size_t errsize)
{
	err[0] = '\0';
	if (mp_module_open(name, path, m, err, errsize) < 0)
		return -1;
	return mp_module_init(m, host, NULL, err, errsize);
}

static void
test_grown_host(void)
{
	struct grown_host g = { .h = mp_host_table, .since_2_1 = future_call };
	struct grown_mx mx[4];
	struct grown_status st = { .st = { .struct_size = sizeof(st) },
	    .since_2_1 = SENTINEL };
	struct mp_loaded m;
	char err[2048];
	size_t n = 0;
	const struct mp_host *host = &g.h;

	g.h.struct_size = sizeof(g);
	CHECK("MP_HOST_HAS: the last 2.0 member of a grown host", MP_HOST_HAS(auth_allowed));
	CHECK("the grown host's own member is there", g.since_2_1() == 21);
	for (size_t i = 0; i < 4; i++)
		mx[i] = (struct grown_mx){ .mx = { .struct_size = sizeof(mx[i]) },
		    .since_2_1 = SENTINEL };
	CHECK("the 2.0 module loads into a grown host",
	    load("compat", COMPAT, host, &m, err, sizeof(err)) == 0);
	if (err[0])
		printf("# %s\n", err);
	if (m.mod == NULL)
		return;
	int rc = m.mod->resolve->mx(m.ctx, "example.test", &mx[0].mx, 4, &n,
	    &st.st);
	CHECK("mx() answers", rc == MP_OK && n == 2);
	CHECK("it steps by the host's element size",
	    strcmp(mx[0].mx.host, "mx1.example.test") == 0 &&
	    mx[0].mx.preference == 10 &&
	    strcmp(mx[1].mx.host, "postmaster.example.test") == 0);
	CHECK("its option table was read (default preference 7)",
	    mx[1].mx.preference == 7);
	CHECK("nothing written past the 2.0 members of the elements",
	    mx[0].since_2_1 == SENTINEL && mx[1].since_2_1 == SENTINEL &&
	    mx[2].since_2_1 == SENTINEL && mx[2].mx.host[0] == '\0');
	CHECK("the status is filled, nothing past it",
	    st.st.reply == 250 && strcmp(st.st.text, "hello") == 0 &&
	    st.st.struct_size == sizeof(st) && st.since_2_1 == SENTINEL);
	mp_module_close(&m);
}

static void
test_small_host(void)
{
	struct mp_host small = mp_host_table;
	const struct mp_host *host = &small;
	struct mp_loaded m;
	char err[2048];

	small.struct_size = offsetof(struct mp_host, auth_allowed);
	CHECK("MP_HOST_HAS false past the host's size", !MP_HOST_HAS(auth_allowed));
	CHECK("MP_HOST_HAS true below it", MP_HOST_HAS(sasl_plain));
	CHECK("the module refuses a host without what it needs",
	    load("compat", COMPAT, host, &m, err, sizeof(err)) < 0 &&
	    strstr(err, "no auth_allowed") != NULL);
}

static int fake_lock(struct mp_folder *f, const char **error_r) { return MP_OK; }

static int
fake_flags_change(struct mp_folder *f, uint32_t uid, enum mp_flags_how how,
    uint32_t flags, const char *keywords, uint32_t *flags_r,
    const char **keywords_r, const char **error_r)
{
	return MP_OK;
}

static void
test_sized_copies(void)
{
	static const struct mp_store_ops full = { .struct_size = sizeof(full),
	    .lock = fake_lock, .flags_change = fake_flags_change };
	struct mp_store_ops older = full, read = { .struct_size = sizeof(read) };
	struct grown_status big = { .st = MP_STATUS(250, "2.0.0", "new") };
	struct mp_status small = { .struct_size = offsetof(struct mp_status, text) };

	older.struct_size = offsetof(struct mp_store_ops, flags_change);
	MP_SIZED_READ(read, &older);
	CHECK("MP_SIZED_READ keeps what the older struct has", read.lock == full.lock);
	CHECK("and defaults what it lacks", read.flags_change == NULL &&
	    read.folder_keywords == NULL && read.struct_size == sizeof(read));
	memset(small.text, 'x', sizeof(small.text));
	MP_SIZED_WRITE(&small, &big.st);
	CHECK("MP_SIZED_WRITE fills what the smaller struct has",
	    small.reply == 250 && strcmp(small.enhanced, "2.0.0") == 0);
	CHECK("and writes nothing past it", small.text[0] == 'x' &&
	    small.struct_size == offsetof(struct mp_status, text));
}

static void
test_refusals(void)
{
	struct mp_loaded m;
	char err[2048];
	const char *abi1_path = "tests/modules/bad_abi.so";

	CHECK("an ABI 1 module is refused",
	    load("bad_abi", abi1_path, &mp_host_table, &m, err, sizeof(err)) < 0);
	CHECK("naming the file", strstr(err, abi1_path) != NULL);
	CHECK("and both versions", strstr(err, "ABI version 1") != NULL &&
	    strstr(err, "speaks ABI 2") != NULL);
	printf("# %s\n", err);
	CHECK("a NULL required op is refused, named",
	    load("null_op", "tests/modules/null_op.so", &mp_host_table, &m,
	    err, sizeof(err)) < 0 && strstr(err, "resolve table has no mx") != NULL);
	printf("# %s\n", err);
}

int
main(void)
{
	test_layout();
	test_grown_host();
	test_small_host();
	test_sized_copies();
	test_refusals();
	TEST_EXIT();
}
