"""tests/e2e/test_dnsbl.py - the dnsbl module in a running merpatid, with
a dnsmasq on loopback answering for the blocklists.

The daemon listens on 127.0.0.1; each client connects from its own
127.0.0.x source address, which the lists below list or not:
  zen.example   weight 2, codes 127.0.0.2/127.0.0.3: lists .2 (127.0.0.2),
                .5 (127.0.0.10, a code that does not count) and .6
  bl1.example   weight 1, any 127.0.0.x: lists .3 and .4
  bl2.example   weight 1, any 127.0.0.x: lists .3
  dbl.example   a domain list: lists the sender domain spammy.test
with threshold 2: .2 alone crosses it, .3 by the weighted pair, .4 (score
1) and .5 do not; .6 is listed but allow-listed by CIDR. On the
submission listener a listed client is judged at MAIL FROM, and passes
when authenticated. A second daemon only adds a header. After each test
the daemons' logs must hold no sanitizer report.
"""
import os
import shutil
import smtplib
import tempfile
import unittest

from dns import DNSMASQ, Dnsmasq
from harness import Server, quote

USER = "rcpt@example.test"
AUTHED = "alice@example.test"

LISTS = ('lists = ( { zone = "zen.example"; weight = 2; codes = [ "127.0.0.2", "127.0.0.3" ]; },'
         ' { zone = "bl1.example"; weight = 1; },'
         ' { zone = "bl2.example"; weight = 1; },'
         ' { zone = "dbl.example"; type = "domain"; weight = 2; } );')


def dnsmasq_records():
    records = ["--auth-zone=%s" % z for z in
               ("zen.example", "bl1.example", "bl2.example", "dbl.example")]
    listed = [("2.0.0.127.zen.example", "127.0.0.2"),
              ("5.0.0.127.zen.example", "127.0.0.10"),
              ("6.0.0.127.zen.example", "127.0.0.2"),
              ("3.0.0.127.bl1.example", "127.0.0.2"),
              ("4.0.0.127.bl1.example", "127.0.0.2"),
              ("3.0.0.127.bl2.example", "127.0.0.4"),
              ("spammy.test.dbl.example", "127.0.1.2")]
    return records + ["--host-record=%s,%s" % pair for pair in listed]


@unittest.skipUnless(os.path.exists(DNSMASQ), "dnsmasq is not installed")
class Dnsbl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="merpati-dnsbl-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.dns = Dnsmasq(dnsmasq_records(), cls.tmp)
        cls.addClassCleanup(cls.dns.stop)
        resolver = 'nameserver = "%s"; timeout = "2s";' % cls.dns.address
        cls.srv = Server(
            listeners={"submission": 'auth = "optional"; plaintext_auth = true;'},
            modules={"dns_mx": resolver,
                     "dnsbl": 'threshold = 2; allow = [ "127.0.0.6/32" ]; ' + LISTS})
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.add_user(USER, "pw")
        cls.srv.add_user(AUTHED, "pw")
        cls.srv.start()
        cls.hdr = Server(modules={"dns_mx": resolver,
                                  "dnsbl": 'threshold = 2; action = "header"; ' + LISTS})
        cls.addClassCleanup(cls.hdr.cleanup)
        cls.hdr.add_user(USER, "pw")
        cls.hdr.start()

    def tearDown(self):
        # SANITIZE=1 builds report to stderr, which is the daemon's log
        for srv in (self.srv, self.hdr):
            log = srv.log()
            self.assertNotRegex(log, "Sanitizer|runtime error:", log[-3000:])

    def connect(self, source, server=None, listener="smtp"):
        server = server or self.srv
        return smtplib.SMTP("127.0.0.1", server.ports[listener], timeout=15,
                            source_address=(source, 0))

    def refused_at_connect(self, source):
        with self.assertRaises(smtplib.SMTPConnectError) as cm:
            self.connect(source)
        return cm.exception.smtp_code, cm.exception.smtp_error.decode()

    def send(self, source, subject, sender="someone@sender.test", server=None):
        with self.connect(source, server) as s:
            s.sendmail(sender, [USER], "Subject: %s\r\n\r\nhello\r\n" % subject)

    def test_listed_client_refused_at_connect(self):
        code, text = self.refused_at_connect("127.0.0.2")
        self.assertEqual(code, 554)
        self.assertIn("5.7.1", text)
        self.assertIn("zen.example (127.0.0.2)", text)
        self.assertIn("[127.0.0.2]", text)

    def test_unlisted_client_passes(self):
        self.send("127.0.0.9", "from an unlisted client")
        self.assertTrue(self.srv.mails_with(USER, "Subject: from an unlisted client"))

    def test_weighted_pair_crosses_threshold(self):
        code, text = self.refused_at_connect("127.0.0.3")
        self.assertEqual(code, 554)
        self.assertIn("bl1.example (127.0.0.2)", text)
        self.assertIn("bl2.example (127.0.0.4)", text)
        self.assertNotIn("zen.example", text)

    def test_one_light_list_stays_below_threshold(self):
        self.send("127.0.0.4", "score one")
        self.assertTrue(self.srv.mails_with(USER, "Subject: score one"))

    def test_code_not_in_the_list_codes_does_not_count(self):
        self.send("127.0.0.5", "code 127.0.0.10")
        self.assertTrue(self.srv.mails_with(USER, "Subject: code 127.0.0.10"))

    def test_allow_listed_client_passes(self):
        self.send("127.0.0.6", "allow-listed")
        self.assertTrue(self.srv.mails_with(USER, "Subject: allow-listed"))

    def test_sender_domain_list_refuses_at_mail_from(self):
        with self.connect("127.0.0.9") as s:
            s.ehlo()
            code, text = s.mail("bad@Spammy.test")
            self.assertEqual(code, 554)
            self.assertIn(b"dbl.example (127.0.1.2)", text)
            s.rset()
            self.assertEqual(s.mail("good@clean.test")[0], 250)

    def test_submission_listed_client_judged_at_mail_from(self):
        with self.connect("127.0.0.2", listener="submission") as s:
            s.ehlo()
            code, text = s.mail("someone@sender.test")
            self.assertEqual(code, 554)
            self.assertIn(b"zen.example", text)

    def test_submission_authenticated_user_exempt(self):
        with self.connect("127.0.0.2", listener="submission") as s:
            s.login(AUTHED, "pw")
            s.sendmail(AUTHED, [USER], "Subject: authenticated from a listed client\r\n\r\nhi\r\n")
        self.assertTrue(self.srv.mails_with(USER, "Subject: authenticated from a listed client"))

    def test_header_mode_adds_header(self):
        self.send("127.0.0.2", "header mode", server=self.hdr)
        mails = self.hdr.mails_with(USER, "Subject: header mode")
        self.assertEqual(len(mails), 1)
        header = [l for l in mails[0].split("\n") if l.startswith("X-DNSBL:")]
        self.assertEqual(len(header), 1, mails[0])
        self.assertIn("zen.example (127.0.0.2)", header[0])
        self.assertIn("score=2", header[0])

    def test_header_mode_leaves_clean_mail_alone(self):
        self.send("127.0.0.9", "clean in header mode", server=self.hdr)
        mails = self.hdr.mails_with(USER, "Subject: clean in header mode")
        self.assertEqual(len(mails), 1)
        self.assertNotIn("X-DNSBL:", mails[0])


if __name__ == "__main__":
    unittest.main()
