"""End to end: sendmail(1) as Unix programs call it (issue 19).

mutt's and s-nail's own sendmail invocations, a cron-style
`echo body | sendmail root`, `sendmail -bs` speaking SMTP on stdio,
folded -t recipients, -bp, and submission by a user other than root
(`nobody`) through the setgid merpati-postdrop and the daemon's
maildrop, including drop files that are hostile. The tests run as root
(as CI does) and use setpriv to become nobody; without root they are
skipped with the reason printed."""
import os
import shutil
import subprocess
import time
import unittest

from harness import DOMAIN, MERPATI, REPO, Server

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
ROOT = "root@" + DOMAIN
POSTDROP = os.path.join(REPO, "core", "merpati-postdrop")
DROP_GROUP = "merpatidrop"


def is_root():
    return os.geteuid() == 0


def ensure_drop_group():
    """The group merpati-postdrop is setgid to (install-deps and the
    package create it; a developer run as root gets it here)."""
    if subprocess.run(["getent", "group", DROP_GROUP], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", DROP_GROUP], check=True)


class SendmailServer(Server):
    """A Server with a `sendmail` link to merpati beside its config (so
    argv[0] is "sendmail", as programs run it) and a setgid copy of
    merpati-postdrop."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sendmail = os.path.join(self.dir, "sendmail")
        os.symlink(MERPATI, self.sendmail)
        self.postdrop = os.path.join(self.dir, "merpati-postdrop")
        shutil.copy(POSTDROP, self.postdrop)
        if is_root():
            ensure_drop_group()
            shutil.chown(self.postdrop, group=DROP_GROUP)
            os.chmod(self.postdrop, 0o2755)
        self.env = dict(os.environ, MERPATI_CONFIG=self.conf, MERPATI_POSTDROP=self.postdrop)

    def run(self, *args, input="", user=None, timeout=20):
        cmd = [self.sendmail] + list(args)
        if user:
            cmd = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups"] + cmd
        return subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, env=self.env)

    def drop_dir(self):
        return os.path.join(self.state, "maildrop")


def new_server(test, start=True, users=(ALICE,)):
    if not is_root():
        raise unittest.SkipTest("sendmail tests need root (to start merpatid and become nobody)")
    srv = SendmailServer()
    test.addCleanup(srv.cleanup)
    for u in users:
        srv.add_user(u)
    if start:
        srv.start()
    return srv


class Programs(unittest.TestCase):
    def test_mutt_default_invocation(self):
        srv = new_server(self)
        rc = os.path.join(srv.dir, "muttrc")
        with open(rc, "w") as f:
            f.write('set sendmail = "%s"\nset from = "mutt-user@y.test"\nset use_from = yes\n'
                    'set hostname = "y.test"\nset copy = no\nset record = ""\n' % srv.sendmail)
        r = subprocess.run(["mutt", "-n", "-F", rc, "-s", "from mutt", ALICE],
                           input="sent by mutt in batch mode\n", capture_output=True, text=True,
                           timeout=30, env=dict(srv.env, HOME=srv.dir))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("Subject: from mutt", mail)
        self.assertIn("sent by mutt in batch mode", mail)
        self.assertIn("Received: by mail.example.test (merpati sendmail, from userid root (uid 0))",
                      mail)

    def test_s_nail(self):
        if shutil.which("s-nail") is None:
            self.skipTest("s-nail is not installed (scripts/install-deps installs it)")
        srv = new_server(self)
        r = subprocess.run(["s-nail", "-:/", "-S", "mta=" + srv.sendmail, "-S",
                            "from=snail@y.test", "-s", "from s-nail", ALICE],
                           input="sent by s-nail\n", capture_output=True, text=True, timeout=30,
                           env=dict(srv.env, HOME=srv.dir))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("Subject: from s-nail", mail)
        self.assertIn("From: snail@y.test", mail)
        self.assertIn("Return-Path: <root@%s>" % DOMAIN, mail)  # the real uid, no -f

    def test_cron_style_to_root(self):
        srv = new_server(self, users=(ROOT,))
        # `echo body | sendmail root`: silent, sender root@ the first domain
        r = srv.run("root", input="body from cron\n")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        # Debian cron's own command line
        r = srv.run("-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-oi", "root",
                    input="Subject: Cron <root@host> true\n\noutput\n.\nmore\n")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        mails = srv.wait_for_mail(ROOT, 2)
        plain = [m for m in mails if "body from cron" in m][0]
        self.assertIn("Return-Path: <root@%s>" % DOMAIN, plain)
        self.assertIn("From: \"root\" <root@%s>" % DOMAIN, plain)
        cron = [m for m in mails if "Cron <root@host>" in m][0]
        self.assertIn("From: \"CronDaemon\" <root@%s>" % DOMAIN, cron)
        self.assertIn("\n.\nmore", cron)  # -i: a lone "." is text

    def test_usage_errors_exit_64(self):
        srv = new_server(self, start=False)
        for args in (["-Z", ALICE], ["-bd"], ["-N", "sometimes", ALICE], []):
            r = srv.run(*args, input="x\n")
            self.assertEqual(r.returncode, 64, (args, r.stderr))
            self.assertTrue(r.stderr.startswith("sendmail: "), r.stderr)
        self.assertEqual(srv.queue_files(), [])


class SmtpOnStdio(unittest.TestCase):
    def test_bs(self):
        srv = new_server(self, users=(ALICE, BOB))
        p = subprocess.Popen([srv.sendmail, "-bs"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=srv.env)
        self.addCleanup(p.kill)

        def say(line, code):
            if line is not None:
                p.stdin.write(line + "\r\n")
                p.stdin.flush()
            while True:
                got = p.stdout.readline()
                self.assertTrue(got.startswith(code), (line, got))
                if got[3:4] != "-":
                    return got
        say(None, "220")
        say("EHLO client.test", "250")
        say("MAIL FROM:<git@y.test>", "250")
        say("RCPT TO:<%s>" % ALICE, "250")
        say("RCPT TO:<%s> NOTIFY=NEVER" % BOB, "250")
        say("DATA", "354")
        say("Subject: over -bs\r\n\r\n..dot-stuffed line\r\n.", "250")
        say("MAIL FROM:<>", "250")
        say("DATA", "554")
        say("RSET", "250")
        say("BDAT 10", "502")
        say("QUIT", "221")
        self.assertEqual(p.wait(timeout=10), 0)
        for who in (ALICE, BOB):
            mail = srv.wait_for_mail(who)[0]
            self.assertIn("Subject: over -bs", mail)
            self.assertIn("\n.dot-stuffed line", mail)
            self.assertIn("From: <git@y.test>", mail)
            self.assertIn("Return-Path: <git@y.test>", mail)


class Extract(unittest.TestCase):
    def test_folded_t_recipients_all_delivered(self):
        carol, dave, erin = ("%s@%s" % (n, DOMAIN) for n in ("carol", "dave", "erin"))
        srv = new_server(self, users=(ALICE, BOB, carol, dave, erin))
        text = ("To: Alice <%s>,\n  \"Bob, the builder\" <%s>\nCc: %s\n"
                "Cc: (a comment) %s\nBcc: undisclosed:\n\t%s;\nSubject: folded\n\nhello\n"
                % (ALICE, BOB, carol, dave, erin))
        r = srv.run("-t", "-oi", input=text)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        for who in (ALICE, BOB, carol, dave, erin):
            mail = srv.wait_for_mail(who)[0]
            self.assertIn("Subject: folded", mail)
            self.assertNotIn("Bcc", mail)
            self.assertNotIn(erin, mail.split("\r\n\r\n")[0].replace("Delivered-To: " + erin, ""))

    def test_resent_fields_take_precedence(self):
        srv = new_server(self, users=(ALICE, BOB))
        r = srv.run("-t", input="To: %s\nResent-To: %s\nSubject: resent\n\nagain\n" % (ALICE, BOB))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Subject: resent", srv.wait_for_mail(BOB)[0])
        time.sleep(0.5)
        self.assertEqual(srv.mail_files(ALICE), [])


class QueueListing(unittest.TestCase):
    def test_bp_lists_the_queue(self):
        srv = new_server(self, start=False)
        r = srv.run("-f", "lister@y.test", ALICE, input="Subject: waiting\n\nin the queue\n")
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        qid = srv.queue_files()[0]
        r = srv.run("-bp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(qid, r.stdout)
        self.assertIn("<lister@y.test>", r.stdout)
        self.assertIn("<%s>" % ALICE, r.stdout)
        mailq = os.path.join(srv.dir, "mailq")
        os.symlink(MERPATI, mailq)
        self.assertIn(qid, subprocess.run([mailq], capture_output=True, text=True,
                                          env=srv.env).stdout)
        for cmd in ([srv.sendmail, "-bp"], [mailq]):
            r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup",
                                "--clear-groups"] + cmd, capture_output=True, text=True,
                               env=srv.env)
            self.assertEqual(r.returncode, 77, r.stdout + r.stderr)  # EX_NOPERM
            self.assertIn("only root may list the queue", r.stderr)


class NonRootUser(unittest.TestCase):
    def test_nobody_submits_and_is_named(self):
        srv = new_server(self)
        r = srv.run(ALICE, input="Subject: from nobody\n\nunprivileged\n", user="nobody")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        # -f does not change who the Received field names
        r = srv.run("-f", "root@" + DOMAIN, ALICE, input="Subject: claims root\n\nx\n",
                    user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        mails = srv.wait_for_mail(ALICE, 2)
        plain = [m for m in mails if "from nobody" in m][0]
        self.assertIn("Return-Path: <nobody@%s>" % DOMAIN, plain)
        self.assertIn("(merpati sendmail, from userid nobody (uid 65534))", plain)
        claim = [m for m in mails if "claims root" in m][0]
        self.assertIn("from userid nobody (uid 65534)", claim)
        self.assertNotIn("uid 0)", claim)
        # -bs works for nobody too, through the same helper
        p = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup",
                            "--clear-groups", srv.sendmail, "-bs"],
                           input="HELO me\r\nMAIL FROM:<n@y.test>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                           "Subject: bs by nobody\r\n\r\nx\r\n.\r\nQUIT\r\n" % ALICE,
                           capture_output=True, text=True, env=srv.env, timeout=20)
        self.assertIn("250 2.0.0 Ok: queued", p.stdout)
        self.assertIn("from userid nobody (uid 65534)", srv.mails_with(ALICE, "bs by nobody")[0])
        self.assertEqual(os.listdir(srv.drop_dir()), [])
        st = os.stat(srv.drop_dir())
        self.assertEqual(oct(st.st_mode & 0o7777), "0o1730")

    def test_nobody_cannot_forge_or_bypass(self):
        srv = new_server(self)
        # nobody cannot write into the maildrop without merpati-postdrop ...
        r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup",
                            "--clear-groups", "sh", "-c",
                            "echo x > %s/dforged00000000000" % srv.drop_dir()],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        # ... and a stream claiming uid 0 is refused: the helper's own U line comes first
        forged = "U 0\nMERPATI-DROP 1\nS root@%s\nR %s\n\nSubject: forged\r\n\r\nx\r\n" % (
            DOMAIN, ALICE)
        r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup",
                            "--clear-groups", srv.postdrop, srv.drop_dir()],
                           input=forged, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(srv.wait_log("maildrop: refused"), srv.log()[-2000:])
        r = srv.run(ALICE, input="Subject: honest\n\nok\n", user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        mails = srv.wait_for_mail(ALICE)
        time.sleep(0.3)
        self.assertEqual(len(srv.mail_files(ALICE)), 1)
        self.assertIn("Subject: honest", mails[0])


class HostileDropFiles(unittest.TestCase):
    def test_refused_logged_and_nothing_else_lost(self):
        srv = new_server(self, start=False)
        srv.start()
        drop = srv.drop_dir()

        def plant(name, data):
            # complete before it appears, as merpati-postdrop's rename does
            tmp = os.path.join(srv.dir, "planting")
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(drop, name))
        plant("d0000000000000001", b"\x00\xffU 1\ngarbage\n")
        plant("d0000000000000002", b"U 0\nMERPATI-DROP 1\nS a@y.test\nR %s\n\n" % ALICE.encode()
              + b"x" * 1200000 + b"\r\n")   # limits.message_size is 1 MiB
        os.symlink("/etc/passwd", os.path.join(drop, "d0000000000000003"))
        plant("whatever", b"x")
        os.mkfifo(os.path.join(drop, "d0000000000000004"))  # opening it would block
        r = srv.run(ALICE, input="Subject: survivor\n\nstill delivered\n", user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Subject: survivor", srv.wait_for_mail(ALICE)[0])
        deadline = time.time() + 10
        while os.listdir(drop) and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(os.listdir(drop), [])
        corrupt = os.listdir(os.path.join(srv.state, "corrupt"))
        for n in ("d0000000000000001", "d0000000000000002", "d0000000000000003",
                  "d0000000000000004"):
            self.assertIn("maildrop-" + n, corrupt)
        self.assertIn("maildrop-badname", corrupt)
        log = srv.log()
        self.assertIn("refused d0000000000000003 (a symlink)", log)
        self.assertIn("refused d0000000000000002 (larger than", log)
        self.assertIn("refused d0000000000000001 (no U line", log)
        self.assertIn("refused d0000000000000004 (not a plain file)", log)
        self.assertTrue(os.path.exists("/etc/passwd"))
        self.assertEqual(len(srv.mail_files(ALICE)), 1)
        self.assertIsNone(srv.proc.poll())


if __name__ == "__main__":
    unittest.main()
