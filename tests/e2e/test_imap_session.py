"""End to end (issue 14, session part): untagged updates between two
sessions (EXISTS after APPEND/COPY, EXPUNGE seen by both, flag changes,
keywords announced in FLAGS), flag changes applied to the stored flags,
the command parser's limits and refusals (always tagged), and the folder
hierarchy (CREATE's parents, \\Noselect levels, LSUB parents). Raw
sockets, so every untagged line can be checked; two sessions are driven
in a fixed order, which makes the concurrent cases deterministic. On
both stores."""
import re
import socket
import threading
import unittest

from harness import DOMAIN
from test_imap import ImapCase

ALICE = "alice@" + DOMAIN
MSG = b"From: a@x.test\r\nSubject: s%d\r\n\r\nbody %d\r\n"


class Raw:
    """One IMAP connection; cmd() returns (untagged lines, tagged line)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.sock.makefile("rb")
        self.n = 0
        self.greeting = self.f.readline()

    def line(self):
        text = self.f.readline()
        if not text:
            raise EOFError("server closed the connection")
        while True:  # a literal: its bytes, then the rest of the line
            m = re.search(rb"\{(\d+)\}\r\n$", text)
            if not m:
                return text
            text += self.f.read(int(m.group(1))) + self.f.readline()

    def send(self, raw):
        self.sock.sendall(raw)

    def read_tagged(self, tag):
        untagged = []
        while True:
            text = self.line()
            if text.startswith(tag + b" "):
                return untagged, text
            untagged.append(text)

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.send(tag + b" " + text + b"\r\n")
        return self.read_tagged(tag)

    def ok(self, text):
        untagged, tagged = self.cmd(text)
        assert re.match(rb"t\d+ OK", tagged), (text, tagged)
        return untagged

    def append(self, box, body, flags=b""):
        return self.ok(b"APPEND %s %s{%d+}\r\n%s" % (box, flags, len(body), body))

    def close(self):
        self.sock.close()


class Session(ImapCase):
    box_count = 0

    def conn(self, login=True):
        c = Raw(self.srv.imap_port)
        self.addCleanup(c.close)
        if login:
            c.ok(b"LOGIN " + ALICE.encode() + b" pw")
        return c

    def box(self, messages=2):
        """A new folder with some messages."""
        Session.box_count += 1
        name = b"box%d" % Session.box_count
        c = self.conn()
        c.ok(b"CREATE " + name)
        for i in range(messages):
            c.append(name, MSG % (i, i))
        return name

    def selected(self, name):
        c = self.conn()
        c.ok(b"SELECT " + name)
        return c

    # ---- untagged updates ----------------------------------------------

    def test_append_into_selected_sends_exists(self):
        name = self.box(1)
        c = self.selected(name)
        self.assertIn(b"* 2 EXISTS\r\n", c.append(name, MSG % (9, 9)))
        self.assertTrue(any(b"* 2 FETCH" in x for x in c.ok(b"FETCH 2 FLAGS")))

    def test_copy_into_selected_sends_exists(self):
        name = self.box(2)
        c = self.selected(name)
        self.assertIn(b"* 4 EXISTS\r\n", c.ok(b"COPY 1:2 " + name))
        c.ok(b"FETCH 4 UID")

    def test_append_by_other_session_seen_at_noop(self):
        name = self.box(1)
        s1, s2 = self.selected(name), self.conn()
        s2.append(name, MSG % (5, 5))
        self.assertIn(b"* 2 EXISTS\r\n", s1.ok(b"NOOP"))

    def test_expunge_seen_by_both_not_during_fetch(self):
        name = self.box(3)
        s1, s2 = self.selected(name), self.selected(name)
        s1.ok(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertIn(b"* 1 EXPUNGE\r\n", s1.ok(b"EXPUNGE"))
        for during in (b"FETCH 1 FLAGS", b"STORE 2 +FLAGS (\\Seen)", b"SEARCH ALL"):
            self.assertFalse([x for x in s2.ok(during) if b"EXPUNGE" in x], during)
        self.assertIn(b"* 1 EXPUNGE\r\n", s2.ok(b"NOOP"))

    def test_expunge_of_message_already_gone_is_reported(self):
        name = self.box(2)
        s1, s2 = self.selected(name), self.selected(name)
        s1.ok(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        s2.ok(b"NOOP")  # s2 now knows message 1 is \Deleted
        s1.ok(b"EXPUNGE")
        self.assertIn(b"* 1 EXPUNGE\r\n", s2.ok(b"EXPUNGE"))
        self.assertEqual(s2.ok(b"SEARCH ALL"), [b"* SEARCH 1\r\n"])

    def test_flag_change_by_other_session_sent_as_fetch(self):
        name = self.box(1)
        s1, s2 = self.selected(name), self.selected(name)
        s2.ok(b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        self.assertTrue([x for x in s1.ok(b"NOOP")
                         if x.startswith(b"* 1 FETCH (FLAGS (") and b"\\Flagged" in x])

    def test_two_sessions_flag_changes_both_kept(self):
        """Needs the store's flags_change (store.h contract 3)."""
        name = self.box(1)
        s1, s2 = self.selected(name), self.selected(name)
        s1.ok(b"STORE 1 FLAGS (\\Seen)")
        s2.ok(b"NOOP")
        s1.ok(b"STORE 1 +FLAGS (\\Answered)")
        reply = s2.ok(b"STORE 1 -FLAGS (\\Seen)")  # s2 has not heard of \Answered
        self.assertTrue([x for x in reply if re.match(rb"\* 1 FETCH \(FLAGS \(\\Answered\)\)", x)],
                        reply)
        s3 = self.selected(name)
        self.assertTrue([x for x in s3.ok(b"FETCH 1 FLAGS") if b"(\\Answered" in x])

    def test_keywords_announced_in_flags_before_use(self):
        name = self.box(1)
        s1 = self.selected(name)
        reply = s1.ok(b"STORE 1 +FLAGS ($Alpha)")
        flags = [i for i, x in enumerate(reply) if x.startswith(b"* FLAGS (") and b"$Alpha" in x]
        perm = [x for x in reply if b"PERMANENTFLAGS (" in x and b"$Alpha" in x]
        fetch = [i for i, x in enumerate(reply) if x.startswith(b"* 1 FETCH")]
        self.assertTrue(flags and perm and fetch and flags[0] < fetch[0], reply)
        reply = s1.ok(b"STORE 1 +FLAGS ($alpha $Beta)")
        fetch = [x for x in reply if x.startswith(b"* 1 FETCH")][0]
        self.assertEqual(fetch.lower().count(b"$alpha"), 1, fetch)
        s2 = self.conn()
        self.assertTrue([x for x in s2.ok(b"SELECT " + name)
                         if x.startswith(b"* FLAGS (") and b"$Beta" in x])

    # ---- the parser -------------------------------------------------------

    def test_bracket_atom_and_nil_astring(self):
        c = self.conn()
        _, tagged = c.cmd(b"SELECT a[b")
        self.assertRegex(tagged, rb"^t\d+ NO ")
        c.ok(b'LIST "" NIL')
        name = self.box(1)
        c.ok(b"SELECT " + name)
        c.ok(b"STORE 1 +FLAGS NIL")
        self.assertTrue([x for x in c.ok(b"FETCH 1 FLAGS") if b"NIL" in x])

    def test_id_at_rfc2971_maximum(self):
        c = self.conn(login=False)
        pairs = b" ".join(b'"f%02d" "%s"' % (i, b"v" * 1024) for i in range(30))
        untagged, tagged = c.cmd(b"ID (" + pairs + b")")
        self.assertRegex(tagged, rb"^t\d+ OK")
        self.assertTrue(untagged[0].startswith(b"* ID "))

    def test_too_long_line_gets_tagged_bad_and_bye(self):
        # Its skipped end may have announced a {n+} literal whose bytes
        # would run as commands, so the session cannot go on in step.
        c = self.conn()
        untagged, tagged = c.cmd(b"NOOP " + b"x" * 70000)
        self.assertRegex(tagged, rb"^t\d+ BAD ")
        self.assertRegex(c.line(), rb"^\* BYE ")

    def test_big_literal_before_login_refused_unread(self):
        c = self.conn(login=False)
        c.send(b"a1 LOGIN {52428800}\r\n")
        reply = c.line()
        self.assertRegex(reply, rb"^a1 BAD ")
        c.ok(b"CAPABILITY")
        c.send(b"a2 LOGIN {52428800+}\r\n")  # non-synchronising: nothing to do but close
        self.assertRegex(c.line(), rb"^a2 BAD ")

    def test_list_arguments_where_strings_belong(self):
        name = self.box(1)
        c = self.selected(name)
        _, tagged = c.cmd(b"STATUS INBOX ((MESSAGES))")
        self.assertRegex(tagged, rb"^t\d+ BAD unknown STATUS item \(not an atom\)\r\n$")
        _, tagged = c.cmd(b"STORE 1 +FLAGS ((x))")
        self.assertRegex(tagged, rb"^t\d+ BAD ")
        c.cmd(b"SEARCH CHARSET (x) ALL")  # any tagged reply: the server lives
        untagged = c.ok(b"STATUS INBOX (" + b" ".join([b"UIDVALIDITY"] * 20) + b")")
        self.assertEqual(untagged[0].count(b"UIDVALIDITY"), 20)
        c.ok(b"NOOP")

    # ---- hierarchy -----------------------------------------------------------

    def list_of(self, c, pattern, verb=b"LIST"):
        out = {}
        for x in c.ok(verb + b' "" ' + pattern):
            m = re.match(rb'\* (?:LIST|LSUB) \(([^)]*)\) "/" "?([^"\r]*)"?\r\n', x)
            out[m.group(2)] = m.group(1).split()
        return out

    def test_create_makes_parents_and_list_shows_levels(self):
        c = self.conn()
        c.ok(b"CREATE h1/b/c")
        self.assertIn(b"h1", self.list_of(c, b"%"))
        self.assertIn(b"h1/b", self.list_of(c, b"h1/%"))
        c.ok(b"DELETE h1/b")  # has a child: stays as a \Noselect level
        attrs = self.list_of(c, b"h1/%")[b"h1/b"]
        self.assertIn(b"\\Noselect", attrs)
        self.assertIn(b"\\HasChildren", attrs)
        self.assertIn(b"h1/b/c", self.list_of(c, b"h1/*"))

    def test_inbox_has_children_and_no_subscribed_in_list(self):
        c = self.conn()
        c.ok(b"CREATE INBOX/sub")
        listing = self.list_of(c, b"*")
        self.assertIn(b"\\HasChildren", listing[b"INBOX"])
        self.assertFalse([a for a in listing.values() if b"\\Subscribed" in a])

    def test_lsub_returns_unsubscribed_parent_as_noselect(self):
        c = self.conn()
        c.ok(b"CREATE l1/sub")
        c.ok(b"SUBSCRIBE l1/sub")
        self.assertEqual(self.list_of(c, b"%", b"LSUB").get(b"l1"), [b"\\Noselect"])
        self.assertIn(b"l1/sub", self.list_of(c, b"l1/%", b"LSUB"))


    def test_concurrent_subscribes_all_kept(self):
        """Two sessions subscribing at once, released together by a
        barrier: every name must be on the list afterwards (a lost
        read-modify-write of the list would drop some)."""
        names = {who: [b"cs%s%02d" % (who, i) for i in range(30)] for who in (b"a", b"b")}
        conns = {who: self.conn() for who in names}
        for name in names[b"a"] + names[b"b"]:
            conns[b"a"].ok(b"CREATE " + name)
        barrier = threading.Barrier(2, timeout=30)
        failures = []

        def run(who):
            try:
                barrier.wait()
                for name in names[who]:
                    conns[who].ok(b"SUBSCRIBE " + name)
            except Exception as e:  # reported by the main thread
                failures.append(e)

        threads = [threading.Thread(target=run, args=(w,)) for w in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual([str(e) for e in failures], [])
        listed = self.list_of(conns[b"a"], b"cs*", b"LSUB")
        for name in names[b"a"] + names[b"b"]:
            self.assertIn(name, listed)

class SessionSqlite(Session):
    store = "store_sqlite"


if __name__ == "__main__":
    unittest.main()
