"""End to end: the module SDK (issue 9). merpati is installed into a
DESTDIR, the example filter module is built out of tree against it with
pkg-config, loaded with -o, and its header shows up in delivered mail."""
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from harness import DOMAIN, REPO, Server

ALICE = "alice@" + DOMAIN


class Sdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stage = tempfile.mkdtemp(prefix="merpati-stage-")
        os.chmod(cls.stage, 0o755)
        r = subprocess.run(["make", "-s", "install", "DESTDIR=" + cls.stage],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        cls.build = os.path.join(cls.stage, "example")
        shutil.copytree(os.path.join(REPO, "examples", "modules", "header_stamp"), cls.build)
        env = dict(os.environ,
                   PKG_CONFIG_PATH=os.path.join(cls.stage, "usr/local/lib/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=cls.stage)
        cls.make = subprocess.run(["make"], cwd=cls.build, env=env, capture_output=True,
                                  text=True, timeout=120)
        cls.so = os.path.join(cls.build, "header_stamp.so")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stage, ignore_errors=True)

    def test_installed_layout(self):
        for path in ("usr/local/sbin/merpatid", "usr/local/bin/merpati",
                     "usr/local/include/merpati/module.h", "usr/local/include/merpati/filter.h",
                     "usr/local/lib/pkgconfig/merpati.pc",
                     "usr/local/lib/merpati/modules/deliver_maildir/deliver_maildir.so"):
            self.assertTrue(os.path.exists(os.path.join(self.stage, path)), path)
        self.assertEqual(os.readlink(os.path.join(self.stage, "usr/local/sbin/sendmail")),
                         "../bin/merpati")

    def test_example_builds_with_pkg_config(self):
        self.assertEqual(self.make.returncode, 0, self.make.stdout + self.make.stderr)
        self.assertIn("-I" + self.stage + "/usr/local/include", self.make.stdout)
        nm = subprocess.run(["nm", "-D", "--defined-only", self.so], capture_output=True,
                            text=True)
        exported = [l.split()[-1] for l in nm.stdout.splitlines() if not l.split()[-1].startswith("_")]
        self.assertEqual(exported, ["merpati_module"])

    def start(self, options):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.start('modules.header_stamp={ path = "%s"; %s }' % (self.so, options))
        return srv

    def test_header_added(self):
        srv = self.start('text = "stamped by the example";')
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("x@y.test", [ALICE], "Subject: stamp me\r\n\r\nbody\r\n")
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("\nX-Stamp: stamped by the example\n", mail)
        self.assertLess(mail.index("X-Stamp:"), mail.index("Subject: stamp me"))

    def test_filter_rejects(self):
        srv = self.start('text = "t"; refuse = "FORBIDDEN";')
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail("x@y.test", [ALICE], "Subject: no\r\n\r\nFORBIDDEN word\r\n")
            self.assertEqual(cm.exception.smtp_code, 554)
            self.assertIn(b"5.7.1", cm.exception.smtp_error)
            s.sendmail("x@y.test", [ALICE], "Subject: fine\r\n\r\nallowed\r\n")
        mails = srv.wait_for_mail(ALICE)
        self.assertEqual(len(mails), 1)
        self.assertIn("Subject: fine", mails[0])
        self.assertEqual(srv.queue_files(), [])

    def test_missing_required_option(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        rc = srv.start('modules.header_stamp={ path = "%s"; }' % self.so, expect_fail=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("modules.header_stamp.text: required", srv.log())


if __name__ == "__main__":
    unittest.main()
