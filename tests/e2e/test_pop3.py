"""End to end: the POP3 module over the mailstore (issue 5)."""
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

import pg
from harness import DOMAIN, Server, free_port

ALICE = "alice@" + DOMAIN
TLS = ssl._create_unverified_context()


def pop3_server(plaintext=True, store="deliver_maildir"):
    srv = Server(modules={"pop3": None})
    if store == "store_sqlite":
        srv.modules["store_sqlite"] = 'database = "%s/var/mail.db";' % srv.dir
    srv.pop_port, srv.pops_port = free_port(), free_port()
    srv.modules["pop3"] = ('plaintext_auth = %s; listen = { plain = { address = "127.0.0.1"; port = %d; }; '
                           'tls = { address = "127.0.0.1"; port = %d; }; };'
                           % ("true" if plaintext else "false", srv.pop_port, srv.pops_port))
    srv.write_config()
    if store == "store_pgsql":
        pg.attach(srv)  # a private PostgreSQL, removed with srv
    return srv


def deliver(srv, rcpt, subject, body="body\r\n"):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
        s.sendmail("sender@y.test", [rcpt], "Subject: %s\r\n\r\n%s" % (subject, body))


class Pop3(unittest.TestCase):
    """Runs against Maildir; Pop3Sqlite runs the same tests on store_sqlite."""
    store = "deliver_maildir"

    def setUp(self):
        self.srv = pop3_server(store=self.store)
        self.addCleanup(self.srv.cleanup)
        self.srv.add_user(ALICE, "pw")
        self.srv.start('server.mailstore="%s"' % self.store)
        for i in range(3):
            deliver(self.srv, ALICE, "msg %d" % i, "line one\r\n.dotted\r\n..two dots\r\nlast\r\n")
        self.wait_stored(3)

    def wait_stored(self, count):
        """Wait until count messages are in the store (seen through POP3)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.srv.log().count("delivered to=<%s>" % ALICE) >= count:
                return
            time.sleep(0.05)
        raise AssertionError("not delivered:\n" + self.srv.log()[-2000:])

    def login(self):
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        self.addCleanup(lambda: p.sock and p.sock.close())
        p.user(ALICE)
        p.pass_("pw")
        return p

    def test_capa(self):
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        caps = p.capa()
        for c in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES", "PIPELINING", "STLS",
                  "IMPLEMENTATION"):
            self.assertIn(c, caps)
        p.quit()

    def test_stat_list_retr_sizes(self):
        p = self.login()
        count, octets = p.stat()
        self.assertEqual(count, 3)
        resp, listing, _ = p.list()
        sizes = [int(l.split()[1]) for l in listing]
        self.assertEqual(sum(sizes), octets)
        for n in (1, 2, 3):
            resp, lines, got = p.retr(n)
            self.assertEqual(int(resp.split()[1]), sizes[n - 1])
            # what RETR sends, with CRLF, is exactly the listed size
            self.assertEqual(sum(len(l) + 2 for l in lines), sizes[n - 1])
            self.assertIn(b"Subject: msg %d" % (n - 1), lines)
            self.assertEqual(lines[-3:], [b".dotted", b"..two dots", b"last"])
        p.quit()

    def test_top(self):
        p = self.login()
        lines0 = p.top(1, 0)[1]
        self.assertEqual(lines0[-1], b"")
        self.assertNotIn(b"line one", lines0)
        lines2 = p.top(1, 2)[1]
        self.assertEqual(lines2[-2:], [b"line one", b".dotted"])
        p.quit()

    def test_uidl_stable_across_sessions(self):
        p = self.login()
        first = p.uidl()[1]
        p.quit()
        deliver(self.srv, ALICE, "later")
        self.wait_stored(4)
        p = self.login()
        second = p.uidl()[1]
        p.quit()
        self.assertEqual(second[:3], first)
        self.assertEqual(len(set(l.split()[1] for l in second)), len(second))

    def test_dele_applied_only_at_quit(self):
        p = self.login()
        p.dele(1)
        with self.assertRaises(poplib.error_proto):
            p.retr(1)
        self.assertEqual(p.stat()[0], 2)
        p.rset()
        self.assertEqual(p.stat()[0], 3)
        p.dele(2)
        p.quit()
        p = self.login()
        self.assertEqual(p.stat()[0], 2)
        subjects = [l for n in (1, 2) for l in p.top(n, 0)[1] if l.startswith(b"Subject")]
        self.assertEqual(subjects, [b"Subject: msg 0", b"Subject: msg 2"])
        p.quit()

    def test_dropped_connection_deletes_nothing(self):
        p = self.login()
        p.dele(1)
        p.dele(2)
        p.sock.shutdown(socket.SHUT_RDWR)  # drop it: no QUIT
        p.sock.close()
        time.sleep(0.3)
        p = self.login()
        self.assertEqual(p.stat()[0], 3)
        p.quit()

    def test_in_use(self):
        p = self.login()
        q = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        q.user(ALICE)
        with self.assertRaises(poplib.error_proto) as cm:
            q.pass_("pw")
        self.assertIn(b"[IN-USE]", cm.exception.args[0])
        q.quit()
        p.quit()

    def test_wrong_password(self):
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        p.user(ALICE)
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("nope")
        self.assertIn(b"-ERR [AUTH]", cm.exception.args[0])
        p.quit()

    def test_stls_and_pop3s(self):
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        p.stls(context=TLS)
        p.user(ALICE)
        p.pass_("pw")
        self.assertEqual(p.stat()[0], 3)
        p.quit()
        q = poplib.POP3_SSL("127.0.0.1", self.srv.pops_port, context=TLS, timeout=10)
        q.user(ALICE)
        q.pass_("pw")
        self.assertEqual(q.stat()[0], 3)
        q.quit()

    def test_delivery_while_session_open(self):
        p = self.login()
        self.assertEqual(p.stat()[0], 3)
        deliver(self.srv, ALICE, "during session")
        time.sleep(0.5)
        self.assertEqual(p.stat()[0], 3)  # the session keeps its snapshot
        p.dele(1)
        p.quit()
        p = self.login()
        self.assertEqual(p.stat()[0], 3)  # 3 - 1 deleted + 1 new
        p.quit()

    def test_errors_and_long_lines(self):
        s = socket.create_connection(("127.0.0.1", self.srv.pop_port), timeout=10)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"+OK"))
        for cmd in (b"STAT", b"RETR 1", b"BOGUS", b"USER " + b"x" * 600):
            s.sendall(cmd + b"\r\n")
            self.assertTrue(f.readline().startswith(b"-ERR"), cmd)
        s.sendall(b"USER %s\r\nPASS pw\r\nRETR 0\r\nRETR 99\r\nDELE x\r\nTOP 1\r\nQUIT\r\n" % ALICE.encode())
        replies = [f.readline() for _ in range(7)]
        self.assertTrue(replies[0].startswith(b"+OK") and replies[1].startswith(b"+OK"), replies)
        self.assertTrue(all(r.startswith(b"-ERR") for r in replies[2:6]), replies)
        self.assertTrue(replies[6].startswith(b"+OK"))
        s.close()

    def test_auth_plain(self):
        import base64
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        token = base64.b64encode(b"\0" + ALICE.encode() + b"\0pw").decode()
        self.assertTrue(p._shortcmd("AUTH PLAIN " + token).startswith(b"+OK"))
        self.assertEqual(p.stat()[0], 3)
        p.quit()

    def test_curl(self):
        r = subprocess.run(["curl", "-s", "-S", "pop3://127.0.0.1:%d/2" % self.srv.pop_port,
                            "-u", "%s:pw" % ALICE], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Subject: msg 1", r.stdout)

    def test_fetchmail(self):
        out = os.path.join(self.srv.dir, "fetched.mbox")
        rc = os.path.join(self.srv.dir, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('poll 127.0.0.1 service %d protocol pop3 user "%s" password "pw" '
                    'mda "/bin/sh -c \'cat >> %s\'" no keep no sslcertck\n' % (self.srv.pop_port, ALICE, out))
        os.chmod(rc, 0o600)
        r = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-v", "--idfile",
                            os.path.join(self.srv.dir, "fetchids")],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, HOME=self.srv.dir))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out) as f:
            data = f.read()
        for i in range(3):
            self.assertIn("Subject: msg %d" % i, data)
        p = self.login()
        self.assertEqual(p.stat()[0], 0)  # fetched and deleted
        p.quit()


class Pop3Sqlite(Pop3):
    """The same POP3 suite with the SQLite mailstore: no Maildir files."""
    store = "store_sqlite"

    def tearDown(self):
        mail = os.path.join(self.srv.state, "mail")
        files = [f for _, _, fs in os.walk(mail) for f in fs] if os.path.isdir(mail) else []
        self.assertEqual(files, [])


class Pop3Plaintext(unittest.TestCase):
    def test_user_refused_without_tls(self):
        srv = pop3_server(plaintext=False)
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start()
        p = poplib.POP3("127.0.0.1", srv.pop_port, timeout=10)
        self.assertNotIn("USER", p.capa())
        with self.assertRaises(poplib.error_proto) as cm:
            p.user(ALICE)
        self.assertIn(b"STLS", cm.exception.args[0])
        p.stls(context=TLS)
        p.user(ALICE)
        p.pass_("pw")
        p.quit()


if __name__ == "__main__":
    unittest.main()
