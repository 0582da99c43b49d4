/*
 * modules/auth_pgsql/pg_schema.c - the directory's tables: created when
 * missing (the same SQL as etc/auth_pgsql.sql, schema version 1), and
 * refused when the database holds a newer version than this module
 * knows. Several nodes starting at once serialise on an advisory lock,
 * so only one creates; a database prepared beforehand by an admin is
 * only read (the daemon's role then needs no CREATE privilege).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_schema.h"

#define SCHEMA_VERSION 1
/* Any fixed number, the same on every node: "auth_pgsql schema". */
#define SCHEMA_LOCK "7301216"

static const char create_sql[] =
	"CREATE TABLE auth_schema_version (version integer NOT NULL);"
	"INSERT INTO auth_schema_version (version) VALUES (1);"
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

/* The version in the database, 0 when the table is missing, -1 error. */
static int
stored_version(PGconn *c, char *err, size_t errsize)
{
	PGresult *r = PQexec(c, "SELECT to_regclass('auth_schema_version') IS NOT NULL");
	int v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? 1 : 0;
	else
		snprintf(err, errsize, "%s", PQerrorMessage(c));
	PQclear(r);
	if (v <= 0)
		return v;
	r = PQexec(c, "SELECT coalesce(max(version), 0) FROM auth_schema_version");
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
		if (run(c, "BEGIN; SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", err,
		    errsize) < 0)
			return -1;
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
		snprintf(err, errsize, "auth_schema_version holds no version");
		return -1;
	}
	return 0;
}
