"""End to end: the milter module (issue 20) against real milters.

- A small milter written here with pymilter (Debian's python3-milter),
  steered per SMTP session by a JSON plan file, exercises every action:
  header add/insert/change/delete, recipient add/delete, sender change,
  body replacement, quarantine (held in the queue), reject, tempfail
  and custom replies at each stage, discard; the macros it is sent; two
  milters in order; a milter that is down or too slow, with each
  default_action.
- rspamd (Debian's package) in milter mode: a proxy worker in front of
  a normal worker, no Redis, no controller, its DNS pointed at a dead
  loopback port; GTUBE is refused, clean mail gets rspamd's headers,
  rspamd stopped -> default_action.
- opendkim as a milter signs mail submitted through merpati; dkimpy
  verifies the delivered signature with the test's public key.

Every milter runs as a child of the test on a free loopback port and is
stopped by PID. A test whose milter binary is missing skips and says so.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import DOMAIN, Server, Session, free_port, wait_port

try:
    import dkim
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import dkim
    except ImportError:
        dkim = None

SYSTEM_PYTHON = "/usr/bin/python3"
RSPAMD = "/usr/bin/rspamd"
OPENDKIM = "/usr/sbin/opendkim"
OPENDKIM_GENKEY = "/usr/sbin/opendkim-genkey"

# The test milter: argv NAME SOCKET PLAN LOG (see the module docstring).
PLAN_MILTER = r'''
import json
import sys
import time

import Milter

NAME, SOCKET, PLAN, LOG = sys.argv[1:5]
MACROS = ["j", "_", "{daemon_name}", "{client_addr}", "{i}", "{auth_authen}",
          "{mail_addr}", "{rcpt_addr}"]


def load_plan():
    try:
        with open(PLAN) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class PlanMilter(Milter.Base):
    def __init__(self):
        self.plan = {}
        self.conn_tag = "%x" % id(self)  # one instance per milter connection

    def record(self, stage, *args):
        macros = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                macros[m] = v
        with open(LOG, "a") as f:
            f.write(json.dumps({"milter": NAME, "conn": self.conn_tag, "stage": stage,
                                "args": [a if isinstance(a, (str, int)) else repr(a) for a in args],
                                "macros": macros}) + "\n")

    def decide(self, stage):
        sleep = self.plan.get("sleep")
        if sleep and sleep.get("at") == stage:
            time.sleep(sleep["seconds"])
        refuse = self.plan.get("refuse")
        if not refuse or refuse.get("at") != stage:
            return Milter.CONTINUE
        verdict = refuse["verdict"]
        if verdict == "reply":
            self.setreply(refuse["code"], refuse["xcode"], refuse["text"])
            return Milter.REJECT if refuse["code"].startswith("5") else Milter.TEMPFAIL
        return {"reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL,
                "discard": Milter.DISCARD, "accept": Milter.ACCEPT}[verdict]

    def connect(self, hostname, family, hostaddr):
        self.plan = load_plan()
        self.record("connect", hostname, hostaddr[0] if hostaddr else "")
        return self.decide("connect")

    def hello(self, name):
        self.record("helo", name)
        return self.decide("helo")

    def envfrom(self, sender, *params):
        self.record("mail", sender)
        return self.decide("mail")

    def envrcpt(self, rcpt, *params):
        self.record("rcpt", rcpt)
        return self.decide("rcpt")

    def header(self, name, value):
        self.record("header", name, value)
        return self.decide("header")

    def eoh(self):
        self.record("eoh")
        return self.decide("eoh")

    def body(self, chunk):
        self.record("body", chunk.decode("utf-8", "replace"))
        return self.decide("body")

    def eom(self):
        self.record("eom")
        for mod in self.plan.get("mods", []):
            getattr(self, "do_" + mod[0])(*mod[1:])
        return self.decide("eom")

    def abort(self):
        self.record("abort")
        return Milter.CONTINUE

    def close(self):
        return Milter.CONTINUE

    def do_addheader(self, name, value):
        self.addheader(name, value)

    def do_insheader(self, idx, name, value):
        self.addheader(name, value, idx)

    def do_chgheader(self, name, idx, value):
        self.chgheader(name, idx, value)

    def do_addrcpt(self, rcpt):
        self.addrcpt(rcpt)

    def do_delrcpt(self, rcpt):
        self.delrcpt(rcpt)

    def do_chgfrom(self, sender):
        self.chgfrom(sender)

    def do_replacebody(self, text):
        self.replacebody(text.encode())

    def do_quarantine(self, reason):
        self.quarantine(reason)


Milter.factory = PlanMilter
Milter.runmilter(NAME, SOCKET, timeout=60)
'''


def have_pymilter():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import Milter"],
                          capture_output=True).returncode == 0


def stop_proc(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class PlanMilter:
    """One instance of the test milter on a free loopback port, or on a
    unix socket in workdir when unix is set."""

    def __init__(self, workdir, name, unix=False):
        self.name = name
        self.port = free_port()
        self.unix_path = os.path.join(workdir, name + ".sock") if unix else None
        self.plan_path = os.path.join(workdir, name + ".plan")
        self.log_path = os.path.join(workdir, name + ".log")
        self.script = os.path.join(workdir, "plan_milter.py")
        with open(self.script, "w") as f:
            f.write(PLAN_MILTER)
        self.set_plan({})
        self.out = open(os.path.join(workdir, name + ".out"), "ab")
        where = ("unix:" + self.unix_path) if unix else "inet:%d@127.0.0.1" % self.port
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, self.script, name, where, self.plan_path, self.log_path],
            stdout=self.out, stderr=subprocess.STDOUT)
        if not (self.wait_unix() if unix else wait_port(self.port, proc=self.proc)):
            self.stop()
            raise AssertionError("test milter %s did not start" % name)

    def wait_unix(self, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            if os.path.exists(self.unix_path):
                # merpatid runs as its own user: let it connect
                os.chmod(self.unix_path, 0o666)
                return True
            time.sleep(0.05)
        return False

    def set_plan(self, plan):
        with open(self.plan_path, "w") as f:
            json.dump(plan, f)
        with open(self.log_path, "w"):
            pass

    def events(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def stop(self):
        stop_proc(self.proc)
        self.out.close()

    def conf(self, timeout="5s", default_action="tempfail"):
        where = ("unix:" + self.unix_path) if self.unix_path else "inet:127.0.0.1:%d" % self.port
        return ('{ name = "%s"; socket = "%s"; timeout = "%s"; default_action = "%s"; }'
                % (self.name, where, timeout, default_action))


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_report(srv):
    """The first sanitizer report in a stopped daemon's log, or None
    (a sanitized build writes them there: `make check SANITIZE=1`)."""
    srv.stop()
    log = srv.log()
    for mark in SANITIZER_MARKS:
        if mark in log:
            return log[log.index(mark):][:3000]
    return None


def milter_module(*entries):
    return "milters = ( %s );" % ", ".join(entries)


MESSAGE = ("From: Joe <joe@example.test>\r\n"
           "To: Ann <ann@example.test>\r\n"
           "Subject: milter test\r\n"
           "X-Old: one\r\n"
           "X-Old: two\r\n"
           "\r\n"
           "original body line\r\n")


def send(port, rcpts=("ann@example.test",), sender="joe@example.test",
         message=MESSAGE, helo="client.example.test"):
    """One SMTP session, step by step: a dict of the replies it got; it
    stops at the first refusal (the refused step's key is set)."""
    got = {}
    s = Session(port)
    try:
        got["greeting"] = s.reply()
        if got["greeting"][0] != 220:
            return got
        got["helo"] = s.cmd("EHLO " + helo)
        if got["helo"][0] != 250:
            return got
        got["mail"] = s.cmd("MAIL FROM:<%s>" % sender)
        if got["mail"][0] != 250:
            return got
        got["rcpt"] = [s.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        if all(code != 250 for code, _ in got["rcpt"]):
            return got
        got["data"] = s.cmd("DATA")
        if got["data"][0] != 354:
            return got
        s.send(message + ".\r\n")
        got["end"] = s.reply()
        s.cmd("QUIT")
    except EOFError:
        got["closed"] = True
    finally:
        s.close()
    return got


def queue_id(reply):
    """The id in "250 2.0.0 queued as ID"."""
    return reply[1][-1].split()[-1]


@unittest.skipUnless(have_pymilter(), "python3-milter (pymilter) is not installed")
class MilterActions(unittest.TestCase):
    """One merpati with one test milter, its plan changed per session."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="merpati-milter-")
        cls.milter = PlanMilter(cls.work, "plan")
        cls.srv = Server(modules={"milter": milter_module(cls.milter.conf())})
        for user in ("ann", "bob", "carol"):
            cls.srv.add_user(user + "@" + DOMAIN)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.milter.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def plan(self, **plan):
        self.milter.set_plan(plan)

    def delivered(self, address, marker, timeout=10.0):
        found = self.srv.mails_with(address, marker, timeout)
        self.assertEqual(len(found), 1, "%s: %r" % (address, found))
        return found[0]

    def test_headers_changed(self):
        self.plan(mods=[["addheader", "X-Added", "at the end"],
                        ["insheader", 0, "X-Inserted", "at the top"],
                        ["chgheader", "X-Old", 2, "changed second"],
                        ["chgheader", "Subject", 1, "headers changed"],
                        ["addheader", "X-Folded", "first line\n\tsecond line"],
                        ["chgheader", "X-Old", 1, ""]])
        got = send(self.srv.port)
        self.assertEqual(got["end"][0], 250, got)
        msg = self.delivered("ann@" + DOMAIN, "Subject: headers changed")
        head = msg.replace("\r\n", "\n").split("\n\n", 1)[0]
        lines = head.split("\n")
        # above everything that came with the message (delivery adds
        # Return-Path and Delivered-To above it later)
        self.assertLess(head.index("X-Inserted: at the top"), head.index("Received:"), head)
        self.assertNotIn("X-Old: one", head)
        self.assertIn("X-Old: changed second", head)
        self.assertNotIn("X-Old: two", head)
        self.assertIn("X-Folded: first line\n\tsecond line", head)
        self.assertEqual(lines[-3:], ["X-Added: at the end", "X-Folded: first line",
                                      "\tsecond line"], head)
        self.assertIn("original body line", msg)

    def test_envelope_and_body_changed(self):
        self.plan(mods=[["addrcpt", "<carol@example.test>"],
                        ["delrcpt", "<bob@example.test>"],
                        ["chgfrom", "<bounces@example.test>"],
                        ["replacebody", "replaced body\r\nsecond line\r\n"]])
        got = send(self.srv.port, rcpts=("ann@example.test", "bob@example.test"),
                   message=MESSAGE.replace("milter test", "envelope change"))
        self.assertEqual(got["end"][0], 250, got)
        for who in ("ann", "carol"):
            msg = self.delivered(who + "@" + DOMAIN, "envelope change")
            self.assertIn("Return-Path: <bounces@example.test>", msg)
            self.assertIn("replaced body\r\nsecond line", msg.replace("\n", "\r\n").replace("\r\r", "\r"))
            self.assertNotIn("original body line", msg)
        time.sleep(0.5)
        self.assertEqual(self.srv.mails_with("bob@" + DOMAIN, "envelope change", 0.5), [])

    def test_quarantine(self):
        self.plan(mods=[["quarantine", "looks odd"]])
        got = send(self.srv.port, message=MESSAGE.replace("milter test", "quarantined"))
        self.assertEqual(got["end"][0], 250, got)
        qid = queue_id(got["end"])
        listing = self.srv.queue_listing("held: looks odd")
        self.assertIn(qid, listing)
        self.assertIn("ann@example.test", listing)
        self.assertIn("(held: looks odd)", listing)
        self.assertEqual(self.srv.mails_with("ann@" + DOMAIN, "quarantined", 1.0), [])
        # released, it goes out like any other message
        r = self.srv.cli("queue", "release", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.srv.mails_with("ann@" + DOMAIN, "quarantined", 20.0)), 1)

    def test_discard(self):
        self.plan(refuse={"at": "eom", "verdict": "discard"})
        got = send(self.srv.port, message=MESSAGE.replace("milter test", "discarded"))
        self.assertEqual(got["end"][0], 250, got)
        self.assertTrue(self.srv.wait_log("discarded"), self.srv.log()[-2000:])
        self.assertEqual(self.srv.mails_with("ann@" + DOMAIN, "discarded", 1.0), [])

    def test_refusals_at_each_stage(self):
        where = {"connect": "greeting", "helo": "helo", "mail": "mail", "rcpt": "rcpt",
                 "header": "end", "eoh": "end", "body": "end", "eom": "end"}
        want = {"reject": (550, "5.7.1"), "tempfail": (451, "4.7.1")}
        for stage, step in where.items():
            for verdict, (code, enhanced) in want.items():
                with self.subTest(stage=stage, verdict=verdict):
                    self.plan(refuse={"at": stage, "verdict": verdict})
                    got = send(self.srv.port)
                    reply = got[step][0] if step == "rcpt" else got[step]
                    if stage == "connect":
                        code = 554 if verdict == "reject" else 421
                    self.assertEqual(reply[0], code, got)
                    if stage != "connect":
                        self.assertTrue(reply[1][-1].startswith(enhanced), got)
                    self.assertNotIn("end" if step != "end" else "none", got)

    def test_custom_reply(self):
        self.plan(refuse={"at": "rcpt", "verdict": "reply", "code": "553",
                          "xcode": "5.1.8", "text": "not from you"})
        got = send(self.srv.port)
        self.assertEqual(got["rcpt"][0], (553, ["5.1.8 not from you"]), got)
        self.plan(refuse={"at": "eom", "verdict": "reply", "code": "452",
                          "xcode": "4.2.2", "text": "mailbox full"})
        got = send(self.srv.port)
        self.assertEqual(got["end"], (452, ["4.2.2 mailbox full"]), got)

    def test_accept_skips_the_rest(self):
        self.plan(refuse={"at": "mail", "verdict": "accept"},
                  mods=[["addheader", "X-Never", "1"]])
        got = send(self.srv.port, message=MESSAGE.replace("milter test", "accepted early"))
        self.assertEqual(got["end"][0], 250, got)
        msg = self.delivered("ann@" + DOMAIN, "accepted early")
        self.assertNotIn("X-Never", msg)
        stages = [e["stage"] for e in self.milter.events()]
        self.assertNotIn("eom", stages)
        self.assertNotIn("rcpt", stages)

    def test_macros_and_commands(self):
        self.plan()
        got = send(self.srv.port, message=MESSAGE.replace("milter test", "macros"))
        self.assertEqual(got["end"][0], 250, got)
        qid = queue_id(got["end"])
        events = self.milter.events()
        stages = [e["stage"] for e in events]
        self.assertEqual(stages[stages.index("helo") - 1:][:4], ["connect", "helo", "mail", "rcpt"],
                         stages)
        self.assertEqual(stages[-2:], ["body", "eom"], stages)
        headers = [e["args"] for e in events if e["stage"] == "header"]
        self.assertIn(["Subject", "macros"], headers)
        self.assertIn(["X-Old", "two"], headers)
        by = {e["stage"]: e for e in events}
        self.assertEqual(by["connect"]["args"][1], "127.0.0.1")
        self.assertEqual(by["connect"]["macros"].get("{client_addr}"), "127.0.0.1")
        self.assertEqual(by["connect"]["macros"].get("j"), self.srv.hostname)
        self.assertIn("[127.0.0.1]", by["connect"]["macros"].get("_", ""))
        self.assertEqual(by["connect"]["macros"].get("{daemon_name}"), "merpati")
        self.assertEqual(by["helo"]["args"], ["client.example.test"])
        self.assertEqual(by["mail"]["args"], ["<joe@example.test>"])
        self.assertEqual(by["mail"]["macros"].get("{mail_addr}"), "joe@example.test")
        self.assertEqual(by["rcpt"]["macros"].get("{rcpt_addr}"), "ann@example.test")
        self.assertEqual(by["eom"]["macros"].get("{i}"), qid)
        self.assertIn("original body line", by["body"]["args"][0])

    def test_zz_daemon_log_clean(self):
        """Last: the daemon, stopped, left no sanitizer report."""
        self.assertIsNone(sanitizer_report(self.srv))

    def test_abort_between_messages(self):
        """RSET after RCPT: the milter hears ABORT, then a new message."""
        self.plan()
        s = Session(self.srv.port)
        try:
            s.reply()
            s.cmd("EHLO client.example.test")
            self.assertEqual(s.cmd("MAIL FROM:<joe@example.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<ann@example.test>")[0], 250)
            self.assertEqual(s.cmd("RSET")[0], 250)
            self.assertEqual(s.cmd("MAIL FROM:<joe@example.test>")[0], 250)
            s.cmd("QUIT")
        finally:
            s.close()
        # Only this session's connection counts: the harness's start-up
        # probe makes a milter connection of its own, whose events may
        # interleave with ours.
        def session_stages():
            events = self.milter.events()
            conns = [e["conn"] for e in events if e["stage"] == "helo"]
            return [e["stage"] for e in events if conns and e["conn"] == conns[0]]
        want = ["connect", "helo", "mail", "rcpt", "abort", "mail", "abort"]
        deadline = time.time() + 5
        while time.time() < deadline and session_stages()[:7] != want:
            time.sleep(0.1)
        self.assertEqual(session_stages()[:7], want, self.milter.events())


@unittest.skipUnless(have_pymilter(), "python3-milter (pymilter) is not installed")
class MilterOrderAndFailure(unittest.TestCase):
    """Two milters in order; a milter down or slow, each default_action."""

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="merpati-milter-")
        self.servers = []
        self.milters = []

    def tearDown(self):
        reports = [r for r in (sanitizer_report(s) for s in self.servers) if r]
        for s in self.servers:
            s.cleanup()
        for m in self.milters:
            m.stop()
        shutil.rmtree(self.work, ignore_errors=True)
        self.assertEqual(reports, [])

    def milter(self, name, unix=False):
        m = PlanMilter(self.work, name, unix)
        self.milters.append(m)
        return m

    def server(self, *entries):
        srv = Server(modules={"milter": milter_module(*entries)})
        self.servers.append(srv)
        srv.add_user("ann@" + DOMAIN)
        srv.start()
        return srv

    def test_two_milters_in_order(self):
        a, b = self.milter("first"), self.milter("second")
        srv = self.server(a.conf(), b.conf())
        a.set_plan({"mods": [["addheader", "X-Order", "first"]]})
        b.set_plan({"mods": [["addheader", "X-Order", "second"]]})
        got = send(srv.port, message=MESSAGE.replace("milter test", "two milters"))
        self.assertEqual(got["end"][0], 250, got)
        msg = srv.mails_with("ann@" + DOMAIN, "two milters")[0]
        self.assertLess(msg.index("X-Order: first"), msg.index("X-Order: second"))
        # the first refuses: the second never hears of the recipient
        a.set_plan({"refuse": {"at": "rcpt", "verdict": "reject"}})
        b.set_plan({})
        got = send(srv.port)
        self.assertEqual(got["rcpt"][0][0], 550, got)
        self.assertNotIn("rcpt", [e["stage"] for e in b.events()])
        self.assertIn("rcpt", [e["stage"] for e in a.events()])

    def test_authenticated_user_macro(self):
        """After AUTH the milter learns who ({auth_authen}), as OpenDKIM
        and rspamd use it to tell outbound from inbound mail."""
        import smtplib
        m = self.milter("auth")
        srv = Server(modules={"milter": milter_module(m.conf())},
                     listeners={"submission": 'auth = "required"; plaintext_auth = true;'})
        self.servers.append(srv)
        srv.add_user("ann@" + DOMAIN, "pw-ann")
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=20) as c:
            c.login("ann@" + DOMAIN, "pw-ann")
            c.sendmail("ann@" + DOMAIN, ["ann@" + DOMAIN],
                       MESSAGE.replace("milter test", "authenticated"))
        by = {e["stage"]: e for e in m.events()}
        self.assertEqual(by["mail"]["macros"].get("{auth_authen}"), "ann@" + DOMAIN, by["mail"])
        self.assertEqual(len(srv.mails_with("ann@" + DOMAIN, "authenticated")), 1)

    def test_unix_socket(self):
        """unix:/path, as for a milter on the same host; the daemon,
        confined and unprivileged, still reaches it."""
        os.chmod(self.work, 0o755)
        m = self.milter("local-socket", unix=True)
        m.set_plan({"mods": [["addheader", "X-Via", "unix socket"]]})
        srv = self.server(m.conf())
        got = send(srv.port, message=MESSAGE.replace("milter test", "over unix"))
        self.assertEqual(got["end"][0], 250, got)
        mail = srv.mails_with("ann@" + DOMAIN, "over unix")
        self.assertEqual(len(mail), 1)
        self.assertIn("X-Via: unix socket", mail[0])

    def test_down_tempfail(self):
        dead = free_port()
        srv = self.server('{ name = "gone"; socket = "inet:127.0.0.1:%d"; '
                          'default_action = "tempfail"; }' % dead)
        got = send(srv.port)
        self.assertEqual(got["mail"][0], 451, got)
        self.assertTrue(got["mail"][1][-1].startswith("4.7.1"), got)
        self.assertTrue(srv.wait_log("default action tempfail"), srv.log()[-2000:])

    def test_down_accept(self):
        dead = free_port()
        srv = self.server('{ name = "gone"; socket = "inet:%d@127.0.0.1"; '
                          'default_action = "accept"; }' % dead)
        got = send(srv.port, message=MESSAGE.replace("milter test", "passes"))
        self.assertEqual(got["end"][0], 250, got)
        self.assertEqual(len(srv.mails_with("ann@" + DOMAIN, "passes")), 1)

    def test_down_reject(self):
        dead = free_port()
        srv = self.server('{ name = "gone"; socket = "inet:127.0.0.1:%d"; '
                          'default_action = "reject"; }' % dead)
        got = send(srv.port)
        self.assertEqual(got["mail"][0], 550, got)

    def test_slow_milter_times_out(self):
        m = self.milter("slow")
        srv = self.server(m.conf(timeout="1s", default_action="tempfail"))
        m.set_plan({"sleep": {"at": "rcpt", "seconds": 4}})
        started = time.time()
        got = send(srv.port)
        self.assertLess(time.time() - started, 3.5)
        self.assertEqual(got["rcpt"][0][0], 451, got)
        self.assertTrue(srv.wait_log("timed out"), srv.log()[-2000:])

    def test_dies_mid_session_accept(self):
        """A milter that goes away between messages: default accept lets
        the next message through without it."""
        m = self.milter("mortal")
        srv = self.server(m.conf(default_action="accept"))
        m.set_plan({"mods": [["addheader", "X-Seen", "yes"]]})
        s = Session(srv.port)
        try:
            s.reply()
            s.cmd("EHLO client.example.test")
            m.stop()
            self.assertEqual(s.cmd("MAIL FROM:<joe@example.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<ann@example.test>")[0], 250)
            self.assertEqual(s.cmd("DATA")[0], 354)
            s.send(MESSAGE.replace("milter test", "after death") + ".\r\n")
            self.assertEqual(s.reply()[0], 250)
            s.cmd("QUIT")
        finally:
            s.close()
        msg = srv.mails_with("ann@" + DOMAIN, "after death")
        self.assertEqual(len(msg), 1)
        self.assertNotIn("X-Seen", msg[0])

    def test_local_submission(self):
        """sendmail by a user: the milter hears of the message at its end
        (CONNECT from an unknown client, MAIL, RCPT, headers, body) and
        its changes apply."""
        from test_sendmail import SendmailServer, is_root
        if not is_root():
            self.skipTest("sendmail through the maildrop needs root (to become nobody)")
        m = self.milter("local")
        m.set_plan({"mods": [["addheader", "X-Milter-Local", "seen"]]})
        srv = SendmailServer(modules={"milter": milter_module(m.conf())})
        self.servers.append(srv)
        srv.add_user("ann@" + DOMAIN)
        srv.start()
        r = srv.run("ann@" + DOMAIN, input="Subject: local milter\n\nfrom a user\n",
                    user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        mail = srv.mails_with("ann@" + DOMAIN, "from a user")
        self.assertEqual(len(mail), 1, srv.log()[-2000:])
        self.assertIn("X-Milter-Local: seen", mail[0])
        stages = [e["stage"] for e in m.events()]
        # from the last connect: the harness's start-up probe made one too
        last = len(stages) - 1 - stages[::-1].index("connect")
        self.assertEqual([x for x in stages[last:] if x not in ("header", "body")],
                         ["connect", "mail", "rcpt", "eoh", "eom"], stages)
        by = {e["stage"]: e for e in m.events()}
        self.assertEqual(by["mail"]["args"], ["<nobody@%s>" % DOMAIN])
        self.assertEqual(by["rcpt"]["args"], ["<ann@%s>" % DOMAIN])

    def test_bad_config_refused(self):
        for bad, why in (('{ name = "x"; socket = "tcp:1.2.3.4:5"; }', "socket"),
                         ('{ name = "x"; socket = "inet:127.0.0.1:99999"; }', "port"),
                         ('{ name = "x"; socket = "inet:mail.example:25"; }', "IP address"),
                         ('{ name = "x"; socket = "unix:/tmp/m"; default_action = "maybe"; }',
                          "default_action"),
                         ('{ socket = "unix:/tmp/m"; }', "name")):
            with self.subTest(bad=bad):
                srv = Server(modules={"milter": milter_module(bad)})
                self.servers.append(srv)
                self.assertNotEqual(srv.start(expect_fail=True), 0)
                self.assertIn(why, srv.log())


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def chown_tree(path, user):
    """Give path to user (rspamd and opendkim refuse to run as root)."""
    import pwd
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.chown(n, pw.pw_uid, pw.pw_gid)


def unprivileged_user():
    """The user to run a filter as, when the test runs as root."""
    if os.geteuid() != 0:
        return None
    import pwd
    try:
        pwd.getpwnam("merpati")
        return "merpati"
    except KeyError:
        return "nobody"


@unittest.skipUnless(os.path.exists(RSPAMD), "rspamd is not installed")
@unittest.skipUnless(os.path.exists(os.path.join(os.sep, "etc", "rspamd", "common.conf")),
                     "rspamd's shipped configuration (/etc/rspamd) is missing")
class Rspamd(unittest.TestCase):
    """Debian's rspamd as the milter: a proxy worker in milter mode in
    front of a normal worker, both on loopback ports, no Redis and no
    controller; its resolver points at a dead loopback port, so nothing
    leaves the machine and network checks simply find nothing."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="merpati-rspamd-")
        os.chmod(cls.dir, 0o755)
        cls.proxy_port, cls.normal_port = free_port(), free_port()
        for sub in ("db", "run", "log", "local.d"):
            os.mkdir(os.path.join(cls.dir, sub))
        cls.write_config()
        user = unprivileged_user()
        args = [RSPAMD, "-f", "-c", os.path.join(cls.dir, "rspamd.conf"),
                "--var=LOCAL_CONFDIR=" + cls.dir,
                "--var=DBDIR=" + os.path.join(cls.dir, "db"),
                "--var=RUNDIR=" + os.path.join(cls.dir, "run"),
                "--var=LOGDIR=" + os.path.join(cls.dir, "log")]
        if user:
            chown_tree(cls.dir, user)
            args += ["-u", user, "-g", user]
        cls.out = open(os.path.join(cls.dir, "stdout"), "ab")
        cls.proc = subprocess.Popen(args, stdout=cls.out, stderr=subprocess.STDOUT)
        # rspamd compiles its regular expressions and TLD list at start:
        # slow on a loaded machine, hence the long bound
        if not (wait_port(cls.proxy_port, timeout=120, proc=cls.proc) and
                wait_port(cls.normal_port, timeout=30, proc=cls.proc)):
            stop_proc(cls.proc)
            cls.out.close()
            raise AssertionError("rspamd did not start: " + cls.rspamd_log()[-3000:])
        cls.srv = Server(modules={"milter": milter_module(
            '{ name = "rspamd"; socket = "inet:127.0.0.1:%d"; timeout = "60s"; '
            'default_action = "tempfail"; }' % cls.proxy_port)})
        cls.srv.add_user("ann@" + DOMAIN)
        cls.srv.start()

    @classmethod
    def write_config(cls):
        dead_dns = free_port()
        with open(os.path.join(cls.dir, "rspamd.conf"), "w") as f:
            f.write("""
.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging { type = "file"; filename = "$LOGDIR/rspamd.log"; level = "info"; }
worker "normal" {
    bind_socket = "127.0.0.1:%d";
    .include "$CONFDIR/worker-normal.inc"
}
worker "rspamd_proxy" {
    bind_socket = "127.0.0.1:%d";
    .include "$CONFDIR/worker-proxy.inc"
    .include(priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/worker-proxy.inc"
}
""" % (cls.normal_port, cls.proxy_port))
        with open(os.path.join(cls.dir, "local.d", "options.inc"), "w") as f:
            f.write('dns { nameserver = ["127.0.0.1:%d"]; timeout = 0.2s; retransmits = 1; }\n'
                    % dead_dns)
        with open(os.path.join(cls.dir, "local.d", "worker-proxy.inc"), "w") as f:
            f.write('upstream "local" { default = yes; hosts = "127.0.0.1:%d"; }\n'
                    % cls.normal_port)
        with open(os.path.join(cls.dir, "local.d", "milter_headers.conf"), "w") as f:
            # rspamd leaves local and authenticated mail unmarked unless told
            f.write("extended_spam_headers = true;\nskip_local = false;\n"
                    "skip_authenticated = false;\n")

    @classmethod
    def rspamd_log(cls):
        try:
            with open(os.path.join(cls.dir, "log", "rspamd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        stop_proc(cls.proc)
        cls.out.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_1_clean_mail_gets_headers(self):
        msg = MESSAGE.replace("milter test", "clean rspamd").replace(
            "original body line", "Hello Ann, the minutes of Tuesday's meeting are attached.")
        got = send(self.srv.port, message=msg)
        self.assertEqual(got["end"][0], 250, got)
        mail = self.srv.mails_with("ann@" + DOMAIN, "clean rspamd", 30)
        self.assertEqual(len(mail), 1)
        self.assertIn("X-Spamd-Result: default: False", mail[0])
        self.assertIn("X-Rspamd-Queue-Id: " + queue_id(got["end"]), mail[0])

    def test_2_gtube_refused(self):
        msg = MESSAGE.replace("milter test", "gtube").replace("original body line", GTUBE)
        got = send(self.srv.port, message=msg)
        # rspamd's GTUBE rule forces its "reject" action, which its milter
        # proxy sends as an SMTP reply of its own: the rule's message
        # ("Gtube pattern") or worker-proxy.inc's reject_message
        self.assertEqual(got["end"][0], 554, got)
        text = " ".join(got["end"][1])
        self.assertTrue(text.startswith("5.7.1"), got)
        self.assertTrue("Gtube pattern" in text or "Spam message rejected" in text, got)
        self.assertEqual(self.srv.mails_with("ann@" + DOMAIN, "gtube", 1.0), [])

    def test_4_daemon_log_clean(self):
        self.assertIsNone(sanitizer_report(self.srv))

    def test_3_rspamd_down_default_action(self):
        # a second merpati pointing at a port where rspamd is not
        srv = Server(modules={"milter": milter_module(
            '{ name = "rspamd"; socket = "inet:127.0.0.1:%d"; default_action = "tempfail"; }'
            % free_port())})
        try:
            srv.add_user("ann@" + DOMAIN)
            srv.start()
            got = send(srv.port)
            self.assertEqual(got["mail"][0], 451, got)
            self.assertTrue(got["mail"][1][-1].startswith("4.7.1"), got)
            self.assertIsNone(sanitizer_report(srv))
        finally:
            srv.cleanup()


def txt_of(zone_text):
    """The TXT data of opendkim-genkey's zone file line: its quoted
    strings joined."""
    import re
    return "".join(re.findall(r'"([^"]*)"', zone_text))


@unittest.skipUnless(os.path.exists(OPENDKIM), "opendkim is not installed")
@unittest.skipUnless(os.path.exists(OPENDKIM_GENKEY), "opendkim-tools (opendkim-genkey) is not installed")
@unittest.skipUnless(dkim is not None, "python3-dkim (dkimpy) is not installed")
class OpenDKIM(unittest.TestCase):
    """opendkim, in the foreground as a signing milter, signs what is
    submitted through merpati; dkimpy verifies it with the test's key."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="merpati-opendkim-")
        os.chmod(self.dir, 0o755)
        subprocess.run([OPENDKIM_GENKEY, "-D", self.dir, "-d", DOMAIN, "-s", "mp"],
                       check=True, capture_output=True, timeout=60)
        self.port = free_port()
        user = unprivileged_user()
        conf = os.path.join(self.dir, "opendkim.conf")
        with open(conf, "w") as f:
            f.write("Syslog no\nMode s\nDomain %s\nSelector mp\nKeyFile %s\n"
                    "Socket inet:%d@127.0.0.1\nPidFile %s\nCanonicalization relaxed/simple\n"
                    # the key lives under /tmp, which opendkim calls unsafe
                    "InternalHosts 127.0.0.1\nRequireSafeKeys no\n%s"
                    % (DOMAIN, os.path.join(self.dir, "mp.private"), self.port,
                       os.path.join(self.dir, "opendkim.pid"),
                       "UserID %s\n" % user if user else ""))
        if user:
            chown_tree(self.dir, user)
        os.chmod(os.path.join(self.dir, "mp.private"), 0o600)
        self.out = open(os.path.join(self.dir, "stdout"), "ab")
        self.proc = subprocess.Popen([OPENDKIM, "-f", "-x", conf], stdout=self.out,
                                     stderr=subprocess.STDOUT)
        if not wait_port(self.port, timeout=20, proc=self.proc):
            stop_proc(self.proc)
            with open(os.path.join(self.dir, "stdout"), errors="replace") as f:
                why = f.read()
            self.tearDown()
            raise AssertionError("opendkim did not start: " + why)
        self.srv = Server(modules={"milter": milter_module(
            '{ name = "opendkim"; socket = "inet:%d@127.0.0.1"; timeout = "10s"; }' % self.port)})
        self.srv.add_user("ann@" + DOMAIN)
        self.srv.start()

    def tearDown(self):
        if getattr(self, "srv", None):
            self.srv.cleanup()
        stop_proc(self.proc)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_signature_verifies(self):
        with open(os.path.join(self.dir, "mp.txt")) as f:
            record = txt_of(f.read()).encode()

        def dnsfunc(name, timeout=5):
            if name in (b"mp._domainkey.%s." % DOMAIN.encode(), "mp._domainkey.%s." % DOMAIN):
                return record
            return None

        msg = ("From: Joe <joe@example.test>\r\nTo: Ann <ann@example.test>\r\n"
               "Subject: signed by opendkim\r\nDate: Tue, 24 Nov 2026 05:00:00 +0000\r\n"
               "Message-ID: <opendkim-1@example.test>\r\n\r\n"
               "A body that opendkim signs.\r\nSecond line.\r\n")
        got = send(self.srv.port, sender="joe@example.test", message=msg)
        self.assertEqual(got["end"][0], 250, got)
        mail = self.srv.mails_with("ann@" + DOMAIN, "signed by opendkim")
        self.assertEqual(len(mail), 1)
        self.assertIn("DKIM-Signature:", mail[0])
        self.assertIn("d=%s" % DOMAIN, mail[0])
        raw = mail[0].encode()
        self.assertTrue(dkim.verify(raw, dnsfunc=dnsfunc), mail[0])
        # and the check can fail: a changed body does not verify
        self.assertFalse(dkim.verify(raw.replace(b"Second line.", b"Second line!"),
                                     dnsfunc=dnsfunc))
        self.assertIsNone(sanitizer_report(self.srv))
