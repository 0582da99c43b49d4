"""tests/e2e/test_store_pgsql.py - the store suites again, on store_pgsql.

The IMAP, IMAP MIME/SEARCH/session, store contract, POP3 and imaptest
(scripted groups and stress) suites run
unchanged against a merpatid whose mailstore (and local delivery) is
store_pgsql on a private PostgreSQL 15 (tests/e2e/pg.py). The base
classes are reached through their modules, so the loader does not run
the Maildir versions twice. Skips when PostgreSQL is not installed.
"""
import unittest

import pg
import test_imap
import test_imap_mime
import test_imap_search
import test_imap_session
import test_imaptest
import test_pop3
import test_store_contract

SKIP = pg.skip_reason()


@unittest.skipIf(SKIP, SKIP or "")
class ImapPgsql(test_imap.Imap):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class ImapMimePgsql(test_imap_mime.ImapMime):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class ImapSearchPgsql(test_imap_search.ImapSearch):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class SessionPgsql(test_imap_session.Session):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class StoreContractPgsql(test_store_contract.StoreContract):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class Pop3Pgsql(test_pop3.Pop3):
    store = "store_pgsql"


@unittest.skipIf(SKIP, SKIP or "")
class ImaptestPgsql(test_imaptest.ImaptestMaildir):
    """imaptest's scripted groups and its 10/50-client stress on store_pgsql."""
    store = "store_pgsql"


if __name__ == "__main__":
    unittest.main()
