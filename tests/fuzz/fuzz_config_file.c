/*
 * tests/fuzz/fuzz_config_file.c - libFuzzer target: a whole config
 * file through mp_cfg_load (libconfig parse plus the overrides path),
 * then every string in it through the CIDR and duration parsers the
 * core applies to relay_networks and durations. Refusals must say why;
 * nothing may crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "loader.h"
#include "settings.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static char path[64];

/* Every string value below s, through the two value parsers. */
static void
parse_strings(const config_setting_t *s)
{
	const char *v;
	struct mp_cidr c;
	long long secs;

	if (config_setting_is_aggregate(s)) {
		for (int i = 0; i < config_setting_length(s); i++)
			parse_strings(config_setting_get_elem(s, (unsigned)i));
		return;
	}
	if ((v = config_setting_get_string(s)) == NULL)
		return;
	if (mp_cidr_parse(v, &c) == 0 && (c.bits < 0 || c.bits > 128))
		abort();
	if (mp_parse_duration(v, &secs) == 0 && secs < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_problems problems = { 0 };
	char *const override[] = { "server.hostname=fuzz" };
	struct mp_cfg *cfg;
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz-config-%d.conf", (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	cfg = mp_cfg_load(path, override, 1, &problems);
	if (cfg == NULL && problems.n == 0)
		abort();	/* a refused file always says why */
	if (cfg) {
		parse_strings(config_root_setting(&cfg->lc));
		mp_cfg_free(cfg);
	}
	mp_problems_free(&problems);
	return 0;
}
