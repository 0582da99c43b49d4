"""End to end: merpati's DKIM engine against independent implementations
(issue 18). tests/tools/dkim_tool drives modules/dkim's engine from the
command line; python3-dkim (dkimpy) and opendkim's opendkim-testmsg are
the other side. Signatures made by merpati (RSA-SHA256 and Ed25519-SHA256,
folded fields, trailing blank lines, an 8-bit body, LF line ends) must
verify there, signatures made there must verify in merpati, and a changed
body or header must fail everywhere.

No network: keys reach dkimpy through its dnsfunc argument and merpati
through dkim_tool's key file (its TXT callback). opendkim-testmsg has no
such hook and asks the system resolver, so it runs in a private network
and mount namespace (unshare) where /etc/resolv.conf names a dnsmasq on
that namespace's own loopback serving the TXT records; without root,
unshare or dnsmasq those tests skip and say why."""
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from harness import DOMAIN, REPO, Server

try:
    import dkim
except ImportError:
    # Debian's python3-dkim lives in the system interpreter's path, which
    # a pyenv or venv python does not search.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import dkim
    except ImportError:
        dkim = None

TOOL = os.path.join(REPO, "tests", "tools", "dkim_tool")
SIGNER = "example.test"

MESSAGE = (
    "Date: Tue, 24 Nov 2026 01:00:00 +0000\r\n"
    "From: Joe Sender <joe@example.test>\r\n"
    "To: Ann <ann@example.org>,\r\n"
    "\tBob <bob@example.org>\r\n"
    "Cc: carol@example.org\r\n"
    "Subject: a subject long enough that the sender folded it over\r\n"
    " two lines\r\n"
    "Message-ID: <dkim-interop-1@example.test>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße aus Bandung — 8-bit body.  \r\n"
    "\tindented line with trailing tab\t\r\n"
    "\r\n"
    "last line\r\n"
    "\r\n"
    "\r\n"
    "\r\n"
).encode("utf-8")

EMPTY_BODY = (b"Date: Tue, 24 Nov 2026 01:00:00 +0000\r\nFrom: joe@example.test\r\n"
              b"To: ann@example.org\r\nSubject: empty\r\n\r\n")


def lf(msg):
    return msg.replace(b"\r\n", b"\n")


def tamper_body(msg):
    return msg.replace("Grüße".encode(), "Grüsse".encode(), 1)


def tamper_header(msg):
    return msg.replace(b"Subject: a subject", b"Subject: A subject", 1)


def run(args, data=None, env=None, timeout=60):
    r = subprocess.run(args, input=data, capture_output=True, timeout=timeout, env=env)
    return r


@unittest.skipIf(dkim is None, "python3-dkim is not installed (apt-get install python3-dkim)")
class DkimInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(TOOL):
            r = run(["make", "-s", "-C", REPO, "tests/tools/dkim_tool"], timeout=300)
            assert r.returncode == 0, r.stderr.decode()
        cls.dir = tempfile.mkdtemp(prefix="merpati-dkim-")
        cls.records = {}
        cls.keys = {}
        # merpati's keys, made by merpati's keygen
        for sel, alg, bits in (("mrsa", "rsa", "2048"), ("med", "ed25519", "0")):
            path = os.path.join(cls.dir, sel + ".key")
            r = run([TOOL, "keygen", alg, bits, path])
            assert r.returncode == 0, r.stderr.decode()
            cls.keys[sel] = path
            cls.records[sel] = r.stdout.decode().strip()
        # dkimpy's keys, made without merpati: openssl for RSA, PyNaCl
        # for Ed25519 (dkimpy takes the base64 seed, RFC 8463 3.4)
        pem = os.path.join(cls.dir, "prsa.pem")
        r = run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                 "rsa_keygen_bits:2048", "-out", pem])
        assert r.returncode == 0, r.stderr.decode()
        der = run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"]).stdout
        cls.keys["prsa"] = open(pem, "rb").read()
        cls.records["prsa"] = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        import nacl.signing
        sk = nacl.signing.SigningKey.generate()
        cls.keys["ped"] = base64.b64encode(bytes(sk))
        cls.records["ped"] = ("v=DKIM1; k=ed25519; p=" +
                              base64.b64encode(bytes(sk.verify_key)).decode())
        cls.keyfile = os.path.join(cls.dir, "keys")
        with open(cls.keyfile, "w") as f:
            for sel, rec in cls.records.items():
                f.write("%s._domainkey.%s %s\n" % (sel, SIGNER, rec))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    # -- the two sides ------------------------------------------------------
    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        sel, _, dom = name.rstrip(".").partition("._domainkey.")
        rec = self.records.get(sel) if dom == SIGNER else None
        return rec.encode() if rec else None

    def merpati_sign(self, msg, sel):
        r = run([TOOL, "sign", SIGNER, sel, self.keys[sel]], msg)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r.stdout

    def merpati_verify(self, msg, *extra):
        """One (result, rest of the line) per signature."""
        r = run([TOOL, "verify", self.keyfile] + list(extra), msg)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return [tuple(l.split(" ", 1)) for l in r.stdout.decode().splitlines()]

    def dkimpy_verify_all(self, msg):
        d = dkim.DKIM(msg)
        count = sum(1 for l in msg.split(b"\n\n" if b"\r\n" not in msg else b"\r\n\r\n")[0]
                    .splitlines() if l.lower().startswith(b"dkim-signature:"))
        self.assertGreater(count, 0)
        return [d.verify(idx=i, dnsfunc=self.dnsfunc) for i in range(count)]

    def dkimpy_sign(self, msg, sel, canon=(b"relaxed", b"relaxed"), length=False):
        if sel == "ped":
            sig = dkim.sign(msg, sel.encode(), SIGNER.encode(), self.keys[sel],
                            canonicalize=canon, signature_algorithm=b"ed25519-sha256",
                            length=length)
        else:
            sig = dkim.sign(msg, sel.encode(), SIGNER.encode(), self.keys[sel],
                            canonicalize=canon, length=length)
        if b"\r\n" not in msg:
            sig = sig.replace(b"\r\n", b"\n")
        return sig + msg

    # -- merpati signs ------------------------------------------------------
    def test_merpati_signatures_verify_in_dkimpy(self):
        for sel in ("mrsa", "med"):
            for name, msg in (("crlf", MESSAGE), ("lf", lf(MESSAGE)), ("empty", EMPTY_BODY)):
                with self.subTest(sel=sel, message=name):
                    signed = self.merpati_sign(msg, sel)
                    self.assertEqual(self.dkimpy_verify_all(signed), [True])
                    self.assertEqual(self.merpati_verify(signed)[0][0], "pass")

    def test_merpati_signature_is_folded_and_oversigned(self):
        signed = self.merpati_sign(MESSAGE, "mrsa")
        header = signed.split(b"\r\nDate:")[0].decode()
        lines = header.split("\r\n")
        self.assertGreater(len(lines), 3)
        self.assertTrue(all(len(l) <= 78 for l in lines), lines)
        self.assertTrue(all(l.startswith("\t") for l in lines[1:]), lines)
        h = "".join(header.split()).split("h=")[1].split(";")[0].split(":")
        for name in ("from", "to", "subject"):
            self.assertEqual(h.count(name), 2, h)
        self.assertEqual(h.count("cc"), 1, h)

    def test_two_merpati_signatures_both_verify_in_dkimpy(self):
        signed = self.merpati_sign(self.merpati_sign(MESSAGE, "mrsa"), "med")
        self.assertEqual(self.dkimpy_verify_all(signed), [True, True])
        self.assertEqual([v[0] for v in self.merpati_verify(signed)], ["pass", "pass"])

    def test_merpati_signatures_tampered_fail_in_dkimpy(self):
        for sel in ("mrsa", "med"):
            signed = self.merpati_sign(MESSAGE, sel)
            for name, bad in (("body", tamper_body(signed)), ("header", tamper_header(signed))):
                with self.subTest(sel=sel, tampered=name):
                    self.assertNotEqual(bad, signed)
                    self.assertEqual(self.dkimpy_verify_all(bad), [False])
                    self.assertEqual(self.merpati_verify(bad)[0][0], "fail")

    # -- dkimpy signs -------------------------------------------------------
    def test_dkimpy_signatures_verify_in_merpati(self):
        canons = ((b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple"),
                  (b"simple", b"relaxed"))
        for sel in ("prsa", "ped"):
            for canon in canons:
                for name, msg in (("crlf", MESSAGE), ("lf", lf(MESSAGE)), ("empty", EMPTY_BODY)):
                    with self.subTest(sel=sel, canon=canon, message=name):
                        signed = self.dkimpy_sign(msg, sel, canon)
                        self.assertEqual(self.dkimpy_verify_all(signed), [True])
                        v = self.merpati_verify(signed)
                        self.assertEqual(len(v), 1)
                        self.assertEqual(v[0][0], "pass", v)

    def test_dkimpy_signatures_tampered_fail_in_merpati(self):
        for sel in ("prsa", "ped"):
            signed = self.dkimpy_sign(MESSAGE, sel)
            with self.subTest(sel=sel):
                body = self.merpati_verify(tamper_body(signed))[0]
                self.assertEqual(body[0], "fail")
                self.assertIn("body hash", body[1])
                header = self.merpati_verify(tamper_header(signed))[0]
                self.assertEqual(header[0], "fail")
                self.assertIn("signature did not verify", header[1])

    def test_dkimpy_length_tag_refused_by_default(self):
        signed = self.dkimpy_sign(MESSAGE, "prsa", length=True)
        self.assertIn(b" l=", signed.split(b"Date:")[0])
        self.assertEqual(self.merpati_verify(signed)[0][0], "policy")
        self.assertEqual(self.merpati_verify(signed, "allow-l")[0][0], "pass")
        # with l= accepted, text appended after the signed length passes
        # (the very reason it is refused by default) ...
        self.assertEqual(self.merpati_verify(signed + b"appended\r\n", "allow-l")[0][0], "pass")
        # ... and a change inside it still fails
        self.assertEqual(self.merpati_verify(tamper_body(signed), "allow-l")[0][0], "fail")

    def test_missing_key_is_permerror(self):
        signed = self.merpati_sign(MESSAGE, "mrsa").replace(b"s=mrsa;", b"s=nokey;", 1)
        v = self.merpati_verify(signed)[0]
        self.assertEqual(v[0], "permerror")
        self.assertIn("no key record", v[1])

    # -- opendkim -----------------------------------------------------------
    def opendkim_check(self):
        if shutil.which("opendkim-testmsg") is None:
            self.skipTest("opendkim-testmsg is not installed (apt-get install opendkim-tools)")

    def test_opendkim_signature_refused_as_rsa_sha1(self):
        # opendkim-testmsg signs with rsa-sha1 only; RFC 8301 says
        # verifiers must not accept it. dkimpy accepts it, which shows the
        # signature itself is sound and merpati's refusal is policy.
        self.opendkim_check()
        pem = os.path.join(self.dir, "prsa.pem")
        r = run(["opendkim-testmsg", "-C", "-d", SIGNER, "-s", "prsa", "-k", pem], MESSAGE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn(b"a=rsa-sha1;", r.stdout)
        self.assertEqual(self.dkimpy_verify_all(r.stdout), [True])
        v = self.merpati_verify(r.stdout)[0]
        self.assertEqual(v[0], "permerror")
        self.assertIn("d=example.test s=prsa ", v[1])
        self.assertIn("a=)", v[1])

    def opendkim_verify(self, msg):
        """opendkim-testmsg's exit status and stderr on msg, with the
        key records served by dnsmasq inside a private network namespace."""
        self.opendkim_check()
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("dnsmasq"):
            self.skipTest("opendkim-testmsg needs DNS: root, unshare and dnsmasq give it "
                          "a private one")
        work = tempfile.mkdtemp(prefix="dkim-od-", dir=self.dir)
        with open(os.path.join(work, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
        with open(os.path.join(work, "msg"), "wb") as f:
            f.write(msg)
        txt = " ".join("'--txt-record=%s._domainkey.%s,%s'" % (sel, SIGNER, rec)
                       for sel, rec in self.records.items())
        script = """
ip link set lo up || exit 90
mount --bind {w}/resolv.conf /etc/resolv.conf || exit 91
dnsmasq --no-resolv --no-hosts --port=53 --listen-address=127.0.0.1 --bind-interfaces \
  --pid-file={w}/dnsmasq.pid {txt} || exit 92
opendkim-testmsg < {w}/msg
rc=$?
kill "$(cat {w}/dnsmasq.pid)"
exit $rc
""".format(w=work, txt=txt)
        r = run(["unshare", "--net", "--mount", "sh", "-c", script], timeout=60)
        if r.returncode in (90, 91, 92) or b"unshare failed" in r.stderr:
            self.skipTest("no private namespace for opendkim's DNS: " + r.stderr.decode()[-200:])
        return r.returncode, r.stderr.decode()

    def test_merpati_signatures_verify_in_opendkim(self):
        # opendkim refuses a message without Date (dkim_chunk: syntax error)
        for sel in ("mrsa", "med"):
            for name, msg in (("crlf", MESSAGE), ("lf", lf(MESSAGE)), ("empty", EMPTY_BODY)):
                with self.subTest(sel=sel, message=name):
                    rc, err = self.opendkim_verify(self.merpati_sign(msg, sel))
                    self.assertEqual(rc, 0, err)

    def test_merpati_signatures_tampered_fail_in_opendkim(self):
        for sel in ("mrsa", "med"):
            signed = self.merpati_sign(MESSAGE, sel)
            for name, bad in (("body", tamper_body(signed)), ("header", tamper_header(signed))):
                with self.subTest(sel=sel, tampered=name):
                    rc, err = self.opendkim_verify(bad)
                    self.assertNotEqual(rc, 0)
                    self.assertIn("Bad signature", err)


class DkimModule(unittest.TestCase):
    """The module itself: loads with no settings and mail still flows
    (the hooks at work are tested in test_mail_auth.py)."""

    def test_loads_and_mail_flows(self):
        import smtplib
        srv = Server(modules={"dkim": ""})
        self.addCleanup(srv.cleanup)
        srv.add_user("alice@" + DOMAIN)
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("joe@example.org", ["alice@" + DOMAIN],
                       b"From: joe@example.org\r\nSubject: x\r\n\r\nhi\r\n")
        files = srv.wait_for_mail("alice@" + DOMAIN)
        self.assertEqual(len(files), 1)

    def test_unknown_setting_refused(self):
        srv = Server(modules={"dkim": "bogus = 1;"})
        self.addCleanup(srv.cleanup)
        self.assertNotEqual(srv.start(expect_fail=True), 0)
        self.assertIn("bogus", srv.log())


if __name__ == "__main__":
    unittest.main()
