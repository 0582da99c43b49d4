"""End to end: SASL PLAIN (RFC 4616) is parsed by one host call with
SMTP's rules, so SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH accept and
refuse the same responses (issue 17): an empty authcid, a trailing NUL
and an authzid other than the authcid are refused by all three. And one
rule says when a password may be sent: not over plaintext without the
listener's plaintext_auth, in any of the three."""
import base64
import imaplib
import poplib
import smtplib
import unittest

from harness import DOMAIN, Server, free_port

ALICE = "alice@" + DOMAIN
GOOD = b"\0" + ALICE.encode() + b"\0pw"
# (what, decoded response): each must be refused by every protocol
BAD = [
    ("empty authcid", b"\0\0pw"),
    ("empty authcid with authzid", ALICE.encode() + b"\0\0pw"),
    ("trailing NUL", GOOD + b"\0"),
    ("authzid other than authcid", b"bob@" + DOMAIN.encode() + b"\0" + ALICE.encode() + b"\0pw"),
    ("one NUL only", ALICE.encode() + b"\0pw"),
]
# accepted by every protocol
OK = [
    ("no authzid", GOOD),
    ("authzid equal to authcid, other case", ALICE.upper().encode() + GOOD),
]


def server(plaintext):
    yes = "true" if plaintext else "false"
    srv = Server(modules={"imap": None, "pop3": None},
                 listeners={"submission": 'auth = "required"; plaintext_auth = %s;' % yes})
    srv.imap_port, srv.pop_port = free_port(), free_port()
    srv.modules["imap"] = ('plaintext_auth = %s; auth_failures = 100; listen = { plain = '
                           '{ address = "127.0.0.1"; port = %d; }; };' % (yes, srv.imap_port))
    srv.modules["pop3"] = ('plaintext_auth = %s; auth_failures = 100; listen = { plain = '
                           '{ address = "127.0.0.1"; port = %d; }; };' % (yes, srv.pop_port))
    srv.write_config()
    srv.add_user(ALICE, "pw")
    srv.start()
    return srv


class Auth:
    """Try one decoded PLAIN response with each protocol: True when
    accepted, False when refused (any reason)."""

    def __init__(self, srv):
        self.srv = srv

    def smtp(self, response):
        with smtplib.SMTP("127.0.0.1", self.srv.ports["submission"], timeout=10) as s:
            s.ehlo("client.example")
            code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(response).decode())
            return code == 235

    def imap(self, response):
        m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=10)
        try:
            m.authenticate("PLAIN", lambda _: response)
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            m.shutdown()

    def pop3(self, response):
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)
        try:
            p._shortcmd("AUTH PLAIN " + base64.b64encode(response).decode())
            return True
        except poplib.error_proto:
            return False
        finally:
            p.close()


class SaslPlain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = server(plaintext=True)
        cls.addClassCleanup(cls.srv.cleanup)
        cls.auth = Auth(cls.srv)

    def each_protocol(self, cases, want):
        for what, response in cases:
            for proto in ("smtp", "imap", "pop3"):
                with self.subTest(proto=proto, case=what):
                    self.assertEqual(getattr(self.auth, proto)(response), want)

    def test_refused_alike(self):
        self.each_protocol(BAD, False)

    def test_accepted_alike(self):
        self.each_protocol(OK, True)

    def test_wrong_password_refused(self):
        self.each_protocol([("wrong password", b"\0" + ALICE.encode() + b"\0nope")], False)


class NoPlaintext(unittest.TestCase):
    """Without plaintext_auth a loopback client without TLS may not send
    a password, in any protocol (the host's auth_allowed)."""

    def test_refused_without_tls(self):
        srv = server(plaintext=False)
        self.addCleanup(srv.cleanup)
        auth = Auth(srv)
        for proto in ("smtp", "imap", "pop3"):
            with self.subTest(proto=proto):
                self.assertFalse(getattr(auth, proto)(GOOD))


if __name__ == "__main__":
    unittest.main()
