/*
 * tests/unit/test_store_pgsql_contract.c - the store contract
 * (store_contract.h) on store_pgsql, against the PostgreSQL named by
 * MERPATI_TEST_PG_CONNINFO. tests/e2e/test_store_pgsql.py starts a
 * private PostgreSQL and runs this binary with it; run alone without
 * the variable, it says so and checks nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"
#include "store_contract.h"

extern const struct mp_module merpati_module;

int
main(void)
{
	const char *conninfo = getenv("MERPATI_TEST_PG_CONNINFO");
	const char *err = NULL;

	if (conninfo == NULL || conninfo[0] == '\0') {
		printf("# test_store_pgsql_contract: needs MERPATI_TEST_PG_CONNINFO; "
		    "tests/e2e/test_store_pgsql.py runs it with a private PostgreSQL\n");
		return 0;
	}
	const char *kv[] = { "conninfo", conninfo, "pool_size", "8", NULL };
	struct mp_conf conf = { kv, NULL };
	CHECK("init", merpati_module.init(&mock_host, &conf, &sc_ctx, &err) == MP_OK);
	if (sc_ctx == NULL)
		TEST_EXIT();
	sc_run_contract(merpati_module.store, sc_ctx);
	merpati_module.fini(sc_ctx);
	TEST_EXIT();
}
