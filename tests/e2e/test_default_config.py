"""End to end: the embedded default config (etc/merpati.conf) starts and
serves SMTP, POP3 and IMAP; only paths and ports are overridden so the
test does not touch the source tree's var/ or fixed ports."""
import imaplib
import os
import poplib
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import MERPATI, MERPATID, REPO, free_port, wait_port

CONF = os.path.join(REPO, "etc", "merpati.conf")


class DefaultConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="merpati-default-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.ports = {k: free_port() for k in ("smtp", "submission", "smtps", "pop3", "pop3s",
                                               "imap", "imaps")}
        var = os.path.join(self.tmp, "var")
        self.o = [
            "server.state_dir=%s" % var,
            'modules.auth_sqlite.database="%s/users.db"' % var,
            'modules.deliver_maildir.root="%s/mail"' % var,
            'tls.cert="%s/tls/cert.pem"' % var, 'tls.key="%s/tls/key.pem"' % var,
            'modules.dns_mx.nameserver="127.0.0.1:%d"' % free_port(),
            "listen.smtp.port=%d" % self.ports["smtp"],
            "listen.submission.port=%d" % self.ports["submission"],
            "listen.smtps.port=%d" % self.ports["smtps"],
            "modules.pop3.listen.plain.port=%d" % self.ports["pop3"],
            "modules.pop3.listen.tls.port=%d" % self.ports["pop3s"],
            "modules.imap.listen.plain.port=%d" % self.ports["imap"],
            "modules.imap.listen.tls.port=%d" % self.ports["imaps"],
        ]
        self.var = var

    def args(self):
        out = []
        for o in self.o:
            out += ["-o", o]
        return out

    def test_default_config_serves_everything(self):
        cli = [MERPATI, "-c", CONF] + self.args()
        r = subprocess.run(cli + ["check-config"], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run(cli + ["user", "add", "alice@example.test"], input="pw\n",
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        log = open(os.path.join(self.tmp, "log"), "wb")
        proc = subprocess.Popen([MERPATID, "-c", CONF, "-f"] + self.args(), stdout=log,
                                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (proc.poll() is None and proc.terminate(), proc.wait(10), log.close()))
        for name, port in self.ports.items():
            self.assertTrue(wait_port(port, proc=proc), name)
        with smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=10) as s:
            s.sendmail("x@y.test", ["alice+news@example.test"], "Subject: plus\r\n\r\nhi\r\n")
        deadline = time.time() + 10
        new = os.path.join(self.var, "mail", "example.test", "alice", "new")
        while time.time() < deadline and not (os.path.isdir(new) and os.listdir(new)):
            time.sleep(0.05)
        self.assertTrue(os.listdir(new))  # plus-addressing rule routed it to alice
        tls = __import__("ssl")._create_unverified_context()
        p = poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], context=tls, timeout=10)
        p.user("alice@example.test")
        p.pass_("pw")
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        m = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=tls, timeout=10)
        m.login("alice@example.test", "pw")
        self.assertEqual(m.select("INBOX")[1][0], b"1")
        m.logout()


if __name__ == "__main__":
    unittest.main()
