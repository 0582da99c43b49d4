"""tests/e2e/test_pg_harness.py - the private PostgreSQL of tests/e2e/pg.py.

Starts one, checks the test role can create a table over the socket and
over TCP, that a restart keeps the data, and that cleanup stops it and
removes its directory.
"""
import os
import unittest

import pg


@unittest.skipIf(pg.skip_reason(), pg.skip_reason() or "")
class PgHarnessTest(unittest.TestCase):
    def test_start_query_restart_cleanup(self):
        srv = pg.PgServer(password="pw-test")
        try:
            srv.start()
            srv.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (42)", user="postgres")
            self.assertEqual(srv.psql("SELECT v FROM t").strip(), "42")
            self.assertIn("dbname=mail", srv.conninfo)
            owner = srv.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='mail'")
            self.assertEqual(owner.strip(), "mail")
            pid = srv.pid
            srv.restart()
            self.assertNotEqual(srv.pid, pid)
            self.assertEqual(srv.psql("SELECT v FROM t").strip(), "42")
            listen = srv.psql("SHOW listen_addresses").strip()
            self.assertEqual(listen, "127.0.0.1")
        finally:
            pid, d = srv.pid, srv.dir
            srv.cleanup()
        self.assertFalse(os.path.exists(d))
        self.assertFalse(os.path.exists("/proc/%d/cmdline" % pid)
                         and open("/proc/%d/cmdline" % pid, "rb").read().startswith(b"/usr/lib/postgresql"))


if __name__ == "__main__":
    unittest.main()
