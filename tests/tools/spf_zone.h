/*
 * tests/tools/spf_zone.h - a fake DNS zone for SPF tests: the unit test
 * and tests/tools/spf_tool.c answer the engine's struct spf_dns from it.
 *
 * One record a line: "NAME TYPE DATA" with TYPE one of TXT A AAAA MX
 * PTR. TXT data is the rest of the line (strings already joined); MX
 * data is "PREF HOST". DATA "TEMPFAIL" makes that name/type a temporary
 * error. A name with no line at all is NXDOMAIN; a name with lines of
 * other types only is NODATA. Names compare case-insensitively. Header
 * only (static functions) so both programs include it.
 */
#ifndef MERPATI_SPF_ZONE_H
#define MERPATI_SPF_ZONE_H

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modules/spf/spf.h"

struct zone_rr {
	char name[256], type[8];
	char *data;
};

struct zone {
	struct zone_rr *rr;
	size_t count;
	unsigned queries;
};

static void
zone_free(struct zone *z)
{
	for (size_t i = 0; i < z->count; i++)
		free(z->rr[i].data);
	free(z->rr);
	memset(z, 0, sizeof(*z));
}

/* Lines as above; -1 on a malformed line. */
static int
zone_load(struct zone *z, const char *text)
{
	memset(z, 0, sizeof(*z));
	while (*text != '\0') {
		size_t len = strcspn(text, "\n");
		char line[4096];
		if (len >= sizeof(line))
			return -1;
		memcpy(line, text, len);
		line[len] = '\0';
		text += len + (text[len] == '\n');
		char *name = strtok(line, " "), *type = strtok(NULL, " ");
		char *data = type ? type + strlen(type) + 1 : NULL;
		if (name == NULL || name[0] == '#')
			continue;
		if (type == NULL || data > line + len || strlen(name) > 255 || strlen(type) > 7)
			return -1;
		struct zone_rr *rr = realloc(z->rr, (z->count + 1) * sizeof(*rr));
		if (rr == NULL)
			return -1;
		z->rr = rr;
		rr = &z->rr[z->count++];
		strcpy(rr->name, name);
		strcpy(rr->type, type);
		rr->data = strdup(data);
	}
	return 0;
}

static enum spf_dns_status
zone_lookup(struct zone *z, const char *type, const char *name, struct spf_dns_answer *a)
{
	bool name_exists = false;

	z->queries++;
	for (size_t i = 0; i < z->count; i++) {
		const struct zone_rr *rr = &z->rr[i];
		if (strcasecmp(rr->name, name) != 0)
			continue;
		name_exists = true;
		if (strcmp(rr->type, type) != 0)
			continue;
		if (strcmp(rr->data, "TEMPFAIL") == 0) {
			spf_answer_clear(a);
			return SPF_DNS_TEMPFAIL;
		}
		unsigned char addr[16];
		const char *text = rr->data;
		if (strcmp(type, "A") == 0 || strcmp(type, "AAAA") == 0) {
			int v6 = type[1] == 'A';
			if (inet_pton(v6 ? AF_INET6 : AF_INET, text, addr) == 1)
				spf_answer_add_addr(a, addr, v6 ? 16 : 4);
			continue;
		}
		if (strcmp(type, "MX") == 0 && strchr(text, ' ') != NULL)
			text = strchr(text, ' ') + 1;
		spf_answer_add_text(a, text, strlen(text));
	}
	if (a->count > 0)
		return SPF_DNS_FOUND;
	return name_exists ? SPF_DNS_NODATA : SPF_DNS_NXDOMAIN;
}

static enum spf_dns_status
zone_txt(void *z, const char *n, struct spf_dns_answer *a) { return zone_lookup(z, "TXT", n, a); }
static enum spf_dns_status
zone_a(void *z, const char *n, struct spf_dns_answer *a) { return zone_lookup(z, "A", n, a); }
static enum spf_dns_status
zone_aaaa(void *z, const char *n, struct spf_dns_answer *a) { return zone_lookup(z, "AAAA", n, a); }
static enum spf_dns_status
zone_mx(void *z, const char *n, struct spf_dns_answer *a) { return zone_lookup(z, "MX", n, a); }
static enum spf_dns_status
zone_ptr(void *z, const char *n, struct spf_dns_answer *a) { return zone_lookup(z, "PTR", n, a); }

static struct spf_dns
zone_dns(struct zone *z)
{
	struct spf_dns d = { z, zone_txt, zone_a, zone_aaaa, zone_mx, zone_ptr };
	return d;
}

#endif
