-- etc/auth_pgsql.sql - the directory of modules/auth_pgsql, schema
-- version 1: users, local domains and aliases shared by every merpati
-- node on one PostgreSQL database.
--
-- auth_pgsql creates exactly this itself when merpati_schema has no
-- 'directory' row (its role then needs CREATE on the schema); the
-- table merpati_schema is shared with store_pgsql (its row: 'store'). To run the
-- daemon with a role that may only read and write rows, create it
-- beforehand as the database owner:
--     psql "dbname=mail" -f etc/auth_pgsql.sql
--     GRANT SELECT, INSERT, UPDATE, DELETE ON auth_users, auth_domains,
--         auth_aliases TO merpati;  GRANT SELECT ON merpati_schema TO merpati;
-- Every address and domain is stored in lower case (the CHECKs refuse
-- anything else); passwords are crypt(3) hashes ($y$ yescrypt or $6$
-- sha512-crypt), as `merpati user add` writes them.
BEGIN;
CREATE TABLE IF NOT EXISTS merpati_schema (
	component text PRIMARY KEY,
	version integer NOT NULL
);
INSERT INTO merpati_schema (component, version) VALUES ('directory', 1);
-- Who may log in, and who receives mail (a user in a local domain).
CREATE TABLE auth_users (
	address text PRIMARY KEY CHECK (address = lower(address) AND address LIKE '_%@_%'),
	password text NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
);
-- Local domains beyond the static `domains` list of merpati.conf.
CREATE TABLE auth_domains (
	domain text PRIMARY KEY CHECK (domain = lower(domain) AND domain NOT LIKE '%@%')
);
-- address (in a local domain) delivers to every target instead; a
-- target equal to the address keeps a copy in its own mailbox.
CREATE TABLE auth_aliases (
	address text NOT NULL CHECK (address = lower(address) AND address LIKE '_%@_%'),
	target text NOT NULL CHECK (target LIKE '_%@_%'),
	PRIMARY KEY (address, target)
);
COMMIT;
