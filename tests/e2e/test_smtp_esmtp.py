"""End to end: ESMTP, TLS, AUTH, relay control and limits (issue 3)."""
import base64
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from harness import DOMAIN, Server, Session

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
TLS = ssl._create_unverified_context()


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


class Esmtp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners={
            "submission": 'auth = "required";',
            "smtps": 'tls = "implicit"; auth = "required";',
        })
        cls.addClassCleanup(cls.srv.cleanup)  # even if setUpClass fails
        cls.srv.add_user(ALICE, "alicepw")
        cls.srv.add_user(BOB, "bobpw")
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def session(self, listener="smtp"):
        s = Session(self.srv.ports[listener])
        self.addCleanup(s.close)
        self.assertEqual(s.reply()[0], 220)
        return s

    def submission(self):
        s = smtplib.SMTP("127.0.0.1", self.srv.ports["submission"], timeout=15)
        self.addCleanup(s.close)
        s.ehlo("client.example")
        s.starttls(context=TLS)
        s.ehlo("client.example")
        return s

    def test_auth_only_after_tls(self):
        s = self.session("submission")
        code, lines = s.cmd("EHLO c")
        self.assertIn("STARTTLS", lines)
        self.assertFalse(any(l.startswith("AUTH") for l in lines))
        code, text = s.cmd("AUTH PLAIN " + plain(ALICE, "alicepw"))
        self.assertEqual(code, 538)
        self.assertTrue(text[0].startswith("5.7.11"))

    def test_submission_requires_auth(self):
        s = self.submission()
        code, text = s.docmd("MAIL FROM:<%s>" % ALICE)
        self.assertEqual(code, 530)
        self.assertTrue(text.startswith(b"5.7.0"))

    def test_starttls_auth_relay(self):
        s = self.submission()
        self.assertIn("auth", s.esmtp_features)
        self.assertNotIn("starttls", s.esmtp_features)
        s.login(ALICE, "alicepw")
        refused = s.sendmail(ALICE, ["someone@remote.test", BOB],
                             "Subject: relayed\r\n\r\nvia submission\r\n")
        self.assertEqual(refused, {})
        mail = [m for m in self.srv.wait_for_mail(BOB) if "Subject: relayed" in m]
        self.assertEqual(len(mail), 1)
        self.assertIn("with ESMTPSA", mail[0])
        self.assertRegex(mail[0], r"\(using TLSv1\.[23] with cipher ")
        self.assertIn("(Authenticated sender: %s)" % ALICE, mail[0])
        self.assertTrue(self.srv.wait_log("TLS established"))

    def test_wrong_password(self):
        s = self.submission()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login(ALICE, "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.7.8"))

    def test_auth_guessing_cut_off(self):
        s = Session(self.srv.ports["submission"])
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        self.assertEqual(s.cmd("STARTTLS")[0], 220)
        s.sock = TLS.wrap_socket(s.sock)
        s.buf = b""
        s.cmd("EHLO c")
        codes = []
        for i in range(3):
            codes.append(s.cmd("AUTH PLAIN " + plain(ALICE, "guess%d" % i))[0])
        self.assertEqual(codes, [535, 535, 535])
        self.assertEqual(s.reply()[0], 421)
        with self.assertRaises((EOFError, OSError)):
            s.cmd("NOOP")

    def test_sender_must_be_own(self):
        s = self.submission()
        s.login(ALICE, "alicepw")
        code, text = s.docmd("MAIL FROM:<%s>" % BOB)
        self.assertEqual(code, 553)
        self.assertTrue(text.startswith(b"5.7.1"))

    def test_smtps_implicit_tls_and_login(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.srv.ports["smtps"], context=TLS, timeout=15)
        self.addCleanup(s.close)
        s.ehlo("c")
        s.login(BOB, "bobpw")  # smtplib prefers CRAM-MD5, then PLAIN, then LOGIN
        s.sendmail(BOB, [ALICE], "Subject: over smtps\r\n\r\nimplicit\r\n")
        mail = [m for m in self.srv.wait_for_mail(ALICE) if "Subject: over smtps" in m]
        self.assertEqual(len(mail), 1)

    def test_auth_login_mechanism(self):
        s = self.session("smtps") if False else None
        s = Session(self.srv.ports["smtps"])
        s.sock = TLS.wrap_socket(s.sock)
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        self.assertEqual(s.cmd("AUTH LOGIN")[0], 334)
        self.assertEqual(s.cmd(base64.b64encode(BOB.encode()).decode())[0], 334)
        self.assertEqual(s.cmd(base64.b64encode(b"bobpw").decode())[0], 235)

    def test_tls_versions(self):
        def s_client(version):
            return subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.srv.port,
                 "-starttls", "smtp", version], input="QUIT\n",
                capture_output=True, text=True, timeout=20)
        good = s_client("-tls1_2")
        self.assertIn("Protocol  : TLSv1.2", good.stdout)
        self.assertRegex(good.stdout, r"Cipher is ECDHE-")
        old = s_client("-tls1_1")
        self.assertIn("Cipher is (NONE)", old.stdout)  # handshake refused
        self.assertNotEqual(old.returncode, 0)

    def test_starttls_discards_pipelined_plaintext(self):
        s = Session(self.srv.port)
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        s.send("STARTTLS\r\nRSET\r\n")
        self.assertEqual(s.reply()[0], 220)
        s.sock = TLS.wrap_socket(s.sock)
        s.buf = b""
        code, lines = s.cmd("EHLO again")
        self.assertEqual(code, 250)
        self.assertEqual(lines[0], "mail.example.test")

    def test_relay_refused_without_auth(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<x@y.test>")
        code, text = s.cmd("RCPT TO:<victim@remote.test>")
        self.assertEqual(code, 554)
        self.assertTrue(text[0].startswith("5.7.1"))

    def test_bdat(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<chunks@y.test>")
        s.cmd("RCPT TO:<%s>" % BOB)
        part1 = b"Subject: chunked\r\n\r\nfirst part, "
        part2 = b"second part\r\n.not stuffed\r\n"
        s.send(b"BDAT %d\r\n" % len(part1) + part1)
        self.assertEqual(s.reply()[0], 250)
        s.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, text = s.reply()
        self.assertEqual(code, 250)
        qid = text[0].split()[-1]
        mail = [m for m in self.srv.wait_for_mail(BOB) if qid in m]
        self.assertEqual(len(mail), 1)
        self.assertTrue(mail[0].endswith("Subject: chunked\n\nfirst part, second part\n.not stuffed\n"))

    def test_bdat_refused_stays_in_sync(self):
        s = self.session()
        s.cmd("EHLO c")
        s.send(b"BDAT 10 LAST\r\n0123456789")
        self.assertEqual(s.reply()[0], 503)
        self.assertEqual(s.cmd("NOOP")[0], 250)

    def smuggle(self, ending):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<smuggler@y.test>")
        s.cmd("RCPT TO:<%s>" % BOB)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: outer\r\n\r\nhello" + ending +
               "MAIL FROM:<evil@y.test>\r\nRCPT TO:<%s>\r\nDATA\r\n"
               "Subject: smuggled\r\n\r\ninner\r\n.\r\n" % BOB)
        replies = [s.reply()[0]]
        s.sock.settimeout(1.0)
        try:
            while True:
                replies.append(s.reply()[0])
        except (socket.timeout, EOFError, OSError):
            pass
        return replies

    def test_smuggling_never_makes_a_second_message(self):
        for ending in ("\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r"):
            replies = self.smuggle(ending)
            self.assertEqual(replies, [550], "ending %r: %r" % (ending, replies))
        time.sleep(0.5)
        for path in self.srv.mail_files(BOB):
            with open(path) as f:
                self.assertNotIn("smuggled", f.read())

    def test_twenty_pipelined_transactions(self):
        self.srv.add_user("pipe@" + DOMAIN)
        s = self.session()
        self.assertIn("PIPELINING", s.cmd("EHLO c")[1])
        batch = ""
        for i in range(20):
            batch += ("MAIL FROM:<p@y.test>\r\nRCPT TO:<pipe@%s>\r\nDATA\r\n"
                      "Subject: pipe %d\r\n\r\nbody\r\n.\r\n" % (DOMAIN, i))
        s.send(batch)
        codes = [s.reply()[0] for _ in range(80)]
        self.assertEqual(codes, [250, 250, 354, 250] * 20)
        mails = self.srv.wait_for_mail("pipe@" + DOMAIN, 20)
        self.assertEqual(len(mails), 20)

    def test_long_text_line(self):
        s = self.session()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<long@y.test>")
        s.cmd("RCPT TO:<%s>" % BOB)
        s.cmd("DATA")
        s.send("Subject: long\r\n\r\n" + "z" * 1200 + "\r\n")
        code, text = s.cmd(".")
        self.assertEqual(code, 552)
        self.assertEqual(s.cmd("MAIL FROM:<ok@y.test>")[0], 250)

    def test_dsn_parameters(self):
        s = self.session()
        s.cmd("EHLO c")
        self.assertEqual(s.cmd("MAIL FROM:<d@y.test> RET=HDRS ENVID=abc+2Bdef")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;%s"
                               % (BOB, BOB))[0], 250)
        code, text = s.cmd("RCPT TO:<%s> NOTIFY=SOMETIMES" % BOB)
        self.assertEqual(code, 555)
        code, text = s.cmd("MAIL FROM:<d@y.test> RET=EVERYTHING")
        self.assertEqual(code, 503)  # nested MAIL is checked first

    def test_vrfy_expn_help(self):
        s = self.session()
        self.assertEqual(s.cmd("VRFY alice")[0], 252)
        self.assertEqual(s.cmd("EXPN staff")[0], 502)
        self.assertEqual(s.cmd("HELP")[0], 214)

    def test_too_many_errors(self):
        s = self.session()
        for _ in range(9):
            self.assertEqual(s.cmd("BOGUS")[0], 500)
        code, _ = s.cmd("BOGUS")
        self.assertEqual(code, 500)
        self.assertEqual(s.reply()[0], 421)

    def test_runs_as_unprivileged_user(self):
        if os.geteuid() != 0:
            self.skipTest("only meaningful when started as root")
        with open("/proc/%d/status" % self.srv.proc.pid) as f:
            uid_line = [l for l in f if l.startswith("Uid:")][0]
        import pwd
        self.assertEqual(int(uid_line.split()[1]), pwd.getpwnam("merpati").pw_uid)


class Limits(unittest.TestCase):
    def test_relay_networks(self):
        srv = Server(extra_config='relay_networks = [ "127.0.0.0/8" ];')
        self.addCleanup(srv.cleanup)
        srv.start()
        s = Session(srv.port)
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<x@y.test>")
        self.assertEqual(s.cmd("RCPT TO:<friend@remote.test>")[0], 250)

    def test_connections_per_ip(self):
        srv = Server(extra_config="")
        self.addCleanup(srv.cleanup)
        srv.start("limits.connections_per_ip=3")
        time.sleep(0.5)  # let the start-up probe's session end
        held = []
        for _ in range(3):
            s = Session(srv.port)
            held.append(s)
            self.assertEqual(s.reply()[0], 220)
        extra = Session(srv.port)
        code, text = extra.reply()
        self.assertEqual(code, 421)
        self.assertTrue(text[0].startswith("4.7.0"))
        for s in held + [extra]:
            s.close()

    def test_total_connections(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.start("limits.connections=2")
        time.sleep(0.5)  # let the start-up probe's session end
        held = [Session(srv.port), Session(srv.port)]
        for h in held:
            self.assertEqual(h.reply()[0], 220)
        extra = Session(srv.port)
        self.assertEqual(extra.reply()[0], 421)
        for h in held + [extra]:
            h.close()

    def test_plaintext_auth_on_loopback_when_allowed(self):
        srv = Server(listeners={"submission": 'auth = "required"; plaintext_auth = true;'})
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as s:
            s.ehlo("c")
            self.assertIn("auth", s.esmtp_features)
            s.login(ALICE, "pw")

    def test_command_timeout(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.start('limits.command_timeout="1s"')
        s = Session(srv.port)
        self.addCleanup(s.close)
        s.reply()
        start = time.time()
        code, text = s.reply()
        self.assertEqual(code, 421)
        self.assertTrue(text[0].startswith("4.4.2"))
        self.assertLess(time.time() - start, 5)

    def test_bare_eol_normalize_option(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.start('smtp.bare_eol="normalize"')
        s = Session(srv.port)
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        s.cmd("MAIL FROM:<n@y.test>")
        s.cmd("RCPT TO:<%s>" % ALICE)
        s.cmd("DATA")
        s.send("Subject: norm\r\n\r\na\nb\r\n")
        self.assertEqual(s.cmd(".")[0], 250)
        mail = srv.wait_for_mail(ALICE)
        self.assertTrue(mail[0].endswith("\na\nb\n"))


if __name__ == "__main__":
    unittest.main()
