"""tests/e2e/test_reload.py - configuration reload (issue 22).

`merpati reload` (and SIGHUP) with a changed route, a new domain and a
rotated certificate: the next session sees all three, while a session
opened before the reload finishes on the configuration it started with.
A broken configuration leaves the running one in force, and the log
says why, problem by problem.
"""
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import time
import unittest

from harness import DOMAIN, REPO, Server, Session

ALICE = "alice@" + DOMAIN
BOB = "bob@new.test"

RULES_BEFORE = ('rules = ( { match = "^sales@example\\\\.test$"; action = "rewrite"; '
                'to = "alice@example.test"; } );')
RULES_AFTER = ('rules = ( { match = "^sales@example\\\\.test$"; action = "reject"; code = 550; '
               'enhanced = "5.7.1"; text = "sales has moved"; } );')


def make_cert(cert, key, cn):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key + ".new", "-out", cert + ".new", "-subj", "/CN=" + cn],
                   check=True, capture_output=True, timeout=60)
    for path in (cert, key):
        shutil.chown(path + ".new", "merpati")  # the daemon re-reads it as server.user
        os.replace(path + ".new", path)


def served_cert(port):
    """The DER certificate the SMTP listener shows after STARTTLS."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.starttls(context=ctx)
        return s.sock.getpeercert(binary_form=True)


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Reload(unittest.TestCase):
    def setUp(self):
        self.srv = Server(modules={"route_regex": RULES_BEFORE})
        self.addCleanup(self.srv.cleanup)
        self.cert = os.path.join(self.srv.dir, "cert.pem")
        self.key = os.path.join(self.srv.dir, "key.pem")
        make_cert(self.cert, self.key, "one.test")
        self.srv.extra = 'tls = { cert = "%s"; key = "%s"; };' % (self.cert, self.key)
        self.srv.write_config()
        self.srv.add_user(ALICE)
        self.srv.start()

    def reloads_seen(self):
        return len(re.findall(r"reload: configuration \d+ in force", self.srv.log()))

    def wait_reloaded(self, count):
        deadline = time.time() + 15
        while self.reloads_seen() < count and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.reloads_seen(), count, self.srv.log()[-3000:])

    def test_next_session_sees_new_config_while_old_session_finishes(self):
        self.assertEqual(served_cert(self.srv.port), pem_to_der(self.cert))
        old_cert = pem_to_der(self.cert)

        inflight = Session(self.srv.port)
        self.addCleanup(inflight.close)
        self.assertEqual(inflight.reply()[0], 220)
        self.assertEqual(inflight.cmd("EHLO c.test")[0], 250)
        self.assertEqual(inflight.cmd("MAIL FROM:<x@c.test>")[0], 250)
        self.assertEqual(inflight.cmd("RCPT TO:<sales@example.test>")[0], 250)

        # The new configuration: a route that rejects sales@, a new local
        # domain (and its user), a new certificate at the same paths.
        self.srv.domains = (DOMAIN, "new.test")
        self.srv.modules["route_regex"] = RULES_AFTER
        self.srv.write_config()
        self.srv.add_user(BOB)
        time.sleep(0.02)  # a new modification time even on coarse clocks
        make_cert(self.cert, self.key, "two.test")
        self.assertNotEqual(pem_to_der(self.cert), old_cert)
        r = self.srv.cli("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_reloaded(1)
        self.assertIn("reload: TLS certificate", self.srv.log())

        # The next session: all three changes.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("c.test")
            s.mail("x@c.test")
            code, text = s.rcpt("sales@example.test")
            self.assertEqual(code, 550)
            self.assertIn(b"sales has moved", text)
            self.assertEqual(s.rcpt(BOB)[0], 250)
            s.data(b"Subject: to the new domain\r\n\r\nhi\r\n")
        self.srv.wait_for_mail(BOB, 1)
        self.assertEqual(served_cert(self.srv.port), pem_to_der(self.cert))

        # The session in flight: still the old rules and domains.
        code, _ = inflight.cmd("RCPT TO:<%s>" % BOB)
        self.assertGreaterEqual(code, 500)  # new.test is not local for it
        self.assertEqual(inflight.cmd("DATA")[0], 354)
        code, texts = inflight.cmd("Subject: in flight\r\n\r\nbody\r\n.")
        self.assertEqual(code, 250, texts)
        self.assertEqual(inflight.cmd("QUIT")[0], 221)
        mails = self.srv.mails_with(ALICE, "Subject: in flight")
        self.assertEqual(len(mails), 1)  # delivered through the old rewrite

    def test_broken_config_keeps_running_one(self):
        good = open(self.srv.conf).read()
        self.assertIn("recipients = 100;", good)
        with open(self.srv.conf, "w") as f:
            f.write(good.replace("recipients = 100;", "recipients = 0;") + "bogus_setting = 1;\n")
        r = self.srv.cli("reload")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not reloading", r.stderr)
        # The daemon itself must refuse it too (a plain SIGHUP).
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        self.assertTrue(self.srv.wait_log("reload refused"), self.srv.log()[-3000:])
        log = self.srv.log()
        self.assertIn("reload: bogus_setting: unknown setting", log)
        self.assertRegex(log, r"reload: .*limits")
        self.assertEqual(self.reloads_seen(), 0)
        # Still serving on the old configuration.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.sendmail("x@c.test", ["sales@example.test"], "Subject: still\r\n\r\nx\r\n")
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: still")), 1)
        # A fixed config reloads.
        with open(self.srv.conf, "w") as f:
            f.write(good)
        self.assertEqual(self.srv.cli("reload").returncode, 0)
        self.wait_reloaded(1)

    def test_unreadable_new_key_is_refused(self):
        make_cert(self.cert, self.key, "three.test")
        shutil.chown(self.key, "root")
        os.chmod(self.key, 0o600)
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        self.assertTrue(self.srv.wait_log("reload refused"), self.srv.log()[-3000:])
        self.assertIn("readable", self.srv.log())
        # The old certificate is still served.
        self.assertNotEqual(served_cert(self.srv.port), pem_to_der(self.cert))


class ModuleReloadOp(unittest.TestCase):
    """A module with the reload op (tests/modules/reloadable.c) gets its
    changed settings in place; one whose settings did not change is not
    called; an op that refuses refuses the whole reload."""

    def setUp(self):
        self.path = os.path.join(REPO, "tests", "modules", "reloadable.so")
        self.srv = Server(modules={"reloadable": self.settings("one")})
        self.addCleanup(self.srv.cleanup)
        self.srv.start()

    def settings(self, greeting):
        return 'path = "%s"; greeting = "%s";' % (self.path, greeting)

    def reload_with(self, greeting, domains=(DOMAIN,)):
        self.srv.modules["reloadable"] = self.settings(greeting)
        self.srv.domains = domains
        self.srv.write_config()
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)

    def wait_count(self, text, count):
        deadline = time.time() + 10
        while self.srv.log().count(text) < count and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.srv.log().count(text), count, self.srv.log()[-3000:])

    def test_reload_op_applies_in_place(self):
        self.reload_with("two")
        self.wait_count("reload greeting=two", 1)
        self.wait_count("configuration 1 in force", 1)
        self.assertEqual(self.srv.log().count("init greeting="), 1)  # no new instance
        # Unchanged settings: the op is not called again.
        self.reload_with("two", domains=(DOMAIN, "other.test"))
        self.wait_count("configuration 2 in force", 1)
        self.assertEqual(self.srv.log().count("reload greeting="), 1)

    def test_refusing_op_refuses_the_reload(self):
        self.reload_with("refuse", domains=(DOMAIN, "other.test"))
        self.wait_count("reload refused", 1)
        self.assertIn("modules.reloadable: greeting \"refuse\" cannot be applied", self.srv.log())
        self.assertEqual(self.srv.log().count("in force"), 0)
        # The domains change was not applied either.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("c.test")
            s.mail("x@c.test")
            self.assertGreaterEqual(s.rcpt("someone@other.test")[0], 500)


if __name__ == "__main__":
    unittest.main()
