"""End to end: the spf and dmarc modules load with no settings (safe
defaults: record, reject nothing), refuse unknown settings by name, and a
daemon running them without a resolver still accepts and delivers mail
(their checks against real DNS are in test_mail_auth.py)."""
import smtplib
import unittest

from harness import DOMAIN, Server

ALICE = "alice@" + DOMAIN


class SpfDmarcModules(unittest.TestCase):
    def setUp(self):
        self.srv = Server(modules={"spf": "", "dmarc": ""})
        self.addCleanup(self.srv.cleanup)

    def test_load_with_no_settings(self):
        r = self.srv.cli("check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_unknown_settings_named(self):
        r = self.srv.cli("-o", "modules.spf.bogus=1", "-o", "modules.dmarc.other=2", "check-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn("modules.spf.bogus", r.stderr)
        self.assertIn("modules.dmarc.other", r.stderr)

    def test_missing_suffix_list_is_a_warning(self):
        r = self.srv.cli("-o", 'modules.dmarc.public_suffix_list="/nonexistent/psl.dat"',
                         "check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("relaxed alignment becomes strict", r.stderr + r.stdout)

    def test_mail_still_delivered(self):
        self.srv.add_user(ALICE)
        self.srv.start()
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.sendmail("bob@elsewhere.test", [ALICE], "Subject: hi\r\n\r\nbody\r\n")
        self.srv.wait_for_mail(ALICE)


if __name__ == "__main__":
    unittest.main()
