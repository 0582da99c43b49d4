/*
 * modules/milter/milter_config.c - reads `modules.milter`:
 *
 *   milter = {
 *     milters = (
 *       { name = "rspamd"; socket = "inet:127.0.0.1:11332";
 *         timeout = "30s"; default_action = "tempfail"; },
 *       { name = "opendkim"; socket = "unix:/run/opendkim/opendkim.sock"; }
 *     );
 *   };
 *
 * Each milter: name and socket (required); connect_timeout (30s),
 * timeout for each SMTP-stage command (30s), content_timeout for body
 * and end of message (5m), as Postfix's milter_connect_timeout,
 * milter_command_timeout and milter_content_timeout; default_action
 * "tempfail" (default), "accept" or "reject" when the milter is down or
 * misbehaves, as Postfix's milter_default_action. Everything is checked
 * at start-up; a bad entry names itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter.h"
#include "milter_io.h"

struct milter_settings {
	const char *name, *socket, *default_action;
	long long timeout, connect_timeout, content_timeout;
};

static const struct mp_option milter_options[] = {
	MP_OPT("name", MP_OPT_STRING, offsetof(struct milter_settings, name), NULL, 0, 0),
	MP_OPT("socket", MP_OPT_STRING, offsetof(struct milter_settings, socket), NULL, 0, 0),
	MP_OPT("default_action", MP_OPT_STRING,
	    offsetof(struct milter_settings, default_action), "tempfail", 0, 0),
	MP_OPT("timeout", MP_OPT_DURATION, offsetof(struct milter_settings, timeout),
	    "30s", 1, 3600),
	MP_OPT("connect_timeout", MP_OPT_DURATION,
	    offsetof(struct milter_settings, connect_timeout), "30s", 1, 3600),
	MP_OPT("content_timeout", MP_OPT_DURATION,
	    offsetof(struct milter_settings, content_timeout), "5m", 1, 3600),
	MP_OPT_END
};

/* Start-up errors only: init runs once, in the main thread. */
static char err_buf[512];

static int
fail(const struct mp_host *h, const struct mp_conf *where, const char **error_r,
    const char *why)
{
	char loc[256] = "modules.milter";

	if (where != NULL)
		h->conf_where(where, loc, sizeof(loc));
	snprintf(err_buf, sizeof(err_buf), "%s: %s", loc, why);
	*error_r = err_buf;
	return MP_ERROR;
}

int
milter_default_parse(const char *s, enum milter_default *d)
{
	if (strcmp(s, "tempfail") == 0)
		*d = MILTER_DEFAULT_TEMPFAIL;
	else if (strcmp(s, "accept") == 0)
		*d = MILTER_DEFAULT_ACCEPT;
	else if (strcmp(s, "reject") == 0)
		*d = MILTER_DEFAULT_REJECT;
	else
		return -1;
	return 0;
}

static int
one_milter(const struct mp_host *h, const struct mp_conf *g,
    struct milter_conf *mc, const char **error_r)
{
	struct milter_settings set = { 0 };
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *why;

	if (h->conf_length(g) == 0 && h->conf_string(g) != NULL)
		return fail(h, g, error_r, "must be a group { name; socket; }");
	if (h->conf_options(g, milter_options, &set, error_r) != MP_OK)
		return MP_ERROR;
	if (set.name[0] == '\0' || strlen(set.name) >= sizeof(mc->name))
		return fail(h, g, error_r, "name: must be 1 to 63 characters");
	if (strlen(set.socket) >= sizeof(mc->socket))
		return fail(h, g, error_r, "socket: too long");
	if (milter_addr_parse(set.socket, &mc->addr, &why) < 0 ||
	    milter_io_sockaddr(&mc->addr, &ss, &sslen, &why) < 0)
		return fail(h, g, error_r, why);
	if (milter_default_parse(set.default_action, &mc->default_action) < 0)
		return fail(h, g, error_r,
		    "default_action: must be \"tempfail\", \"accept\" or \"reject\"");
	strcpy(mc->name, set.name);
	strcpy(mc->socket, set.socket);
	mc->command_ms = (int)set.timeout * 1000;
	mc->connect_ms = (int)set.connect_timeout * 1000;
	mc->content_ms = (int)set.content_timeout * 1000;
	return MP_OK;
}

static int
check_keys(const struct mp_host *h, const struct mp_conf *conf,
    const char **error_r)
{
	for (unsigned i = 0; i < h->conf_length(conf); i++) {
		const struct mp_conf *m = h->conf_elem(conf, i);
		const char *name = h->conf_name(m);
		if (name && strcmp(name, "milters") && strcmp(name, "path"))
			return fail(h, m, error_r, "unknown setting");
	}
	return MP_OK;
}

int
milter_config(const struct mp_host *h, const struct mp_conf *conf,
    struct milter_module *m, const char **error_r)
{
	const struct mp_conf *list;
	unsigned n;

	if (check_keys(h, conf, error_r) != MP_OK)
		return MP_ERROR;
	list = h->conf_member(conf, "milters");
	n = h->conf_length(list);
	if (list == NULL || n == 0)
		return fail(h, list, error_r, "milters: want a list of at least one milter");
	if (n > MILTER_MAX_MILTERS)
		return fail(h, list, error_r, "milters: at most 16");
	if ((m->milters = calloc(n, sizeof(*m->milters))) == NULL)
		return fail(h, NULL, error_r, "out of memory");
	m->n = n;
	for (unsigned i = 0; i < n; i++)
		if (one_milter(h, h->conf_elem(list, i), &m->milters[i], error_r) != MP_OK)
			return MP_ERROR;
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < i; j++)
			if (strcmp(m->milters[i].name, m->milters[j].name) == 0)
				return fail(h, h->conf_elem(list, i), error_r,
				    "name: two milters with the same name");
	return MP_OK;
}
