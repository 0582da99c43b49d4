/*
 * modules/auth_pgsql/pg_schema.c - the directory's tables: created when
 * missing (the same SQL as etc/auth_pgsql.sql, schema version 1), and
 * refused when the database holds a newer version than this module
 * knows. The version is the row 'directory' of merpati_schema
 * (component, version), the table store_pgsql keeps its 'store' row in.
 * Nodes starting at once serialise on the advisory lock store_pgsql
 * also takes, so the shared table and ours are created once; a
 * database prepared beforehand by an admin is only read (the daemon's
 * role then needs no CREATE privilege).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_schema.h"

#define SCHEMA_VERSION 1

static const char create_sql[] =
	"INSERT INTO merpati_schema (component, version) VALUES ('directory', 1);"
	"CREATE TABLE auth_users ("
	" address text PRIMARY KEY CHECK (address = lower(address) AND address LIKE '_%@_%'),"
	" password text NOT NULL,"
	" created timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE auth_domains ("
	" domain text PRIMARY KEY CHECK (domain = lower(domain) AND domain NOT LIKE '%@%'));"
	"CREATE TABLE auth_aliases ("
	" address text NOT NULL CHECK (address = lower(address) AND address LIKE '_%@_%'),"
	" target text NOT NULL CHECK (target LIKE '_%@_%'),"
	" PRIMARY KEY (address, target));";

/* Run sql; 0, or -1 with PostgreSQL's message in err. */
static int
run(PGconn *c, const char *sql, char *err, size_t errsize)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errsize, "%s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* The directory's version in the database, 0 when there is none yet,
 * -1 error. */
static int
stored_version(PGconn *c, char *err, size_t errsize)
{
	PGresult *r = PQexec(c, "SELECT to_regclass('merpati_schema') IS NOT NULL");
	int v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? 1 : 0;
	else
		snprintf(err, errsize, "%s", PQerrorMessage(c));
	PQclear(r);
	if (v <= 0)
		return v;
	r = PQexec(c, "SELECT coalesce(max(version), 0) FROM merpati_schema "
	    "WHERE component = 'directory'");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	else {
		snprintf(err, errsize, "%s", PQerrorMessage(c));
		v = -1;
	}
	PQclear(r);
	return v;
}

int
pg_schema_setup(PGconn *c, char *err, size_t errsize)
{
	int v = stored_version(c, err, errsize);

	if (v == 0) {
		if (run(c, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('merpati_store_schema'));"
		    "CREATE TABLE IF NOT EXISTS merpati_schema (component text PRIMARY KEY,"
		    " version integer NOT NULL)", err, errsize) < 0) {
			PQclear(PQexec(c, "ROLLBACK"));
			return -1;
		}
		/* Another node may have created it while we waited. */
		v = stored_version(c, err, errsize);
		if (v == 0 && run(c, create_sql, err, errsize) < 0) {
			PQclear(PQexec(c, "ROLLBACK"));	/* err keeps the cause */
			return -1;
		}
		if (run(c, v < 0 ? "ROLLBACK" : "COMMIT", err, errsize) < 0 || v < 0)
			return -1;
		v = stored_version(c, err, errsize);
	}
	if (v < 0)
		return -1;
	if (v > SCHEMA_VERSION) {
		snprintf(err, errsize, "the database's directory schema is version %d, "
		    "newer than this auth_pgsql (%d): upgrade merpati", v, SCHEMA_VERSION);
		return -1;
	}
	if (v < 1) {
		snprintf(err, errsize, "merpati_schema holds no 'directory' version");
		return -1;
	}
	return 0;
}
