"""tests/e2e/test_pgsql_nodes.py - two merpatid nodes on one PostgreSQL.

Node A listens on 127.0.0.2 and node B on 127.0.0.3, both with
server.mailstore = "store_pgsql" on the same private database
(tests/e2e/pg.py); each keeps its own queue and user list. Checked:
mail sent by SMTP to A is read by IMAP on B; an IDLE on B is woken by a
delivery on A and by a flag change on A within a second (LISTEN/NOTIFY:
IMAP's own fallback polls once a minute); a POP3 session on A locks
the maildrop against B; PostgreSQL restarted during a
burst of deliveries loses no acknowledged message and stores none twice;
IDLE keeps working across the restart; imaptest's stress with half its
clients on each node reports no error; `merpati store init` creates and
reports the schema version and refuses a newer one. Every wait is
bounded.
"""
import imaplib
import os
import poplib
import re
import smtplib
import socket
import subprocess
import threading
import time
import unittest

import pg
import test_imaptest
from harness import DOMAIN, REPO, Server, free_port

ALICE = "alice@" + DOMAIN
MODULE = os.path.join(REPO, "modules", "store_pgsql", "store_pgsql.so")
SKIP = pg.skip_reason() or (None if os.path.exists(MODULE) else
                            "store_pgsql not built (configure found no libpq)")
WAKE_LIMIT = 1.0  # seconds from the change on A to the untagged reply on B


def imaptest_stress(srv, clients, seconds, out):
    """One imaptest stress run against srv; its output goes to out[srv]."""
    binary = test_imaptest.imaptest_binary()
    mbox = os.path.join(os.path.dirname(binary), "tests", "default.mbox")
    r = subprocess.run([binary, "host=" + srv.address, "port=%d" % srv.imap_port,
                        "user=" + ALICE, "pass=pw", "mbox=" + mbox, "clients=%d" % clients,
                        "secs=%d" % seconds], cwd=os.path.dirname(binary), capture_output=True,
                       text=True, errors="replace", timeout=seconds + 120)
    out[srv.address] = r.stdout + r.stderr


def node(db, address):
    srv = Server(address=address, modules={"imap": None, "pop3": None},
                 extra_config='queue = { retry_interval = "1s"; };')
    srv.imap_port, srv.pop_port = free_port(address), free_port(address)
    for name, port in (("imap", srv.imap_port), ("pop3", srv.pop_port)):
        srv.modules[name] = ('plaintext_auth = true; listen = { plain = { address = "%s"; '
                             'port = %d; }; };' % (address, port))
    srv.modules["store_pgsql"] = 'conninfo = "%s"; pool_size = 4;' % db.conninfo
    srv.write_config()
    srv.add_user(ALICE, "pw")
    srv.start('server.mailstore="store_pgsql"')
    return srv


def send(srv, subject, msgid):
    with smtplib.SMTP(srv.address, srv.port, timeout=20) as s:
        s.sendmail("sender@y.test", [ALICE], "Message-ID: <%s>\r\nSubject: %s\r\n\r\nbody of %s\r\n"
                   % (msgid, subject, subject))


class Idler:
    """A raw IMAP session in IDLE on INBOX (imaplib has no IDLE)."""

    def __init__(self, srv):
        self.sock = socket.create_connection((srv.address, srv.imap_port), timeout=10)
        self.f = self.sock.makefile("rb")
        self.f.readline()
        self.sock.sendall(b"a LOGIN %s pw\r\nb SELECT INBOX\r\nc IDLE\r\n" % ALICE.encode())
        while not self.f.readline().startswith(b"+"):
            pass

    def wait_for(self, pattern, timeout):
        """The first line matching pattern, and the seconds it took."""
        start = time.time()
        self.sock.settimeout(timeout)
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("IDLE session closed")
            if re.search(pattern, line):
                return line, time.time() - start
            if time.time() - start > timeout:
                raise AssertionError("no %r within %.1fs" % (pattern, timeout))

    def close(self):
        try:
            self.sock.sendall(b"DONE\r\nz LOGOUT\r\n")
        except OSError:
            pass
        self.sock.close()


def message_ids(srv, timeout=10):
    """Message-ID -> how many times INBOX on srv holds it."""
    m = imaplib.IMAP4(srv.address, srv.imap_port, timeout=timeout)
    try:
        m.login(ALICE, "pw")
        typ, data = m.select("INBOX")
        counts = {}
        if data[0] != b"0":
            typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            for item in data:
                if isinstance(item, tuple):
                    found = re.search(rb"<([^>]+)>", item[1])
                    if found:
                        key = found.group(1).decode()
                        counts[key] = counts.get(key, 0) + 1
        return counts
    finally:
        m.logout()


@unittest.skipIf(SKIP, SKIP or "")
class TwoNodes(unittest.TestCase):
    def setUp(self):
        self.db = pg.PgServer()
        self.addCleanup(self.db.cleanup)
        self.db.start()
        self.a = node(self.db, "127.0.0.2")
        self.addCleanup(self.a.cleanup)
        self.b = node(self.db, "127.0.0.3")
        self.addCleanup(self.b.cleanup)

    def wait_ids(self, srv, want, timeout=20):
        deadline = time.time() + timeout
        while True:
            got = message_ids(srv)
            if set(want) <= set(got) or time.time() > deadline:
                return got
            time.sleep(0.2)

    def idler(self, srv):
        i = Idler(srv)
        self.addCleanup(i.close)
        time.sleep(1.5)  # past IMAP's first one-second look at the folder
        return i

    def test_smtp_on_a_imap_on_b(self):
        send(self.a, "cross", "cross@nodes.test")
        self.assertEqual(self.wait_ids(self.b, ["cross@nodes.test"]), {"cross@nodes.test": 1})
        m = imaplib.IMAP4(self.b.address, self.b.imap_port, timeout=10)
        self.addCleanup(m.logout)
        m.login(ALICE, "pw")
        m.select("INBOX")
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        self.assertIn(b"body of cross", data[0][1])
        self.assertIn(b"Delivered-To: " + ALICE.encode(), data[0][1])

    def test_idle_on_b_woken_by_delivery_on_a(self):
        idle = self.idler(self.b)
        send(self.a, "wake", "wake@nodes.test")
        line, took = idle.wait_for(rb"^\* 1 EXISTS", timeout=5)
        self.assertLess(took, WAKE_LIMIT, "B saw the delivery on A after %.2fs" % took)

    def test_flags_set_on_a_seen_on_b(self):
        send(self.a, "flag me", "flag@nodes.test")
        self.wait_ids(self.b, ["flag@nodes.test"])
        idle = self.idler(self.b)
        a = imaplib.IMAP4(self.a.address, self.a.imap_port, timeout=10)
        self.addCleanup(a.logout)
        a.login(ALICE, "pw")
        a.select("INBOX")
        a.store("1", "+FLAGS", "(\\Flagged $Important)")
        line, took = idle.wait_for(rb"^\* 1 FETCH .*\\Flagged", timeout=5)
        self.assertLess(took, WAKE_LIMIT, "B saw the flags set on A after %.2fs" % took)
        self.assertIn(b"$Important", line)
        b = imaplib.IMAP4(self.b.address, self.b.imap_port, timeout=10)
        self.addCleanup(b.logout)
        b.login(ALICE, "pw")
        b.select("INBOX")
        typ, data = b.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        self.assertIn(b"$Important", data[0])

    def test_pop3_lock_across_nodes(self):
        """The maildrop lock (RFC 1939 8) held by a POP3 session on A
        refuses B until A's session ends."""
        send(self.a, "pop", "pop@nodes.test")
        self.wait_ids(self.b, ["pop@nodes.test"])
        a = poplib.POP3(self.a.address, self.a.pop_port, timeout=10)
        a.user(ALICE)
        a.pass_("pw")
        b = poplib.POP3(self.b.address, self.b.pop_port, timeout=10)
        b.user(ALICE)
        with self.assertRaises(poplib.error_proto) as refused:
            b.pass_("pw")
        self.assertIn(b"IN-USE", refused.exception.args[0])
        b.quit()
        a.dele(1)
        a.quit()  # UPDATE state: the message goes, the lock with it
        b = poplib.POP3(self.b.address, self.b.pop_port, timeout=10)
        b.user(ALICE)
        b.pass_("pw")
        self.assertEqual(b.stat()[0], 0)
        b.quit()

    def test_postgres_restart_during_delivery_burst(self):
        """Every message A acknowledged is in the store once, though
        PostgreSQL restarts in the middle of the burst."""
        acked, failed = [], []
        started = threading.Barrier(2, timeout=30)

        def burst():
            started.wait()
            for k in range(40):
                msgid = "burst%d@nodes.test" % k
                try:
                    send(self.a, "burst %d" % k, msgid)
                    acked.append(msgid)
                except (smtplib.SMTPException, OSError):
                    failed.append(msgid)  # not acknowledged: may or may not arrive
                time.sleep(0.02)

        t = threading.Thread(target=burst)
        t.start()
        started.wait()
        while len(acked) < 10 and t.is_alive():
            time.sleep(0.01)
        self.db.restart()
        t.join(timeout=120)
        self.assertFalse(t.is_alive())
        self.assertGreaterEqual(len(acked), 30, "SMTP refused too much: %r" % failed)
        got = self.wait_ids(self.b, acked, timeout=60)
        missing = [m for m in acked if m not in got]
        twice = {m: n for m, n in got.items() if n > 1}
        self.assertEqual(missing, [], "acknowledged but lost")
        self.assertEqual(twice, {}, "stored more than once")
        # the restart was met (and the queue tried again)
        self.assertRegex(self.a.log(), r"store_pgsql: mail database")

    def test_idle_across_postgres_restart(self):
        idle = self.idler(self.b)
        self.db.restart()
        time.sleep(1.5)  # the listener reconnects (backoff from 0.2 s)
        deadline = time.time() + 20
        while True:  # the first tries may meet connections the restart broke
            try:
                send(self.a, "after restart", "after@nodes.test")
                break
            except smtplib.SMTPException:
                self.assertLess(time.time(), deadline)
                time.sleep(0.5)
        line, took = idle.wait_for(rb"^\* 1 EXISTS", timeout=10)
        self.assertLess(took, 5.0)

    def test_imaptest_stress_half_on_each_node(self):
        """imaptest's stress, 5 clients on A and 5 on B at once, on one
        mailbox: neither run reports an Error: line."""
        test_imaptest.imaptest_binary()  # skips without imaptest
        seconds = min(test_imaptest.STRESS_SECONDS, 20)
        out = {}
        runs = [threading.Thread(target=imaptest_stress, args=(srv, 5, seconds, out))
                for srv in (self.a, self.b)]
        for t in runs:
            t.start()
        for t in runs:
            t.join(timeout=seconds + 180)
        self.assertEqual(sorted(out), ["127.0.0.2", "127.0.0.3"])
        for address, text in out.items():
            errors = [l for l in text.splitlines() if l.startswith("Error:")]
            self.assertEqual(errors, [], "%s: %d Error: lines, first ones:\n%s"
                             % (address, len(errors), "\n".join(errors[:20])))
            self.assertGreater(sum(test_imaptest.stress_totals(text)), 50, text[-2000:])
        for srv in (self.a, self.b):
            self.assertIsNone(srv.proc.poll(), "merpatid died:\n" + srv.log()[-3000:])

    def test_store_init(self):
        mailstore = ("-o", 'server.mailstore="store_pgsql"')
        r = self.a.cli(*mailstore, "store", "init")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("store_pgsql: schema version 2 in place", r.stdout)
        self.assertEqual(self.db.psql("SELECT version FROM merpati_schema WHERE component = 'store'")
                         .strip(), "2")
        self.assertEqual(self.b.cli("store", "init", "store_pgsql").returncode, 0)  # again: fine
        self.db.psql("UPDATE merpati_schema SET version = 99 WHERE component = 'store'")
        r = self.a.cli(*mailstore, "store", "init")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("schema is version 99", r.stderr)
        r = self.a.cli("store", "init", "deliver_maildir")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "deliver_maildir: nothing to set up"))
        r = self.a.cli("store", "init", "nosuch")
        self.assertIn("nosuch is not a loaded store module", r.stderr)

    def test_store_init_upgrades_version_1(self):
        """A database as version 1 left it (no change counters) is
        upgraded by `merpati store init`, keeping its mail and flags."""
        m = imaplib.IMAP4(self.a.address, self.a.imap_port, timeout=10)
        m.login(ALICE, "pw")
        m.append("INBOX", "(\\Flagged)", None, b"Subject: old\r\n\r\nfrom version 1\r\n")
        m.logout()
        for srv in (self.a, self.b):
            srv.stop()
        self.db.psql("ALTER TABLE folders DROP COLUMN modseq, DROP COLUMN expunges;"
                     "ALTER TABLE messages DROP COLUMN modseq;"
                     "UPDATE merpati_schema SET version = 1 WHERE component = 'store'", user="mail")
        r = self.a.cli("-o", 'server.mailstore="store_pgsql"', "store", "init")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("store_pgsql: schema version 2 in place", r.stdout)
        self.a.start('server.mailstore="store_pgsql"')
        m = imaplib.IMAP4(self.a.address, self.a.imap_port, timeout=10)
        m.login(ALICE, "pw")
        self.assertEqual(m.select("INBOX")[1], [b"1"])
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        self.assertEqual(m.store("1", "+FLAGS", "\\Seen")[0], "OK")
        m.noop()
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])
        m.logout()

    def test_other_node_changes_seen_at_next_command(self):
        """Flag changes, expunges and new messages made on A are reported
        to a session open on B at its next NOOP, round after round (the
        incremental re-read of store_pgsql's refresh), and B's view
        then equals A's."""
        a = imaplib.IMAP4(self.a.address, self.a.imap_port, timeout=10)
        self.addCleanup(a.logout)
        a.login(ALICE, "pw")
        for i in range(6):
            a.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
        a.select("INBOX")
        b = imaplib.IMAP4(self.b.address, self.b.imap_port, timeout=10)
        self.addCleanup(b.logout)
        b.login(ALICE, "pw")
        self.assertEqual(b.select("INBOX")[1], [b"6"])
        for rnd in range(3):
            a.uid("STORE", "%d" % (rnd + 1), "+FLAGS", "(\\Flagged $Round%d)" % rnd)
            b.noop()
            fetched = b.response("FETCH")[1]
            self.assertTrue(any(f and b"\\Flagged" in f and b"$Round%d" % rnd in f
                                for f in fetched), (rnd, fetched))
            b.response("EXISTS")  # drop what SELECT left (imaplib keeps it)
            a.uid("STORE", "%d" % (6 - rnd), "+FLAGS", "\\Deleted")
            a.expunge()
            a.append("INBOX", None, None, b"Subject: new%d\r\n\r\nnew\r\n" % rnd)
            b.noop()
            self.assertEqual(b.response("EXPUNGE")[1], [b"%d" % (6 - rnd)], rnd)
            self.assertEqual(b.response("EXISTS")[1], [b"6"], rnd)
            views = []
            for m in (a, b):
                m.noop()
                typ, data = m.fetch("1:*", "(UID FLAGS)")
                views.append(sorted((re.search(rb"UID (\d+)", d).group(1),
                                     sorted(set(re.search(rb"FLAGS \(([^)]*)\)", d).group(1)
                                                .split()) - {b"\\Recent"})) for d in data))
            self.assertEqual(views[0], views[1], rnd)


if __name__ == "__main__":
    unittest.main()
