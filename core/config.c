/*
 * core/config.c - configuration loading, overrides and option tables.
 *
 * Overrides are parsed by libconfig itself ("v = <value>;") so that any
 * value the file may hold, groups included, can be given with -o; a value
 * that does not parse is taken as a plain string, so
 * `-o server.state_dir=/tmp/x` works without shell-quoted quotes.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

void
mp_problem(struct mp_problems *p, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->lines = mp_xresize(p->lines, p->n + 1, sizeof(*p->lines));
	p->lines[p->n++] = mp_xstrdup(buf);
}

void
mp_problems_free(struct mp_problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->lines[i]);
	free(p->lines);
	p->lines = NULL;
	p->n = 0;
}

static void
set_dir_of(struct mp_cfg *cfg, const char *file)
{
	char abs[PATH_MAX];
	char *slash;

	if (realpath(file, abs) == NULL)
		mp_strlcpy(abs, file, sizeof(abs));
	slash = strrchr(abs, '/');
	if (slash == abs)
		mp_strlcpy(cfg->dir, "/", sizeof(cfg->dir));
	else if (slash) {
		*slash = '\0';
		mp_strlcpy(cfg->dir, abs, sizeof(cfg->dir));
	} else if (getcwd(cfg->dir, sizeof(cfg->dir)) == NULL)
		mp_strlcpy(cfg->dir, ".", sizeof(cfg->dir));
}

struct mp_cfg *
mp_cfg_load(const char *file, char *const *overrides, size_t noverrides,
    struct mp_problems *problems)
{
	struct mp_cfg *cfg = mp_xcalloc(1, sizeof(*cfg));
	char err[512];

	cfg->refs = 1;
	config_init(&cfg->lc);
	mp_strlcpy(cfg->path, file, sizeof(cfg->path));
	set_dir_of(cfg, file);
	config_set_include_dir(&cfg->lc, cfg->dir);
	config_root_setting(&cfg->lc)->hook = cfg;
	if (access(file, R_OK) != 0) {
		mp_problem(problems, "%s: cannot read config: %s", file,
		    strerror(errno));
		mp_cfg_free(cfg);
		return NULL;
	}
	if (config_read_file(&cfg->lc, file) != CONFIG_TRUE) {
		mp_problem(problems, "%s:%d: config syntax error: %s",
		    config_error_file(&cfg->lc) ? config_error_file(&cfg->lc)
		    : file, config_error_line(&cfg->lc),
		    config_error_text(&cfg->lc));
		mp_cfg_free(cfg);
		return NULL;
	}
	config_root_setting(&cfg->lc)->hook = cfg;
	for (size_t i = 0; i < noverrides; i++)
		if (mp_cfg_override(&cfg->lc, overrides[i], err,
		    sizeof(err)) < 0)
			mp_problem(problems, "-o %s: %s", overrides[i], err);
	return cfg;
}

struct mp_cfg *
mp_cfg_ref(struct mp_cfg *cfg)
{
	cfg->refs++;
	return cfg;
}

void
mp_cfg_free(struct mp_cfg *cfg)
{
	if (cfg == NULL || --cfg->refs > 0)
		return;
	config_destroy(&cfg->lc);
	for (size_t i = 0; i < cfg->nowned; i++)
		free(cfg->owned[i]);
	free(cfg->owned);
	free(cfg);
}

/* ---- overrides ------------------------------------------------------- */

static int copy_setting(config_setting_t *parent, const char *name,
    const config_setting_t *src);

static int
copy_children(config_setting_t *dst, const config_setting_t *src)
{
	int n = config_setting_length(src);

	for (int i = 0; i < n; i++) {
		const config_setting_t *c = config_setting_get_elem(src,
		    (unsigned)i);
		if (copy_setting(dst, config_setting_name(c), c) < 0)
			return -1;
	}
	return 0;
}

/* Deep-copy src into parent under name (name is NULL inside lists). */
static int
copy_setting(config_setting_t *parent, const char *name,
    const config_setting_t *src)
{
	int type = config_setting_type(src);
	config_setting_t *dst = config_setting_add(parent, name, type);

	if (dst == NULL)
		return -1;
	switch (type) {
	case CONFIG_TYPE_INT:
		return config_setting_set_int(dst,
		    config_setting_get_int(src)) ? 0 : -1;
	case CONFIG_TYPE_INT64:
		return config_setting_set_int64(dst,
		    config_setting_get_int64(src)) ? 0 : -1;
	case CONFIG_TYPE_FLOAT:
		return config_setting_set_float(dst,
		    config_setting_get_float(src)) ? 0 : -1;
	case CONFIG_TYPE_BOOL:
		return config_setting_set_bool(dst,
		    config_setting_get_bool(src)) ? 0 : -1;
	case CONFIG_TYPE_STRING:
		return config_setting_set_string(dst,
		    config_setting_get_string(src)) ? 0 : -1;
	default:
		return copy_children(dst, src);
	}
}

static int
valid_name(const char *s, size_t len)
{
	if (len == 0 || len > 128)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9' && i > 0) || c == '_' ||
		    (c == '-' && i > 0) || c == '*'))
			return 0;
	}
	return 1;
}

/* Walk "a.b" creating groups; returns the group that holds the leaf. */
static config_setting_t *
parent_group(config_t *lc, const char *path, const char **leaf_r,
    char *err, size_t errsize)
{
	config_setting_t *cur = config_root_setting(lc);
	const char *p = path, *dot;
	char name[129];

	while ((dot = strchr(p, '.')) != NULL) {
		size_t len = (size_t)(dot - p);
		if (!valid_name(p, len)) {
			snprintf(err, errsize, "bad setting name in \"%s\"", path);
			return NULL;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		config_setting_t *next = config_setting_get_member(cur, name);
		if (next == NULL)
			next = config_setting_add(cur, name, CONFIG_TYPE_GROUP);
		if (next == NULL || !config_setting_is_group(next)) {
			snprintf(err, errsize, "\"%s\" is not a group", name);
			return NULL;
		}
		cur = next;
		p = dot + 1;
	}
	if (!valid_name(p, strlen(p))) {
		snprintf(err, errsize, "bad setting name in \"%s\"", path);
		return NULL;
	}
	*leaf_r = p;
	return cur;
}

/* Parse value as libconfig text; a bare word becomes a string. */
static int
parse_value(config_t *tmp, const char *value, char *err, size_t errsize)
{
	size_t len = strlen(value);
	char *text = mp_xmalloc(len + 8);
	int ok;

	snprintf(text, len + 8, "v = %s;", value);
	ok = config_read_string(tmp, text) == CONFIG_TRUE;
	free(text);
	if (ok)
		return 0;
	if (value[0] == '"' || value[0] == '{' || value[0] == '[' ||
	    value[0] == '(' || strpbrk(value, "\"\n") != NULL) {
		snprintf(err, errsize, "bad value: %s", config_error_text(tmp));
		return -1;
	}
	config_destroy(tmp);
	config_init(tmp);
	config_setting_t *v = config_setting_add(config_root_setting(tmp),
	    "v", CONFIG_TYPE_STRING);
	return v && config_setting_set_string(v, value) ? 0 : -1;
}

int
mp_cfg_override(config_t *lc, const char *expr, char *err, size_t errsize)
{
	const char *eq = strchr(expr, '='), *leaf;
	char path[512];
	config_t tmp;
	int rc = -1;

	if (eq == NULL || eq == expr || (size_t)(eq - expr) >= sizeof(path)) {
		snprintf(err, errsize, "expected path=value");
		return -1;
	}
	memcpy(path, expr, (size_t)(eq - expr));
	path[eq - expr] = '\0';
	config_init(&tmp);
	if (parse_value(&tmp, eq + 1, err, errsize) < 0)
		goto out;
	config_setting_t *parent = parent_group(lc, path, &leaf, err, errsize);
	if (parent == NULL)
		goto out;
	if (config_setting_get_member(parent, leaf))
		config_setting_remove(parent, leaf);
	if (copy_setting(parent, leaf,
	    config_lookup(&tmp, "v")) < 0) {
		snprintf(err, errsize, "cannot set %s", path);
		goto out;
	}
	rc = 0;
out:
	config_destroy(&tmp);
	return rc;
}

/* ---- option tables --------------------------------------------------- */

/* Lists have unnamed elements: they show as their index, "rules.[2]". */
void
mp_cfg_setting_path(const config_setting_t *s, char *out, size_t size)
{
	char inner[512] = "";

	if (s == NULL || config_setting_parent(s) == NULL) {
		snprintf(out, size, "%s", "");
		return;
	}
	mp_cfg_setting_path(config_setting_parent(s), inner, sizeof(inner));
	if (config_setting_name(s))
		snprintf(out, size, "%s%s%s", inner, inner[0] ? "." : "",
		    config_setting_name(s));
	else
		snprintf(out, size, "%s.[%d]", inner, config_setting_index(s));
}

static struct mp_cfg *
cfg_of(const config_setting_t *s)
{
	return s ? config_root_setting(s->config)->hook : NULL;
}

static const char *
own(struct mp_cfg *cfg, char *s)
{
	cfg->owned = mp_xresize(cfg->owned, cfg->nowned + 1, sizeof(char *));
	cfg->owned[cfg->nowned++] = s;
	return s;
}

const char *
mp_cfg_resolve(struct mp_cfg *cfg, const char *path)
{
	char buf[PATH_MAX];

	if (mp_path_join(buf, sizeof(buf), cfg->dir, path) < 0)
		return NULL;
	return own(cfg, mp_xstrdup(buf));
}

static _Thread_local char opt_error[768];

static int
opt_fail(const config_setting_t *group, const char *name, const char *why)
{
	char where[512];

	mp_cfg_setting_path(group, where, sizeof(where));
	snprintf(opt_error, sizeof(opt_error), "%s%s%s: %s", where,
	    where[0] ? "." : "", name, why);
	return -1;
}

/* Rows of a module's table are at least ABI 2.0's mp_option. */
#define OPTION_ROW_MIN (offsetof(struct mp_option, max) + sizeof(long long))

/*
 * Row i of an option table into *o, stepping by the table's row size
 * and taking members an older module's rows lack as defaults (module.h
 * rule 4). 1, or 0 at the end row.
 */
static int
table_row(const struct mp_option *table, size_t i, struct mp_option *o)
{
	*o = (struct mp_option){ .struct_size = sizeof(*o) };
	MP_SIZED_READ(*o, MP_ELEM(table, i));
	return o->name != NULL;
}

static int
in_table(const struct mp_option *table, const char *name)
{
	struct mp_option o;

	for (size_t i = 0; table_row(table, i, &o); i++)
		if (strcmp(o.name, name) == 0)
			return 1;
	return 0;
}

static int
check_unknown(const config_setting_t *group, const struct mp_option *table)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const char *name = config_setting_name(
		    config_setting_get_elem(group, (unsigned)i));
		/* path, listen and limits are the host's (module file, protocol
		 * sockets and their connection limits) */
		if (name && !in_table(table, name) && strcmp(name, "path") != 0 &&
		    strcmp(name, "listen") != 0 && strcmp(name, "limits") != 0)
			return opt_fail(group, name, "unknown setting");
	}
	return 0;
}

static int
parse_bool(const char *s, int *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
	    strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
	    strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* The value of one option as text (from config or default), or NULL. */
static const char *
option_text(const config_setting_t *s, const struct mp_option *o,
    char *buf, size_t size)
{
	if (s == NULL)
		return o->def;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		return config_setting_get_string(s);
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, size, "%lld", config_setting_get_int64(s));
		return buf;
	case CONFIG_TYPE_BOOL:
		return config_setting_get_bool(s) ? "true" : "false";
	default:
		return NULL;
	}
}

static int
store_number(const config_setting_t *group, const struct mp_option *o,
    const char *text, void *field)
{
	long long v;
	char *end;

	if (o->type == MP_OPT_DURATION) {
		if (mp_parse_duration(text, &v) < 0)
			return opt_fail(group, o->name,
			    "bad duration (want e.g. \"30s\", \"15m\", \"4h\", \"5d\")");
	} else {
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno || *end || end == text)
			return opt_fail(group, o->name, "not an integer");
	}
	if (o->max > o->min && (v < o->min || v > o->max)) {
		char why[128];
		snprintf(why, sizeof(why), "%lld out of range %lld..%lld",
		    v, o->min, o->max);
		return opt_fail(group, o->name, why);
	}
	*(long long *)field = v;
	return 0;
}

static int
store_option(const config_setting_t *group, const struct mp_option *o,
    void *settings)
{
	const config_setting_t *s = group ?
	    config_setting_get_member(group, o->name) : NULL;
	void *field = (char *)settings + o->offset;
	char buf[64];
	const char *text = option_text(s, o, buf, sizeof(buf));

	if (text == NULL)
		return opt_fail(group, o->name, s ? "wrong type" : "required");
	switch (o->type) {
	case MP_OPT_STRING:
		*(const char **)field = text;
		return 0;
	case MP_OPT_PATH:
		*(const char **)field = mp_cfg_resolve(cfg_of(group), text);
		return *(const char **)field ? 0 :
		    opt_fail(group, o->name, "path too long");
	case MP_OPT_BOOL:
		return parse_bool(text, field) == 0 ? 0 :
		    opt_fail(group, o->name, "not a boolean");
	case MP_OPT_INT:
	case MP_OPT_DURATION:
		return store_number(group, o, text, field);
	}
	return opt_fail(group, o->name, "unknown option type");
}

int
mp_cfg_options(const struct mp_conf *conf, const struct mp_option *table,
    void *settings, const char **error_r)
{
	const config_setting_t *group = (const config_setting_t *)conf;

	if (group && !config_setting_is_group(group)) {
		opt_fail(group, "", "must be a group { ... }");
		*error_r = opt_error;
		return MP_ERROR;
	}
	if (table->struct_size < OPTION_ROW_MIN) {
		snprintf(opt_error, sizeof(opt_error),
		    "option table rows of %u bytes, ABI 2.0's are %zu (not built "
		    "with MP_OPT?)", (unsigned)table->struct_size, OPTION_ROW_MIN);
		*error_r = opt_error;
		return MP_ERROR;
	}
	if (group && check_unknown(group, table) < 0) {
		*error_r = opt_error;
		return MP_ERROR;
	}
	struct mp_option o;
	for (size_t i = 0; table_row(table, i, &o); i++)
		if (store_option(group, &o, settings) < 0) {
			*error_r = opt_error;
			return MP_ERROR;
		}
	return MP_OK;
}
