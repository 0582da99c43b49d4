/*
 * tests/unit/test_config.c - -o overrides, relative path resolution and
 * declarative option tables (defaults, bounds, unknown keys, types).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"
#include "util.h"

static char dir[] = "/tmp/merpati-test-config-XXXXXX";
static char file[256];

static void
write_file(const char *text)
{
	FILE *f = fopen(file, "w");
	fputs(text, f);
	fclose(f);
}

static struct mp_cfg *
load(char **ov, size_t n, struct mp_problems *p)
{
	memset(p, 0, sizeof(*p));
	return mp_cfg_load(file, ov, n, p);
}

static void
test_overrides(void)
{
	static const struct { const char *expr, *path; int type; const char *want; } ok[] = {
		{ "listen.smtp.port=2626", "listen.smtp.port", CONFIG_TYPE_INT, "2626" },
		{ "server.state_dir=/tmp/x", "server.state_dir", CONFIG_TYPE_STRING, "/tmp/x" },
		{ "server.hostname=\"quoted.example\"", "server.hostname", CONFIG_TYPE_STRING, "quoted.example" },
		{ "new.group.flag=true", "new.group.flag", CONFIG_TYPE_BOOL, "1" },
		{ "modules.x={ path = \"/p/x.so\"; text = \"hi\"; }", "modules.x.text", CONFIG_TYPE_STRING, "hi" },
		{ "domains=[\"a.test\", \"b.test\"]", "domains.[1]", CONFIG_TYPE_STRING, "b.test" },
	};
	struct mp_problems p;
	struct mp_cfg *cfg;
	char err[256];

	write_file("server = { hostname = \"h\"; };\nlisten = { smtp = { port = 1; }; };\n");
	cfg = load(NULL, 0, &p);
	CHECK("base config loads", cfg != NULL && p.n == 0);
	for (size_t i = 0; cfg && i < sizeof(ok) / sizeof(ok[0]); i++) {
		char name[200], got[256] = "";
		int rc = mp_cfg_override(&cfg->lc, ok[i].expr, err, sizeof(err));
		const config_setting_t *s = config_lookup(&cfg->lc, ok[i].path);
		if (s && config_setting_type(s) == CONFIG_TYPE_STRING)
			snprintf(got, sizeof(got), "%s", config_setting_get_string(s));
		else if (s)
			snprintf(got, sizeof(got), "%lld", config_setting_get_int64(s) +
			    (config_setting_type(s) == CONFIG_TYPE_BOOL ?
			    config_setting_get_bool(s) : 0));
		snprintf(name, sizeof(name), "-o %s", ok[i].expr);
		CHECK(name, rc == 0 && s && config_setting_type(s) == ok[i].type);
		snprintf(name, sizeof(name), "-o %s value", ok[i].expr);
		CHECK_STR(name, got, ok[i].want);
	}
	static const char *const bad[] = { "noequals", "=1", "a..b=1",
	    "server.hostname.sub=1", "x=\"unterminated", "x={ broken" };
	for (size_t i = 0; cfg && i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[128];
		snprintf(name, sizeof(name), "-o %s refused", bad[i]);
		CHECK(name, mp_cfg_override(&cfg->lc, bad[i], err, sizeof(err)) < 0);
	}
	mp_cfg_free(cfg);
}

static void
test_load_errors(void)
{
	struct mp_problems p;
	char *ov[] = { (char *)"broken" };
	struct mp_cfg *cfg;

	write_file("server = { hostname = \"h\" \n oops");
	cfg = load(NULL, 0, &p);
	CHECK("syntax error refused", cfg == NULL && p.n == 1);
	CHECK("syntax error names file and line", p.n == 1 &&
	    strstr(p.lines[0], file) != NULL && strstr(p.lines[0], ":2:") != NULL);
	mp_problems_free(&p);
	write_file("a = 1;\n");
	cfg = load(ov, 1, &p);
	CHECK("bad -o recorded as a problem", cfg != NULL && p.n == 1 &&
	    strstr(p.lines[0], "-o broken") != NULL);
	mp_problems_free(&p);
	mp_cfg_free(cfg);
	unlink(file);
	cfg = load(NULL, 0, &p);
	CHECK("missing file refused with a reason", cfg == NULL && p.n == 1 &&
	    strstr(p.lines[0], "No such file") != NULL);
	mp_problems_free(&p);
}

struct opts {
	const char *name;
	const char *path;
	long long count;
	int flag;
	long long wait;
};

static const struct mp_option table[] = {
	MP_OPT("name", MP_OPT_STRING, offsetof(struct opts, name), "dflt", 0, 0),
	MP_OPT("path", MP_OPT_PATH, offsetof(struct opts, path), "rel/file", 0, 0),
	MP_OPT("count", MP_OPT_INT, offsetof(struct opts, count), "5", 1, 10),
	MP_OPT("flag", MP_OPT_BOOL, offsetof(struct opts, flag), "false", 0, 0),
	MP_OPT("wait", MP_OPT_DURATION, offsetof(struct opts, wait), "15m", 0, 0),
	MP_OPT_END
};

static int
options_of(const char *text, struct opts *o, const char **err)
{
	struct mp_problems p;
	struct mp_cfg *cfg;
	int rc;

	write_file(text);
	cfg = load(NULL, 0, &p);
	if (cfg == NULL)
		return -99;
	memset(o, 0, sizeof(*o));
	rc = mp_cfg_options((const struct mp_conf *)config_lookup(&cfg->lc, "g"),
	    table, o, err);
	if (rc == MP_OK && o->path) {
		static char kept[512];
		snprintf(kept, sizeof(kept), "%s", o->path);
		o->path = kept;
	}
	if (rc == MP_OK && o->name) {
		static char kept_name[128];
		snprintf(kept_name, sizeof(kept_name), "%s", o->name);
		o->name = kept_name;
	}
	if (rc != MP_OK) {
		static char kept_err[512];
		snprintf(kept_err, sizeof(kept_err), "%s", *err);
		*err = kept_err;
	}
	mp_cfg_free(cfg);
	return rc;
}

static void
test_options(void)
{
	struct opts o;
	const char *err = NULL;
	char want[512];

	CHECK("defaults apply", options_of("g = { };", &o, &err) == MP_OK &&
	    strcmp(o.name, "dflt") == 0 && o.count == 5 && o.flag == 0 &&
	    o.wait == 900);
	snprintf(want, sizeof(want), "%s/rel/file", dir);
	CHECK_STR("relative path resolves against the config dir", o.path, want);
	CHECK("values read", options_of("g = { name = \"n\"; count = 7; flag = true; "
	    "wait = \"4h\"; path = \"/abs\"; };", &o, &err) == MP_OK &&
	    o.count == 7 && o.flag == 1 && o.wait == 4 * 3600);
	CHECK_STR("absolute path kept", o.path, "/abs");
	CHECK("durations in days", options_of("g = { wait = \"5d\"; };", &o,
	    &err) == MP_OK && o.wait == 5 * 86400);
	CHECK("unknown key refused", options_of("g = { bogus = 1; };", &o,
	    &err) == MP_ERROR && strstr(err, "g.bogus") && strstr(err, "unknown"));
	CHECK("out of range refused", options_of("g = { count = 11; };", &o,
	    &err) == MP_ERROR && strstr(err, "g.count") && strstr(err, "range"));
	CHECK("bad duration refused", options_of("g = { wait = \"15x\"; };", &o,
	    &err) == MP_ERROR && strstr(err, "g.wait"));
	CHECK("wrong type refused", options_of("g = { count = \"many\"; };", &o,
	    &err) == MP_ERROR && strstr(err, "g.count"));
	CHECK("bad bool refused", options_of("g = { flag = \"maybe\"; };", &o,
	    &err) == MP_ERROR && strstr(err, "g.flag"));
}

static void
test_durations(void)
{
	static const struct { const char *in; long long want; } ok[] = {
		{ "30", 30 }, { "1s", 1 }, { "15m", 900 }, { "4h", 14400 },
		{ "5d", 432000 }, { "1w", 604800 },
	};
	static const char *const bad[] = { "", "m", "-1m", "15mm", "1y", "x5" };
	long long v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "duration %s", ok[i].in);
		CHECK(name, mp_parse_duration(ok[i].in, &v) == 0 && v == ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "duration \"%s\" refused", bad[i]);
		CHECK(name, mp_parse_duration(bad[i], &v) < 0);
	}
}

static void
test_path_join(void)
{
	static const struct { const char *dir, *rel, *want; } cases[] = {
		{ "/a/etc", "../var", "/a/var" },
		{ "/a/etc", "./x/./y", "/a/etc/x/y" },
		{ "/a/etc", "/abs/../p", "/p" },
		{ "/", "../../x", "/x" },
		{ "/a", "..", "/" },
		{ "/a/b", "c//d/", "/a/b/c/d" },
	};
	char out[256], name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "join %s + %s", cases[i].dir, cases[i].rel);
		CHECK(name, mp_path_join(out, sizeof(out), cases[i].dir,
		    cases[i].rel) == 0);
		CHECK_STR(name, out, cases[i].want);
	}
	CHECK("join too long refused", mp_path_join(out, 8, "/a/b/c", "d/e/f") < 0);
}

int
main(void)
{
	test_path_join();
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(file, sizeof(file), "%s/test.conf", dir);
	test_overrides();
	test_load_errors();
	test_options();
	test_durations();
	unlink(file);
	rmdir(dir);
	TEST_EXIT();
}
