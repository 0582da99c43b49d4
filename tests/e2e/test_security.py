"""End to end: the holes of the security review (issue 15) stay closed.

Each test reproduces one finding against a real merpatid and checks the
defence: no relaying through a rewrite rule, no recipient acknowledged
and then dropped, no symlink followed by a root start, per-protocol
connection limits, and the lower items (DATA deadline, `user add` names,
stale tmp files).
"""
import imaplib
import os
import poplib
import pwd
import tempfile
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from harness import DOMAIN, Server, Session, free_port
from test_imap import imap_server

ALICE = "alice@" + DOMAIN
PLUS_RULE = 'rules = ( { match = "^(.+)\\\\+[^@]*@(.*)$"; action = "rewrite"; to = "$1@$2"; } );'


def open_session(port):
    s = Session(port)
    s.reply()
    s.cmd("EHLO client.test")
    return s


class RelayThroughRewrite(unittest.TestCase):
    """Relay permission is decided on the recipient as the client gave
    it, before any rewrite: the plus-addressing rule must not turn
    victim+x@evil.test into a relayed victim@evil.test."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(modules={"route_regex": PLUS_RULE})
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.add_user(ALICE)
        cls.srv.start()

    def test_rewritten_remote_recipient_refused(self):
        s = open_session(self.srv.port)
        self.addCleanup(s.close)
        s.cmd("MAIL FROM:<spammer@evil.test>")
        code, text = s.cmd("RCPT TO:<victim+x@evil.test>")
        self.assertIn(code, (550, 554), text)
        self.assertIn("Relay access denied", text[0])
        self.assertEqual(s.cmd("DATA")[0], 503)
        self.assertEqual(self.srv.queue_files(), [])

    def test_local_plus_address_still_delivered(self):
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.sendmail("x@y.test", ["alice+lists@" + DOMAIN],
                       "Subject: plus local\r\n\r\nhi\r\n")
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: plus local")), 1)


class RcptAfterBdat(unittest.TestCase):
    """Every recipient answered 250 gets the message: RCPT once a BDAT
    chunk has started the message is refused (503 5.5.1), not
    acknowledged and then dropped."""

    def test_rcpt_between_chunks_refused(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.add_user("bob@" + DOMAIN)
        srv.start()
        s = open_session(srv.port)
        self.addCleanup(s.close)
        s.cmd("MAIL FROM:<x@y.test>")
        self.assertEqual(s.cmd("RCPT TO:<%s>" % ALICE)[0], 250)
        first = b"Subject: chunked\r\n\r\n"
        s.send(b"BDAT %d\r\n" % len(first) + first)
        self.assertEqual(s.reply()[0], 250)
        code, text = s.cmd("RCPT TO:<bob@%s>" % DOMAIN)
        self.assertEqual(code, 503, text)
        self.assertTrue(text[0].startswith("5.5.1"), text)
        s.send(b"BDAT 7 LAST\r\nhello\r\n")
        self.assertEqual(s.reply()[0], 250)
        self.assertEqual(len(srv.mails_with(ALICE, "Subject: chunked")), 1)
        self.assertEqual(srv.mail_files("bob@" + DOMAIN), [])


def merpati_ids():
    import pwd
    pw = pwd.getpwnam("merpati")
    return pw.pw_uid, pw.pw_gid


@unittest.skipUnless(os.geteuid() == 0, "needs a root start (CI runs as root)")
class RootStartSymlinks(unittest.TestCase):
    """The merpati user owns the inside of state_dir: what it plants
    there must never make a root start chown, open or write anything
    outside it."""

    def setUp(self):
        self.srv = Server()
        self.addCleanup(self.srv.cleanup)
        self.srv.start()
        self.srv.stop()  # state_dir now exists, owned by merpati
        self.uid, self.gid = merpati_ids()
        self.precious = os.path.join(self.srv.dir, "precious")
        with open(self.precious, "w") as f:
            f.write("root's file\n")
        os.chmod(self.precious, 0o600)
        self.rootdir = os.path.join(self.srv.dir, "rootdir")
        os.mkdir(self.rootdir, 0o700)
        with open(os.path.join(self.rootdir, "inside"), "w") as f:
            f.write("x")

    def plant_symlink(self, target, name):
        path = os.path.join(self.srv.state, name)
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(target, path)
        os.lchown(path, self.uid, self.gid)

    def assert_untouched(self):
        with open(self.precious) as f:
            self.assertEqual(f.read(), "root's file\n")
        for p in (self.precious, self.rootdir, os.path.join(self.rootdir, "inside")):
            self.assertEqual(os.lstat(p).st_uid, 0, p)

    def test_pid_file_symlink_not_followed(self):
        self.plant_symlink(self.precious, "merpatid.pid")
        rc = self.srv.start(expect_fail=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("a symlink: refused", self.srv.log())
        self.assert_untouched()

    def test_queue_dir_symlink_refused(self):
        shutil.rmtree(os.path.join(self.srv.state, "queue"))
        self.plant_symlink(self.rootdir, "queue")
        rc = self.srv.start(expect_fail=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("refusing state_dir", self.srv.log())
        self.assert_untouched()

    def test_hard_link_in_queue_not_chowned(self):
        os.link(self.precious, os.path.join(self.srv.state, "queue", "tmp", "planted"))
        self.srv.start()
        self.assert_untouched()

    def test_writable_ancestor_refused(self):
        os.chmod(self.srv.dir, 0o777)  # anyone could swap var/
        rc = self.srv.start(expect_fail=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("refusing state_dir", self.srv.log())
        self.assertIn("ancestor", self.srv.log())


def read_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


class PerProtocolLimits(unittest.TestCase):
    """IMAP and SMTP count their connections apart: IMAP clients up to
    the IMAP limit do not lock out SMTP (one shared counter did)."""

    OWN = 'limits = { connections = 10; connections_per_ip = 10; };'

    def configure(self, imap_limits):
        self.srv = Server(modules={"imap": None})
        self.srv.imap_port = free_port()
        self.srv.modules["imap"] = (
            'plaintext_auth = true; %s listen = { plain = { address = "127.0.0.1"; port = %d; }; };'
            % (imap_limits, self.srv.imap_port))
        self.srv.write_config()
        self.addCleanup(self.srv.cleanup)
        self.srv.add_user(ALICE)

    def hold_imap(self, n):
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
            held.append(c)
            self.assertTrue(read_line(c).startswith("* OK"))
        return held

    def test_default_imap_limit_is_its_own(self):
        # No modules.imap.limits: IMAP takes the numbers of limits.*,
        # counted apart from SMTP's.
        self.configure("")
        self.srv.start("limits.connections=10", "limits.connections_per_ip=10")
        held = self.hold_imap(10)
        extra = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
        held.append(extra)
        self.assertTrue(read_line(extra).startswith("* BYE"))
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            self.assertEqual(s.noop()[0], 250)

    def test_imap_at_its_limit_leaves_smtp_alone(self):
        self.configure(self.OWN)
        self.srv.start("limits.connections=10", "limits.connections_per_ip=10")
        held = self.hold_imap(10)
        extra = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
        held.append(extra)
        self.assertTrue(read_line(extra).startswith("* BYE"))  # its own limit, its own words
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.sendmail("x@y.test", [ALICE], "Subject: while IMAP is full\r\n\r\nhi\r\n")
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: while IMAP is full")), 1)

    def test_fd_limit_raised_to_fit(self):
        self.configure(self.OWN)
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            self.srv.start("limits.connections=1000")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with open("/proc/%d/limits" % self.srv.proc.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        # 2 per connection (SMTP 1000 + IMAP 10) + 1024 in reserve
        self.assertGreaterEqual(int(line.split()[3]), 2 * 1010 + 1024)

    def test_fd_limit_out_of_reach_is_a_clear_error(self):
        self.configure(self.OWN)
        rc = self.srv.start("limits.connections=1000000",
                            "modules.imap.limits.connections=1000000", expect_fail=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("file descriptors", self.srv.log())
        self.assertIn("modules.imap.limits.connections 1000000", self.srv.log())


class LowerItems(unittest.TestCase):
    """Issue 15 item 10: users.db read-only in the daemon, mailbox names
    that `user add` refuses."""

    def test_users_db_read_only_after_start(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.start()
        fds = "/proc/%d/fd" % srv.proc.pid
        flags = []
        for fd in os.listdir(fds):
            try:
                target = os.readlink(os.path.join(fds, fd))
            except OSError:
                continue
            if target.endswith("/users.db"):
                with open("/proc/%d/fdinfo/%s" % (srv.proc.pid, fd)) as f:
                    flags.append(int([l for l in f if l.startswith("flags:")][0].split()[1], 8))
        self.assertTrue(flags, "users.db not open in the daemon")
        self.assertTrue(all(f & os.O_ACCMODE == os.O_RDONLY for f in flags), flags)
        srv.add_user("late@" + DOMAIN, "pw")  # the CLI still writes it
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("x@y.test", ["late@" + DOMAIN], "Subject: late\r\n\r\nhi\r\n")
        self.assertEqual(len(srv.mails_with("late@" + DOMAIN, "Subject: late")), 1)

    def test_user_add_refuses_path_names(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        for bad in ("../x@" + DOMAIN, "a/b@" + DOMAIN, "x@../../etc", ".x@" + DOMAIN,
                    "x@" + DOMAIN + "/..", "x@a\\b.test"):
            r = srv.cli("user", "add", bad, input="pw\n")
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("refused", r.stderr, bad)
        self.assertEqual(srv.cli("user", "list").stdout, "")
        srv.add_user("o.k-1+tag@" + DOMAIN)  # ordinary names still work


class DataDeadline(unittest.TestCase):
    """A message must arrive within limits.data_deadline however it
    trickles, and a timeout inside DATA is told with a 421."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.add_user(ALICE)
        cls.srv.start('limits.data_timeout="2s"', 'limits.data_deadline="3s"')

    def start_data(self):
        s = open_session(self.srv.port)
        self.addCleanup(s.close)
        s.cmd("MAIL FROM:<slow@y.test>")
        s.cmd("RCPT TO:<%s>" % ALICE)
        self.assertEqual(s.cmd("DATA")[0], 354)
        return s

    def trickle_until_closed(self, s, limit):
        begin = time.time()
        s.sock.settimeout(0.4)
        while time.time() - begin < limit:
            try:
                s.send(b"x")
                data = s.sock.recv(4096)
                s.buf += data
                if not data or b"\n" in s.buf:
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        return time.time() - begin

    def test_trickling_data_cut_at_deadline(self):
        s = self.start_data()
        elapsed = self.trickle_until_closed(s, 10)
        self.assertLess(elapsed, 6)  # 3s deadline, not the 2s idle timeout per byte
        s.sock.settimeout(5)
        code, text = s.reply()
        self.assertEqual(code, 421)
        self.assertTrue(text[0].startswith("4.4.2"), text)
        time.sleep(0.3)
        self.assertEqual(self.srv.queue_files(), [])
        self.assertEqual(os.listdir(os.path.join(self.srv.state, "queue", "tmp")), [])

    def test_idle_inside_data_gets_421(self):
        s = self.start_data()
        s.send("Subject: half\r\n")
        s.sock.settimeout(6)
        code, text = s.reply()
        self.assertEqual(code, 421)
        self.assertIn("Timeout", text[0])

    def test_trickling_bdat_cut_at_deadline(self):
        s = open_session(self.srv.port)
        self.addCleanup(s.close)
        s.cmd("MAIL FROM:<slow@y.test>")
        s.cmd("RCPT TO:<%s>" % ALICE)
        codes = []
        s.sock.settimeout(5)
        begin = time.time()
        try:
            while time.time() - begin < 10:
                s.send(b"BDAT 2\r\n\r\n")  # one line a second
                codes.append(s.reply()[0])
                if codes[-1] != 250:
                    break
                time.sleep(1)
        except (EOFError, OSError):
            pass
        self.assertLess(time.time() - begin, 7)
        self.assertEqual(codes[-1], 421)


class StaleTmpFiles(unittest.TestCase):
    """tmp/ files a crash left behind (Maildir convention: unchanged for
    36 hours; shrunk to 2 s here) are removed, from queue/tmp at start
    and from a Maildir folder's tmp/ when it is opened. Fresh ones stay,
    also one whose mtime is old but whose ctime is not (an APPEND sets
    the INTERNALDATE as mtime before its rename); a symlink is removed
    without touching its target."""

    MAX_AGE = 2

    def plant(self, tmp, outside):
        """Files a crashed daemon (as server.user) left: what must go."""
        for name in ("crashed", "crashed.st"):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("left by a crash")
            if os.geteuid() == 0:  # a root start hands root's files over, which is a change
                user = pwd.getpwnam("merpati")
                os.chown(path, user.pw_uid, user.pw_gid)
        os.symlink(outside, os.path.join(tmp, "link"))
        return ["crashed", "crashed.st", "link"]

    def plant_fresh(self, tmp):
        now = time.time()
        for name, hours in (("writing", 0), ("appending", 100)):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("being saved")
            os.utime(path, (now - hours * 3600, now - hours * 3600))
        return ["appending", "writing"]

    def outside_file(self, srv):
        outside = os.path.join(srv.dir, "outside")
        with open(outside, "w") as f:
            f.write("not the store's")
        return outside

    def test_stale_queue_tmp_removed_at_start(self):
        srv = Server(extra_config='queue = { tmp_max_age = "%ds"; };' % self.MAX_AGE)
        self.addCleanup(srv.cleanup)
        srv.start()
        srv.stop()
        tmp = os.path.join(srv.state, "queue", "tmp")
        outside = self.outside_file(srv)
        self.plant(tmp, outside)
        time.sleep(self.MAX_AGE + 1.1)
        fresh = self.plant_fresh(tmp)
        srv.start()
        deadline = time.time() + 5  # the port is up before the queue runner starts
        while len(os.listdir(tmp)) > len(fresh) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(sorted(os.listdir(tmp)), fresh)
        self.assertTrue(os.path.exists(outside))
        self.assertTrue(srv.wait_log("removed 3 file(s) unchanged for queue.tmp_max_age", 5))

    def test_stale_maildir_tmp_removed_on_open(self):
        srv = imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start('server.mailstore="deliver_maildir"',
                  'modules.deliver_maildir.tmp_max_age="%ds"' % self.MAX_AGE)
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
        self.addCleanup(m.shutdown)
        m.login(ALICE, "pw")
        self.assertEqual(m.create("Work")[0], "OK")
        outside = self.outside_file(srv)
        tmps = [os.path.join(srv.maildir(ALICE), folder, "tmp") for folder in ("", ".Work")]
        for tmp in tmps:
            self.plant(tmp, outside)
        time.sleep(self.MAX_AGE + 1.1)
        fresh = [self.plant_fresh(tmp) for tmp in tmps][0]
        self.assertEqual(m.select("INBOX")[0], "OK")
        self.assertEqual(m.select("Work")[0], "OK")
        for tmp in tmps:
            self.assertEqual(sorted(os.listdir(tmp)), fresh, tmp)
        self.assertTrue(os.path.exists(outside))


class OverLimitLiteral(unittest.TestCase):
    """A literal over the limit is refused with the command's tag, and
    its bytes are never read as commands (issue 15 item 6)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = imap_server("deliver_maildir")
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.add_user(ALICE, "pw")
        cls.srv.start('server.mailstore="deliver_maildir"', "modules.imap.max_literal=65536")

    def connect(self, login=True):
        s = socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        f.readline()
        if login:
            s.sendall(b"a LOGIN %s pw\r\n" % ALICE.encode())
            self.assertTrue(f.readline().startswith(b"a OK"))
        return s, f

    def replies_until_closed(self, s, f, then=b""):
        if then:
            try:
                s.sendall(then)
            except OSError:
                pass
        lines = []
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                lines.append(line)
        except (OSError, socket.timeout):
            pass
        return lines

    def folders(self):
        s, f = self.connect()
        s.sendall(b"l LIST \"\" \"*\"\r\nq LOGOUT\r\n")
        return b"".join(self.replies_until_closed(s, f))

    def check(self, command, size, login):
        s, f = self.connect(login)
        payload = (b"z1 CREATE injected\r\n" * (size // 20 + 1))[:size]
        s.sendall(command % size + payload)
        lines = self.replies_until_closed(s, f, b"\r\nq LOGOUT\r\n")
        self.assertTrue(lines, "no reply at all")
        tagged = [x for x in lines if not x.startswith(b"*")]
        self.assertTrue(tagged and tagged[0].startswith(b"t1 BAD"), lines[:4])
        self.assertFalse(any(x.startswith(b"z1") for x in lines), lines[:4])
        self.assertNotIn(b"injected", self.folders())

    def test_non_synchronising_append_over_limit(self):
        self.check(b"t1 APPEND INBOX {%d+}\r\n", 70000, True)

    def test_non_synchronising_login_over_limit(self):
        self.check(b"t1 LOGIN {%d+}\r\n", 9000, False)

    # Found by tests/fuzz/fuzz_imap_literal: three more ways a literal's
    # bytes reached the command reader.
    def test_literal_on_a_line_over_max_line(self):
        self.check(b"t1 NOOP " + b"x" * 70000 + b" {%d+}\r\n", 40, True)

    def test_literal_size_of_13_digits(self):
        self.check(b"t1 APPEND INBOX {%013d+}\r\n", 40, True)

    def test_literal_on_a_line_past_the_command_limit(self):
        # max_literal 65536 + max_line 65536: the second line is within
        # max_line but the command is over their sum.
        self.check(b"t1 APPEND INBOX {65536+}\r\n" + b"y" * 65536 + b" " + b"x" * 65520 +
                   b" {%d+}\r\n", 40, True)


class FetchReplyStreamed(unittest.TestCase):
    """FETCH of many bodies to a client that does not read holds one
    message in memory, not the whole reply (issue 15 item 8: 64 x
    BODY.PEEK[] of a 10 MiB message held 676 MB)."""

    MESSAGE_MB = 2
    COPIES = 64

    def rss_mb(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        self.fail("no VmRSS")

    def test_reply_to_non_reading_client_is_bounded(self):
        srv = imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start('server.mailstore="deliver_maildir"', "modules.imap.max_literal=4000000")
        line = b"y" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (self.MESSAGE_MB * 1000)
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=30)
        m.login(ALICE, "pw")
        self.assertEqual(m.append("INBOX", None, None, body)[0], "OK")
        m.logout()
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(("127.0.0.1", srv.imap_port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a LOGIN %s pw\r\nb SELECT INBOX\r\n" % ALICE.encode())
        while not f.readline().startswith(b"b OK"):
            pass
        before = self.rss_mb(srv.proc.pid)
        s.sendall(b"c FETCH 1 (" + b" ".join([b"BODY.PEEK[]"] * self.COPIES) + b")\r\n")
        time.sleep(2)  # the daemon writes until the socket buffers are full
        grown = self.rss_mb(srv.proc.pid) - before
        self.assertLess(grown, 8 * self.MESSAGE_MB,
                        "%.0f MB held for a reply of %d MB" % (grown, self.MESSAGE_MB * self.COPIES))
        # the streamed reply is still whole: 64 literals of the message, then OK
        header = f.readline()
        self.assertTrue(header.startswith(b"* 1 FETCH (BODY[] {%d}" % len(body)), header[:80])
        for k in range(self.COPIES):
            self.assertEqual(f.read(len(body)), body)
            tail = f.readline()
            if k + 1 < self.COPIES:
                self.assertEqual(tail, b" BODY[] {%d}\r\n" % len(body))
        self.assertEqual(tail, b")\r\n")
        self.assertTrue(f.readline().startswith(b"c OK"))


class ListPatternCost(unittest.TestCase):
    """LIST wildcards cost at most pattern x name steps: a pattern that
    makes a backtracking matcher exponential is answered at once
    (issue 15 item 7)."""

    def test_hostile_pattern_answered_promptly(self):
        srv = imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start('server.mailstore="deliver_maildir"')
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=5)
        self.addCleanup(m.shutdown)
        m.login(ALICE, "pw")
        name = "a" * 60
        self.assertEqual(m.create(name)[0], "OK")
        self.assertEqual(m.create("x/" + name)[0], "OK")
        begin = time.time()
        typ, data = m.list('""', '"' + "*a" * 12 + 'b"')  # no match: every split tried
        self.assertEqual((typ, data), ("OK", [None]))
        self.assertLess(time.time() - begin, 2)
        typ, data = m.list('""', '"' + "*a" * 30 + '"')
        self.assertEqual(len(data), 2, data)
        typ, data = m.list('""', '"' + "%a" * 30 + '"')  # '%' does not cross '/'
        self.assertEqual(len(data), 1, data)
        self.assertIn(name.encode(), data[0])
        self.assertTrue(m.list('""', '"%/' + "a%" * 30 + '"')[1][0].endswith(b' "x/' + name.encode() + b'"'))


class IdleWakesOnChange(unittest.TestCase):
    """IDLE waits on the store's change descriptor (inotify, eventfd)
    instead of rescanning every second: a delivery and another
    session's flag change still reach the idling client at once
    (the fallback rescan is a minute away). Issue 15 item 7."""

    def start_idle(self, srv, select):
        """A raw session idling on INBOX: its socket and reader."""
        s = socket.create_connection(("127.0.0.1", srv.imap_port), timeout=10)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a LOGIN %s pw\r\nb %s INBOX\r\nc IDLE\r\n" % (ALICE.encode(), select))
        while not f.readline().startswith(b"+"):
            pass
        return s, f

    def idle_sees(self, store):
        srv = imap_server(store)
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start('server.mailstore="%s"' % store)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("a@x.test", [ALICE], "Subject: one\r\n\r\nfirst\r\n")
        other = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
        self.addCleanup(other.shutdown)
        other.login(ALICE, "pw")
        deadline = time.time() + 10
        while other.select("INBOX")[1] != [b"1"] and time.time() < deadline:
            time.sleep(0.05)
        s, f = self.start_idle(srv, b"SELECT")
        time.sleep(1.2)  # past the first one-second look of a polling IDLE
        s.settimeout(3)  # "at once": well under the one-minute fallback
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("a@x.test", [ALICE], "Subject: two\r\n\r\nsecond\r\n")
        self.assertEqual(f.readline(), b"* 2 EXISTS\r\n")
        time.sleep(1.2)
        other.store("1", "+FLAGS", "\\Flagged")
        line = f.readline()
        while line.startswith(b"* 1 RECENT"):  # SQLite reports \Recent after EXISTS
            line = f.readline()
        self.assertRegex(line, rb"^\* 1 FETCH \(.*FLAGS \(.*\\Flagged")
        s.sendall(b"DONE\r\n")
        self.assertTrue(f.readline().startswith(b"c OK"))

    def test_maildir(self):
        self.idle_sees("deliver_maildir")

    def test_sqlite(self):
        self.idle_sees("store_sqlite")

    def test_maildir_past_the_inotify_instance_limit(self):
        """One inotify instance serves every idling session: past the
        kernel's per-user limit (fs.inotify.max_user_instances, 128 by
        default) IDLE still waits on events instead of polling."""
        sessions = 140
        srv = imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        # IMAP takes limits.* when it has no limits of its own
        srv.start('server.mailstore="deliver_maildir"', "limits.connections_per_ip=%d" % (sessions + 10))
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("a@x.test", [ALICE], "Subject: one\r\n\r\nfirst\r\n")
        idlers = []
        for _ in range(sessions):
            idlers.append(self.start_idle(srv, b"EXAMINE"))
        fds = os.listdir("/proc/%d/fd" % srv.proc.pid)
        links = []
        for fd in fds:
            try:
                links.append(os.readlink("/proc/%d/fd/%s" % (srv.proc.pid, fd)))
            except OSError:
                pass
        # one for every IDLE session, one for the maildrop pickup (core/maildrop.c)
        self.assertEqual(links.count("anon_inode:inotify"), 2, "inotify instances")
        time.sleep(1.2)  # past the first one-second look of a polling IDLE
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("a@x.test", [ALICE], "Subject: two\r\n\r\nsecond\r\n")
        for s, f in (idlers[0], idlers[-1]):
            s.settimeout(3)
            self.assertEqual(f.readline(), b"* 2 EXISTS\r\n")
        for s, f in idlers:
            s.sendall(b"DONE\r\nd LOGOUT\r\n")
        for s, f in (idlers[0], idlers[-1]):
            line = f.readline()
            while line.startswith(b"*"):
                line = f.readline()
            self.assertTrue(line.startswith(b"c OK"), line)


BOB = "bob@" + DOMAIN


class Confinement(unittest.TestCase):
    """After the privilege drop the daemon runs with no_new_privs and,
    where the kernel has Landlock, inside a domain that stops at the
    configured paths: a Maildir symlinked out of the mail root cannot
    be written, while delivery, IMAP and POP3 go on inside it."""

    def server(self, *overrides):
        srv = imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.pop_port = free_port()
        srv.modules["pop3"] = ('plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; '
                               'port = %d; }; };' % srv.pop_port)
        srv.write_config()
        srv.add_user(ALICE, "pw")
        srv.add_user(BOB, "pw")
        outside = tempfile.mkdtemp(prefix="merpati-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        os.chmod(outside, 0o777)
        domain_dir = os.path.join(srv.state, "mail", DOMAIN)
        os.makedirs(domain_dir, exist_ok=True)
        for d in (os.path.dirname(domain_dir), domain_dir):
            shutil.chown(d, "merpati", "merpati")
        os.symlink(outside, os.path.join(domain_dir, "bob"))
        srv.start('server.mailstore="deliver_maildir"', *overrides)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            c.sendmail("a@x.test", [ALICE], "Subject: in\r\n\r\ninside\r\n")
            c.sendmail("a@x.test", [BOB], "Subject: out\r\n\r\noutside\r\n")
        return srv, outside

    def outside_files(self, outside):
        return [f for _, _, files in os.walk(outside) for f in files]

    def test_confined(self):
        srv, outside = self.server()
        confined = srv.wait_log("landlock: confined to", 5)
        if not confined:  # a kernel without Landlock: the notice, still no_new_privs
            self.assertIn("landlock: not available", srv.log())
        with open("/proc/%d/status" % srv.proc.pid) as f:
            self.assertIn("NoNewPrivs:\t1", f.read())
        srv.wait_for_mail(ALICE, 1)
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
        m.login(ALICE, "pw")
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
        self.assertIn(b"inside", m.fetch("1", "(BODY[TEXT])")[1][0][1])
        self.assertEqual(m.create("Archive")[0], "OK")
        self.assertEqual(m.copy("1", "Archive")[0], "OK")
        m.logout()
        p = poplib.POP3("127.0.0.1", srv.pop_port, timeout=10)
        p.user(ALICE)
        p.pass_("pw")
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        if confined:
            self.assertTrue(srv.wait_log("to=<%s>" % BOB, 10))
            time.sleep(0.5)
            self.assertEqual(self.outside_files(outside), [])

    def test_switched_off_reaches_outside(self):
        """The check above can fail: without the domain the symlinked
        Maildir outside is written."""
        srv, outside = self.server("server.landlock=false")
        self.assertTrue(srv.wait_log("landlock: off", 5))
        deadline = time.time() + 10
        while not self.outside_files(outside) and time.time() < deadline:
            time.sleep(0.1)
        self.assertNotEqual(self.outside_files(outside), [])


if __name__ == "__main__":
    unittest.main()
