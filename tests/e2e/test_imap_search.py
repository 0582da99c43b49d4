"""End to end: IMAP SEARCH on decoded text (issue 14) and bounded key
nesting (issue 15), on both stores, through imaplib and a raw socket.
Each message is APPENDed with words that only a decoder can see, next to
a control message where the same bytes must not match."""
import base64
import imaplib
import socket
import unittest

from harness import DOMAIN
from test_imap import ImapCase

ALICE = "alice@" + DOMAIN


def msg(headers, body):
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("latin-1")


B64_BODY = base64.encodebytes("the hidden word is pelican\r\n".encode()).decode()
MULTIPART_BODY = ("--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnothing here\r\n"
                  "--B\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                  "<p>na=EFve cormo=\r\nrant</p>\r\n--B--\r\n")

# (name, message); sequence numbers follow this order.
MESSAGES = [
    ("base64", msg(["Subject: one", "Content-Type: text/plain; charset=utf-8",
                    "Content-Transfer-Encoding: base64"], B64_BODY)),
    ("qp", msg(["Subject: two", "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable"],
               "caf=C3=A9 au lait and a flam=\r\ningo\r\n")),
    ("koi8", msg(["Subject: three", "Content-Type: text/plain; charset=koi8-r",
                  "Content-Transfer-Encoding: 8bit"],
                 "\xf0\xd2\xc9\xd7\xc5\xd4 \xcd\xc9\xd2\r\n")),  # Привет мир
    ("subject", msg(["Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?B?YXVz?= Berlin",
                     "From: <user-from (comment)@ (comment) domain.org>"], "hi\r\n")),
    ("extra", msg(["Subject: five", "X-Extra: first value", "X-Extra: second value",
                   "From: heron@x.test (Grey Heron)"], "body\r\n")),
    ("multipart", msg(["Subject: six", "MIME-Version: 1.0",
                       "Content-Type: multipart/alternative; boundary=B"], MULTIPART_BODY)),
    ("control", msg(["Subject: =?UTF-8?Q?plain?=", "X-Raw: " + B64_BODY.strip()],
                    "caf=C3=A9 pel1can-free text, base64 " + B64_BODY.strip() + "\r\n")),
]


def seq(name):
    return str([n for n, _ in MESSAGES].index(name) + 1)


class ImapSearch(ImapCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = imaplib.IMAP4("127.0.0.1", cls.srv.imap_port, timeout=20)
        m.login(ALICE, "pw")
        m.create("S")
        for _, text in MESSAGES:
            typ, _ = m.append("S", None, None, text)
            assert typ == "OK"
        m.logout()

    def client(self):
        m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=20)
        m.login(ALICE, "pw")
        self.addCleanup(lambda: m.state != "LOGOUT" and m.logout())
        typ, _ = m.select("S")
        self.assertEqual(typ, "OK")
        return m

    def search(self, m, *keys, charset=None, literal=None):
        if literal is not None:
            m.literal = literal
        typ, data = m.search(charset, *keys)
        self.assertEqual(typ, "OK", data)
        return data[0].decode().split()

    def test_base64_word(self):
        m = self.client()
        self.assertEqual(self.search(m, "BODY", "pelican"), [seq("base64")])
        self.assertEqual(self.search(m, "TEXT", "PELICAN"), [seq("base64")])
        # the encoded bytes themselves are not text of the base64 message
        self.assertEqual(self.search(m, "BODY", B64_BODY[:12]), [seq("control")])

    def test_quoted_printable_word(self):
        m = self.client()
        self.assertEqual(self.search(m, "BODY", "flamingo"), [seq("qp")])
        self.assertEqual(self.search(m, "BODY", charset="UTF-8",
                                     literal="CAF\u00c9".encode()), [seq("qp")])
        # "caf=C3=A9" in the control message is not encoded: no match as café
        self.assertEqual(self.search(m, "BODY", "caf=C3"), [seq("control")])

    def test_charset_body_and_multipart(self):
        m = self.client()
        self.assertEqual(self.search(m, "CHARSET", "UTF-8", "BODY",
                                     literal="\u041f\u0420\u0418\u0412\u0415\u0422".encode()),
                         [seq("koi8")])
        self.assertEqual(self.search(m, "BODY", "cormorant"), [seq("multipart")])
        self.assertEqual(self.search(m, "CHARSET", "ISO-8859-1", "TEXT",
                                     literal="NA\xcfVE".encode("latin-1")), [seq("multipart")])

    def test_encoded_subject(self):
        m = self.client()
        self.assertEqual(self.search(m, "CHARSET", "UTF-8", "SUBJECT",
                                     literal="Gr\u00fc\u00dfe".encode()), [seq("subject")])
        self.assertEqual(self.search(m, "SUBJECT", '"Grusse"'), [])
        self.assertEqual(self.search(m, "SUBJECT", '"ausBerlin"'), [])
        self.assertEqual(self.search(m, "SUBJECT", '"aus Berlin"'), [seq("subject")])
        self.assertEqual(self.search(m, "CHARSET", "ISO-8859-1", "TEXT",
                                     literal="gr\xfc\xdfeaus".encode("latin-1")),
                         [seq("subject")])  # adjacent encoded words are joined
        self.assertEqual(self.search(m, "SUBJECT", "plain"), [seq("control")])
        self.assertEqual(self.search(m, "SUBJECT", "UTF-8"), [])

    def test_badcharset(self):
        m = self.client()
        typ, data = m.search("X-NO-SUCH-CHARSET", "SUBJECT", "a")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[BADCHARSET", data[0])
        self.assertEqual(self.search(m, "BODY", "flamingo"), [seq("qp")])  # session goes on

    def test_header_every_occurrence(self):
        m = self.client()
        self.assertEqual(self.search(m, "HEADER", "X-Extra", "second"), [seq("extra")])
        self.assertEqual(self.search(m, "HEADER", "X-Extra", "first"), [seq("extra")])
        self.assertEqual(self.search(m, "HEADER", "X-Extra", '""'), [seq("extra")])
        self.assertEqual(self.search(m, "HEADER", "X-Extra", "third"), [])

    def test_from_with_comment(self):
        m = self.client()
        self.assertEqual(self.search(m, "FROM", "user-from@domain.org"), [seq("subject")])
        self.assertEqual(self.search(m, "FROM", '"grey heron"'), [seq("extra")])
        self.assertEqual(self.search(m, "FROM", "heron@x.test"), [seq("extra")])
        self.assertEqual(self.search(m, "FROM", "nobody@domain.org"), [])

    def test_subject_nil(self):
        m = self.client()
        self.assertEqual(len(self.search(m, "SUBJECT", "NIL")), len(MESSAGES))
        self.assertEqual(len(self.search(m, "NOT", "BODY", "NIL")), 0)

    def raw(self):
        s = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=20)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        f.readline()
        for line in (b"a LOGIN %s pw\r\n" % ALICE.encode(), b"b SELECT S\r\n"):
            s.sendall(line)
            while not f.readline().startswith(line[:2]):
                pass
        return s, f

    def reply(self, s, f, command):
        s.sendall(command + b"\r\n")
        lines = []
        while True:
            lines.append(f.readline())
            if not lines[-1] or lines[-1].startswith(command.split()[0] + b" "):
                return lines

    def test_deep_nesting_is_bad_and_daemon_lives(self):
        s, f = self.raw()
        for key in (b"NOT " * 127 + b"ALL", b"OR ALL " * 60 + b"ALL",
                    b"(" * 7 + b"NOT " * 40 + b"ALL" + b")" * 7):
            lines = self.reply(s, f, b"c SEARCH " + key)
            self.assertTrue(lines[-1].startswith(b"c BAD"), lines)
            self.assertIn(b"nesting too deep", lines[-1])
        ok = self.reply(s, f, b"d SEARCH " + b"NOT " * 31 + b"ALL")  # odd, within the cap
        self.assertEqual(ok[0], b"* SEARCH\r\n")
        self.assertTrue(ok[-1].startswith(b"d OK"), ok)
        self.assertEqual(self.search(self.client(), "BODY", "pelican"), [seq("base64")])


class ImapSearchSqlite(ImapSearch):
    store = "store_sqlite"


if __name__ == "__main__":
    unittest.main()
