/*
 * tests/unit/test_loader.c - the module loader's refusals, each checked
 * for naming the module, its path and the reason. Runs from the repo
 * root after `make check` built the test modules in tests/modules/.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "loader.h"
#include "settings.h"
#include "test.h"

static char dir[] = "/tmp/merpati-test-loader-XXXXXX";

static void
copy(const char *from, const char *to, mode_t mode)
{
	char buf[8192];
	ssize_t n;
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	chmod(to, mode);
}

/* Open (and init with an empty config) name at path; err gets the line. */
static int
try_load(const char *name, const char *path, char *err, size_t errsize)
{
	struct mp_loaded m;
	int rc;

	err[0] = '\0';
	rc = mp_module_open(name, path, &m, err, errsize);
	if (rc == 0)
		rc = mp_module_init(&m, &mp_host_table, NULL, err, errsize);
	if (rc == 0)
		mp_module_close(&m);
	return rc;
}

static void
expect_refusal(const char *what, const char *name, const char *path,
    const char *reason)
{
	char err[2048], label[256];
	int rc = try_load(name, path, err, sizeof(err));

	snprintf(label, sizeof(label), "%s: refused", what);
	CHECK(label, rc < 0);
	snprintf(label, sizeof(label), "%s: names module and path", what);
	CHECK(label, strstr(err, name) && strstr(err, path));
	snprintf(label, sizeof(label), "%s: says \"%s\"", what, reason);
	CHECK(label, strstr(err, reason) != NULL);
	if (!strstr(err, reason))
		printf("# got: %s\n", err);
}

int
main(void)
{
	char path[512], err[2048];
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return 1;
	CHECK("a valid module loads", try_load("good", "tests/modules/good.so",
	    err, sizeof(err)) == 0);
	if (err[0])
		printf("# %s\n", err);

	snprintf(path, sizeof(path), "%s/missing.so", dir);
	expect_refusal("missing file", "missing", path, "No such file");

	snprintf(path, sizeof(path), "%s/text.so", dir);
	f = fopen(path, "w");
	fputs("this is not a shared object\n", f);
	fclose(f);
	expect_refusal("non-ELF file", "text", path, "not an ELF");

	snprintf(path, sizeof(path), "%s/short.so", dir);
	f = fopen(path, "w");
	fputs("\177EL", f);
	fclose(f);
	expect_refusal("3-byte file", "short", path, "not an ELF");

	/* Cut anywhere, a module must be refused, never crash the loader. */
	struct stat st;
	stat("tests/modules/good.so", &st);
	const off_t cuts[] = { 64, 500, 2000, st.st_size / 2, st.st_size - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char what[64];
		snprintf(path, sizeof(path), "%s/truncated%zu.so", dir, i);
		copy("tests/modules/good.so", path, 0644);
		if (truncate(path, cuts[i]) < 0)
			continue;
		snprintf(what, sizeof(what), "ELF cut at %lld bytes", (long long)cuts[i]);
		expect_refusal(what, "good", path, "truncated ELF");
	}

	snprintf(path, sizeof(path), "%s/writable.so", dir);
	copy("tests/modules/good.so", path, 0666);
	expect_refusal("world-writable file", "good", path, "writable by group or others");

	expect_refusal("missing symbol", "no_symbol", "tests/modules/no_symbol.so",
	    "missing symbol merpati_module");
	expect_refusal("wrong ABI", "bad_abi", "tests/modules/bad_abi.so", "ABI");
	expect_refusal("init fails", "init_fails", "tests/modules/init_fails.so",
	    "init failed: init_fails: refusing on purpose");
	expect_refusal("name mismatch", "other", "tests/modules/good.so",
	    "calls itself \"good\"");
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path) != 0)
		return 1;
	TEST_EXIT();
}
