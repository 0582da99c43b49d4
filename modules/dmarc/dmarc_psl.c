/*
 * modules/dmarc/dmarc_psl.c - the Public Suffix List
 * (https://publicsuffix.org/list/, format described there): normal,
 * wildcard ("*.ck") and exception ("!www.ck") rules, ICANN and private
 * sections alike, and the organisational domain of RFC 7489 3.2.
 *
 * Rules are kept as strings in one sorted array and found by binary
 * search, so a lookup costs O(labels * log rules). Rules in Unicode are
 * kept as written; mail domains arrive as A-labels, so an IDN suffix
 * only matches once the caller converts (not done here).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmarc.h"

struct dmarc_psl {
	char **rules;
	size_t count;
};

void
dmarc_psl_free(struct dmarc_psl *psl)
{
	if (psl == NULL)
		return;
	for (size_t i = 0; i < psl->count; i++)
		free(psl->rules[i]);
	free(psl->rules);
	free(psl);
}

static int
cmp_rule(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
add_rule(struct dmarc_psl *psl, size_t *cap, const char *s, size_t len)
{
	if (psl->count == *cap) {
		size_t n = *cap ? *cap * 2 : 1024;
		char **r = realloc(psl->rules, n * sizeof(*r));
		if (r == NULL)
			return -1;
		psl->rules = r;
		*cap = n;
	}
	char *rule = malloc(len + 1);
	if (rule == NULL)
		return -1;
	for (size_t i = 0; i < len; i++)
		rule[i] = (char)tolower((unsigned char)s[i]);
	rule[len] = '\0';
	psl->rules[psl->count++] = rule;
	return 0;
}

int
dmarc_psl_load_text(const char *text, struct dmarc_psl **psl_r, const char **error_r)
{
	struct dmarc_psl *psl = calloc(1, sizeof(*psl));
	size_t cap = 0;

	if (psl == NULL)
		goto oom;
	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, "\n");
		/* a rule is the line's first word; "//" starts a comment */
		size_t w = 0;
		while (w < len && !isspace((unsigned char)p[w]))
			w++;
		if (w > 0 && !(w >= 2 && p[0] == '/' && p[1] == '/') &&
		    add_rule(psl, &cap, p, w) < 0)
			goto oom;
		p += len + (p[len] == '\n');
	}
	if (psl->count > 0)
		qsort(psl->rules, psl->count, sizeof(*psl->rules), cmp_rule);
	*psl_r = psl;
	return 0;
oom:
	dmarc_psl_free(psl);
	*error_r = "out of memory loading the public suffix list";
	return -1;
}

int
dmarc_psl_load_file(const char *path, struct dmarc_psl **psl_r, const char **error_r)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t size = 0;

	if (f == NULL) {
		*error_r = "cannot open the public suffix list";
		return -1;
	}
	ssize_t n = getdelim(&buf, &size, '\0', f);
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		*error_r = "cannot read the public suffix list";
		return -1;
	}
	int r = dmarc_psl_load_text(n < 0 ? "" : buf, psl_r, error_r);
	free(buf);
	return r;
}

static bool
has_rule(const struct dmarc_psl *psl, const char *prefix, const char *suffix)
{
	char key[300];
	const char *k = key;

	if (psl == NULL || psl->count == 0 ||
	    (size_t)snprintf(key, sizeof(key), "%s%s", prefix, suffix) >= sizeof(key))
		return false;
	return bsearch(&k, psl->rules, psl->count, sizeof(*psl->rules), cmp_rule) != NULL;
}

int
dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *out, size_t size)
{
	char d[256];
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(d))
		return -1;
	for (size_t i = 0; i < len; i++)
		d[i] = (char)tolower((unsigned char)domain[i]);
	d[len] = '\0';

	/* starts[k-1]: where the suffix of the last k labels begins */
	const char *starts[128];
	size_t labels = 0;
	for (size_t i = len; i > 0 && labels < 128; i--)
		if (d[i - 1] == '.')
			starts[labels++] = d + i;
	if (labels < 128)
		starts[labels++] = d;

	size_t suffix_labels = 1;	/* the implicit "*" rule */
	for (size_t k = 1; k <= labels; k++) {
		if (has_rule(psl, "!", starts[k - 1])) {
			suffix_labels = k - 1;
			break;
		}
		if (has_rule(psl, "", starts[k - 1]) ||
		    (k >= 2 && has_rule(psl, "*.", starts[k - 2])))
			suffix_labels = k;
	}
	size_t keep = suffix_labels + 1 <= labels ? suffix_labels + 1 : labels;
	const char *org = starts[keep - 1];
	if (strlen(org) >= size)
		return -1;
	memcpy(out, org, strlen(org) + 1);
	return 0;
}
