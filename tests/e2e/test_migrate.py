"""End to end: `merpati mailbox migrate` moves a mailbox between stores
keeping UIDs and flags, and POP3 serves it the same afterwards (issue 9)."""
import poplib
import smtplib
import time
import unittest

from harness import DOMAIN, Server, free_port

ALICE = "alice@" + DOMAIN


class Migrate(unittest.TestCase):
    def server(self, store):
        srv = Server(modules={"pop3": None})
        srv.pop_port = free_port()
        srv.modules["pop3"] = ('plaintext_auth = true; listen = { plain = { address = "127.0.0.1";'
                               ' port = %d; }; };' % srv.pop_port)
        srv.modules["store_sqlite"] = 'database = "%s/var/mail.db";' % srv.dir
        srv.write_config()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        return srv

    def uidl(self, srv):
        p = poplib.POP3("127.0.0.1", srv.pop_port, timeout=10)
        p.user(ALICE)
        p.pass_("pw")
        listing = [l.split()[1] for l in p.uidl()[1]]
        tops = [[l for l in p.top(i + 1, 1)[1] if l.startswith(b"Subject")] for i in range(len(listing))]
        p.quit()
        return listing, tops

    def round_trip(self, first, second):
        srv = self.server(first)
        srv.start('server.mailstore="%s"' % first)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(4):
                s.sendmail("x@y.test", [ALICE], "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
        deadline = time.time() + 10
        while srv.log().count("delivered to=<%s>" % ALICE) < 4 and time.time() < deadline:
            time.sleep(0.05)
        p = poplib.POP3("127.0.0.1", srv.pop_port, timeout=10)
        p.user(ALICE)
        p.pass_("pw")
        p.dele(2)  # a gap in the UIDs must survive the move
        p.quit()
        before = self.uidl(srv)
        srv.stop()
        r = srv.cli("mailbox", "migrate", "--from", first, "--to", second, ALICE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 message(s) copied", r.stdout)
        srv.start('server.mailstore="%s"' % second)
        after = self.uidl(srv)
        self.assertEqual(after, before)
        self.assertEqual(len(after[0]), 3)
        return srv

    def test_maildir_to_sqlite(self):
        self.round_trip("deliver_maildir", "store_sqlite")

    def test_sqlite_to_maildir(self):
        self.round_trip("store_sqlite", "deliver_maildir")

    def test_unknown_store_refused(self):
        srv = self.server("deliver_maildir")
        r = srv.cli("mailbox", "migrate", "--from", "deliver_maildir", "--to", "nosuch", ALICE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nosuch is not a loaded store module", r.stderr)


if __name__ == "__main__":
    unittest.main()
