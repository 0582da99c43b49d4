"""tests/e2e/test_store_pgsql.py - the store suites again, on store_pgsql.

The IMAP, IMAP MIME/SEARCH/session, store contract, POP3 and imaptest
(scripted groups and stress) suites run
unchanged against a merpatid whose mailstore (and local delivery) is
store_pgsql on a private PostgreSQL 15 (tests/e2e/pg.py). The base
classes are reached through their modules, so the loader does not run
the Maildir versions twice. MigratePgsql moves a mailbox Maildir ->
PostgreSQL -> Maildir; ContractUnitPgsql runs the C store contract
checks (tests/unit/test_store_pgsql_contract) on it. Skips when PostgreSQL is not installed.
"""
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import subprocess
import time
import unittest

import pg
import test_imap
from harness import REPO
import test_imap_mime
import test_imap_search
import test_imap_session
import test_imaptest
import test_pop3
import test_store_contract

MODULE = os.path.join(REPO, "modules", "store_pgsql", "store_pgsql.so")
SKIP = pg.skip_reason() or (None if os.path.exists(MODULE) else
                            "store_pgsql not built (configure found no libpq)")


@unittest.skipIf(SKIP, SKIP or "")
class ContractUnitPgsql(unittest.TestCase):
    """tests/unit/store_contract.h's checks on store_pgsql's ops table,
    against a private PostgreSQL (the unit binary cannot start one)."""

    def test_store_contract(self):
        binary = os.path.join(REPO, "tests", "unit", "test_store_pgsql_contract")
        if not os.access(binary, os.X_OK):
            self.skipTest("%s not built (make check builds it)" % binary)
        with pg.PgServer() as db:
            env = dict(os.environ, MERPATI_TEST_PG_CONNINFO=db.conninfo)
            r = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=300)
        failed = [l for l in r.stdout.splitlines() if l.startswith("not ok")]
        self.assertEqual((r.returncode, failed), (0, []), r.stdout[-3000:] + r.stderr[-2000:])
        self.assertGreater(r.stdout.count("\nok - contract"), 30, r.stdout[-3000:])


@unittest.skipIf(SKIP, SKIP or "")
class ImapPgsql(test_imap.Imap):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class ImapMimePgsql(test_imap_mime.ImapMime):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class ImapSearchPgsql(test_imap_search.ImapSearch):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class SessionPgsql(test_imap_session.Session):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class StoreContractPgsql(test_store_contract.StoreContract):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class Pop3Pgsql(test_pop3.Pop3):
    store = "store_pgsql"


def imap_snapshot(srv):
    """Every folder with its subscription, UIDVALIDITY and (UID, flags
    without \\Recent, Subject) of each message, seen over IMAP."""
    m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
    try:
        m.login(test_imap.ALICE, "pw")
        subscribed = {re.search(rb'"([^"]*)"$|(\S+)$', l).group(0).strip(b'"')
                      for l in m.lsub()[1] if l}
        snap = {}
        for line in m.list()[1]:
            name = re.search(rb'"([^"]*)"$|(\S+)$', line).group(0).strip(b'"').decode()
            typ, data = m.select('"%s"' % name, readonly=True)
            uv = m.response("UIDVALIDITY")[1][0]
            msgs = []
            if data[0] != b"0":
                typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                for item in data:
                    if isinstance(item, tuple):
                        uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                        flags = sorted(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
                                       .replace(b"\\Recent", b"").split())
                        msgs.append((uid, flags, item[1].strip()))
            # an empty folder's UIDVALIDITY is not carried (import sets
            # it with the first message; nothing is cached for no mail)
            snap[name] = (name.encode() in subscribed, uv if msgs else None, sorted(msgs))
        return snap
    finally:
        m.logout()


@unittest.skipIf(SKIP, SKIP or "")
class LargePgsql(test_imap.ImapCase):
    """A message of several 64 KiB chunk rows goes in by APPEND (LF line
    ends, made CRLF) and comes back whole, its header part alone too,
    and COPY copies every chunk."""
    store = "store_pgsql"

    def test_multi_chunk_message(self):
        lines = [("line %06d " % i + "x" * 60) for i in range(4000)]
        text = ("Subject: big\n\n" + "\n".join(lines) + "\n").encode()
        wire = text.replace(b"\n", b"\r\n")
        m = self.client()
        typ, data = m.append("INBOX", None, None, text)
        self.assertEqual(typ, "OK", data)
        m.select("INBOX")
        typ, data = m.uid("FETCH", "1", "(RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER])")
        parts = [x for x in data if isinstance(x, tuple)]
        self.assertIn(b"RFC822.SIZE %d" % len(wire), parts[0][0])
        self.assertEqual(parts[0][1], wire)
        self.assertEqual(parts[1][1], b"Subject: big\r\n\r\n")
        rows = self.srv.pg.psql("SELECT count(*), max(length(data)) FROM message_chunks").strip()
        self.assertEqual(rows, "%d|65536" % ((len(wire) + 65535) // 65536))
        m.create("Copy")
        self.assertEqual(m.uid("COPY", "1", "Copy")[0], "OK")
        m.select("Copy")
        typ, data = m.uid("FETCH", "1", "(BODY.PEEK[])")
        self.assertEqual(data[0][1], wire)


@unittest.skipIf(SKIP, SKIP or "")
class MigratePgsql(unittest.TestCase):
    maxDiff = None
    """`merpati mailbox migrate` Maildir -> PostgreSQL -> Maildir keeps
    folders, subscriptions, UIDVALIDITY, UIDs (with a gap), flags and
    keywords, as IMAP shows them."""

    def migrate(self, srv, src, dst):
        r = srv.cli("mailbox", "migrate", "--from", src, "--to", dst, test_imap.ALICE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4 message(s) copied", r.stdout)

    def fill(self, srv):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(4):
                s.sendmail("x@y.test", [test_imap.ALICE], "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
        m.login(test_imap.ALICE, "pw")
        deadline = time.time() + 10
        while m.select("INBOX")[1] != [b"4"] and time.time() < deadline:
            time.sleep(0.05)
        m.store("1", "+FLAGS", "(\\Seen $Label1)")
        m.store("3", "+FLAGS", "(\\Flagged \\Answered)")
        m.store("2", "+FLAGS", "\\Deleted")
        m.expunge()  # a gap in the UIDs must survive the moves
        m.create("Archive/2026")
        m.subscribe("Archive/2026")
        m.append("Archive/2026", "(\\Draft Work)", None, b"Subject: archived\r\n\r\nold\r\n")
        m.create("Empty")
        m.logout()

    def test_maildir_to_pgsql_to_maildir(self):
        srv = test_imap.imap_server("store_pgsql")
        self.addCleanup(srv.cleanup)
        srv.add_user(test_imap.ALICE, "pw")
        srv.start('server.mailstore="deliver_maildir"')
        self.fill(srv)
        before = imap_snapshot(srv)
        self.assertLessEqual({"Archive/2026", "Empty", "INBOX"}, set(before))
        inbox, archive = before["INBOX"][2], before["Archive/2026"]
        self.assertEqual([uid for uid, _, _ in inbox], [1, 3, 4])
        self.assertEqual(inbox[0][1], [b"$Label1", b"\\Seen"])
        self.assertEqual(inbox[1][1], [b"\\Answered", b"\\Flagged"])
        self.assertEqual((archive[0], archive[2][0][1]), (True, [b"Work", b"\\Draft"]))
        srv.stop()
        self.migrate(srv, "deliver_maildir", "store_pgsql")
        shutil.rmtree(os.path.join(srv.state, "mail"))  # only PostgreSQL has it now
        srv.start('server.mailstore="store_pgsql"')
        self.assertEqual(imap_snapshot(srv), before)
        srv.stop()
        self.migrate(srv, "store_pgsql", "deliver_maildir")
        srv.start('server.mailstore="deliver_maildir"')
        self.assertEqual(imap_snapshot(srv), before)


@unittest.skipIf(SKIP, SKIP or "")
class PgsqlConnection(unittest.TestCase):
    """The password file, a bad conninfo, and a database that is down
    for a while: deliveries wait in the queue and arrive once it is back."""

    def server(self, db, extra=""):
        srv = test_imap.imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.modules["store_pgsql"] = 'conninfo = "%s"; %s' % (db.conninfo, extra)
        srv.extra = 'queue = { retry_interval = "1s"; };'
        srv.write_config()
        srv.add_user(test_imap.ALICE, "pw")
        return srv

    def count(self, srv):
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
        try:
            m.login(test_imap.ALICE, "pw")
            typ, data = m.select("INBOX")
            return typ, data[0]
        finally:
            m.logout()

    def send(self, srv, subject):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("x@y.test", [test_imap.ALICE], "Subject: %s\r\n\r\nbody\r\n" % subject)

    def wait_count(self, srv, want, timeout=20):
        deadline = time.time() + timeout
        while self.count(srv) != ("OK", want) and time.time() < deadline:
            time.sleep(0.2)
        return self.count(srv)

    def test_password_file(self):
        db = pg.PgServer(password="s3cret pw")
        self.addCleanup(db.cleanup)
        db.start()
        srv = self.server(db)
        pw = os.path.join(srv.dir, "pgpass")
        with open(pw, "w") as f:
            f.write("s3cret pw\n")
        srv.modules["store_pgsql"] += ' password_file = "%s";' % pw
        srv.write_config()
        srv.start('server.mailstore="store_pgsql"')
        self.send(srv, "with password")
        self.assertEqual(self.wait_count(srv, b"1"), ("OK", b"1"))
        with open(pw, "w") as f:  # read at start only: a wrong one after a restart fails
            f.write("wrong\n")
        srv.stop()
        srv.start('server.mailstore="store_pgsql"')
        with self.assertRaises(imaplib.IMAP4.error):
            self.count(srv)
        self.assertIn("password authentication failed", srv.log())

    def test_bad_conninfo_refused_at_start(self):
        srv = test_imap.imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.modules["store_pgsql"] = 'conninfo = "host=/tmp port=notanumber x";'
        srv.write_config()
        self.assertNotEqual(srv.start('server.mailstore="store_pgsql"', expect_fail=True), 0)
        self.assertIn("modules.store_pgsql.conninfo", srv.log())

    def test_first_command_after_a_restart_works(self):
        """Pooled connections the restart closed are dropped when taken,
        not used: the first session afterwards is served."""
        db = pg.PgServer()
        self.addCleanup(db.cleanup)
        db.start()
        srv = self.server(db)
        srv.start('server.mailstore="store_pgsql"')
        self.assertEqual(self.count(srv), ("OK", b"0"))
        db.restart()
        self.assertEqual(self.count(srv), ("OK", b"0"))

    def test_database_down_then_back(self):
        db = pg.PgServer()
        self.addCleanup(db.cleanup)
        db.start()
        srv = self.server(db)
        srv.start('server.mailstore="store_pgsql"')
        self.send(srv, "before")
        self.assertEqual(self.wait_count(srv, b"1"), ("OK", b"1"))
        db.stop()
        self.send(srv, "while down")  # accepted: the queue keeps it
        with self.assertRaises(imaplib.IMAP4.error):  # a clean NO, not a hang
            self.count(srv)
        time.sleep(1.5)
        self.assertIn("mail database", srv.log())
        db.start()
        self.assertEqual(self.wait_count(srv, b"2"), ("OK", b"2"))


@unittest.skipIf(SKIP, SKIP or "")
class Pop3ReloginPgsql(unittest.TestCase):
    """Closing a POP3 session releases the maildrop lock before QUIT is
    answered: a client logging in again at once is never told the
    maildrop is in use (PostgreSQL frees a closed connection's advisory
    lock only when its backend exits, a moment later)."""

    def test_login_quit_login_at_once(self):
        srv = test_pop3.pop3_server(store="store_pgsql")
        self.addCleanup(srv.cleanup)
        srv.add_user(test_pop3.ALICE, "pw")
        srv.start('server.mailstore="store_pgsql"')
        test_pop3.deliver(srv, test_pop3.ALICE, "one")
        in_use = []
        for i in range(50):
            p = poplib.POP3("127.0.0.1", srv.pop_port, timeout=10)
            p.user(test_pop3.ALICE)
            try:
                p.pass_("pw")
            except poplib.error_proto as e:
                in_use.append((i, e.args[0]))
                p.close()
                continue
            p.stat()
            p.quit()
        self.assertEqual(in_use, [])


@unittest.skipIf(SKIP, SKIP or "")
class ImaptestPgsql(test_imaptest.ImaptestMaildir):
    """imaptest's scripted groups and its 10/50-client stress on store_pgsql."""
    store = "store_pgsql"


if __name__ == "__main__":
    unittest.main()
