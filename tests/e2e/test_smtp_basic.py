"""End to end: SMTP in, queue, Maildir delivery (issue 2)."""
import re
import smtplib
import subprocess
import threading
import unittest

from harness import DOMAIN, Server, Session

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN


class SmtpBasics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.addClassCleanup(cls.srv.cleanup)  # even if setUpClass fails
        cls.srv.add_user(ALICE)
        cls.srv.add_user(BOB)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10)
        self.addCleanup(s.close)
        return s

    def session(self):
        s = Session(self.srv.port)
        self.addCleanup(s.close)
        self.assertEqual(s.reply()[0], 220)
        return s

    def test_greeting_and_ehlo(self):
        s = Session(self.srv.port)
        self.addCleanup(s.close)
        code, text = s.reply()
        self.assertEqual((code, text[0]), (220, "mail.example.test ESMTP merpati"))
        code, lines = s.cmd("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertEqual(lines[0], "mail.example.test")
        for kw in ("PIPELINING", "8BITMIME", "SIZE 1048576", "ENHANCEDSTATUSCODES",
                   "CHUNKING", "DSN", "SMTPUTF8", "STARTTLS"):
            self.assertIn(kw, lines)

    def test_helo(self):
        s = self.session()
        self.assertEqual(s.cmd("HELO client.example"), (250, ["mail.example.test"]))

    def test_deliver_with_smtplib(self):
        s = self.smtp()
        code, text = s.docmd("EHLO", "client.example")
        s.mail("sender@elsewhere.test")
        s.rcpt(ALICE)
        code, text = s.data(b"Subject: hello\r\n\r\nHello Alice.\r\nSecond line.\r\n")
        self.assertEqual(code, 250)
        m = re.search(r"queued as ([0-9A-F]+)", text.decode())
        self.assertTrue(m, text)
        qid = m.group(1)
        mails = self.srv.wait_for_mail(ALICE)
        mail = [x for x in mails if qid in x]
        self.assertEqual(len(mail), 1)
        lines = mail[0].split("\n")
        self.assertEqual(lines[0], "Return-Path: <sender@elsewhere.test>")
        self.assertEqual(lines[1], "Delivered-To: " + ALICE)
        self.assertTrue(lines[2].startswith("Received: from client.example ([127.0.0.1])"))
        self.assertIn("by mail.example.test (merpati) with ESMTP id " + qid, mail[0])
        self.assertIn("\nSubject: hello\n\nHello Alice.\nSecond line.\n", mail[0])
        self.assertNotIn("\r", mail[0])
        self.assertTrue(self.srv.wait_log(qid + ": delivered to=<" + ALICE))

    def test_unknown_user(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<x@y.test>")
        code, text = s.cmd("RCPT TO:<nobody@%s>" % DOMAIN)
        self.assertEqual(code, 550)
        self.assertTrue(text[0].startswith("5.1.1"), text)

    def test_relay_refused(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<x@y.test>")
        code, text = s.cmd("RCPT TO:<someone@remote.test>")
        self.assertIn(code, (550, 554))
        self.assertTrue(text[0].startswith("5.7.1"), text)

    def test_sequence_errors(self):
        s = self.session()
        code, text = s.cmd("MAIL FROM:<x@y.test>")
        self.assertEqual(code, 503)
        self.assertTrue(text[0].startswith("5.5.1"))
        s.cmd("EHLO c")
        self.assertEqual(s.cmd("RCPT TO:<%s>" % ALICE)[0], 503)
        self.assertEqual(s.cmd("DATA")[0], 503)
        s.cmd("MAIL FROM:<x@y.test>")
        self.assertEqual(s.cmd("MAIL FROM:<x@y.test>")[0], 503)
        self.assertEqual(s.cmd("DATA")[0], 503)

    def test_unknown_command_and_noop(self):
        s = self.session()
        code, text = s.cmd("FROB nicate")
        self.assertEqual(code, 500)
        self.assertTrue(text[0].startswith("5.5.2"))
        self.assertEqual(s.cmd("NOOP")[0], 250)

    def test_syntax_error(self):
        s = self.session()
        s.cmd("EHLO c")
        code, text = s.cmd("MAIL FROM:bogus")
        self.assertEqual(code, 501)
        self.assertTrue(text[0].startswith("5."))

    def test_rset_and_quit(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<x@y.test>")
        self.assertEqual(s.cmd("RCPT TO:<%s>" % ALICE)[0], 250)
        self.assertEqual(s.cmd("RSET")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 503)
        self.assertEqual(s.cmd("QUIT")[0], 221)

    def test_dot_stuffing_raw(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<dots@y.test>")
        s.cmd("RCPT TO:<%s>" % BOB)
        self.assertEqual(s.cmd("DATA")[0], 354)
        code, text = s.cmd("Subject: dots\r\n\r\n..\r\n...x\r\n..y\r\nend\r\n.")
        self.assertEqual(code, 250)
        qid = text[0].split()[-1]
        mail = [m for m in self.srv.wait_for_mail(BOB) if qid in m]
        self.assertEqual(len(mail), 1)
        self.assertTrue(mail[0].endswith("\n.\n..x\n.y\nend\n"), mail[0][-40:])

    def test_dot_stuffing_smtplib(self):
        s = self.smtp()
        s.sendmail("d2@y.test", [ALICE], "Subject: d2\r\n\r\n.\r\n..x\r\n.y\r\n")
        mail = [m for m in self.srv.wait_for_mail(ALICE) if "Subject: d2" in m]
        self.assertEqual(len(mail), 1)
        self.assertTrue(mail[0].endswith("\n\n.\n..x\n.y\n"), mail[0][-30:])

    def test_multiple_recipients(self):
        s = self.smtp()
        s.sendmail("multi@y.test", [ALICE, BOB], "Subject: both\r\n\r\nfor two\r\n")
        a = [m for m in self.srv.wait_for_mail(ALICE) if "Subject: both" in m]
        b = [m for m in self.srv.wait_for_mail(BOB) if "Subject: both" in m]
        self.assertEqual(len(a), 1)
        self.assertEqual(len(b), 1)
        self.assertIn("Delivered-To: " + ALICE, a[0])
        self.assertIn("Delivered-To: " + BOB, b[0])

    def test_null_sender(self):
        s = self.smtp()
        s.sendmail("<>", [ALICE], "Subject: null sender\r\n\r\nbounce-like\r\n")
        mail = [m for m in self.srv.wait_for_mail(ALICE) if "Subject: null sender" in m]
        self.assertEqual(len(mail), 1)
        self.assertTrue(mail[0].startswith("Return-Path: <>\n"))

    def test_long_command_line(self):
        s = self.session()
        code, text = s.cmd("NOOP " + "x" * 600)
        self.assertEqual(code, 500)
        self.assertTrue(text[0].startswith("5.5.2"))
        self.assertEqual(s.cmd("NOOP")[0], 250)

    def test_message_too_big(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<big@y.test>")
        s.cmd("RCPT TO:<%s>" % BOB)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send(("Subject: big\r\n\r\n" + ("y" * 998 + "\r\n") * 1100))
        code, text = s.cmd(".")
        self.assertEqual(code, 552)
        self.assertTrue(text[0].startswith("5.3.4"))
        self.assertEqual(s.cmd("NOOP")[0], 250)
        self.assertFalse(any("Subject: big" in m for m in
                             [open(p).read() for p in self.srv.mail_files(BOB)]))

    def test_size_parameter_too_big(self):
        s = self.session()
        s.cmd("EHLO c")
        code, text = s.cmd("MAIL FROM:<x@y.test> SIZE=99999999")
        self.assertEqual(code, 552)
        self.assertTrue(text[0].startswith("5.3.4"))

    def test_bare_lf_rejected(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<bare@y.test>")
        s.cmd("RCPT TO:<%s>" % BOB)
        s.cmd("DATA")
        s.send("Subject: bare\r\n\r\na\nb\n.\nstill data\r\n")
        code, text = s.cmd(".")
        self.assertEqual(code, 550)
        self.assertTrue(text[0].startswith("5.6."))
        self.assertEqual(s.cmd("NOOP")[0], 250)

    def test_too_many_recipients(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<x@y.test>")
        for _ in range(100):
            self.assertEqual(s.cmd("RCPT TO:<%s>" % ALICE)[0], 250)
        code, text = s.cmd("RCPT TO:<%s>" % ALICE)
        self.assertEqual(code, 452)
        self.assertTrue(text[0].startswith("4.5.3"))

    def test_concurrent_clients(self):
        errors = []

        def client(n):
            try:
                with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=20) as s:
                    for i in range(5):
                        s.sendmail("c%d@y.test" % n, ["carol@" + DOMAIN],
                                   "Subject: c%d-%d\r\n\r\nbody\r\n" % (n, i))
            except Exception as e:  # collected, asserted below
                errors.append(e)

        self.srv.add_user("carol@" + DOMAIN)
        threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        mails = self.srv.wait_for_mail("carol@" + DOMAIN, 100, timeout=30)
        subjects = {l for m in mails for l in m.split("\n") if l.startswith("Subject: c")}
        self.assertEqual(len(subjects), 100)

    def test_swaks(self):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.srv.port),
                            "--from", "sw@y.test", "--to", ALICE, "--header",
                            "Subject: via swaks", "--body", "swaks body"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mail = [m for m in self.srv.wait_for_mail(ALICE) if "Subject: via swaks" in m]
        self.assertEqual(len(mail), 1)
        self.assertIn("swaks body", mail[0])

    def test_curl(self):
        path = self.srv.dir + "/curl-mail.txt"
        with open(path, "w") as f:
            f.write("Subject: via curl\r\n\r\ncurl body\r\n")
        r = subprocess.run(["curl", "-s", "-S", "smtp://127.0.0.1:%d" % self.srv.port,
                            "--mail-from", "cu@y.test", "--mail-rcpt", BOB, "-T", path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        mail = [m for m in self.srv.wait_for_mail(BOB) if "Subject: via curl" in m]
        self.assertEqual(len(mail), 1)


if __name__ == "__main__":
    unittest.main()
