"""tests/e2e/test_metrics.py - the metrics listener (issue 22).

A real scrape with curl, parsed by prometheus_client's text parser;
the counters must move as mail flows: SMTP in, local delivery, a failed
SMTP AUTH, an IMAP login; IMAP and POP3 sessions move exactly their
commands' and replies' counters (ok/no/bad, ok/err), an unknown command
counts as "other" and 200 distinct garbage verbs add no series. Also
the responder's answers to requests it must refuse, and check-config's
refusal of a non-loopback address.
"""
import base64
import imaplib
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, free_port  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

ALICE = "alice@example.test"


def metrics_server():
    srv = Server(modules={"imap": None, "pop3": None})
    srv.metrics_port = free_port()
    srv.imap_port, srv.imaps_port, srv.pop_port = free_port(), free_port(), free_port()
    # errors = 1000: one connection can send the 200 garbage verbs
    srv.modules["imap"] = ('plaintext_auth = true; errors = 1000; listen = { plain = { '
                           'address = "127.0.0.1"; port = %d; }; tls = { address = "127.0.0.1"; '
                           'port = %d; }; };' % (srv.imap_port, srv.imaps_port))
    srv.modules["pop3"] = ('plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; '
                           'port = %d; }; };' % srv.pop_port)
    srv.extra = ('metrics = { address = "127.0.0.1"; port = %d; };\n'
                 'relay_networks = [ "127.0.0.0/8" ];' % srv.metrics_port)
    srv.listeners = {"submission": 'auth = "required"; tls = "starttls"; plaintext_auth = true;'}
    srv.ports["submission"] = free_port()
    srv.write_config()
    return srv


def scrape(port):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-",
                        "http://127.0.0.1:%d/metrics" % port],
                       capture_output=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError("curl failed: %r" % r.stderr)
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    return head, body


def samples(body):
    """{(sample name, frozenset(labels)): value} from the parsed text."""
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(vals, name, **labels):
    return vals.get((name, frozenset(labels.items())), 0.0)


def family_values(vals, name, protocol):
    """{other label's value: sample value} of one protocol's samples in
    family name (command, class or result: the label beside protocol)."""
    out = {}
    for (n, labels), v in vals.items():
        labels = dict(labels)
        if n == name and labels.pop("protocol", None) == protocol:
            (key,) = labels.values()
            out[key] = v
    return out


def moved_by_label(before, after, name, protocol):
    """The labels of one protocol's series in name that moved, and by how much."""
    a, b = family_values(after, name, protocol), family_values(before, name, protocol)
    return {k: v - b.get(k, 0.0) for k, v in a.items() if v != b.get(k, 0.0)}


def raw_request(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got.decode("utf-8", "replace")
            got += chunk


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = metrics_server()
        cls.addClassCleanup(cls.srv.cleanup)
        cls.srv.add_user(ALICE, "pw")
        cls.srv.start('server.mailstore="deliver_maildir"')
        if not __import__("harness").wait_port(cls.srv.metrics_port, timeout=5):
            raise AssertionError("metrics port not listening:\n" + cls.srv.log()[-2000:])
        # a message for IMAP FETCH and POP3 RETR
        with smtplib.SMTP("127.0.0.1", cls.srv.port, timeout=10) as s:
            s.sendmail("bob@remote.test", [ALICE], "Subject: first\r\n\r\nhello\r\n")
        cls.srv.wait_for_mail(ALICE, 1)

    def test_counters_move_as_mail_flows(self):
        head, body = scrape(self.srv.metrics_port)
        self.assertIn("200 OK", head.splitlines()[0])
        self.assertIn("text/plain", head)
        before = samples(body)

        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.sendmail("bob@remote.test", [ALICE],
                       "Subject: metrics\r\nMessage-ID: <m1@remote.test>\r\n\r\nhello\r\n")
        self.srv.wait_for_mail(ALICE, 1)
        with smtplib.SMTP("127.0.0.1", self.srv.ports["submission"], timeout=10) as s:
            s.ehlo()
            code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
                b"\0" + ALICE.encode() + b"\0wrong").decode())
            self.assertEqual(code, 535)
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        m = imaplib.IMAP4_SSL("127.0.0.1", self.srv.imaps_port, ssl_context=ctx, timeout=10)
        m.login(ALICE, "pw")
        m.select("INBOX")
        m.logout()

        deadline = time.time() + 10
        while True:
            after = samples(scrape(self.srv.metrics_port)[1])
            if (value(after, "merpati_messages_delivered_total", path="local")
                    > value(before, "merpati_messages_delivered_total", path="local")
                    and value(after, "merpati_connections_total", protocol="imap", state="closed")
                    > value(before, "merpati_connections_total", protocol="imap", state="closed")) \
                    or time.time() > deadline:
                break
            time.sleep(0.1)

        def moved(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(moved("merpati_messages_accepted_total"), 1)
        self.assertEqual(moved("merpati_messages_delivered_total", path="local"), 1)
        self.assertEqual(moved("merpati_messages_bounced_total", path="local"), 0)
        self.assertGreaterEqual(moved("merpati_connections_total", protocol="smtp",
                                      state="accepted"), 2)
        self.assertGreaterEqual(moved("merpati_connections_total", protocol="imap",
                                      state="accepted"), 1)
        self.assertEqual(moved("merpati_smtp_commands_total", command="MAIL"), 1)
        self.assertEqual(moved("merpati_smtp_commands_total", command="DATA"), 1)
        # the all-protocol family carries SMTP's numbers too
        self.assertEqual(moved("merpati_commands_total", protocol="smtp", command="MAIL"), 1)
        self.assertEqual(moved("merpati_replies_total", protocol="smtp", **{"class": "5xx"}),
                         moved("merpati_smtp_replies_total", **{"class": "5xx"}))
        self.assertGreaterEqual(moved("merpati_smtp_replies_total", **{"class": "2xx"}), 5)
        self.assertGreaterEqual(moved("merpati_smtp_replies_total", **{"class": "5xx"}), 1)
        self.assertEqual(moved("merpati_auth_total", protocol="smtp", result="failure"), 1)
        self.assertEqual(moved("merpati_auth_total", protocol="imap", result="success"), 1)
        self.assertGreaterEqual(moved("merpati_tls_handshakes_total", side="server",
                                      result="ok"), 1)
        self.assertEqual(moved("merpati_delivery_latency_seconds_count", path="local"), 1)
        self.assertEqual(moved("merpati_delivery_latency_seconds_bucket", path="local",
                               le="+Inf"), 1)
        self.assertGreaterEqual(moved("merpati_store_operation_seconds_count", op="deliver"), 1)
        self.assertGreaterEqual(moved("merpati_store_operation_seconds_count", op="open"), 1)

    def test_queue_gauges_see_a_deferred_message(self):
        before = samples(scrape(self.srv.metrics_port)[1])
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo()
            s.docmd("XCLIENT")  # not a command merpati knows: counted as "other"
            # No resolver module is loaded: remote mail is deferred and stays.
            s.sendmail("", ["someone@remote.test"], "Subject: stays\r\n\r\nx\r\n")
        deadline = time.time() + 10
        while True:
            vals = samples(scrape(self.srv.metrics_port)[1])
            if value(vals, "merpati_messages_deferred_total", path="remote") > \
                    value(before, "merpati_messages_deferred_total", path="remote") \
                    or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(value(vals, "merpati_messages_deferred_total", path="remote")
                         - value(before, "merpati_messages_deferred_total", path="remote"), 1)
        self.assertGreaterEqual(value(vals, "merpati_smtp_commands_total", command="other")
                                - value(before, "merpati_smtp_commands_total", command="other"), 1)
        self.assertGreaterEqual(value(vals, "merpati_queue_messages"), 1)
        time.sleep(1.1)
        vals = samples(scrape(self.srv.metrics_port)[1])
        self.assertGreaterEqual(value(vals, "merpati_queue_oldest_message_age_seconds"), 1)

    def test_imap_commands_and_outcomes(self):
        before = samples(scrape(self.srv.metrics_port)[1])
        m = imaplib.IMAP4("127.0.0.1", self.srv.imap_port, timeout=10)  # CAPABILITY
        m.login(ALICE, "pw")
        self.assertEqual(m.select("NoSuchFolder")[0], "NO")
        self.assertEqual(m.select("INBOX")[0], "OK")
        self.assertEqual(m.fetch("1", "(FLAGS)")[0], "OK")
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("abc", "(FLAGS)")  # BAD: not a sequence set
        with self.assertRaises(imaplib.IMAP4.error):
            m.xatom("FROBNICATE")  # BAD: unknown, counted as other
        m.logout()
        after = samples(scrape(self.srv.metrics_port)[1])

        self.assertEqual(moved_by_label(before, after, "merpati_commands_total", "imap"),
                         {"CAPABILITY": 1, "LOGIN": 1, "SELECT": 2, "FETCH": 2, "other": 1,
                          "LOGOUT": 1})
        self.assertEqual(moved_by_label(before, after, "merpati_replies_total", "imap"),
                         {"ok": 5, "no": 1, "bad": 2})
        self.assertEqual(moved_by_label(before, after, "merpati_commands_total", "pop3"), {})
        self.assertEqual(value(after, "merpati_auth_total", protocol="imap", result="success")
                         - value(before, "merpati_auth_total", protocol="imap",
                                 result="success"), 1)

    def test_pop3_commands_and_outcomes(self):
        before = samples(scrape(self.srv.metrics_port)[1])
        p = poplib.POP3("127.0.0.1", self.srv.pop_port, timeout=10)  # greeting: no command
        p.user(ALICE)
        with self.assertRaises(poplib.error_proto):
            p.pass_("wrong")
        p.user(ALICE)
        p.pass_("pw")
        self.assertGreaterEqual(p.stat()[0], 1)
        p.retr(1)
        with self.assertRaises(poplib.error_proto):
            p._shortcmd("XYZZY")  # -ERR: unknown, counted as other
        p.quit()
        after = samples(scrape(self.srv.metrics_port)[1])

        self.assertEqual(moved_by_label(before, after, "merpati_commands_total", "pop3"),
                         {"USER": 2, "PASS": 2, "STAT": 1, "RETR": 1, "other": 1, "QUIT": 1})
        self.assertEqual(moved_by_label(before, after, "merpati_replies_total", "pop3"),
                         {"ok": 6, "err": 2})
        self.assertEqual(moved_by_label(before, after, "merpati_auth_total", "pop3"),
                         {"failure": 1, "success": 1})
        self.assertEqual(moved_by_label(before, after, "merpati_commands_total", "imap"), {})

    def test_garbage_verbs_add_no_series(self):
        before = samples(scrape(self.srv.metrics_port)[1])
        verbs = ["G%03dX%s" % (i, "ABCDEFGHIJ"[i % 10] * (i % 7 + 1)) for i in range(200)]
        with socket.create_connection(("127.0.0.1", self.srv.imap_port), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()  # greeting
            s.sendall(b"".join(b"t%d %s\r\n" % (i, v.encode()) for i, v in enumerate(verbs))
                      + b"q LOGOUT\r\n")
            replies = [line for line in f if line[:1] != b"*"]
        self.assertEqual(len(replies), 201)
        self.assertTrue(all(b" BAD " in r for r in replies[:200]), replies[:3])
        after = samples(scrape(self.srv.metrics_port)[1])

        self.assertEqual(set(after), set(before), "the set of series changed")
        self.assertEqual(moved_by_label(before, after, "merpati_commands_total", "imap"),
                         {"other": 200, "LOGOUT": 1})
        self.assertEqual(moved_by_label(before, after, "merpati_replies_total", "imap"),
                         {"bad": 200, "ok": 1})
        body = scrape(self.srv.metrics_port)[1]
        self.assertFalse(any(v in body for v in verbs))

    def test_refusals(self):
        port = self.srv.metrics_port
        self.assertTrue(raw_request(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
                        .startswith("HTTP/1.1 404"))
        reply = raw_request(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(reply.startswith("HTTP/1.1 405"), reply)
        self.assertIn("Allow: GET", reply)
        self.assertTrue(raw_request(port, b"garbage\r\n\r\n").startswith("HTTP/1.1 400"))
        self.assertTrue(raw_request(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 8000)
                        .startswith("HTTP/1.1 431"))
        # A client that says nothing is dropped after the bounded wait,
        # and the responder serves the next one.
        started = time.time()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            self.assertEqual(s.recv(10), b"")
        self.assertLess(time.time() - started, 6)
        self.assertIn("200 OK", scrape(port)[0])


class MetricsConfig(unittest.TestCase):
    def check(self, extra):
        srv = Server(extra_config=extra)
        self.addCleanup(srv.cleanup)
        return srv.cli("check-config")

    def test_remote_address_refused_without_allow_remote(self):
        r = self.check('metrics = { address = "0.0.0.0"; port = 9310; };')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("allow_remote", r.stdout + r.stderr)
        r = self.check('metrics = { address = "0.0.0.0"; port = 9310; allow_remote = true; };')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_bad_values(self):
        r = self.check('metrics = { address = "localhost"; port = 9310; };')
        self.assertIn("not an IP address", r.stdout + r.stderr)
        r = self.check('metrics = { port = 70000; };')
        self.assertNotEqual(r.returncode, 0)
        r = self.check('metrics = { port = 9310; colour = "red"; };')
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
