/*
 * modules/auth_pgsql/pg_schema.h - creating and checking the directory
 * schema (pg_schema.c; the SQL is etc/auth_pgsql.sql).
 */
#ifndef AUTH_PGSQL_SCHEMA_H
#define AUTH_PGSQL_SCHEMA_H

#include <stddef.h>
#include <libpq-fe.h>

/* Create the tables when missing, refuse a newer version: 0, or -1
 * with the reason in err. Outside any transaction on c. */
int pg_schema_setup(PGconn *c, char *err, size_t errsize);

#endif
