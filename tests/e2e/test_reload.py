"""tests/e2e/test_reload.py - configuration reload (issue 22).

`merpati reload` (and SIGHUP) with a changed route, a new domain and a
rotated certificate: the next session sees all three, while a session
opened before the reload finishes on the configuration it started with.
A broken configuration leaves the running one in force, and the log
says why, problem by problem. Listeners are added (SMTP, and POP3 and
IMAP whose modules were not loaded before), removed and changed by a
reload, while sessions opened before finish on the listener settings
they started with; a listener that cannot be bound refuses the whole
reload.
"""
import imaplib
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

from harness import DOMAIN, REPO, Server, Session, free_port

ALICE = "alice@" + DOMAIN
BOB = "bob@new.test"

RULES_BEFORE = ('rules = ( { match = "^sales@example\\\\.test$"; action = "rewrite"; '
                'to = "alice@example.test"; } );')
RULES_AFTER = ('rules = ( { match = "^sales@example\\\\.test$"; action = "reject"; code = 550; '
               'enhanced = "5.7.1"; text = "sales has moved"; } );')


def make_cert(cert, key, cn):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key + ".new", "-out", cert + ".new", "-subj", "/CN=" + cn],
                   check=True, capture_output=True, timeout=60)
    for path in (cert, key):
        shutil.chown(path + ".new", "merpati")  # the daemon re-reads it as server.user
        os.replace(path + ".new", path)


def served_cert(port):
    """The DER certificate the SMTP listener shows after STARTTLS."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.starttls(context=ctx)
        return s.sock.getpeercert(binary_form=True)


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Reload(unittest.TestCase):
    def setUp(self):
        self.srv = Server(modules={"route_regex": RULES_BEFORE})
        self.addCleanup(self.srv.cleanup)
        self.cert = os.path.join(self.srv.dir, "cert.pem")
        self.key = os.path.join(self.srv.dir, "key.pem")
        make_cert(self.cert, self.key, "one.test")
        self.srv.extra = 'tls = { cert = "%s"; key = "%s"; };' % (self.cert, self.key)
        self.srv.write_config()
        self.srv.add_user(ALICE)
        self.srv.start()

    def reloads_seen(self):
        return len(re.findall(r"reload: configuration \d+ in force", self.srv.log()))

    def wait_reloaded(self, count):
        deadline = time.time() + 15
        while self.reloads_seen() < count and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.reloads_seen(), count, self.srv.log()[-3000:])

    def test_next_session_sees_new_config_while_old_session_finishes(self):
        self.assertEqual(served_cert(self.srv.port), pem_to_der(self.cert))
        old_cert = pem_to_der(self.cert)

        inflight = Session(self.srv.port)
        self.addCleanup(inflight.close)
        self.assertEqual(inflight.reply()[0], 220)
        self.assertEqual(inflight.cmd("EHLO c.test")[0], 250)
        self.assertEqual(inflight.cmd("MAIL FROM:<x@c.test>")[0], 250)
        self.assertEqual(inflight.cmd("RCPT TO:<sales@example.test>")[0], 250)

        # The new configuration: a route that rejects sales@, a new local
        # domain (and its user), a new certificate at the same paths.
        self.srv.domains = (DOMAIN, "new.test")
        self.srv.modules["route_regex"] = RULES_AFTER
        self.srv.write_config()
        self.srv.add_user(BOB)
        time.sleep(0.02)  # a new modification time even on coarse clocks
        make_cert(self.cert, self.key, "two.test")
        self.assertNotEqual(pem_to_der(self.cert), old_cert)
        r = self.srv.cli("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_reloaded(1)
        self.assertIn("reload: TLS certificate", self.srv.log())

        # The next session: all three changes.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("c.test")
            s.mail("x@c.test")
            code, text = s.rcpt("sales@example.test")
            self.assertEqual(code, 550)
            self.assertIn(b"sales has moved", text)
            self.assertEqual(s.rcpt(BOB)[0], 250)
            s.data(b"Subject: to the new domain\r\n\r\nhi\r\n")
        self.srv.wait_for_mail(BOB, 1)
        self.assertEqual(served_cert(self.srv.port), pem_to_der(self.cert))

        # The session in flight: still the old rules and domains.
        code, _ = inflight.cmd("RCPT TO:<%s>" % BOB)
        self.assertGreaterEqual(code, 500)  # new.test is not local for it
        self.assertEqual(inflight.cmd("DATA")[0], 354)
        code, texts = inflight.cmd("Subject: in flight\r\n\r\nbody\r\n.")
        self.assertEqual(code, 250, texts)
        self.assertEqual(inflight.cmd("QUIT")[0], 221)
        mails = self.srv.mails_with(ALICE, "Subject: in flight")
        self.assertEqual(len(mails), 1)  # delivered through the old rewrite

    def test_broken_config_keeps_running_one(self):
        good = open(self.srv.conf).read()
        self.assertIn("recipients = 100;", good)
        with open(self.srv.conf, "w") as f:
            f.write(good.replace("recipients = 100;", "recipients = 0;") + "bogus_setting = 1;\n")
        r = self.srv.cli("reload")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not reloading", r.stderr)
        # The daemon itself must refuse it too (a plain SIGHUP).
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        self.assertTrue(self.srv.wait_log("reload refused"), self.srv.log()[-3000:])
        log = self.srv.log()
        self.assertIn("reload: bogus_setting: unknown setting", log)
        self.assertRegex(log, r"reload: .*limits")
        self.assertEqual(self.reloads_seen(), 0)
        # Still serving on the old configuration.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.sendmail("x@c.test", ["sales@example.test"], "Subject: still\r\n\r\nx\r\n")
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: still")), 1)
        # A fixed config reloads.
        with open(self.srv.conf, "w") as f:
            f.write(good)
        self.assertEqual(self.srv.cli("reload").returncode, 0)
        self.wait_reloaded(1)

    def test_unreadable_new_key_is_refused(self):
        make_cert(self.cert, self.key, "three.test")
        shutil.chown(self.key, "root")
        os.chmod(self.key, 0o600)
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        self.assertTrue(self.srv.wait_log("reload refused"), self.srv.log()[-3000:])
        self.assertIn("readable", self.srv.log())
        # The old certificate is still served.
        self.assertNotEqual(served_cert(self.srv.port), pem_to_der(self.cert))


class ModuleReloadOp(unittest.TestCase):
    """A module with the reload op (tests/modules/reloadable.c) gets its
    changed settings in place; one whose settings did not change is not
    called; an op that refuses refuses the whole reload."""

    def setUp(self):
        self.path = os.path.join(REPO, "tests", "modules", "reloadable.so")
        self.srv = Server(modules={"reloadable": self.settings("one")})
        self.addCleanup(self.srv.cleanup)
        self.srv.start()

    def settings(self, greeting):
        return 'path = "%s"; greeting = "%s";' % (self.path, greeting)

    def reload_with(self, greeting, domains=(DOMAIN,)):
        self.srv.modules["reloadable"] = self.settings(greeting)
        self.srv.domains = domains
        self.srv.write_config()
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)

    def wait_count(self, text, count):
        deadline = time.time() + 10
        while self.srv.log().count(text) < count and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.srv.log().count(text), count, self.srv.log()[-3000:])

    def test_reload_op_applies_in_place(self):
        self.reload_with("two")
        self.wait_count("reload greeting=two", 1)
        self.wait_count("configuration 1 in force", 1)
        self.assertEqual(self.srv.log().count("init greeting="), 1)  # no new instance
        # Unchanged settings: the op is not called again.
        self.reload_with("two", domains=(DOMAIN, "other.test"))
        self.wait_count("configuration 2 in force", 1)
        self.assertEqual(self.srv.log().count("reload greeting="), 1)

    def test_refusing_op_refuses_the_reload(self):
        self.reload_with("refuse", domains=(DOMAIN, "other.test"))
        self.wait_count("reload refused", 1)
        self.assertIn("modules.reloadable: greeting \"refuse\" cannot be applied", self.srv.log())
        self.assertEqual(self.srv.log().count("in force"), 0)
        # The domains change was not applied either.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("c.test")
            s.mail("x@c.test")
            self.assertGreaterEqual(s.rcpt("someone@other.test")[0], 500)


def rss_kib(pid):
    """The daemon's resident memory (kB), from /proc/PID/smaps_rollup."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise AssertionError("no Rss in smaps_rollup")


class ReplacedConfigFreed(unittest.TestCase):
    """50 reloads, each with changed route_regex rules (a new module
    instance, a new config tree) and a rotated certificate, while
    sessions come and go: each replaced configuration is freed once
    nothing holds it, so memory stays flat after the first reloads, and
    a session held across the reloads still finishes on its own one."""

    RULES = 400  # a config worth noticing: a leak is ~this many rules a reload

    def rules(self, generation):
        rules = ['{ match = "^r%d-%d@example\\\\.test$"; action = "rewrite"; to = "%s"; }'
                 % (generation, i, ALICE) for i in range(self.RULES)]
        if generation < 2:
            rules.append('{ match = "^sales@example\\\\.test$"; action = "rewrite"; to = "%s"; }'
                         % ALICE)
        else:
            rules.append('{ match = "^sales@example\\\\.test$"; action = "reject"; code = 550; '
                         'enhanced = "5.7.1"; text = "sales gen %d"; }' % generation)
        return "rules = ( %s );" % ", ".join(rules)

    def setUp(self):
        self.srv = Server(modules={"route_regex": self.rules(0)})
        self.addCleanup(self.srv.cleanup)
        self.pairs = []
        for name in ("a", "b"):
            cert = os.path.join(self.srv.dir, "cert-%s.pem" % name)
            key = os.path.join(self.srv.dir, "key-%s.pem" % name)
            make_cert(cert, key, name + ".test")
            self.pairs.append((cert, key))
        self.cert = os.path.join(self.srv.dir, "cert.pem")
        self.key = os.path.join(self.srv.dir, "key.pem")
        self.rotate_cert(0)
        self.srv.extra = 'tls = { cert = "%s"; key = "%s"; };' % (self.cert, self.key)
        self.srv.write_config()
        self.srv.add_user(ALICE)
        self.srv.start()
        self.pid = self.srv.proc.pid
        with open("/proc/%d/maps" % self.pid) as f:
            self.sanitized = "libasan" in f.read()

    def rotate_cert(self, generation):
        """A new file (inode, mtime) at the configured paths: re-read."""
        for src, dst in zip(self.pairs[generation % 2], (self.cert, self.key)):
            shutil.copyfile(src, dst + ".new")
            shutil.chown(dst + ".new", "merpati")
            os.replace(dst + ".new", dst)

    def reload(self, generation):
        self.srv.modules["route_regex"] = self.rules(generation)
        self.srv.write_config()
        self.rotate_cert(generation)
        os.kill(self.pid, signal.SIGHUP)
        text = "reload: configuration %d in force" % generation
        self.assertTrue(self.srv.wait_log(text, timeout=30), self.srv.log()[-3000:])

    def freed(self):
        return set(int(g) for g in re.findall(r"reload: configuration (\d+) freed",
                                              self.srv.log()))

    def wait_freed(self, generations):
        deadline = time.time() + 20
        while not generations <= self.freed() and time.time() < deadline:
            time.sleep(0.05)
        self.assertLessEqual(generations, self.freed(), self.srv.log()[-3000:])

    def send_loop(self, stop, errors):
        """Sessions coming and going during the reloads, each routing a
        recipient and queueing a message (delivered by queue workers on
        whichever configuration is newest then)."""
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=20) as s:
                    s.ehlo("c.test")
                    s.mail("x@c.test")
                    s.rcpt("r0-1@example.test")  # a rule of some generation, or not
                    s.rset()
                    s.sendmail("x@c.test", [ALICE], "Subject: during reloads\r\n\r\nx\r\n")
            except (OSError, smtplib.SMTPException) as e:
                errors.append(repr(e))
                return

    def test_fifty_reloads_free_what_they_replace(self):
        stop, errors = threading.Event(), []
        senders = [threading.Thread(target=self.send_loop, args=(stop, errors))
                   for _ in range(2)]
        for t in senders:
            t.start()
        self.addCleanup(lambda: [stop.set()] + [t.join(30) for t in senders])

        self.reload(1)
        # Held from configuration 1 (its route: sales@ rewritten to alice)
        # across every reload below.
        held = Session(self.srv.port)
        self.addCleanup(held.close)
        self.assertEqual(held.reply()[0], 220)
        self.assertEqual(held.cmd("EHLO c.test")[0], 250)
        self.assertEqual(held.cmd("MAIL FROM:<x@c.test>")[0], 250)

        for generation in range(2, 11):
            self.reload(generation)
        self.wait_freed({0, 2, 3, 4, 5, 6, 7, 8, 9})  # the start-up one too
        after10 = rss_kib(self.pid)
        for generation in range(11, 51):
            self.reload(generation)
        self.wait_freed(set(range(2, 50)))
        after50 = rss_kib(self.pid)

        # The held session's configuration is still there and serves it.
        self.assertNotIn(1, self.freed())
        self.assertEqual(held.cmd("RCPT TO:<sales@example.test>")[0], 250)
        self.assertEqual(held.cmd("DATA")[0], 354)
        code, texts = held.cmd("Subject: held across reloads\r\n\r\nbody\r\n.")
        self.assertEqual(code, 250, texts)
        self.assertEqual(held.cmd("QUIT")[0], 221)
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: held across reloads")), 1)
        self.wait_freed({1})  # once its session ended

        stop.set()
        for t in senders:
            t.join(30)
        self.assertEqual(errors, [])
        # The newest configuration: sales@ is refused now.
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("c.test")
            s.mail("x@c.test")
            code, text = s.rcpt("sales@example.test")
            self.assertEqual(code, 550)
            self.assertIn(b"sales gen 50", text)
        # Kept, each reload leaks its config tree, 400 compiled rules and
        # a TLS context: about 30 MB over 40 reloads. Freed, the
        # allocator reuses the same memory (under 1 MB of growth seen);
        # the bound leaves room for its noise. ASan's quarantine keeps
        # freed memory on purpose: there the freeing and the log are
        # what is checked (a use after free is its report).
        growth = after50 - after10
        if not self.sanitized:
            self.assertLess(growth, 4096, "RSS grew %d kB over reloads 11-50 (to %d kB)"
                            % (growth, after50))
        self.srv.stop()
        log = self.srv.log()
        self.assertNotRegex(log, "Sanitizer|runtime error:", log[-3000:])


def refused(port, tries=50):
    """True once a connection to port is refused (bounded retries: a
    listener that was just retired may still finish a handshake that
    was in its backlog)."""
    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                c.settimeout(2)
                c.recv(512)
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class Listeners(unittest.TestCase):
    """Listeners added, removed and changed by a reload (issue 22)."""

    def setUp(self):
        self.srv = Server(listeners={"extra": 'tls = "none"; auth = "none";'})
        self.addCleanup(self.srv.cleanup)
        self.cert = os.path.join(self.srv.dir, "cert.pem")
        self.key = os.path.join(self.srv.dir, "key.pem")
        make_cert(self.cert, self.key, "listeners.test")
        self.srv.extra = 'tls = { cert = "%s"; key = "%s"; };' % (self.cert, self.key)
        self.srv.write_config()
        self.srv.add_user(ALICE, "pw")
        self.srv.start()
        self.outcomes = 0
        self.config_edit = None  # applied by every reload() when set

    def reload(self, expect="in force", edit=None):
        """Write the config (edit(text) changes it further), SIGHUP, and
        wait (bounded) for this reload's outcome: `configuration N in
        force` or `reload refused`."""
        self.srv.write_config()
        edit = edit or self.config_edit
        if edit:
            with open(self.srv.conf) as f:
                text = edit(f.read())
            with open(self.srv.conf, "w") as f:
                f.write(text)
        with open(os.path.join(self.srv.state, "merpatid.pid")) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        self.outcomes += 1
        pattern = r"reload: configuration \d+ in force|reload refused"
        deadline = time.time() + 15
        while len(re.findall(pattern, self.srv.log())) < self.outcomes and time.time() < deadline:
            time.sleep(0.05)
        found = re.findall(pattern, self.srv.log())
        self.assertEqual(len(found), self.outcomes, self.srv.log()[-3000:])
        self.assertIn(expect, found[-1], self.srv.log()[-3000:])

    def send(self, port, subject):
        """One message to alice through port, delivered."""
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.sendmail("x@c.test", [ALICE], "Subject: %s\r\n\r\nbody\r\n" % subject)
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: %s" % subject)), 1)

    def open_transaction(self, port):
        """A session on port, in a transaction: EHLO, MAIL and RCPT done."""
        s = Session(port)
        self.addCleanup(s.close)
        self.assertEqual(s.reply()[0], 220)
        self.assertEqual(s.cmd("EHLO c.test")[0], 250)
        self.assertEqual(s.cmd("MAIL FROM:<x@c.test>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<%s>" % ALICE)[0], 250)
        return s

    def finish_transaction(self, s, subject):
        self.assertEqual(s.cmd("DATA")[0], 354)
        code, texts = s.cmd("Subject: %s\r\n\r\nbody\r\n." % subject)
        self.assertEqual(code, 250, texts)
        self.assertEqual(s.cmd("QUIT")[0], 221)
        self.assertEqual(len(self.srv.mails_with(ALICE, "Subject: %s" % subject)), 1)

    def test_add_smtp_pop3_and_imap_listeners(self):
        new_port = free_port()
        self.assertTrue(refused(new_port))
        self.srv.listeners["added"] = 'tls = "none";'
        self.srv.ports["added"] = new_port
        pop_port, imap_port = free_port(), free_port()
        # Neither module was loaded: their connection pools are new too.
        self.srv.modules["pop3"] = ('plaintext_auth = true; listen = { plain = { address = '
                                    '"127.0.0.1"; port = %d; }; };' % pop_port)
        self.srv.modules["imap"] = ('plaintext_auth = true; listen = { plain = { address = '
                                    '"127.0.0.1"; port = %d; }; };' % imap_port)
        self.reload()
        log = self.srv.log()
        self.assertIn("reload: listener added added: 127.0.0.1 port %d (smtp" % new_port, log)
        self.assertIn("reload: listener pop3.plain added: 127.0.0.1 port %d (pop3" % pop_port, log)
        self.assertIn("reload: listener imap.plain added: 127.0.0.1 port %d (imap" % imap_port, log)
        self.assertNotIn("needs a restart", log)
        self.send(new_port, "through the added listener")
        pop = poplib.POP3("127.0.0.1", pop_port, timeout=10)
        pop.user(ALICE)
        pop.pass_("pw")
        self.assertEqual(pop.stat()[0], 1)
        self.assertIn(b"Subject: through the added listener", b"\n".join(pop.retr(1)[1]))
        pop.quit()
        imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=10)
        imap.login(ALICE, "pw")
        self.assertEqual(imap.select("INBOX"), ("OK", [b"1"]))
        imap.logout()
        self.send(self.srv.port, "through the old listener")

    def test_removed_listener_refuses_while_its_session_finishes(self):
        port = self.srv.ports["extra"]
        inflight = self.open_transaction(port)
        del self.srv.listeners["extra"]
        self.reload()
        self.assertIn("reload: listener extra removed (127.0.0.1 port %d)" % port, self.srv.log())
        self.assertTrue(refused(port), "the removed listener still accepts")
        self.finish_transaction(inflight, "finished after its listener went")
        self.send(self.srv.port, "the smtp listener stays")
        # The same address and port can come back in a later reload.
        self.srv.listeners["extra"] = 'tls = "none";'
        self.reload()
        self.send(port, "on the listener back again")

    def test_changed_listener_new_settings_for_new_sessions_only(self):
        port = self.srv.ports["extra"]
        inflight = self.open_transaction(port)
        plain_auth = Session(port)  # before the reload: auth = "none"
        self.addCleanup(plain_auth.close)
        self.assertEqual(plain_auth.reply()[0], 220)
        self.srv.listeners["extra"] = 'tls = "implicit"; auth = "required";'
        self.reload()
        self.assertIn("reload: listener extra changed (127.0.0.1 port %d): tls none -> "
                      "implicit, auth none -> required" % port, self.srv.log())
        # New connections: implicit TLS, and MAIL needs AUTH first.
        ctx = ssl._create_unverified_context()
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=ctx) as s:
            s.ehlo("c.test")
            code, _ = s.mail("x@c.test")
            self.assertEqual(code, 530)
        with self.assertRaises((ssl.SSLError, smtplib.SMTPServerDisconnected, OSError)):
            with smtplib.SMTP("127.0.0.1", port, timeout=3) as s:
                s.ehlo("c.test")  # plain text to a TLS port
        # Sessions opened before: plain text, no AUTH needed, to the end.
        self.finish_transaction(inflight, "plain session across the change")
        self.assertEqual(plain_auth.cmd("EHLO c.test")[0], 250)
        self.assertEqual(plain_auth.cmd("MAIL FROM:<y@c.test>")[0], 250)

    def test_unbindable_listener_refuses_the_whole_reload(self):
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        busy = holder.getsockname()[1]
        other = free_port()
        self.srv.listeners["busy"] = ""
        self.srv.ports["busy"] = busy
        self.srv.listeners["other"] = ""
        self.srv.ports["other"] = other
        self.srv.domains = (DOMAIN, "new.test")
        self.reload(expect="reload refused")
        log = self.srv.log()
        self.assertIn("reload: listen busy: cannot listen on 127.0.0.1 port %d: Address already "
                      "in use (another program" % busy, log)
        self.assertNotIn("listener other added", log)
        # Nothing of it applied: the other new listener was closed again,
        # the old ones all work, new.test is not local.
        self.assertTrue(refused(other))
        self.send(self.srv.port, "smtp after the refusal")
        self.send(self.srv.ports["extra"], "extra after the refusal")
        with smtplib.SMTP("127.0.0.1", self.srv.port, timeout=10) as s:
            s.ehlo("c.test")
            s.mail("x@c.test")
            self.assertGreaterEqual(s.rcpt("bob@new.test")[0], 500)
        # Freed, the same configuration reloads.
        holder.close()
        self.reload()
        self.send(busy, "on the port once free")
        self.send(other, "on the other one")

    def test_port_below_1024_after_the_privilege_drop_is_refused(self):
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if int(f.read()) <= 1000 or os.geteuid() != 0:
                self.skipTest("every port is unprivileged here, or not root")
        self.srv.listeners["low"] = ""
        self.srv.ports["low"] = 1000
        self.reload(expect="reload refused")
        self.assertIn("cannot listen on 127.0.0.1 port 1000: Permission denied (merpatid runs "
                      "as server.user now", self.srv.log())
        self.send(self.srv.port, "smtp after the low port")

    def test_limits_past_the_descriptor_limit_are_refused(self):
        # 2 descriptors per connection: more than any RLIMIT_NOFILE
        # Linux allows (nr_open is at most 1048576 by default).
        self.reload(expect="reload refused", edit=lambda text: text.replace(
            "recipients = 100;", "recipients = 100; connections = 1000000;"))
        self.assertRegex(self.srv.log(), r"reload: the connection limits \(limits.connections "
                         r"1000000\) need 2001024 file descriptors .* restart merpatid")
        self.send(self.srv.port, "smtp after the refused limits")

    def test_unchanged_listener_keeps_sessions_and_counts_across_reloads(self):
        kept = self.open_transaction(self.srv.port)
        idle = Session(self.srv.port)
        self.addCleanup(idle.close)
        self.assertEqual(idle.reply()[0], 220)
        # From the first reload on, 3 connections per client address.
        self.config_edit = lambda text: text.replace(
            "recipients = 100;", "recipients = 100; connections_per_ip = 3;")
        for i in range(3):
            # Each reload changes listeners around the unchanged one.
            if "extra" in self.srv.listeners:
                del self.srv.listeners["extra"]
            else:
                self.srv.listeners["extra"] = 'tls = "none";'
            self.srv.domains = (DOMAIN, "d%d.test" % i)
            self.reload()
            self.assertEqual(kept.cmd("NOOP")[0], 250)
        # With the third, 3 from this address are open: the sessions
        # from before the reloads count against the new limit.
        third = self.greeted_session()
        self.addCleanup(third.close)
        fourth = Session(self.srv.port)
        self.addCleanup(fourth.close)
        code, texts = fourth.reply()
        self.assertEqual(code, 421, texts)
        self.assertIn("Too many connections from your address", texts[0])
        self.finish_transaction(kept, "kept across three reloads")
        self.assertEqual(idle.cmd("QUIT")[0], 221)
        # The places the ended sessions held are free again.
        self.greeted_session().close()

    def test_reloads_under_traffic_drop_no_session_of_an_unchanged_listener(self):
        """Clients loop on the unchanged listener and on one that each
        reload removes or adds back: every session on the first one
        completes; on the other a connection is refused, reset while
        it waited in the closing listener's queue, politely refused
        (421) or completes, never cut in the middle."""
        toggled = self.srv.ports["extra"]
        stop = threading.Event()
        started = threading.Barrier(5)
        results = {self.srv.port: [], toggled: []}

        def session(port):
            try:
                s = Session(port, timeout=10)
            except ConnectionRefusedError:
                return "refused"
            except ConnectionResetError:
                return "reset"
            try:
                code = s.reply()[0]
            except ConnectionResetError:
                return "reset"
            if code == 421:
                return "421"
            try:
                ok = (code == 220 and s.cmd("EHLO c.test")[0] == 250 and
                      s.cmd("NOOP")[0] == 250 and s.cmd("QUIT")[0] == 221)
                return "done" if ok else "bad reply"
            except (OSError, EOFError) as e:
                return "cut: %r" % e
            finally:
                s.close()

        def client(port):
            results[port].append(session(port))
            started.wait(timeout=30)
            while not stop.is_set() and len(results[port]) < 5000:
                results[port].append(session(port))

        threads = [threading.Thread(target=client, args=(p,))
                   for p in (self.srv.port, self.srv.port, toggled, toggled)]
        for t in threads:
            t.start()
        try:
            started.wait(timeout=30)  # each client had a session first
            for _ in range(6):
                if "extra" in self.srv.listeners:
                    del self.srv.listeners["extra"]
                else:
                    self.srv.listeners["extra"] = 'tls = "none"; auth = "none";'
                self.reload()
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        kept = results[self.srv.port]
        self.assertEqual(set(kept), {"done"}, [r for r in kept if r != "done"][:5])
        other = set(results[toggled])
        self.assertIn("done", other)
        self.assertLessEqual(other, {"done", "refused", "reset", "421"}, other)

    def greeted_session(self):
        """A session that got its 220: bounded tries, as a session that
        just ended gives its place back once its thread saw the close."""
        for _ in range(100):
            s = Session(self.srv.port)
            if s.reply()[0] == 220:
                return s
            s.close()
            time.sleep(0.05)
        self.fail("no place for a new session:\n" + self.srv.log()[-2000:])


if __name__ == "__main__":
    unittest.main()
