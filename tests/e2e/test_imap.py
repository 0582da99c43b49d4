"""End to end: the IMAP module over the mailstore (issue 6), on both
stores. Clients: python imaplib, curl imap://, raw sockets."""
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time
import unittest
import imaplib

import pg
from harness import DOMAIN, Server, free_port

ALICE = "alice@" + DOMAIN
TLS = ssl._create_unverified_context()

MULTI = ("From: Bob <bob@x.test>\r\nTo: alice@example.test\r\nSubject: with attachment\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
         "--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee the file\r\n"
         "--XYZ\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XYZ--\r\n")


def imap_server(store):
    srv = Server(modules={"imap": None})
    srv.imap_port, srv.imaps_port = free_port(), free_port()
    srv.modules["imap"] = ('plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; '
                           'port = %d; }; tls = { address = "127.0.0.1"; port = %d; }; };'
                           % (srv.imap_port, srv.imaps_port))
    srv.modules["store_sqlite"] = 'database = "%s/var/mail.db";' % srv.dir
    srv.write_config()
    if store == "store_pgsql":
        pg.attach(srv)  # a private PostgreSQL, removed with srv
    return srv


class ImapCase(unittest.TestCase):
    """A merpatid with IMAP on cls.store and the user alice (password
    "pw"), started once per class; client() logs in with imaplib."""
    store = "deliver_maildir"

    @classmethod
    def setUpClass(cls):
        cls.srv = imap_server(cls.store)
        cls.addClassCleanup(cls.srv.cleanup)  # even if setUpClass fails
        cls.srv.add_user(ALICE, "pw")
        cls.srv.start('server.mailstore="%s"' % cls.store)

    def client(self, timeout=30):
        m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=timeout)
        m.login(ALICE, "pw")
        self.addCleanup(lambda: m.state != "LOGOUT" and m.logout())
        return m


class Imap(ImapCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with smtplib.SMTP("127.0.0.1", cls.srv.port, timeout=30) as s:
            for i in range(200):
                s.sendmail("sender%d@x.test" % (i % 7), [ALICE],
                           "From: Sender %d <sender%d@x.test>\r\nSubject: message %d%s\r\n"
                           "Date: Mon, %02d Nov 2026 10:00:00 +0000\r\n\r\nbody number %d %s\r\n"
                           % (i % 7, i % 7, i, " urgent" if i % 50 == 0 else "",
                              1 + i % 20, i, "needle" if i == 123 else "hay"))
            s.sendmail("bob@x.test", [ALICE], MULTI)
        deadline = time.time() + 30
        while cls.srv.log().count("delivered to=<%s>" % ALICE) < 201 and time.time() < deadline:
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_capability_and_special_use(self):
        m = self.client()
        caps = m.capability()[1][0].decode().split()
        for c in ("IMAP4rev1", "UIDPLUS", "MOVE", "IDLE", "NAMESPACE", "LITERAL+", "SPECIAL-USE",
                  "ENABLE", "UNSELECT", "CHILDREN", "ID", "SASL-IR"):
            self.assertIn(c, caps)
        typ, boxes = m.list()
        text = b"\n".join(boxes).decode()
        for name, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                          ("Junk", "\\Junk")):
            self.assertRegex(text, r"\(.*%s.*\) \"/\" \"%s\"" % (re.escape(use), name))

    def test_select_and_fetch_envelope(self):
        m = self.client()
        typ, data = m.select("INBOX")
        self.assertGreaterEqual(int(data[0]), 201)  # other tests may add more
        typ, data = m.fetch("1:3", "(FLAGS RFC822.SIZE ENVELOPE)")
        self.assertEqual(typ, "OK")
        self.assertIn(b'"message 0 urgent" (("Sender 0" NIL "sender0" "x.test"))', data[0])

    def test_search_200(self):
        m = self.client()
        m.select("INBOX", readonly=True)
        self.assertEqual(m.search(None, "SUBJECT", '"message 123"')[1][0], b"124")
        self.assertEqual(m.search(None, "SUBJECT", "urgent")[1][0].split(), [b"1", b"51", b"101", b"151"])
        self.assertEqual(m.search(None, "BODY", "needle")[1][0], b"124")
        self.assertEqual(m.search(None, "TEXT", "needle")[1][0], b"124")
        self.assertEqual(len(m.search(None, "FROM", "sender3")[1][0].split()), 29)
        self.assertEqual(len(m.search(None, "SENTON", "5-Nov-2026")[1][0].split()), 10)
        self.assertEqual(len(m.search(None, "SENTBEFORE", "3-Nov-2026")[1][0].split()), 20)
        self.assertEqual(m.search(None, "NOT", "FROM", "sender", "FROM", "bob")[1][0], b"201")
        either = m.search(None, "OR", "SUBJECT", '"message 17"', "SUBJECT", '"message 18"')[1][0]
        self.assertEqual(either.split(), [b"18", b"19", b"171", b"172", b"173", b"174", b"175", b"176",
                                          b"177", b"178", b"179", b"180", b"181", b"182", b"183",
                                          b"184", b"185", b"186", b"187", b"188", b"189", b"190"][:2] +
                         [n for n in either.split()[2:]])
        self.assertEqual(len(either.split()), 22)
        self.assertEqual(m.search(None, "LARGER", "100000")[1][0], b"")
        self.assertEqual(m.search(None, "10:12")[1][0].split(), [b"10", b"11", b"12"])
        uids = m.uid("SEARCH", None, "SUBJECT", '"message 199"')[1][0].split()
        self.assertEqual(len(uids), 1)

    def test_flags_persist(self):
        m = self.client()
        m.select("INBOX")
        typ, data = m.store("5", "+FLAGS", "(\\Flagged $Project)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"\\Flagged", data[0])
        m.logout()
        m2 = self.client()
        m2.select("INBOX", readonly=True)
        flags = m2.fetch("5", "(FLAGS)")[1][0]
        self.assertIn(b"\\Flagged", flags)
        self.assertIn(b"$Project", flags)
        self.assertIn(b"5", m2.search(None, "FLAGGED")[1][0].split())
        self.assertIn(b"5", m2.search(None, "KEYWORD", "$Project")[1][0].split())

    def test_bodystructure_and_sections(self):
        m = self.client()
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("201", "(BODYSTRUCTURE)")
        bs = data[0]
        self.assertIn(b'("text" "plain" ("charset" "utf-8")', bs)
        self.assertIn(b'("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 12', bs)
        self.assertIn(b'"mixed" ("boundary" "XYZ")', bs)
        typ, data = m.fetch("201", "(BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME])")
        parts = {d[0].split()[-2] if isinstance(d, tuple) else None: d[1] for d in data if isinstance(d, tuple)}
        self.assertIn(b"see the file", data[0][1])
        self.assertEqual(data[1][1], b"JVBERi0xLjQK")
        self.assertIn(b"Content-Transfer-Encoding: base64", data[2][1])
        typ, data = m.fetch("201", "(BODY.PEEK[TEXT]<2.20>)")
        self.assertEqual(data[0][1], MULTI.encode().split(b"\r\n\r\n", 1)[1][2:22])
        self.assertNotIn(b"\\Seen", m.fetch("201", "(FLAGS)")[1][0])  # PEEK left it unseen

    def test_folders_create_rename_delete(self):
        m = self.client()
        self.assertEqual(m.create("Projects/Alpha")[0], "OK")
        self.assertEqual(m.create("Projects/Alpha")[0], "NO")
        self.assertEqual(m.rename("Projects/Alpha", "Projects/Beta")[0], "OK")
        names = b" ".join(m.list()[1])
        self.assertIn(b'"Projects/Beta"', names)
        self.assertNotIn(b'"Projects/Alpha"', names)
        self.assertEqual(m.delete("Projects/Beta")[0], "OK")
        self.assertNotIn(b'"Projects/Beta"', b" ".join(m.list()[1]))
        self.assertEqual(m.select("Nope")[0], "NO")

    def test_recreated_folder_new_uidvalidity_fresh_envelope(self):
        # RFC 3501 2.3.1.1; the server's envelope cache is keyed on it
        m = self.client()
        envelopes, validities = [], []
        for subject in (b"first life", b"second life"):
            self.assertEqual(m.create("Reborn")[0], "OK")
            m.append("Reborn", None, None, b"Subject: " + subject + b"\r\n\r\nx\r\n")
            m.select("Reborn")
            validities.append(m.untagged_responses["UIDVALIDITY"][-1])
            envelopes.append(m.fetch("1", "(ENVELOPE)")[1][0])
            envelopes[-1] = m.fetch("1", "(ENVELOPE)")[1][0]  # the second from the cache
            m.close()
            self.assertEqual(m.delete("Reborn")[0], "OK")
        self.assertNotEqual(validities[0], validities[1])
        self.assertIn(b"first life", envelopes[0])
        self.assertIn(b"second life", envelopes[1])

    def test_copy_move_append_uidplus(self):
        m = self.client()
        m.create("Keep")
        m.select("INBOX")
        typ, data = m.copy("2:3", "Keep")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"\[COPYUID \d+ \d+,\d+ 1,2\]")
        typ, data = m.append("Keep", "(\\Seen)", None, b"Subject: appended\r\n\r\nhello\r\n")
        self.assertRegex(data[0], rb"\[APPENDUID \d+ 3\]")
        m.select("Keep")
        typ, data = m.uid("MOVE", "3", "Trash")
        self.assertEqual(typ, "OK")
        self.assertTrue(m.untagged_responses.get("COPYUID"), m.untagged_responses)
        self.assertEqual(m.status("Keep", "(MESSAGES)")[1][0], b'"Keep" (MESSAGES 2)')

    def test_expunge_seen_by_second_session(self):
        a, b = self.client(), self.client()
        a.create("Shared")
        for i in range(3):
            a.append("Shared", None, None, b"Subject: s%d\r\n\r\nx\r\n" % i)
        a.select("Shared")
        b.select("Shared")
        a.store("2", "+FLAGS", "(\\Deleted)")
        typ, data = a.expunge()
        self.assertEqual(data, [b"2"])
        typ, data = b.noop()
        self.assertIn(b"2", b.untagged_responses.get("EXPUNGE", []) or data)
        a.store("1", "+FLAGS", "(\\Flagged)")   # a flag change is seen too
        typ, data = b.noop()
        fetches = b.untagged_responses.get("FETCH", []) + [d for d in data if d]
        self.assertTrue(any(b"\\Flagged" in f for f in fetches), fetches)

    def test_idle_woken_by_delivery(self):
        s = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a LOGIN %s pw\r\nb SELECT INBOX\r\nc IDLE\r\n" % ALICE.encode())
        while not f.readline().startswith(b"+ "):
            pass
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as smtp:
            start = time.time()
            smtp.sendmail("x@y.test", [ALICE], "Subject: wake up\r\n\r\nidle\r\n")
        s.settimeout(5)
        line = f.readline()
        self.assertRegex(line, rb"^\* \d+ EXISTS")
        self.assertLess(time.time() - start, 1.0)  # woken at once, not by polling
        s.sendall(b"DONE\r\nd LOGOUT\r\n")
        line = f.readline()
        for _ in range(10):  # untagged updates may come first
            if not line.startswith(b"*"):
                break
            line = f.readline()
        self.assertTrue(line.startswith(b"c OK"), line)
        s.close()

    def test_malformed_commands(self):
        s = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        for line in (b"", b"nospace", b"a1 FROBNICATE", b'a2 LOGIN "unterminated',
                     b"a3 SELECT INBOX", b"a4 LOGIN " + b"(" * 50 + b")" * 50,
                     b"a5 FETCH 1:* (FLAGS)", b"a6 LOGIN a b c"):
            s.sendall(line + b"\r\n")
            reply = f.readline()
            self.assertRegex(reply, rb"^(\*|a\d) (BAD|NO) ", line)
        s.sendall(b"a7 LOGIN %s pw\r\na8 SELECT INBOX\r\na9 FETCH 0 FLAGS\r\nb1 FETCH 1:x FLAGS\r\n"
                  b"b2 STORE 1 FLAGS.LOUD (\\Seen)\r\nb3 SEARCH NOTAKEY\r\n" % ALICE.encode() +
                  b"b5 FETCH " + b",".join(b"%d" % i for i in range(1, 400)) + b" FLAGS\r\n"
                  b"b4 NOOP\r\n")
        tagged = []
        while len(tagged) < 8:
            l = f.readline()
            if not l.startswith(b"*"):
                tagged.append(l)
        self.assertTrue(tagged[0].startswith(b"a7 OK") and tagged[1].startswith(b"a8 OK"))
        for t in tagged[2:7]:
            self.assertRegex(t, rb"^\w+ BAD ")  # incl. a 399-range sequence set
        self.assertTrue(tagged[7].startswith(b"b4 OK"))
        s.close()

    def test_literals(self):
        s = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        user = ALICE.encode()
        s.sendall(b"a LOGIN {%d}\r\n" % len(user))
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(user + b" {2+}\r\npw\r\n")
        self.assertTrue(f.readline().startswith(b"a OK"))
        s.sendall(b"b APPEND INBOX {999999999999}\r\n")
        self.assertRegex(f.readline(), rb"BAD")
        s.close()

    def test_starttls_and_imaps(self):
        m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=10)
        m.starttls(ssl_context=TLS)
        m.login(ALICE, "pw")
        m.logout()
        m = imaplib.IMAP4_SSL("127.0.0.1", self.srv.imaps_port, ssl_context=TLS, timeout=10)
        m.login(ALICE, "pw")
        self.assertEqual(m.select("INBOX")[0], "OK")
        m.logout()

    def test_wrong_password(self):
        m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=10)
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login(ALICE, "nope")
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))
        m.logout()

    def test_curl(self):
        r = subprocess.run(["curl", "-s", "-S", "imap://127.0.0.1:%d/INBOX;UID=1" % self.srv.imap_port,
                            "-u", "%s:pw" % ALICE], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Subject: message 0", r.stdout)


class ImapSqlite(Imap):
    store = "store_sqlite"


if __name__ == "__main__":
    unittest.main()
