"""End to end: the admin CLI, config checks, loader refusals, and a
restarted daemon resuming its queue (issue 2)."""
import os
import re
import smtplib
import time
import unittest

from harness import DOMAIN, REPO, Server

ALICE = "alice@" + DOMAIN


class Users(unittest.TestCase):
    def setUp(self):
        self.srv = Server()
        self.addCleanup(self.srv.cleanup)

    def test_user_commands(self):
        self.srv.add_user("zed@" + DOMAIN, "pw1")
        self.srv.add_user(ALICE, "pw2")
        r = self.srv.cli("user", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), [ALICE, "zed@" + DOMAIN])
        r = self.srv.cli("user", "add", ALICE, input="other\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr)
        r = self.srv.cli("user", "passwd", ALICE, input="newpw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.srv.cli("user", "del", "zed@" + DOMAIN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.srv.cli("user", "list").stdout.split(), [ALICE])
        r = self.srv.cli("user", "del", "zed@" + DOMAIN)
        self.assertNotEqual(r.returncode, 0)

    def test_password_is_hashed(self):
        self.srv.add_user(ALICE, "Sup3rSecretPassw0rd")
        with open(os.path.join(self.srv.state, "users.db"), "rb") as f:
            data = f.read()
        self.assertNotIn(b"Sup3rSecretPassw0rd", data)
        self.assertTrue(b"$y$" in data or b"$6$" in data)
        st = os.stat(os.path.join(self.srv.state, "users.db"))
        self.assertEqual(st.st_mode & 0o077, 0)

    def test_bad_address_refused(self):
        r = self.srv.cli("user", "add", "no-at-sign", input="pw\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("malformed", r.stderr)


class UsersWhileRunning(unittest.TestCase):
    """The daemon's lookups see what `merpati user` changes while it runs
    (auth_sqlite keeps its lookup compiled: it must still read the file
    as it is now)."""

    def setUp(self):
        self.srv = Server()
        self.addCleanup(self.srv.cleanup)
        self.srv.add_user("first@" + DOMAIN, "pw")
        self.srv.start()

    def rcpt(self, address):
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("from@client.test")
            return s.rcpt(address)[0]

    def test_added_then_deleted_user(self):
        bob = "bob@" + DOMAIN
        self.assertEqual(self.rcpt(bob), 550)
        r = self.srv.cli("user", "add", bob, input="pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.rcpt(bob), 250)
        r = self.srv.cli("user", "del", bob)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.rcpt(bob), 550)
        self.assertEqual(self.rcpt("first@" + DOMAIN), 250)


class Config(unittest.TestCase):
    def setUp(self):
        self.srv = Server()
        self.addCleanup(self.srv.cleanup)

    def test_check_config_ok(self):
        r = self.srv.cli("check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_syntax_error_named(self):
        with open(self.srv.conf, "a") as f:
            f.write("\nbroken = { oops\n")
        r = self.srv.cli("check-config")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, re.escape(self.srv.conf) + r":\d+: config syntax error")

    def test_missing_module_named(self):
        r = self.srv.cli("-o", "modules.nosuch={ }", "check-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn("module nosuch", r.stderr)
        self.assertIn("No such file", r.stderr)

    def test_unknown_module_option_named(self):
        r = self.srv.cli("-o", "modules.deliver_maildir.bogus=1", "check-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn("modules.deliver_maildir.bogus", r.stderr)

    def test_every_problem_reported(self):
        r = self.srv.cli("-o", "modules.deliver_maildir.bogus=1", "-o", "limits.recipients=0",
                         "-o", "whatever.x=1", "check-config")
        self.assertEqual(r.returncode, 1)
        for text in ("limits.recipients", "whatever", "bogus"):
            self.assertIn(text, r.stderr)

    def test_sync_modes_checked(self):
        r = self.srv.cli("-o", 'queue.sync="sometimes"', "-o",
                         'modules.deliver_maildir.sync="never"', "check-config")
        self.assertEqual(r.returncode, 1)
        self.assertIn('queue.sync: "sometimes" is not group or file', r.stderr)
        self.assertIn("sync must be", r.stderr)
        r = self.srv.cli("-o", 'queue.sync="file"', "-o", 'modules.deliver_maildir.sync="file"',
                         "check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_port_override(self):
        from harness import free_port, wait_port
        port = free_port()
        self.srv.port = port
        self.srv.start("listen.smtp.port=%d" % port)
        self.assertTrue(wait_port(port))

    def test_missing_config_file(self):
        import subprocess
        from harness import MERPATID
        r = subprocess.run([MERPATID, "-c", "/nonexistent/merpati.conf", "-f"],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/merpati.conf", r.stderr)
        self.assertIn("No such file", r.stderr)


class LoaderRefusals(unittest.TestCase):
    def refused(self, override, reason, path):
        srv = Server()
        self.addCleanup(srv.cleanup)
        rc = srv.start(override, expect_fail=True)
        self.assertNotEqual(rc, 0)
        lines = [l for l in srv.log().splitlines() if reason in l]
        self.assertTrue(lines, srv.log())
        self.assertIn(path, lines[0])
        return lines[0]

    def test_missing_file(self):
        line = self.refused('modules.ghost={ path = "/nonexistent/ghost.so"; }',
                            "No such file", "/nonexistent/ghost.so")
        self.assertIn("module ghost", line)

    def test_not_elf(self):
        path = os.path.join(REPO, "tests", "e2e", "harness.py")
        line = self.refused('modules.text={ path = "%s"; }' % path, "not an ELF", path)
        self.assertIn("module text", line)

    def test_missing_symbol(self):
        path = os.path.join(REPO, "tests", "modules", "no_symbol.so")
        line = self.refused('modules.no_symbol={ path = "%s"; }' % path, "merpati_module", path)
        self.assertIn("module no_symbol", line)

    def test_wrong_abi(self):
        path = os.path.join(REPO, "tests", "modules", "bad_abi.so")
        line = self.refused('modules.bad_abi={ path = "%s"; }' % path, "ABI", path)
        self.assertIn("module bad_abi", line)

    def test_init_fails(self):
        path = os.path.join(REPO, "tests", "modules", "init_fails.so")
        line = self.refused('modules.init_fails={ path = "%s"; }' % path,
                            "refusing on purpose", path)
        self.assertIn("module init_fails", line)


class QueueResume(unittest.TestCase):
    def test_restart_resumes_queue(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        blocker = os.path.join(srv.dir, "notadir")
        with open(blocker, "w") as f:
            f.write("a file where a directory should be\n")
        srv.start('modules.deliver_maildir.root="%s"' % blocker)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("c")
            s.mail("r@y.test")
            s.rcpt(ALICE)
            code, text = s.data(b"Subject: resume me\r\n\r\nqueued\r\n")
        self.assertEqual(code, 250)
        qid = re.search(r"queued as ([0-9A-F]+)", text.decode()).group(1)
        self.assertTrue(srv.wait_log(qid + ": deferred"), srv.log())
        self.assertIn(qid, srv.queue_files())
        r = srv.cli("queue", "list")
        self.assertIn(qid, r.stdout)
        self.assertIn(ALICE, r.stdout)
        self.assertEqual(srv.stop(), 0)
        self.assertIn(qid, srv.queue_files())
        srv.start()
        r = srv.cli("queue", "flush")
        self.assertEqual(r.returncode, 0, r.stderr)
        mail = [m for m in srv.wait_for_mail(ALICE) if qid in m]
        self.assertEqual(len(mail), 1)
        deadline = time.time() + 10
        while qid in srv.queue_files() and time.time() < deadline:
            time.sleep(0.05)
        self.assertNotIn(qid, srv.cli("queue", "list").stdout)

    def test_sendmail_while_stopped(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        r = srv.cli("sendmail", "-f", "cron@y.test", ALICE,
                    input="Subject: from sendmail\n\nlocal submission\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(srv.queue_files()), 1)
        srv.start()
        mail = srv.wait_for_mail(ALICE)
        self.assertIn("Subject: from sendmail", mail[0])
        self.assertIn("Return-Path: <cron@y.test>", mail[0])


if __name__ == "__main__":
    unittest.main()
