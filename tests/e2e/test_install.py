"""End to end: `make install DESTDIR=...` gives a server that runs.

The tree is installed with the Debian layout (prefix /usr, sysconfdir
/etc, localstatedir /var) into a temp DESTDIR; the installed merpatid
then starts on the installed config, its paths rebased to DESTDIR by -o
overrides and its listeners moved to loopback, tells a NOTIFY_SOCKET
READY=1, creates the missing Maildir mail root for server.user and
delivers a message sent with smtplib. Also: the installed config is
never overwritten, a directory server.user cannot reach is named with
the fix, the installed unit passes `systemd-analyze verify`, and the man
pages pass `mandoc -T lint`.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO
from installed import InstalledDaemon, wait_for_files

LAYOUT = ["prefix=/usr", "sysconfdir=/etc", "localstatedir=/var"]


def make_install(destdir):
    return subprocess.run(["make", "-s", "-C", REPO, "install", "DESTDIR=" + destdir] + LAYOUT,
                          capture_output=True, text=True, timeout=300)


def root_with_merpati_user():
    if os.geteuid() != 0:
        return "needs root (the daemon starts as root and drops to merpati)"
    try:
        pwd.getpwnam("merpati")
    except KeyError:
        return "needs the merpati user (scripts/install-deps creates it)"
    return None


class InstalledTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="merpati-install-")
        os.chmod(cls.tmp, 0o755)  # server.user must reach the tree
        cls.dest = os.path.join(cls.tmp, "stage")
        r = make_install(cls.dest)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, True)
            raise AssertionError("make install failed:\n" + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def path(self, p):
        return os.path.join(self.dest, p.lstrip("/"))

    def installed_conf(self):
        with open(self.path("/etc/merpati/merpati.conf")) as f:
            return f.read()

    def daemon(self, mail_root):
        d = self.dest
        extra = [
            "server.module_dir=%s/usr/lib/merpati/modules" % d,
            "server.state_dir=%s/var/lib/merpati" % d,
            'modules.auth_sqlite.database="%s/var/lib/merpati/users.db"' % d,
            'modules.deliver_maildir.root="%s"' % mail_root,
            'tls.cert="%s/var/lib/merpati/tls/cert.pem"' % d,
            'tls.key="%s/var/lib/merpati/tls/key.pem"' % d,
            'modules.dns_mx.nameserver="127.0.0.1:9"',
        ]
        return InstalledDaemon([], self.path("/usr/sbin/merpatid"), self.path("/usr/bin/merpati"),
                               self.path("/etc/merpati/merpati.conf"), extra,
                               os.path.join(self.tmp, "merpatid.log"))

    def test_layout(self):
        for p in ("/usr/sbin/merpatid", "/usr/bin/merpati", "/etc/merpati/merpati.conf.example",
                  "/usr/lib/merpati/modules/deliver_maildir/deliver_maildir.so",
                  "/usr/include/merpati/module.h", "/usr/lib/pkgconfig/merpati.pc",
                  "/usr/lib/systemd/system/merpati.service", "/usr/share/man/man8/merpatid.8",
                  "/usr/share/man/man8/merpati.8", "/usr/share/man/man5/merpati.conf.5",
                  "/usr/share/man/man1/sendmail.1", "/usr/share/man/man8/merpati-postdrop.8"):
            self.assertTrue(os.path.isfile(self.path(p)), p)
        self.assertEqual(os.readlink(self.path("/usr/sbin/sendmail")), "../bin/merpati")
        self.assertEqual(os.readlink(self.path("/usr/bin/mailq")), "merpati")
        conf = self.installed_conf()
        for setting in ('module_dir = "/usr/lib/merpati/modules"',
                        'state_dir  = "/var/lib/merpati"', 'root = "/var/mail/vhosts"'):
            self.assertIn(setting, conf)
        self.assertNotIn("@", conf.split("domains")[0].replace("e.g.", ""))

    def test_existing_config_and_dirs_are_kept(self):
        dest = os.path.join(self.tmp, "again")
        os.makedirs(os.path.join(dest, "var/mail"))
        os.chmod(os.path.join(dest, "var/mail"), 0o2775)  # as Debian's /var/mail
        self.assertEqual(make_install(dest).returncode, 0)
        conf = os.path.join(dest, "etc/merpati/merpati.conf")
        with open(conf, "a") as f:
            f.write("# the admin's edit\n")
        r = make_install(dest)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("keeping the existing", r.stdout)
        with open(conf) as f:
            self.assertIn("# the admin's edit", f.read())
        self.assertEqual(os.stat(os.path.join(dest, "var/mail")).st_mode & 0o7777, 0o2775)

    def test_installed_daemon_delivers(self):
        why = root_with_merpati_user()
        if why:
            self.skipTest(why)
        mail_root = self.path("/var/mail/vhosts")
        self.assertFalse(os.path.exists(mail_root))
        d = self.daemon(mail_root)
        d.add_user("alice@localhost")
        try:
            self.assertTrue(d.start(), "no READY=1 on NOTIFY_SOCKET:\n" + d.log())
            st = os.stat(mail_root)
            self.assertEqual(st.st_uid, pwd.getpwnam("merpati").pw_uid,
                             "mail root not given to merpati")
            d.send("alice@localhost", "installed")
            files = wait_for_files(os.path.join(mail_root, "localhost/alice/new"))
            self.assertEqual(len(files), 1, d.log())
            with open(files[0]) as f:
                self.assertIn("Subject: installed", f.read())
        finally:
            self.assertTrue(d.stop(), "no STOPPING=1 or a bad exit:\n" + d.log())

    def locked_dir(self, name):
        """A 0700 root directory that the merpati user cannot search."""
        why = root_with_merpati_user()
        if why:
            self.skipTest(why)
        locked = os.path.join(self.tmp, name)
        os.mkdir(locked, 0o700)
        return locked

    def assert_named(self, r, setting, path, locked):
        """r failed, naming path's blocking directory and the fix."""
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s %s is not reachable by user merpati: %s is mode 0700"
                      % (setting, path, locked), r.stderr)
        self.assertIn("chmod o+x %s" % locked, r.stderr)

    def test_unreachable_mail_root_is_named(self):
        locked = self.locked_dir("srv")
        d = self.daemon(os.path.join(locked, "mail"))
        self.assert_named(d.cli("check-config"), "deliver_maildir.root", locked + "/mail", locked)
        self.assert_named(d.run_once(), "deliver_maildir.root", locked + "/mail", locked)
        self.assertFalse(os.path.exists(os.path.join(locked, "mail")))

    def test_unreachable_state_dir_is_named(self):
        locked = self.locked_dir("locked-state")
        d = self.daemon(self.path("/var/mail/vhosts"))
        d.overrides.append("server.state_dir=%s/merpati" % locked)
        r = d.run_once()
        self.assert_named(r, "server.state_dir", locked + "/merpati", locked)
        self.assertNotIn("cannot scan", r.stderr)

    def test_mail_root_not_made_in_a_directory_the_user_can_write(self):
        # /tmp is sticky and writable by merpati: a missing directory
        # there could be planted by that user first, so root makes none.
        why = root_with_merpati_user()
        if why:
            self.skipTest(why)
        top = os.path.join(tempfile.gettempdir(), "merpati-nocreate-%d" % os.getpid())
        d = self.daemon(os.path.join(top, "mail"))
        try:
            self.assertTrue(d.start(), d.log())
            self.assertFalse(os.path.exists(top))
        finally:
            self.assertTrue(d.stop(), d.log())
            shutil.rmtree(top, True)

    def test_unit_verifies(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze absent (Debian package systemd)")
        unit = self.path("/usr/lib/systemd/system/merpati.service")
        with open(unit) as f:
            text = f.read()
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                     "ExecStart=/usr/sbin/merpatid -c /etc/merpati/merpati.conf -f",
                     "ReadWritePaths=-/var/lib/merpati -/var/mail", "LimitNOFILE="):
            self.assertIn(line, text)
        # verify resolves ExecStart= on this machine: point it at the
        # staged binary, in a copy.
        copy = os.path.join(self.tmp, "merpati.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/sbin/merpatid", self.path("/usr/sbin/merpatid")))
        # Documentation= is checked with man(1): against the staged pages.
        env = dict(os.environ, MANPATH=self.path("/usr/share/man"))
        r = subprocess.run([tool, "verify", copy], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("merpati.service:", r.stderr, r.stderr)


class ManPages(unittest.TestCase):
    def test_mandoc_lint(self):
        tool = shutil.which("mandoc")
        if tool is None:
            self.skipTest("mandoc absent (Debian package mandoc)")
        pages = sorted(glob.glob(os.path.join(REPO, "man", "*.[0-9]")))
        self.assertEqual(len(pages), 5, pages)
        for page in pages:
            r = subprocess.run([tool, "-T", "lint", "-W", "warning", page],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, page + ": " + r.stdout + r.stderr)
            self.assertEqual(r.stdout.strip(), "", r.stdout)


if __name__ == "__main__":
    unittest.main()
