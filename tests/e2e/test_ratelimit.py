"""End to end: rate limits and early rejects (issue 20).

The ratelimit module's message, recipient and per-user limits over a
short sliding window ("3s": a window is forgotten at most window/8 late,
so the tests wait window + 1 s, bounded); the core's AUTH failure limit
per client address across 20 parallel connections (threads released
together by a barrier); the pregreet test behind smtp.greeting_delay.
"""
import base64
import imaplib
import poplib
import smtplib
import socket
import threading
import time
import unittest

from harness import DOMAIN, Server, Session, free_port

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
MESSAGE = "Subject: rate\r\n\r\nbody\r\n"


def auth_limit(count, window):
    """-o overrides: the harness writes the limits group itself."""
    return ("limits.auth_failures_per_ip=%d" % count,
            'limits.auth_failures_window="%s"' % window)


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def limit(count, window):
    return '{ count = %d; window = "%s"; }' % (count, window)


def wait_until(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class RateLimits(unittest.TestCase):
    """The ratelimit module on MAIL FROM and RCPT TO."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(
            listeners={"submission": 'auth = "required"; plaintext_auth = true;'},
            modules={"ratelimit": "messages_per_ip = %s; recipients_per_ip = %s; "
                     "messages_per_user = %s;"
                     % (limit(3, "3s"), limit(5, "3s"), limit(2, "3s"))})
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.add_user(ALICE, "alicepw")
        cls.srv.add_user(BOB, "bobpw")
        cls.srv.start()

    def setUp(self):
        # every test starts with the windows of the tests before it gone
        time.sleep(3.5)

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.srv.port, timeout=15)
        self.addCleanup(s.close)
        s.ehlo("client.example")
        return s

    def submission(self, user, password):
        s = smtplib.SMTP("127.0.0.1", self.srv.ports["submission"], timeout=15)
        self.addCleanup(s.close)
        s.ehlo("client.example")
        s.login(user, password)
        return s

    def mail(self, s, sender="sender@remote.example"):
        code, text = s.mail(sender)
        s.rset()
        return code, text.decode()

    def test_messages_per_ip_and_window_slides(self):
        s = self.smtp()
        codes = [self.mail(s)[0] for _ in range(3)]
        self.assertEqual(codes, [250, 250, 250])
        code, text = self.mail(s)
        self.assertEqual(code, 451)
        self.assertTrue(text.startswith("4.7.1"), text)
        self.assertIn("messages_per_ip", text)
        self.assertIn("127.0.0.1", text)
        # a new connection from the same address shares the count
        self.assertEqual(self.mail(self.smtp())[0], 451)
        self.assertTrue(wait_until(lambda: "ratelimit: refused, client "
                                   "127.0.0.1 over messages_per_ip" in self.srv.log(), 5))
        # the window slides: accepted again within window + 1/8, bounded
        self.assertTrue(wait_until(lambda: self.mail(s)[0] == 250, 6),
                        self.srv.log()[-1500:])

    def test_refused_message_is_not_delivered(self):
        before = len(self.srv.mail_files(BOB))  # other tests mail bob too
        s = self.smtp()
        for _ in range(3):
            s.sendmail("sender@remote.example", [BOB], MESSAGE)
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("sender@remote.example", [BOB], MESSAGE)
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertEqual(len(self.srv.wait_for_mail(BOB, before + 3)), before + 3)
        time.sleep(0.5)
        self.assertEqual(len(self.srv.mail_files(BOB)), before + 3)

    def test_recipients_per_ip(self):
        s = self.smtp()
        self.assertEqual(s.mail("sender@remote.example")[0], 250)
        codes = []
        for i in range(7):
            code, text = s.rcpt(BOB if i % 2 else ALICE)
            codes.append(code)
        self.assertEqual(codes, [250] * 5 + [451] * 2)
        self.assertIn(b"recipients_per_ip", text)
        # the transaction goes on with the recipients it has
        code, _ = s.data(MESSAGE)
        self.assertEqual(code, 250)

    def test_messages_per_user(self):
        a = self.submission(ALICE, "alicepw")
        self.assertEqual(self.mail(a, ALICE)[0], 250)
        self.assertEqual(self.mail(a, ALICE)[0], 250)
        code, text = self.mail(a, ALICE)
        self.assertEqual(code, 451)
        self.assertIn("messages_per_user", text)
        self.assertIn(ALICE, text)
        # bob is a user of his own, and the address has room for one more
        b = self.submission(BOB, "bobpw")
        self.assertEqual(self.mail(b, BOB)[0], 250)
        self.assertTrue(wait_until(lambda: self.mail(a, ALICE)[0] == 250, 6))


class SenderDomainLimit(unittest.TestCase):
    def test_per_sender_domain_and_null_sender(self):
        srv = Server(modules={"ratelimit": "messages_per_sender_domain = %s;"
                              % limit(2, "1h")})
        self.addCleanup(srv.cleanup)
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=15) as s:
            s.ehlo("c")
            codes = []
            for sender in ("a@Spam.example", "b@spam.example", "c@SPAM.example",
                           "d@other.example", "", ""):
                codes.append(s.mail(sender)[0])
                s.rset()
            # case does not matter; <> has no domain and is not counted
            self.assertEqual(codes, [250, 250, 451, 250, 250, 250])

    def test_bad_config_refused(self):
        for conf, why in (("messages_per_ip = { count = 0; window = \"1h\"; };", "count"),
                          ("messages_per_ip = { count = 5; };", "window"),
                          ("messages_per_planet = { count = 5; window = \"1h\"; };",
                           "messages_per_planet"),
                          ("table_size = 0;", "table_size")):
            srv = Server(modules={"ratelimit": conf})
            self.addCleanup(srv.cleanup)
            self.assertNotEqual(srv.start(expect_fail=True), 0, conf)
            self.assertIn(why, srv.log(), conf)


class AuthFailures(unittest.TestCase):
    """limits.auth_failures_per_ip: the core's limit across connections."""

    def server(self, overrides, config=""):
        srv = Server(listeners={"submission": 'auth = "required"; plaintext_auth = true;'},
                     extra_config=config)
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "alicepw")
        srv.start(*overrides)
        return srv

    def test_guessing_over_parallel_connections_is_cut_off(self):
        srv = self.server(auth_limit(10, "1h"))
        clients = 20
        barrier = threading.Barrier(clients, timeout=20)
        results = [None] * clients

        def guesser(n):
            codes = []
            try:
                s = Session(srv.ports["submission"], timeout=30)
                try:
                    s.reply()
                    s.cmd("EHLO guesser%d" % n)
                    barrier.wait()
                    for i in range(3):
                        code, text = s.cmd("AUTH PLAIN " + plain(ALICE, "guess%d-%d" % (n, i)))
                        codes.append((code, text[0]))
                        if code != 535:
                            break
                finally:
                    s.close()
            except (OSError, EOFError, threading.BrokenBarrierError) as e:
                codes.append(("error", str(e)))
            results[n] = codes

        threads = [threading.Thread(target=guesser, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "guessers hung")
        replies = [r for codes in results for r in codes]
        self.assertFalse([r for r in replies if r[0] == "error"], replies)
        wrong = [r for r in replies if r[0] == 535]
        cut = [r for r in replies if r[0] == 421]
        # exactly the limit of passwords was ever checked, whatever the race
        self.assertEqual(len(wrong), 10, replies)
        self.assertEqual(len(wrong) + len(cut), len(replies), replies)
        self.assertEqual(len(cut), clients, replies)  # every connection ends cut off
        self.assertTrue(all(t.startswith("4.7.0") for _, t in cut), cut)
        # even the right password is not tried from this address now
        s = Session(srv.ports["submission"])
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, "alicepw"))[0], 421)
        self.assertIn("AUTH refused: too many failed logins from client=[127.0.0.1]",
                      srv.log())

    def test_parallel_good_logins_wait_instead_of_failing(self):
        # a limit of 2 leaves 2 checks at a time: the other 18 wait their turn
        srv = self.server(auth_limit(2, "1h"))
        clients = 20
        barrier = threading.Barrier(clients, timeout=20)
        codes = [None] * clients

        def login(n):
            try:
                s = Session(srv.ports["submission"], timeout=30)
                try:
                    s.reply()
                    s.cmd("EHLO good%d" % n)
                    barrier.wait()
                    codes[n] = s.cmd("AUTH PLAIN " + plain(ALICE, "alicepw"))[0]
                finally:
                    s.close()
            except (OSError, EOFError, threading.BrokenBarrierError) as e:
                codes[n] = str(e)

        threads = [threading.Thread(target=login, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "logins hung")
        self.assertEqual(codes, [235] * clients)

    def test_window_slides_and_success_is_not_counted(self):
        srv = self.server(auth_limit(2, "3s"))

        def attempt(password):
            s = Session(srv.ports["submission"])
            try:
                s.reply()
                s.cmd("EHLO c")
                return s.cmd("AUTH PLAIN " + plain(ALICE, password))[0]
            finally:
                s.close()

        # successful logins use up nothing
        self.assertEqual([attempt("alicepw") for _ in range(4)], [235] * 4)
        self.assertEqual([attempt("bad1"), attempt("bad2")], [535, 535])
        self.assertEqual(attempt("alicepw"), 421)
        self.assertTrue(wait_until(lambda: attempt("alicepw") == 235, 8))

    def test_off(self):
        srv = self.server(auth_limit(0, "1h"), "smtp = { auth_failures = 100; };")
        s = Session(srv.ports["submission"])
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        codes = [s.cmd("AUTH PLAIN " + plain(ALICE, "bad%d" % i))[0] for i in range(3)]
        codes.append(s.cmd("AUTH PLAIN " + plain(ALICE, "alicepw"))[0])
        self.assertEqual(codes, [535, 535, 535, 235])


class AuthFailuresAcrossProtocols(unittest.TestCase):
    """IMAP and POP3 logins count against the same per-address limit."""

    def test_imap_pop3_and_smtp_share_the_count(self):
        srv = Server(listeners={"submission": 'auth = "required"; plaintext_auth = true;'},
                     modules={"imap": None, "pop3": None})
        self.addCleanup(srv.cleanup)
        imap_port, pop_port = free_port(), free_port()
        srv.modules["imap"] = ('plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; '
                               'port = %d; }; };' % imap_port)
        srv.modules["pop3"] = ('plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; '
                               'port = %d; }; };' % pop_port)
        srv.write_config()
        srv.add_user(ALICE, "alicepw")
        srv.start(*auth_limit(3, "1h"))

        def imap_login(password):
            m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=15)
            try:
                m.login(ALICE, password)
                m.logout()
                return "OK"
            except imaplib.IMAP4.error as e:
                return str(e)
            finally:
                try:
                    m.shutdown()
                except OSError:
                    pass  # already closed by LOGOUT or the server

        def pop_login(password):
            p = poplib.POP3("127.0.0.1", pop_port, timeout=15)
            try:
                p.user(ALICE)
                p.pass_(password)
                p.quit()
                return "OK"
            except poplib.error_proto as e:
                return e.args[0].decode()
            finally:
                p.close()

        self.assertEqual(imap_login("alicepw"), "OK")
        self.assertIn("AUTHENTICATIONFAILED", imap_login("bad1"))
        self.assertIn("-ERR [AUTH] Authentication failed", pop_login("bad2"))
        self.assertIn("AUTHENTICATIONFAILED", imap_login("bad3"))
        # three failures over two protocols: the address is cut off everywhere
        self.assertIn("Too many failed logins", imap_login("alicepw"))
        self.assertIn("Too many failed logins", pop_login("alicepw"))
        s = Session(srv.ports["submission"])
        self.addCleanup(s.close)
        s.reply()
        s.cmd("EHLO c")
        self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, "alicepw"))[0], 421)
        self.assertIn("login refused: too many failed logins from client=[127.0.0.1]",
                      srv.log())


class Pregreet(unittest.TestCase):
    def server(self, config):
        srv = Server(extra_config=config)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def test_early_talker_rejected(self):
        srv = self.server('smtp = { greeting_delay = "2s"; };')
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"EHLO early.example\r\nMAIL FROM:<spam@early.example>\r\n")
            start = time.time()
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            # rejected at once, without a 220, and closed
            self.assertTrue(data.startswith(b"554 5.5.1 "), data)
            self.assertNotIn(b"220", data)
            self.assertLess(time.time() - start, 1.5)
        self.assertTrue(wait_until(lambda: "pregreet: client [127.0.0.1] talked before "
                                   "the greeting" in srv.log(), 5))

    def test_polite_client_served_after_delay(self):
        srv = self.server('smtp = { greeting_delay = "2s"; };')
        srv.add_user(BOB)
        start = time.time()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            self.assertGreaterEqual(time.time() - start, 1.9)
            s.sendmail("sender@remote.example", [BOB], MESSAGE)
        self.assertEqual(len(srv.wait_for_mail(BOB)), 1)

    def test_no_delay_by_default(self):
        srv = self.server("")
        start = time.time()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            # talking first is not detected without a delay: served as usual
            sock.sendall(b"EHLO early.example\r\n")
            s = Session.__new__(Session)
            s.sock, s.buf = sock, b""
            self.assertEqual(s.reply()[0], 220)
            self.assertEqual(s.reply()[0], 250)
        self.assertLess(time.time() - start, 1.5)


if __name__ == "__main__":
    unittest.main()
