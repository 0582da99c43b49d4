"""End to end: the store concurrency contract (include/merpati/store.h)
seen through IMAP, on both stores: concurrent APPENDs from several
sessions get distinct UIDs that keep naming their message while another
session reads, \\Recent belongs to one session, and a message expunged
by one session is never served to another as an empty or partial one.
Concurrency: threads start at a barrier; the checks are on invariants,
so they do not depend on the interleaving."""
import imaplib
import re
import threading
import unittest

from harness import DOMAIN
from test_imap import ImapCase

ALICE = "alice@" + DOMAIN
SESSIONS = 4
PER_SESSION = 8


def message(session, k):
    return ("Message-ID: <s%d.m%d@contract.test>\r\nSubject: %d/%d\r\n\r\n"
            "body %d/%d\r\n" % (session, k, session, k, session, k)).encode()


class StoreContract(ImapCase):

    @staticmethod
    def appenduid(m, box, text):
        typ, data = m.append(box, None, None, text)
        if typ != "OK":
            return None
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0])
        return int(found.group(1)) if found else None

    @staticmethod
    def message_ids(m):
        """UID -> Message-ID of every message the selected box lists."""
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        seen = {}
        for item in data:
            if isinstance(item, tuple):
                uid = re.search(rb"UID (\d+)", item[0])
                mid = re.search(rb"<([^>]*)>", item[1])
                if uid and mid:
                    seen[int(uid.group(1))] = mid.group(1).decode()
        return seen

    def test_concurrent_appends_keep_their_uids(self):
        self.client().create("Conc")
        uids = {}
        changed = []
        done = threading.Event()

        def appender(n):
            m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=30)
            m.login(ALICE, "pw")
            start.wait()
            for k in range(PER_SESSION):
                uids[(n, k)] = self.appenduid(m, "Conc", message(n, k))
            m.logout()

        def reader():
            m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=30)
            m.login(ALICE, "pw")
            m.select("Conc")
            first = {}
            start.wait()
            last_pass = False
            while not last_pass:
                last_pass = done.is_set()
                m.noop()
                for uid, mid in self.message_ids(m).items():
                    if first.setdefault(uid, mid) != mid:
                        changed.append((uid, first[uid], mid))
            m.logout()

        def flagger():
            """Keyword changes from a view that is always a little behind:
            the write-back that once rebuilt the UID list from it."""
            m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=30)
            m.login(ALICE, "pw")
            m.select("Conc")
            start.wait()
            while not done.is_set():
                m.noop()
                m.store("1:*", "+FLAGS.SILENT", "($Busy)")
            m.logout()

        threads = [threading.Thread(target=appender, args=(n,)) for n in range(SESSIONS)]
        others = [threading.Thread(target=reader), threading.Thread(target=flagger)]
        start = threading.Barrier(SESSIONS + 2)
        for t in threads + others:
            t.start()
        for t in threads:
            t.join(60)
        done.set()
        for t in others:
            t.join(60)
        got = list(uids.values())
        self.assertNotIn(None, got, "every APPEND answered OK [APPENDUID]")
        self.assertEqual(len(set(got)), SESSIONS * PER_SESSION, "distinct UIDs")
        m = self.client()
        m.select("Conc", readonly=True)
        final = self.message_ids(m)
        for (n, k), uid in uids.items():
            self.assertEqual(final.get(uid), "s%d.m%d@contract.test" % (n, k),
                             "UID %d names the message appended under it" % uid)
        self.assertEqual(changed, [], "no UID changed its message for a reader")

    def test_recent_belongs_to_one_session(self):
        m = self.client()
        m.create("Rec")
        for k in range(2):
            self.assertIsNotNone(self.appenduid(m, "Rec", message(9, k)))
        self.assertIn(b"RECENT 2", m.status("Rec", "(RECENT)")[1][0])
        ex = self.client()
        ex.select("Rec", readonly=True)
        self.assertEqual(ex.response("RECENT")[1], [b"2"], "EXAMINE shows, claims nothing")
        a, b = self.client(), self.client()
        a.select("Rec")
        self.assertEqual(a.response("RECENT")[1], [b"2"], "the first SELECT claims them")
        b.select("Rec")
        self.assertEqual(b.response("RECENT")[1], [b"0"], "a second SELECT does not")
        self.assertIn(b"RECENT 0", m.status("Rec", "(RECENT)")[1][0])
        typ, data = a.search(None, "RECENT")
        self.assertEqual(data[0].split(), [b"1", b"2"])
        typ, data = b.search(None, "RECENT")
        self.assertEqual(data[0].split(), [])

    def test_expunged_elsewhere_is_never_served_empty(self):
        m = self.client()
        m.create("Exp")
        body = b"Subject: gone\r\n\r\n" + b"x" * 5000 + b"\r\n"
        uid = self.appenduid(m, "Exp", body)
        a, b = self.client(), self.client()
        a.select("Exp")
        b.select("Exp")
        b.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        b.expunge()
        typ, data = a.uid("FETCH", str(uid), "(BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple):
                self.assertEqual(item[1], body, "whole old bytes, or nothing at all")


class StoreContractSqlite(StoreContract):
    store = "store_sqlite"


if __name__ == "__main__":
    unittest.main()
