/*
 * tests/unit/test_store_sqlite_contract.c - the store contract
 * (store_contract.h) on store_sqlite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock_host.h"
#include "store_contract.h"

extern const struct mp_module merpati_module;

static char dir[] = "/tmp/merpati-test-sqlite-contract-XXXXXX";

int
main(void)
{
	const char *err = NULL;
	char db[200], cmd[300];
	const char *kv[] = { "database", db, NULL };
	struct mp_conf conf = { kv, NULL };

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/mail.db", dir);
	CHECK("init", merpati_module.init(&mock_host, &conf, &sc_ctx, &err) == MP_OK);
	sc_run_contract(merpati_module.store, sc_ctx);
	merpati_module.fini(sc_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_EXIT();
}
