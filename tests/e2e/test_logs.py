"""tests/e2e/test_logs.py - delivery log lines an admin can grep (issue 22).

One server per log format (text, then `log = { format = "json"; }`); in
each: a local delivery, a remote one deferred at a dead loopback port,
and a remote one bounced by a fake server's 550 to RCPT. Each must leave
one line per attempt with the queue id, to=, relay=, delay=, delays=
(four parts), dsn=, status= and the reply; the accepted message's line
carries its client and Message-ID. In JSON every line must parse.
"""
import json
import re
import smtplib
import socket
import threading
import time
import unittest

from harness import DOMAIN, Server, free_port

ALICE = "alice@" + DOMAIN


class RefusingServer:
    """An SMTP server that answers every RCPT with 550 (bounded: it
    serves until stopped, one short session at a time)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    self.session(conn.makefile("rwb"))
                except OSError:
                    pass

    @staticmethod
    def session(f):
        f.write(b"220 refuser ESMTP\r\n")
        f.flush()
        for line in f:
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                f.write(b"250 refuser\r\n")
            elif verb == b"RCPT":
                f.write(b"550 5.1.1 no such user here\r\n")
            elif verb == b"QUIT":
                f.write(b"221 bye\r\n")
                f.flush()
                return
            else:
                f.write(b"250 ok\r\n")
            f.flush()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class LogLines:
    json_format = False

    def setUp(self):
        self.refuser = RefusingServer()
        self.addCleanup(self.refuser.stop)
        self.dead = free_port()
        rules = ('rules = ( { match = "@dead\\\\.test$"; action = "relay"; host = "127.0.0.1:%d"; },'
                 ' { match = "@refuse\\\\.test$"; action = "relay"; host = "127.0.0.1:%d"; } );'
                 % (self.dead, self.refuser.port))
        extra = ('relay_networks = [ "127.0.0.0/8" ];\n'
                 'outbound = { tls = "none"; connect_timeout = "2s"; };\n'
                 'queue = { retry_interval = "1h"; };\n')
        if self.json_format:
            extra += 'log = { format = "json"; };\n'
        self.srv = Server(extra_config=extra, modules={"route_regex": rules})
        self.addCleanup(self.srv.cleanup)
        self.srv.add_user(ALICE)
        self.srv.start()

    def send(self, rcpt, msgid):
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(ALICE)
            s.rcpt(rcpt)
            _, text = s.data(("Subject: log test\r\nMessage-ID: %s\r\n\r\nbody\r\n"
                              % msgid).encode())
        return re.search(r"queued as ([0-9A-F]+)", text.decode()).group(1)

    def wait_for(self, pred, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in self.events() if pred(e)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError("no %s line in:\n%s" % (what, self.srv.log()[-3000:]))

    # -- the two formats, read into the same dicts ---------------------------
    def events(self):
        out = []
        for line in self.srv.log().splitlines():
            if self.json_format:
                out.append(json.loads(line))  # every line must parse
            else:
                out.append(self.parse_text(line))
        return out

    @staticmethod
    def parse_text(line):
        """'... info: QID: delivered to=<a>, relay=x, ... (reply)' -> dict."""
        m = re.match(r"\S+ \S+: \w+: (?:(?P<qid>[0-9A-F]{8,}): )?(?P<event>\w+) (?P<rest>.*)$",
                     line)
        if not m or "=" not in m.group("rest"):
            return {"message": line}
        rest, reply = m.group("rest"), None
        r = re.search(r" \((.*)\)$", rest)
        if r:
            rest, reply = rest[:r.start()], r.group(1)
        out = {"event": m.group("event"), "queue_id": m.group("qid")}
        for part in rest.split(", "):
            key, _, value = part.partition("=")
            out[key] = value
        if reply is not None:
            out["reply"] = reply
        return out

    def check_delivery_fields(self, e, qid, to, status, dsn_class):
        self.assertEqual(e["queue_id"], qid)
        self.assertEqual(e["to"], "<%s>" % to)
        self.assertEqual(e["status"], status)
        self.assertTrue(e["dsn"].startswith(dsn_class + "."), e)
        self.assertGreaterEqual(float(e["delay"]), 0)
        delays = e["delays"].split("/")
        self.assertEqual(len(delays), 4, e)
        for d in delays:
            self.assertGreaterEqual(float(d), 0)
        self.assertTrue(e["reply"], e)

    # -- the tests -------------------------------------------------------------
    def test_local_delivery_and_accepted_line(self):
        qid = self.send(ALICE, "<local-1@client.test>")
        acc = self.wait_for(lambda e: e.get("event") == "accepted" and e.get("queue_id") == qid,
                            "accepted")[0]
        self.assertEqual(acc["message_id"], "<local-1@client.test>")
        self.assertEqual(acc["client"], "[127.0.0.1]")
        self.assertEqual(acc["from"], "<%s>" % ALICE)
        e = self.wait_for(lambda e: e.get("event") == "delivered" and e.get("queue_id") == qid,
                          "delivered")[0]
        self.check_delivery_fields(e, qid, ALICE, "sent", "2")
        self.assertEqual(e["relay"], "deliver_maildir")

    def test_deferred_at_dead_port(self):
        qid = self.send("someone@dead.test", "<dead-1@client.test>")
        e = self.wait_for(lambda e: e.get("event") == "deferred" and e.get("queue_id") == qid,
                          "deferred")[0]
        self.check_delivery_fields(e, qid, "someone@dead.test", "deferred", "4")
        self.assertEqual(e["relay"], "127.0.0.1[127.0.0.1]:%d" % self.dead)

    def test_bounced_by_remote_550(self):
        qid = self.send("nobody@refuse.test", "<bounce-1@client.test>")
        e = self.wait_for(lambda e: e.get("event") == "bounced" and e.get("queue_id") == qid,
                          "bounced")[0]
        self.check_delivery_fields(e, qid, "nobody@refuse.test", "bounced", "5")
        self.assertEqual(e["relay"], "127.0.0.1[127.0.0.1]:%d" % self.refuser.port)
        self.assertIn("550", e["reply"])
        self.assertIn("no such user here", e["reply"])
        # The bounce itself reaches the sender's mailbox: another line.
        self.wait_for(lambda e: e.get("event") == "delivered" and e.get("to") == "<%s>" % ALICE,
                      "delivered bounce")


class TextLogLines(LogLines, unittest.TestCase):
    json_format = False


class JsonLogLines(LogLines, unittest.TestCase):
    json_format = True

    def test_json_escapes_hostile_text(self):
        # A Message-ID with quotes, backslashes and bytes that are not
        # UTF-8 must still give lines json.loads accepts.
        qid = self.send(ALICE, '<"q\\\\uote\x01"@x>')
        acc = self.wait_for(lambda e: e.get("event") == "accepted" and e.get("queue_id") == qid,
                            "accepted")[0]
        self.assertIn('"q\\\\uote', acc["message_id"])
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(ALICE)
            s.rcpt(ALICE)
            s.data(b"Subject: x\r\nMessage-ID: <\xff\xfe\xc3@bad>\r\n\r\nbody\r\n")
        self.wait_for(lambda e: "\ufffd" in e.get("message_id", ""), "replaced byte")


class Trace(unittest.TestCase):
    """`merpati trace ID`: a message deferred at a dead port until the
    give-up time bounces it; the trace shows its arrival, every attempt
    and the bounce, and follows the bounce's own delivery."""

    def test_trace_of_a_bounced_message_shows_each_attempt(self):
        dead = free_port()
        rules = 'rules = ( { match = "@dead\\\\.test$"; action = "relay"; host = "127.0.0.1:%d"; } );' % dead
        srv = Server(extra_config='queue = { retry_interval = "1s"; warn_after = "1h"; '
                                  'give_up_after = "3s"; };\noutbound = { tls = "none"; };',
                     modules={"route_regex": rules})
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(ALICE)
            s.rcpt("far@dead.test")
            _, text = s.data(b"Subject: t\r\nMessage-ID: <trace-1@client.test>\r\n\r\nx\r\n")
        qid = re.search(r"queued as ([0-9A-F]+)", text.decode()).group(1)
        self.assertTrue(srv.wait_log("bounced to=<far@dead.test>", 20), srv.log()[-3000:])
        srv.wait_for_mail(ALICE, 1)
        time.sleep(0.3)  # the bounce's own delivery line
        r = srv.cli("trace", qid, srv.log_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("%s: not in the queue" % qid, out)
        lines = out.splitlines()
        arrival = [i for i, l in enumerate(lines) if qid + ": accepted" in l]
        attempts = [i for i, l in enumerate(lines) if qid + ": deferred to=<far@dead.test>" in l]
        bounced = [i for i, l in enumerate(lines) if qid + ": bounced to=<far@dead.test>" in l]
        self.assertEqual(len(arrival), 1, out)
        self.assertIn("message_id=<trace-1@client.test>", lines[arrival[0]])
        self.assertIn("client=[127.0.0.1]", lines[arrival[0]])
        # Every attempt the daemon logged, each naming the dead server.
        self.assertEqual(len(attempts), srv.log().count(qid + ": deferred to=<far@dead.test>"))
        self.assertGreaterEqual(len(attempts), 2, out)
        for i in attempts:
            self.assertIn("relay=127.0.0.1[127.0.0.1]:%d" % dead, lines[i])
        self.assertEqual(len(bounced), 1, out)
        self.assertIn("dsn=5.4.7", lines[bounced[0]])
        self.assertTrue(arrival[0] < attempts[0] < attempts[-1] < bounced[0])
        # The bounce's id is followed to its own delivery to the sender.
        note = re.search(r"notification: ([0-9A-F]+)", out)
        self.assertIsNotNone(note, out)
        self.assertIn(note.group(1) + ": delivered to=<%s>" % ALICE, out)

    def test_trace_refuses_a_bad_id(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        r = srv.cli("trace", "../../etc/passwd", srv.log_path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a queue id", r.stderr)


class LogConfig(unittest.TestCase):
    def test_unknown_format_refused(self):
        srv = Server(extra_config='log = { format = "xml"; };')
        self.addCleanup(srv.cleanup)
        r = srv.cli("check-config")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("log.format", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
