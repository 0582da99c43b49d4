"""End to end: MIME over IMAP (issue 14) on both stores, through imaplib.
BODYSTRUCTURE of a message/rfc822 part inside a multipart (envelope, body,
line count, extension data), RFC 3501 6.4.5 sections inside it, ENVELOPE
addresses (comments, groups, source routes, an empty Sender), malformed
sections refused, and the \\Seen a BODY[] fetch sets: an atomic add in the
store, so a flag another session set meanwhile survives."""
import imaplib
import unittest

from harness import DOMAIN
from test_imap import ImapCase

ALICE = "alice@" + DOMAIN

INNER = ("From: Carol <carol@y.test>\r\nSubject: inner\r\n"
         "Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
         "--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
         "--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--alt--")
FORWARD = ("From: Bob <bob@x.test>\r\nTo: alice@example.test\r\nSubject: forwarded\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
           "--outer\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Language: en\r\n\r\n"
           "see below\r\n"
           "--outer\r\nContent-Type: message/rfc822\r\n"
           "Content-Disposition: inline; filename=\"fwd.eml\"\r\n\r\n"
           + INNER + "\r\n--outer--\r\n")
ENVELOPE = ("From: user@domain.test (Real Name)\r\nSender:\r\n"
            "To: group: g1@d1.test, g2@d2.test;, <@route.test:r@d3.test>\r\n"
            "Subject: env\r\n\r\nbody\r\n")


def body_of(response):
    """The literal of a one-item FETCH response from imaplib."""
    return response[0][1]


class ImapMime(ImapCase):

    def folder_with(self, name, *messages):
        """A fresh folder holding messages, selected on a new client."""
        m = self.client()
        self.assertEqual(m.create(name)[0], "OK")
        for msg in messages:
            self.assertEqual(m.append(name, None, None, msg.encode())[0], "OK")
        self.assertEqual(m.select(name)[0], "OK")
        return m

    def test_bodystructure_of_a_forwarded_message(self):
        m = self.folder_with("bs", FORWARD)
        inner_env = ('(NIL "inner" (("Carol" NIL "carol" "y.test")) (("Carol" NIL "carol" '
                     '"y.test")) (("Carol" NIL "carol" "y.test")) NIL NIL NIL NIL NIL)')
        inner = ('(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)'
                 '("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)'
                 ' "alternative" ("boundary" "alt") NIL NIL NIL)')
        want = ('(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL ("en") NIL)'
                '("message" "rfc822" NIL NIL NIL "7bit" %d %s %s %d NIL'
                ' ("inline" ("filename" "fwd.eml")) NIL NIL)'
                ' "mixed" ("boundary" "outer") NIL NIL NIL)'
                % (len(INNER), inner_env, inner, INNER.count("\n")))
        typ, data = m.fetch("1", "(BODYSTRUCTURE)")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0].decode(), "1 (BODYSTRUCTURE %s)" % want)
        typ, data = m.fetch("1", "(BODY)")
        self.assertIn('"7bit" %d %s' % (len(INNER), inner_env), data[0].decode())
        self.assertNotIn("fwd.eml", data[0].decode(), "BODY has no extension data")

    def test_sections_inside_the_enclosed_message(self):
        m = self.folder_with("sections", FORWARD)
        header = INNER[:INNER.index("\r\n\r\n") + 4]
        cases = [("2", INNER), ("2.HEADER", header), ("2.TEXT", INNER[len(header):]),
                 ("2.1", "plain"), ("2.2", "<p>html</p>"),
                 ("2.2.MIME", "Content-Type: text/html\r\n\r\n"),
                 ("2.MIME", 'Content-Type: message/rfc822\r\n'
                            'Content-Disposition: inline; filename="fwd.eml"\r\n\r\n'),
                 ("2.HEADER.FIELDS (SUBJECT)", "Subject: inner\r\n\r\n"),
                 ("1", "see below"), ("3", ""), ("2.3", "")]
        for section, want in cases:
            with self.subTest(section=section):
                typ, data = m.fetch("1", "(BODY.PEEK[%s])" % section)
                self.assertEqual(typ, "OK")
                got = body_of(data) if isinstance(data[0], tuple) else b""
                self.assertEqual(got.decode(), want)
        typ, data = m.fetch("1", "(BODY.PEEK[2.TEXT]<0.5>)")
        self.assertIn(b"BODY[2.TEXT]<0>", data[0][0])
        self.assertEqual(body_of(data), b"--alt")

    def test_malformed_sections_are_bad(self):
        m = self.folder_with("bad", FORWARD)
        for section in ("MIME", "1.MIME.TEXT", "0", "1..2", "HEADER.FIELDS ()"):
            with self.subTest(section=section):
                with self.assertRaises(imaplib.IMAP4.error):
                    m.fetch("1", "(BODY.PEEK[%s])" % section)

    def test_envelope_addresses(self):
        m = self.folder_with("env", ENVELOPE)
        real = '(("Real Name" NIL "user" "domain.test"))'
        want = ('(NIL "env" %s %s %s ((NIL NIL "group" NIL)(NIL NIL "g1" "d1.test")'
                '(NIL NIL "g2" "d2.test")(NIL NIL NIL NIL)(NIL "@route.test" "r" "d3.test"))'
                ' NIL NIL NIL NIL)' % (real, real, real))
        for _ in range(2):  # the second answer may come from the envelope cache
            typ, data = m.fetch("1", "(ENVELOPE)")
            self.assertEqual(data[0].decode(), "1 (ENVELOPE %s)" % want)

    def test_seen_is_added_to_the_flags_stored_now(self):
        """Session a's view of message 1 is stale (no flags) when it fetches
        BODY[]; session b set \\Flagged meanwhile. \\Seen must be added to
        what is stored, and the flags reported are the result."""
        a = self.folder_with("seen", ENVELOPE)
        b = self.client()
        self.assertEqual(b.select("seen")[0], "OK")
        self.assertEqual(b.store("1", "+FLAGS", "(\\Flagged)")[0], "OK")
        typ, data = a.fetch("1", "(BODY[TEXT])")
        self.assertEqual(typ, "OK")
        flags = b"".join(x if isinstance(x, bytes) else x[0] for x in data if x)
        self.assertIn(b"BODY[TEXT]", flags, "the message was served")
        self.assertIn(b"\\Seen", flags)
        self.assertIn(b"\\Flagged", flags)
        typ, data = b.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Seen", data[-1])
        self.assertIn(b"\\Flagged", data[-1])


class ImapMimeSqlite(ImapMime):
    store = "store_sqlite"


if __name__ == "__main__":
    unittest.main()
