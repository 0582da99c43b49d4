"""End to end: the spf, dkim and dmarc modules in the real daemon (issue 18).

A dnsmasq on loopback serves every record (SPF, DKIM keys, DMARC
policies, MX and A) and is the resolver of each instance (the dns_mx
module's nameserver setting); the machine's resolver is never asked.

  A  garudayaksa.test on 127.0.0.1: signs its users' submissions (SMTP
     and sendmail) with an RSA and an Ed25519 key made by `merpati dkim
     keygen` and relays to dadali.test by MX.
  B  dadali.test on 127.0.0.2: spf, dkim and dmarc with no settings
     (verify and record only).
  C  enforce.test on 127.0.0.2: spf reject_fail, dmarc enforce.

Inbound mail to B and C comes from smtplib bound to 127.0.0.1, the
address SPF records authorise or not. dkimpy (python3-dkim) signs
inbound mail and verifies what A signed.
"""
import base64
import glob
import os
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

from dns import Dnsmasq
from harness import Server
from test_sendmail import SendmailServer, is_root

try:
    import dkim
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    import dkim

MBRAIN = "mbrain@garudayaksa.test"
JPRI = "jpri@dadali.test"
BOSS = "boss@enforce.test"


def txt(name, text):
    """A --txt-record option: strings of at most 250 octets (dnsmasq
    splits at commas; DNS strings hold 255), joined again by readers."""
    chunks = [text[i:i + 250] for i in range(0, len(text), 250)]
    return "--txt-record=%s,%s" % (name, ",".join(chunks))


def auth_headers(mail):
    """The Authentication-Results fields of a delivered mail, unfolded."""
    head = mail.split("\n\n", 1)[0].replace("\r", "")
    fields, cur = [], None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += " " + line.strip()
            continue
        if cur is not None:
            fields.append(cur)
        cur = line
    if cur is not None:
        fields.append(cur)
    return [f.split(":", 1)[1].strip() for f in fields
            if f.lower().startswith("authentication-results:")]


class MailAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="merpati-auth-")
        cls.b = Server(address="127.0.0.2", hostname="mx.dadali.test",
                       domains=("dadali.test",))
        cls.addClassCleanup(cls.b.cleanup)
        cls.c = Server(address="127.0.0.2", hostname="mx.enforce.test",
                       domains=("enforce.test",))
        cls.addClassCleanup(cls.c.cleanup)
        cls.a = SendmailServer(address="127.0.0.1", hostname="mail.garudayaksa.test",
                       domains=("garudayaksa.test",),
                       listeners={"submission": 'auth = "required"; plaintext_auth = true;'},
                       extra_config='outbound = { port = %d; source = "127.0.0.1"; '
                                    'connect_timeout = "2s"; };' % cls.b.port)
        cls.addClassCleanup(cls.a.cleanup)
        # A's key, made by the CLI in A's config dir (the default --dir)
        r = cls.a.cli("dkim", "keygen", "garudayaksa.test", "s1")
        assert r.returncode == 0, r.stderr
        cls.keygen_out = r.stdout
        cls.key_path = os.path.join(cls.a.dir, "dkim", "garudayaksa.test.s1.key")
        a_record = cls.zone_record(r.stdout)
        # and an Ed25519 key beside it: A signs with both (RFC 8463 5)
        r = cls.a.cli("dkim", "keygen", "garudayaksa.test", "ed", "--type", "ed25519")
        assert r.returncode == 0, r.stderr
        ed_record = cls.zone_record(r.stdout)
        # dkimpy's inbound key (RSA 2048 through openssl, not merpati)
        pem = os.path.join(cls.tmp, "ext.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", pem], check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        cls.ext_key = open(pem, "rb").read()
        ext_record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        cls.records = {"s1._domainkey.garudayaksa.test": a_record,
                       "ed._domainkey.garudayaksa.test": ed_record,
                       "ext._domainkey.signed.test": ext_record}
        cls.dns = Dnsmasq([
            "--mx-host=dadali.test,mx.dadali.test,10",
            "--host-record=mx.dadali.test,127.0.0.2",
            txt("garudayaksa.test", "v=spf1 ip4:127.0.0.1 -all"),
            txt("_dmarc.garudayaksa.test", "v=DMARC1; p=reject"),
            txt("s1._domainkey.garudayaksa.test", a_record),
            txt("ed._domainkey.garudayaksa.test", ed_record),
            txt("_dmarc.dadali.test", "v=DMARC1; p=reject"),
            txt("spf-pass.test", "v=spf1 ip4:127.0.0.1 -all"),
            txt("spf-fail.test", "v=spf1 ip4:192.0.2.1 -all"),
            txt("spf-soft.test", "v=spf1 ip4:192.0.2.1 ~all"),
            txt("dm-reject.test", "v=spf1 ip4:127.0.0.1 -all"),
            txt("_dmarc.dm-reject.test", "v=DMARC1; p=reject"),
            txt("_dmarc.dm-sub.test", "v=DMARC1; p=none; sp=reject"),
            txt("_dmarc.dm-pct.test", "v=DMARC1; p=reject; pct=0"),
            txt("_dmarc.dm-quar.test", "v=DMARC1; p=quarantine"),
            txt("signed.test", "v=spf1 -all"),
            txt("_dmarc.signed.test", "v=DMARC1; p=reject; adkim=s"),
            txt("ext._domainkey.signed.test", ext_record),
        ], cls.tmp)
        cls.addClassCleanup(cls.dns.stop)
        dns_mx = 'nameserver = "%s"; timeout = "2s";' % cls.dns.address
        # order matters: dmarc reads the notes spf and dkim leave
        cls.b.modules = {"dns_mx": dns_mx, "spf": "", "dkim": "", "dmarc": ""}
        cls.b.write_config()
        cls.c.modules = {"dns_mx": dns_mx, "spf": "reject_fail = true;", "dkim": "",
                         "dmarc": 'enforce = true; report_file = "%s";'
                                  % os.path.join(cls.c.state, "dmarc.log")}
        cls.c.write_config()
        cls.a.modules = {"dns_mx": dns_mx, "spf": "", "dmarc": "",
                         "dkim": 'sign = ( { domain = "garudayaksa.test"; selector = "s1";'
                                 ' key = "dkim/garudayaksa.test.s1.key"; },'
                                 ' { domain = "garudayaksa.test"; selector = "ed";'
                                 ' key = "dkim/garudayaksa.test.ed.key"; } );'}
        cls.a.write_config()
        cls.a.add_user(MBRAIN, "pw")
        cls.b.add_user(JPRI, "pw")
        cls.c.add_user(BOSS, "pw")
        for srv in (cls.b, cls.c, cls.a):
            srv.start()

    @classmethod
    def tearDownClass(cls):
        """Stop the daemons (LeakSanitizer reports at exit) and fail on a
        sanitizer report in any of their logs (make check SANITIZE=1),
        OpenSSL's included: the daemon frees OpenSSL's state only once
        its threads are done (core/tls.h), so libcrypto's leaks and
        double free at exit are the daemon's bugs too."""
        reports = []
        for srv in (cls.a, cls.b, cls.c):
            srv.stop()
            log = srv.log()
            if "Sanitizer" in log or "runtime error:" in log:
                reports.append(srv.hostname + ":\n" + log[-3000:])
        if reports:
            raise AssertionError("\n".join(reports))

    @staticmethod
    def zone_record(keygen_out):
        """The record text of keygen's zone line (its strings joined)."""
        line = [l for l in keygen_out.splitlines() if "IN TXT" in l][0]
        return "".join(line.split('"')[1::2])

    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return self.records.get(name.rstrip("."), "").encode()

    def send(self, srv, sender, rcpt, msg):
        """Inbound from 127.0.0.1; (code, text) of the end of DATA (or of
        the refused command)."""
        with smtplib.SMTP(srv.address, srv.port, timeout=15,
                          source_address=("127.0.0.1", 0)) as s:
            s.ehlo("client.test")
            code, text = s.mail(sender)
            if code != 250:
                return code, text.decode()
            s.rcpt(rcpt)
            code, text = s.data(msg if isinstance(msg, bytes) else msg.encode())
            return code, text.decode()

    def deliver(self, srv, sender, rcpt, frm, subject, extra=""):
        msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\nbody\r\n" % (frm, rcpt, subject, extra)
        code, text = self.send(srv, sender, rcpt, msg)
        self.assertEqual(code, 250, text)
        mails = srv.mails_with(rcpt, "Subject: " + subject)
        self.assertEqual(len(mails), 1)
        return mails[0]

    def ours(self, mail, authserv):
        found = [f for f in auth_headers(mail) if f.split(";")[0].strip() == authserv]
        self.assertEqual(len(found), 1, auth_headers(mail))
        return found[0]

    # ---- SPF -----------------------------------------------------------
    def test_spf_results_recorded(self):
        for dom, want in (("spf-pass.test", "spf=pass"), ("spf-fail.test", "spf=fail"),
                          ("spf-soft.test", "spf=softfail"), ("nowhere.test", "spf=none")):
            ar = self.ours(self.deliver(self.b, "x@" + dom, JPRI, "x@" + dom, "spf " + dom),
                           "mx.dadali.test")
            self.assertIn(want + " smtp.mailfrom=x@" + dom, ar)

    def test_spf_reject_fail_honoured(self):
        code, text = self.send(self.c, "x@spf-fail.test", BOSS, "Subject: no\r\n\r\nx\r\n")
        self.assertEqual(code, 550)
        self.assertIn("5.7.23", text)
        # softfail is not fail: accepted
        code, text = self.send(self.c, "x@spf-soft.test", BOSS,
                               "From: x@spf-soft.test\r\nSubject: soft\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)

    # ---- DKIM ----------------------------------------------------------
    def dkimpy_signed(self, subject, frm="news@signed.test", length=False):
        msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Tue, 24 Nov 2026 05:00:00 +0000\r\n"
               "\r\nsigned by dkimpy\r\n\r\n" % (frm, JPRI, subject)).encode()
        sig = dkim.sign(msg, b"ext", b"signed.test", self.ext_key, length=length,
                        include_headers=[b"from", b"to", b"subject", b"date"])
        return sig + msg

    def test_inbound_length_tag_refused(self):
        code, text = self.send(self.b, "x@spf-fail.test", JPRI,
                               self.dkimpy_signed("dkimpy l=", length=True))
        self.assertEqual(code, 250, text)
        ar = self.ours(self.b.mails_with(JPRI, "Subject: dkimpy l=")[0], "mx.dadali.test")
        self.assertIn("dkim=policy", ar)
        self.assertIn("dmarc=fail", ar)

    def test_inbound_dkimpy_signature_verified(self):
        code, text = self.send(self.b, "x@spf-fail.test", JPRI, self.dkimpy_signed("dkimpy in"))
        self.assertEqual(code, 250, text)
        mail = self.b.mails_with(JPRI, "Subject: dkimpy in")[0]
        ar = self.ours(mail, "mx.dadali.test")
        self.assertIn("dkim=pass", ar)
        self.assertIn("header.d=signed.test", ar)
        self.assertIn("header.s=ext", ar)
        # SPF failed, but the aligned DKIM pass makes DMARC pass
        self.assertIn("dmarc=pass", ar)

    def test_inbound_tampered_signature_fails(self):
        msg = self.dkimpy_signed("dkimpy tampered").replace(b"signed by dkimpy",
                                                            b"signed by someone")
        code, text = self.send(self.b, "x@spf-fail.test", JPRI, msg)
        self.assertEqual(code, 250, text)
        ar = self.ours(self.b.mails_with(JPRI, "Subject: dkimpy tampered")[0], "mx.dadali.test")
        self.assertIn("dkim=fail", ar)
        self.assertIn("dmarc=fail", ar)

    # ---- DMARC ---------------------------------------------------------
    def test_dmarc_aligned_passes(self):
        ar = self.ours(self.deliver(self.b, "x@dm-reject.test", JPRI, "x@dm-reject.test",
                                    "dmarc aligned"), "mx.dadali.test")
        self.assertIn("spf=pass", ar)
        self.assertIn("dmarc=pass", ar)
        self.assertIn("header.from=dm-reject.test", ar)

    def test_dmarc_unaligned_recorded_not_rejected(self):
        ar = self.ours(self.deliver(self.b, "x@spf-pass.test", JPRI, "x@dm-reject.test",
                                    "dmarc unaligned"), "mx.dadali.test")
        self.assertIn("spf=pass", ar)
        self.assertIn("dmarc=fail (p=reject dis=reject)", ar)

    def test_dmarc_reject_enforced_at_end_of_data(self):
        code, text = self.send(self.c, "x@spf-pass.test", BOSS,
                               "From: x@dm-reject.test\r\nSubject: r\r\n\r\nx\r\n")
        self.assertEqual(code, 550)
        self.assertIn("5.7.1", text)
        self.assertIn("dm-reject.test", text)
        # aligned mail of the same domain goes through
        code, text = self.send(self.c, "x@dm-reject.test", BOSS,
                               "From: x@dm-reject.test\r\nSubject: ok\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)
        with open(os.path.join(self.c.state, "dmarc.log")) as f:
            rows = [l.split("\t") for l in f.read().splitlines()]
        self.assertTrue(any(r[2] == "dm-reject.test" and r[4] == "fail" for r in rows), rows)
        self.assertTrue(any(r[2] == "dm-reject.test" and r[4] == "pass" for r in rows), rows)

    def test_dmarc_subdomain_policy(self):
        code, text = self.send(self.c, "x@spf-pass.test", BOSS,
                               "From: x@child.dm-sub.test\r\nSubject: sub\r\n\r\nx\r\n")
        self.assertEqual(code, 550, text)  # sp=reject
        code, text = self.send(self.c, "x@spf-pass.test", BOSS,
                               "From: x@dm-sub.test\r\nSubject: top\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)  # p=none

    def held(self, srv, subject):
        deadline = time.time() + 10
        while time.time() < deadline:
            for st in glob.glob(os.path.join(srv.state, "queue", "*.st")):
                body = open(st, errors="replace").read()
                msg = st[:-3]
                if "hold " in body and os.path.exists(msg) and \
                        subject in open(msg, errors="replace").read():
                    self.held_path = st
                    return body
            time.sleep(0.1)
        return None

    def test_dmarc_quarantine_held(self):
        code, text = self.send(self.c, "x@spf-pass.test", BOSS,
                               "From: x@dm-quar.test\r\nSubject: quarantined\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)
        st = self.held(self.c, "Subject: quarantined")
        self.assertIsNotNone(st, os.listdir(os.path.join(self.c.state, "queue")))
        self.assertIn("DMARC quarantine policy of dm-quar.test", st)
        self.assertEqual(self.c.mails_with(BOSS, "Subject: quarantined", 1), [])
        # the admin releases it: then it is delivered
        qid = os.path.basename(self.held_path)[:-3]
        r = self.c.cli("queue", "release", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.c.mails_with(BOSS, "Subject: quarantined", 20)), 1)

    def test_dmarc_pct_zero_samples_out(self):
        # p=reject with pct=0: never applied in full, one step milder
        code, text = self.send(self.c, "x@spf-pass.test", BOSS,
                               "From: x@dm-pct.test\r\nSubject: pct zero\r\n\r\nx\r\n")
        self.assertEqual(code, 250, text)
        self.assertIsNotNone(self.held(self.c, "Subject: pct zero"))

    # ---- Authentication-Results ----------------------------------------
    def test_forged_authentication_results_removed(self):
        mail = self.deliver(self.b, "x@spf-fail.test", JPRI, "x@spf-fail.test", "forged ar",
                            "Authentication-Results: mx.dadali.test; spf=pass; dkim=pass;"
                            " dmarc=pass\r\n"
                            "Authentication-Results: other.test; spf=pass\r\n")
        ar = self.ours(mail, "mx.dadali.test")
        self.assertIn("spf=fail", ar)
        self.assertIn("dkim=none", ar)
        self.assertIn("dmarc=none", ar)
        self.assertIn("other.test; spf=pass", auth_headers(mail))

    # ---- two domains ---------------------------------------------------
    def submit(self, frm, subject):
        with smtplib.SMTP("127.0.0.1", self.a.ports["submission"], timeout=15) as s:
            s.login(MBRAIN, "pw")
            s.sendmail(MBRAIN, [JPRI], "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n"
                       "from garudayaksa\r\n" % (frm, JPRI, subject))

    def test_keygen_output(self):
        st = os.stat(self.key_path)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertIn("s1._domainkey.garudayaksa.test. IN TXT", self.keygen_out)
        self.assertIn("v=DKIM1; k=rsa; p=", self.keygen_out)
        r = self.a.cli("dkim", "keygen", "garudayaksa.test", "s1")
        self.assertNotEqual(r.returncode, 0)  # never overwrites
        r = self.a.cli("dkim", "keygen", "garudayaksa.test", "ed2", "--type", "ed25519",
                       "--dir", self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("k=ed25519", r.stdout)

    def test_two_domains_signed_mail_passes(self):
        self.submit(MBRAIN, "two domains")
        mails = self.b.mails_with(JPRI, "Subject: two domains", 30)
        self.assertEqual(len(mails), 1, self.a.log()[-2000:])
        raw = mails[0].encode().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        # two signatures (RSA and Ed25519); an independent verifier
        # agrees with both
        self.assertEqual(raw.count(b"\r\nDKIM-Signature:"), 2)
        signed = b"DKIM-Signature:" + raw.split(b"\r\nDKIM-Signature:", 1)[1]
        d = dkim.DKIM(signed)
        self.assertTrue(d.verify(idx=0, dnsfunc=self.dnsfunc))
        self.assertTrue(d.verify(idx=1, dnsfunc=self.dnsfunc))
        ar = self.ours(mails[0], "mx.dadali.test")
        self.assertIn("spf=pass smtp.mailfrom=" + MBRAIN, ar)
        self.assertEqual(ar.count("dkim=pass"), 2, ar)
        self.assertIn("header.d=garudayaksa.test header.s=s1 header.a=rsa-sha256", ar)
        self.assertIn("header.d=garudayaksa.test header.s=ed header.a=ed25519-sha256", ar)
        self.assertIn("dmarc=pass", ar)
        # A wrote no Authentication-Results of its own for a submission
        self.assertEqual([f for f in auth_headers(mails[0])
                          if f.startswith("mail.garudayaksa.test")], [])

    def test_local_sendmail_signed(self):
        # a user's sendmail goes through the maildrop pickup and the
        # filters (root's is queued directly, without filters)
        if not is_root():
            self.skipTest("needs root (to become nobody)")
        r = self.a.run(JPRI, user="nobody",
                       input="From: %s\nTo: %s\nSubject: via sendmail\n\nlocal\n" % (MBRAIN, JPRI))
        self.assertEqual(r.returncode, 0, r.stderr)
        mails = self.b.mails_with(JPRI, "Subject: via sendmail", 30)
        self.assertEqual(len(mails), 1, self.a.log()[-2000:])
        ar = self.ours(mails[0], "mx.dadali.test")
        self.assertEqual(ar.count("dkim=pass"), 2, ar)
        self.assertIn("spf=pass smtp.mailfrom=nobody@garudayaksa.test", ar)
        self.assertIn("dmarc=pass", ar)

    def test_two_domains_forged_from_fails_dmarc(self):
        self.submit("ceo@dadali.test", "forged from")
        mails = self.b.mails_with(JPRI, "Subject: forged from", 30)
        self.assertEqual(len(mails), 1, self.a.log()[-2000:])
        ar = self.ours(mails[0], "mx.dadali.test")
        self.assertIn("spf=pass", ar)  # the envelope is A's own
        self.assertIn("dmarc=fail", ar)
        self.assertIn("header.from=dadali.test", ar)


if __name__ == "__main__":
    unittest.main()
