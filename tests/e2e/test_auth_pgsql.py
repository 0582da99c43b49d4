"""tests/e2e/test_auth_pgsql.py - auth_pgsql: users, domains and aliases
in a real PostgreSQL (tests/e2e/pg.py) shared by two merpatid nodes on
127.0.0.2 and 127.0.0.3, with the login cache on.

Covers: SMTP AUTH, IMAP and POP3 logins of a user kept in PostgreSQL;
`merpati user add/passwd/del/list` against it; a user added through
node A logging in on B at once; a password changed through A refusing
the old one on B at once (B's cache held it); a domain and an alias
inserted into the tables accepted at RCPT on both nodes, and the alias
delivered; PostgreSQL stopped -> temporary failures (never "wrong
password"), started again -> logins work without restarting merpatid;
the schema file etc/auth_pgsql.sql matching what the module creates, and
a newer schema version refused at start; server.auth choosing between
auth_sqlite and auth_pgsql, with the database password from password_file.
"""
import base64
import imaplib
import os
import poplib
import smtplib
import time
import unittest

import pg
from harness import REPO, Server, free_port

ALICE = "alice@example.test"
SKIP = pg.skip_reason() or (
    None if os.path.exists(os.path.join(REPO, "modules", "auth_pgsql", "auth_pgsql.so"))
    else "auth_pgsql not built (configure found no libpq)")


def node(address, conninfo, extra_modules=None, **kw):
    """A merpatid on address with IMAP, POP3 and submission, its users in
    PostgreSQL (auth_sqlite left out unless extra_modules brings it)."""
    srv = Server(address=address, modules={"auth_sqlite": None, "imap": None, "pop3": None},
                 listeners={"submission": 'auth = "required"; plaintext_auth = true;'}, **kw)
    srv.imap_port, srv.pop_port = free_port(address), free_port(address)
    srv.modules["imap"] = ('plaintext_auth = true; auth_failures = 100; listen = { plain = '
                           '{ address = "%s"; port = %d; }; };' % (address, srv.imap_port))
    srv.modules["pop3"] = ('plaintext_auth = true; auth_failures = 100; listen = { plain = '
                           '{ address = "%s"; port = %d; }; };' % (address, srv.pop_port))
    srv.modules["auth_pgsql"] = 'conninfo = "%s"; verify_cache = "1h";' % conninfo
    srv.modules.update(extra_modules or {})
    srv.write_config()
    return srv


def smtp_auth(srv, user, password):
    """The reply code to AUTH PLAIN at the submission port."""
    with smtplib.SMTP(srv.address, srv.ports["submission"], timeout=15) as s:
        s.ehlo("client.example")
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return s.docmd("AUTH", "PLAIN " + token)[0]


def imap_login(srv, user, password):
    """"OK", or the NO reply's text."""
    m = imaplib.IMAP4(srv.address, srv.imap_port, timeout=15)
    try:
        m.login(user, password)
        m.logout()
        return "OK"
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


def pop3_login(srv, user, password):
    """"+OK", or the -ERR reply."""
    p = poplib.POP3(srv.address, srv.pop_port, timeout=15)
    try:
        p.user(user)
        return p.pass_(password).decode()
    except poplib.error_proto as e:
        return str(e)
    finally:
        p.close()


def rcpt(srv, address):
    """The reply code to RCPT TO:<address> from an outside client."""
    with smtplib.SMTP(srv.address, srv.port, timeout=15) as s:
        s.ehlo("client.example")
        s.mail("someone@outside.example")
        return s.rcpt(address)[0]


@unittest.skipIf(SKIP, SKIP or "")
class TwoNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg.PgServer()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.pg.start()
        cls.a = node("127.0.0.2", cls.pg.conninfo)
        cls.addClassCleanup(cls.a.cleanup)
        cls.b = node("127.0.0.3", cls.pg.conninfo)
        cls.addClassCleanup(cls.b.cleanup)
        cls.a.start()
        cls.b.start()
        cls.a.add_user(ALICE, "pw")

    def sql(self, query):
        return self.pg.psql(query, user="mail").strip()

    def test_logins_in_three_protocols_on_both_nodes(self):
        for srv in (self.a, self.b):
            with self.subTest(node=srv.address):
                self.assertEqual(smtp_auth(srv, ALICE, "pw"), 235)
                self.assertEqual(imap_login(srv, ALICE, "pw"), "OK")
                self.assertTrue(pop3_login(srv, ALICE, "pw").startswith("+OK"))
                self.assertEqual(smtp_auth(srv, ALICE, "nope"), 535)
                self.assertIn("AUTHENTICATIONFAILED", imap_login(srv, ALICE, "nope"))
                self.assertFalse(pop3_login(srv, ALICE, "nope").startswith("+OK"))

    def test_user_cli_against_postgresql(self):
        u = "cli-user@example.test"
        self.a.add_user(u, "first")
        stored = self.sql("SELECT password FROM auth_users WHERE address = '%s'" % u)
        self.assertTrue(stored.startswith("$"), stored)
        self.assertNotIn("first", stored)
        self.assertIn(u, self.b.cli("user", "list").stdout.split())
        again = self.b.cli("user", "add", u, input="x\n")
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("exists", again.stderr)
        self.assertEqual(self.b.cli("user", "passwd", u, input="second\n").returncode, 0)
        self.assertNotEqual(self.sql("SELECT password FROM auth_users WHERE address = '%s'" % u),
                            stored)
        self.assertEqual(imap_login(self.a, u, "second"), "OK")
        self.assertEqual(self.a.cli("user", "del", u).returncode, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM auth_users WHERE address = '%s'" % u), "0")
        gone = self.a.cli("user", "del", u)
        self.assertNotEqual(gone.returncode, 0)
        self.assertIn("no such user", gone.stderr)
        self.assertIn("AUTHENTICATIONFAILED", imap_login(self.b, u, "second"))

    def test_user_added_on_a_logs_in_on_b_at_once(self):
        u = "new-on-a@example.test"
        self.assertIn("AUTHENTICATIONFAILED", imap_login(self.b, u, "pw-a"))
        self.a.add_user(u, "pw-a")
        self.assertEqual(imap_login(self.b, u, "pw-a"), "OK")
        self.assertEqual(smtp_auth(self.b, u, "pw-a"), 235)

    def test_password_change_on_a_refuses_old_on_b_at_once(self):
        u = "changer@example.test"
        self.a.add_user(u, "old-pw")
        # B verifies (and caches) the old password, twice over.
        self.assertEqual(imap_login(self.b, u, "old-pw"), "OK")
        self.assertEqual(pop3_login(self.b, u, "old-pw")[:3], "+OK")
        r = self.a.cli("user", "passwd", u, input="new-pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        # No wait: the very next logins on B see the change.
        self.assertIn("AUTHENTICATIONFAILED", imap_login(self.b, u, "old-pw"))
        self.assertEqual(smtp_auth(self.b, u, "old-pw"), 535)
        self.assertFalse(pop3_login(self.b, u, "old-pw").startswith("+OK"))
        self.assertEqual(imap_login(self.b, u, "new-pw"), "OK")

    def test_domain_and_alias_from_the_database_at_rcpt(self):
        bob, team = "bob@dyn.test", "team@dyn.test"
        self.a.add_user(bob, "pw")
        for srv in (self.a, self.b):
            self.assertEqual(rcpt(srv, bob), 554)  # not yet a local domain
        self.sql("INSERT INTO auth_domains VALUES ('dyn.test')")
        self.sql("INSERT INTO auth_aliases VALUES ('%s', '%s'), ('%s', '%s')"
                 % (team, bob, team, ALICE))
        for srv in (self.a, self.b):
            with self.subTest(node=srv.address):
                self.assertEqual(rcpt(srv, "BOB@Dyn.Test"), 250)
                self.assertEqual(rcpt(srv, team), 250)
                self.assertEqual(rcpt(srv, "nobody@dyn.test"), 550)
        with smtplib.SMTP(self.b.address, self.b.port, timeout=15) as s:
            s.sendmail("someone@outside.example", [team],
                       "Subject: to the team\r\n\r\nalias body\r\n")
        self.assertTrue(self.b.mails_with(bob, "alias body"))
        self.assertTrue(self.b.mails_with(ALICE, "alias body"))
        # An alias to an unknown local user is refused like the user.
        self.sql("INSERT INTO auth_aliases VALUES ('broken@dyn.test', 'ghost@dyn.test')")
        self.assertEqual(rcpt(self.a, "broken@dyn.test"), 550)

    def test_zz_postgresql_down_is_a_temporary_failure(self):
        self.a.add_user("outage@example.test", "pw")
        self.sql("INSERT INTO auth_domains VALUES ('outage.test')")
        self.pg.stop()
        try:
            for srv in (self.a, self.b):
                with self.subTest(node=srv.address):
                    self.assertIn("UNAVAILABLE", imap_login(srv, "outage@example.test", "pw"))
                    self.assertEqual(smtp_auth(srv, "outage@example.test", "pw"), 454)
                    self.assertIn("SYS/TEMP", pop3_login(srv, "outage@example.test", "pw"))
                    self.assertEqual(rcpt(srv, "x@outage.test"), 451)
                    self.assertEqual(rcpt(srv, ALICE), 451)
        finally:
            self.pg.start()
        for srv in (self.a, self.b):
            deadline, got = time.time() + 15, None
            while time.time() < deadline:
                got = imap_login(srv, "outage@example.test", "pw")
                if got == "OK":
                    break
                time.sleep(0.2)
            self.assertEqual(got, "OK", srv.log()[-2000:])
            self.assertIn("PostgreSQL reachable again", srv.log())


@unittest.skipIf(SKIP, SKIP or "")
class SchemaAndSelection(unittest.TestCase):
    """A cluster whose role needs a password (given by password_file)."""

    @classmethod
    def setUpClass(cls):
        cls.pg = pg.PgServer(password="db-secret")
        cls.addClassCleanup(cls.pg.cleanup)
        cls.pg.start()

    def new_db(self, name):
        self.pg.psql('CREATE DATABASE "%s" OWNER "mail"' % name, db="postgres")
        return self.pg.tcp_conninfo.replace("dbname=mail", "dbname=" + name)

    def password_file(self, srv):
        path = os.path.join(srv.dir, "db.pass")
        with open(path, "w") as f:
            f.write("db-secret\n")
        os.chmod(path, 0o640)
        return path

    def pg_node(self, conninfo, **modules):
        srv = node("127.0.0.1", conninfo, extra_modules=modules)
        self.addCleanup(srv.cleanup)
        srv.modules["auth_pgsql"] = 'conninfo = "%s"; password_file = "%s";' % (
            conninfo, self.password_file(srv))
        srv.write_config()
        return srv

    def columns(self, db):
        return self.pg.psql(
            "SELECT table_name, column_name, data_type, is_nullable FROM "
            "information_schema.columns WHERE table_name LIKE 'auth\\_%' OR "
            "table_name = 'merpati_schema' ORDER BY 1, 2; "
            "SELECT conrelid::regclass, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text LIKE 'auth\\_%' OR "
            "conrelid::regclass::text = 'merpati_schema' ORDER BY 1, 2; "
            "SELECT * FROM merpati_schema ORDER BY 1",
            db=db)

    def test_schema_file_matches_what_the_module_creates(self):
        made = self.new_db("made")
        srv = self.pg_node(made)
        srv.start()
        srv.add_user(ALICE, "pw")
        self.assertEqual(imap_login(srv, ALICE, "pw"), "OK")
        srv.stop()
        self.new_db("from_file")
        with open(os.path.join(REPO, "etc", "auth_pgsql.sql")) as f:
            self.pg.psql("SET ROLE mail;" + f.read(), db="from_file")
        self.assertTrue(self.columns("made").strip())
        self.assertEqual(self.columns("made"), self.columns("from_file"))
        self.assertEqual(self.pg.psql("SELECT version FROM merpati_schema WHERE component = 'directory'",
                                      db="made").strip(), "1")

    def test_newer_schema_refused_at_start(self):
        conninfo = self.new_db("newer")
        with open(os.path.join(REPO, "etc", "auth_pgsql.sql")) as f:
            self.pg.psql("SET ROLE mail;" + f.read(), db="newer")
        self.pg.psql("UPDATE merpati_schema SET version = 99 WHERE component = 'directory'",
                     db="newer")
        srv = self.pg_node(conninfo)
        self.assertNotEqual(srv.start(expect_fail=True), 0)
        self.assertIn("version 99", srv.log())

    def test_beside_store_pgsql_in_one_database(self):
        conninfo = self.new_db("both")
        srv = self.pg_node(conninfo, store_pgsql="")
        srv.modules["store_pgsql"] = srv.modules["auth_pgsql"]  # same database, same file
        srv.write_config()
        srv.start('server.mailstore="store_pgsql"')
        srv.add_user(ALICE, "pw")
        with smtplib.SMTP(srv.address, srv.port, timeout=15) as s:
            s.sendmail("someone@outside.example", [ALICE], "Subject: both\r\n\r\nin pg\r\n")
        m = imaplib.IMAP4(srv.address, srv.imap_port, timeout=15)
        try:
            m.login(ALICE, "pw")
            deadline = time.time() + 10
            while int(m.select("INBOX")[1][0]) < 1 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(int(m.select("INBOX")[1][0]), 1)
        finally:
            m.logout()
        self.assertEqual(self.pg.psql("SELECT component, version FROM merpati_schema "
                                      "ORDER BY 1", db="both").split(),
                         ["directory|1", "store|2"])

    def test_server_auth_picks_the_provider(self):
        conninfo = self.new_db("select")
        srv = self.pg_node(conninfo, auth_sqlite="")
        srv.modules["auth_sqlite"] = 'database = "%s/var/users.db";' % srv.dir
        srv.write_config()
        # `merpati user add` writes to the provider server.auth names.
        r = srv.cli("-o", 'server.auth="auth_pgsql"', "user", "add", "pg@example.test",
                    input="pw-pg\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = srv.cli("-o", 'server.auth="auth_sqlite"', "user", "add", "lite@example.test",
                    input="pw-lite\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.pg.psql("SELECT address FROM auth_users", db="select").split(),
                         ["pg@example.test"])
        srv.start('server.auth="auth_pgsql"')
        self.assertEqual(imap_login(srv, "pg@example.test", "pw-pg"), "OK")
        self.assertIn("AUTHENTICATIONFAILED", imap_login(srv, "lite@example.test", "pw-lite"))
        srv.stop()
        srv.start('server.auth="auth_sqlite"')
        self.assertEqual(imap_login(srv, "lite@example.test", "pw-lite"), "OK")
        self.assertIn("AUTHENTICATIONFAILED", imap_login(srv, "pg@example.test", "pw-pg"))
        srv.stop()
        for bad, why in (("auth_nope", "not a loaded auth module"),
                         ("deliver_maildir", "not a loaded auth module")):
            with self.subTest(server_auth=bad):
                self.assertNotEqual(srv.start('server.auth="%s"' % bad, expect_fail=True), 0)
                self.assertIn('server.auth: "%s" is %s' % (bad, why), srv.log())


if __name__ == "__main__":
    unittest.main()
