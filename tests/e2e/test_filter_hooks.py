"""End to end: the filter hook points (issue 18), through the test filter
tests/modules/hooktest.so (and hooktest2.so, the same code under another
name) against the real daemon. The filter's settings say what it does at
which hook; it appends one line per hook call, with what txn_info told
it, to a log file the tests read.
"""
import os
import smtplib
import time
import unittest

from harness import DOMAIN, REPO, Server, Session, quote

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
SO = {name: os.path.join(REPO, "tests", "modules", name + ".so")
      for name in ("hooktest", "hooktest2", "filter20")}
MESSAGE = (b"From: Sender <sender@elsewhere.test>\r\nTo: alice@example.test\r\n"
           b"Subject: hello\r\nX-Drop: me\r\n\r\nThe body.\r\n")
HOOKS = ("connect", "helo", "mail_from", "rcpt_to", "end_of_headers",
         "end_of_data", "before_queue")


def stopped_clean(test, srv):
    """Stop srv and fail on a sanitizer report in its log (SANITIZE=1
    builds write them to stderr, which is the log)."""
    srv.stop()
    log = srv.log()
    test.assertNotRegex(log, "Sanitizer|runtime error:", log[-3000:])


class FilterHooks(unittest.TestCase):
    def server(self, **filters):
        """A daemon with the given filters (name -> settings text), in
        that order; alice and bob exist."""
        srv = Server()
        self.addCleanup(srv.cleanup)
        self.addCleanup(stopped_clean, self, srv)
        self.hooklog = os.path.join(srv.state, "hooks.log")
        for name, settings in filters.items():
            srv.modules[name] = "path = %s; %s%s" % (
                quote(SO[name]), "" if name == "filter20" else
                "log = %s; " % quote(self.hooklog), settings)
        srv.write_config()
        srv.add_user(ALICE)
        srv.add_user(BOB)
        srv.start()
        return srv

    def lines(self, want=None, timeout=5.0):
        """The hook log's lines but those of sessions that never sent HELO
        (the harness's port probe), waiting (bounded) until one contains
        want: session_end runs after the client saw the last reply."""
        deadline = time.time() + timeout
        while True:
            try:
                with open(self.hooklog) as f:
                    text = f.read().splitlines()
            except OSError:
                text = []
            # each filter numbers the sessions it sees on its own
            def session(l):
                return (l.split()[0], l.rsplit("sid=", 1)[1])
            greeted = {session(l) for l in text if " helo " in l and "sid=" in l}
            text = [l for l in text if "sid=" not in l or session(l) in greeted]
            if want is None or any(want in l for l in text) or time.time() > deadline:
                return text

            time.sleep(0.05)

    def send(self, srv, rcpts=(ALICE,), msg=MESSAGE, sender="sender@elsewhere.test"):
        s = smtplib.SMTP("127.0.0.1", srv.port, timeout=10)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        s.mail(sender)
        for r in rcpts:
            s.rcpt(r)
        code, text = s.data(msg)
        s.quit()
        return code, text.decode()

    def session(self, srv):
        s = Session(srv.port)
        self.addCleanup(s.close)
        return s

    # -- refusals at each hook ----------------------------------------------
    def dialogue(self, s):
        """Greeting to end of DATA; the first reply that is not a success,
        as (step, code, text)."""
        steps = [("connect", None), ("helo", "EHLO client.test"),
                 ("mail_from", "MAIL FROM:<sender@elsewhere.test>"),
                 ("rcpt_to", "RCPT TO:<%s>" % ALICE), ("data", "DATA")]
        for step, cmd in steps:
            code, text = s.reply() if cmd is None else s.cmd(cmd)
            if code >= 400:
                return step, code, text[-1]
        s.send(MESSAGE + b".\r\n")
        code, text = s.reply()
        return "end", code, text[-1]

    def test_refusal_at_each_hook(self):
        for hook in HOOKS:
            for code, enh in ((550, "5.7.9"), (451, "4.7.9")):
                with self.subTest(hook=hook, code=code):
                    srv = self.server(hooktest='refuse_at = "%s"; refuse_code = %d; '
                                      'refuse_enhanced = "%s"; refuse_text = "no %s";'
                                      % (hook, code, enh, hook))
                    s = self.session(srv)
                    step, got, text = self.dialogue(s)
                    want_step = hook if hook in HOOKS[:4] else "end"
                    want_code = {550: 554, 451: 421}[code] if hook == "connect" else code
                    self.assertEqual((step, got, text), (want_step, want_code,
                                                          "%s no %s" % (enh, hook)))
                    if hook == "connect":
                        # the refusal is the greeting, then the session ends
                        with self.assertRaises((EOFError, OSError)):
                            s.cmd("EHLO client.test")
                    time.sleep(0.3)
                    self.assertEqual(srv.mail_files(ALICE), [])
                    self.assertEqual(srv.queue_files(), [])
                    stopped_clean(self, srv)
                    srv.cleanup()

    def test_end_of_headers_refusal_skips_later_hooks(self):
        srv = self.server(hooktest='refuse_at = "end_of_headers";', hooktest2="")
        s = self.session(srv)
        self.assertEqual(self.dialogue(s)[:2], ("end", 550))
        s.cmd("QUIT")
        log = self.lines("session_end")
        self.assertFalse([l for l in log if "hooktest2 end_of_headers" in l], log)
        self.assertFalse([l for l in log if " end_of_data" in l], log)
        self.assertTrue([l for l in log if "hooktest2 txn_end" in l], log)

    def test_rcpt_refusal_drops_that_recipient_only(self):
        srv = self.server(hooktest='refuse_rcpt = "%s"; refuse_code = 550; '
                          'refuse_enhanced = "5.1.8";' % BOB)
        s = self.session(srv)
        s.reply()
        s.cmd("EHLO client.test")
        s.cmd("MAIL FROM:<sender@elsewhere.test>")
        self.assertEqual(s.cmd("RCPT TO:<%s>" % BOB)[0], 550)
        self.assertEqual(s.cmd("RCPT TO:<%s>" % ALICE)[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send(MESSAGE + b".\r\n")
        self.assertEqual(s.reply()[0], 250)
        srv.wait_for_mail(ALICE)
        time.sleep(0.3)
        self.assertEqual(srv.mail_files(BOB), [])

    # -- order, txn_info, notes, slots ------------------------------------------
    def hook_order(self, log):
        return [(l.split()[0], l.split()[1]) for l in log
                if len(l.split()) > 1 and l.split()[1] in HOOKS + ("txn_end", "session_end")]

    def test_two_filters_run_in_config_order(self):
        for first, second in (("hooktest", "hooktest2"), ("hooktest2", "hooktest")):
            with self.subTest(first=first):
                srv = self.server(**{first: "", second: ""})
                self.assertEqual(self.send(srv)[0], 250)
                order = self.hook_order(self.lines("%s session_end" % second))
                want = []
                for hook in HOOKS + ("txn_end", "session_end"):
                    want += [(first, hook), (second, hook)]
                self.assertEqual(order, want)
                stopped_clean(self, srv)
                srv.cleanup()
                os.unlink(self.hooklog) if os.path.exists(self.hooklog) else None

    def test_txn_info_at_each_hook(self):
        srv = self.server(hooktest="")
        code, text = self.send(srv, rcpts=(ALICE, BOB))
        self.assertEqual(code, 250)
        log = {l.split()[1]: l for l in self.lines("session_end")
               if l.startswith("hooktest ") and "peer=" in l}
        self.assertIn("peer=127.0.0.1 helo=- sender=- rcpts= qid=- auth=- sub=0",
                      log["connect"])
        self.assertIn("helo=- sender=-", log["helo"])
        self.assertIn("helo=client.test sender=sender@elsewhere.test rcpts= qid=-",
                      log["mail_from"])
        self.assertIn("rcpts=%s,%s qid=yes" % (ALICE, BOB), log["end_of_data"])
        self.assertIn("qid=yes", log["before_queue"])
        # the slot is this module's, for this session: one more per hook
        slots = [int(log[h].split("slot=", 1)[1].split()[0]) for h in HOOKS]
        self.assertEqual(slots, sorted(slots))
        self.assertEqual(len(set(slots)), len(slots))

    def test_notes_pass_from_one_filter_to_the_next(self):
        srv = self.server(hooktest='note_set = "sess=from-connect";',
                          hooktest2='note_read = "sess";')
        self.assertEqual(self.send(srv)[0], 250)
        log = self.lines("hooktest2 session_end")
        for hook in HOOKS + ("txn_end",):
            line = [l for l in log if l.startswith("hooktest2 %s " % hook)][0]
            self.assertIn("note=from-connect", line)

    def test_transaction_notes_end_with_the_transaction(self):
        srv = self.server(hooktest='note_set = "t=in-txn"; note_at = "mail_from";',
                          hooktest2='note_read = "t";')
        s = self.session(srv)
        s.reply()
        s.cmd("EHLO client.test")
        s.cmd("MAIL FROM:<sender@elsewhere.test>")
        s.cmd("RCPT TO:<%s>" % ALICE)
        s.cmd("RSET")
        s.cmd("EHLO again.test")
        s.cmd("QUIT")
        log = self.lines("hooktest2 session_end")
        note = {}
        for l in log:
            if l.startswith("hooktest2 ") and "note=" in l:
                note.setdefault(l.split()[1], []).append(l.split("note=")[1].split()[0])
        self.assertEqual(note["rcpt_to"], ["in-txn"])
        self.assertEqual(note["txn_end"], ["in-txn"])
        self.assertEqual(note["helo"], ["-", "-"])   # before, and after RSET
        self.assertEqual(note["session_end"], ["-"])   # the session's own

    def test_calls_outside_their_hooks_and_malformed_ones_fail(self):
        srv = self.server(hooktest="checks = true;")
        self.assertEqual(self.send(srv)[0], 250)
        log = [l for l in self.lines("session_end") if " checks " in l]
        # (the harness's port probe is one more session: a set)
        self.assertEqual(sorted(set(l.split()[2] for l in log)),
                         ["before_queue", "connect", "end_of_data", "mail_from"])
        self.assertFalse([l for l in log if l.endswith("BAD")], log)
        self.assertEqual(len(srv.wait_for_mail(ALICE)), 1)

    # -- header edits --------------------------------------------------------
    def test_header_edits_reach_the_mailbox(self):
        srv = self.server(
            hooktest='insert_header = "X-Inserted: at two"; insert_index = 2; '
                     'change_header = "Subject: changed"; delete_header = "X-Drop"; '
                     'legacy_header = "X-Legacy: 2.0 style";',
            hooktest2='look_for = "Subject: changed"; bq_header = "X-Signed: last";')
        self.assertEqual(self.send(srv)[0], 250)
        mail = srv.wait_for_mail(ALICE)[0]
        head = mail.split("\n\n", 1)[0]
        self.assertIn("Subject: changed", head.splitlines())
        self.assertNotIn("Subject: hello", head)
        self.assertNotIn("X-Drop", head)
        names = [l.split(":")[0] for l in head.splitlines() if l[:1] not in (" ", "\t")]
        # X-Signed (before queue) above X-Legacy (end of data) above the
        # Received line; X-Inserted before the message's second field
        at = names.index("Received")
        self.assertEqual(names[at - 2:at], ["X-Signed", "X-Legacy"])
        self.assertEqual(names[at + 1:at + 3], ["From", "X-Inserted"])
        self.assertIn("The body.", mail)
        log = self.lines("session_end")
        # the second filter saw the first one's change at end of data
        self.assertIn("hooktest2 end_of_data found=1", log)
        self.assertIn("hooktest2 before_queue found=1", log)
        self.assertIn("hooktest2 end_of_headers found=0", log)  # as received

    def test_folded_header_at_the_top(self):
        # a fold cannot go in the added-headers trailer: the message is
        # written anew, and still delivered directly
        srv = self.server(hooktest='bq_header = "X-Folded: first;\\r\\n\\tsecond";')
        self.assertEqual(self.send(srv)[0], 250)
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("X-Folded: first;\n\tsecond\nReceived:", mail)
        self.assertIn("hooktest bq_insert rc=0", self.lines("session_end"))

    def test_header_edit_in_a_long_header_section(self):
        # 600 fields, ~60 KB: the section is read in several pieces
        pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 80) for i in range(600))
        srv = self.server(hooktest='change_header = "Subject: found it";')
        self.assertEqual(self.send(srv, msg=pad + MESSAGE)[0], 250)
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("\nSubject: found it\n", mail)
        self.assertEqual(mail.count("X-Pad-"), 600)
        self.assertIn("\n\nThe body.\n", mail)

    def test_header_edit_of_a_message_on_disk(self):
        # past the queue writer's 128 KiB in memory: rewritten from its file
        body = b"".join(b"line %06d of the body\r\n" % i for i in range(12000))
        srv = self.server(hooktest='change_header = "Subject: big one";')
        self.assertEqual(self.send(srv, msg=MESSAGE + body)[0], 250)
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("\nSubject: big one\n", mail)
        self.assertTrue(mail.endswith("line 011999 of the body\n"))
        self.assertEqual(mail.count(" of the body\n"), 12000)

    def test_abi_2_0_filter_beside_2_1_ones(self):
        # filter20 is built against the 2.0 headers: end_of_data only,
        # adding its header with the add_header argument
        srv = self.server(filter20="", hooktest='look_for = "X-Filter-2-0";')
        self.assertEqual(self.send(srv)[0], 250)
        mail = srv.wait_for_mail(ALICE)[0]
        self.assertIn("X-Filter-2-0: sender@elsewhere.test\n", mail)
        log = self.lines("session_end")
        self.assertIn("hooktest end_of_data found=1", log)
        self.assertEqual([l.split()[1] for l in log if "peer=" in l],
                         list(HOOKS) + ["txn_end", "session_end"])

    def test_header_edit_with_bdat(self):
        srv = self.server(hooktest='change_header = "Subject: by bdat";')
        s = self.session(srv)
        s.reply()
        s.cmd("EHLO client.test")
        s.cmd("MAIL FROM:<sender@elsewhere.test>")
        s.cmd("RCPT TO:<%s>" % ALICE)
        s.send(b"BDAT %d LAST\r\n" % len(MESSAGE) + MESSAGE)
        self.assertEqual(s.reply()[0], 250)
        self.assertIn("Subject: by bdat", srv.wait_for_mail(ALICE)[0])

    def test_end_of_headers_refusal_with_bdat_replied_at_last_chunk(self):
        srv = self.server(hooktest='refuse_at = "end_of_headers"; refuse_code = 451; '
                          'refuse_enhanced = "4.7.7";')
        s = self.session(srv)
        s.reply()
        s.cmd("EHLO client.test")
        s.cmd("MAIL FROM:<sender@elsewhere.test>")
        s.cmd("RCPT TO:<%s>" % ALICE)
        half = len(MESSAGE) // 2
        s.send(b"BDAT %d\r\n" % half + MESSAGE[:half])
        self.assertEqual(s.reply()[0], 250)
        s.send(b"BDAT %d LAST\r\n" % (len(MESSAGE) - half) + MESSAGE[half:])
        code, text = s.reply()
        self.assertEqual((code, text[-1].split()[0]), (451, "4.7.7"))

    # -- envelope, body, hold, discard -------------------------------------------
    def test_envelope_change(self):
        srv = self.server(hooktest='sender = "changed@example.test"; rcpt_add = "%s"; '
                          'rcpt_delete = "%s";' % (BOB, ALICE))
        self.assertEqual(self.send(srv)[0], 250)
        mail = srv.wait_for_mail(BOB)[0]
        self.assertIn("Return-Path: <changed@example.test>", mail)
        time.sleep(0.3)
        self.assertEqual(srv.mail_files(ALICE), [])
        log = self.lines("session_end")
        for what in ("sender", "rcpt_add", "rcpt_delete"):
            self.assertIn("hooktest %s rc=0" % what, log)

    def test_body_replacement(self):
        srv = self.server(hooktest='body = "Replaced.\\nSecond line.\\n";',
                          hooktest2='look_for = "Replaced.";')
        self.assertEqual(self.send(srv)[0], 250)
        mail = srv.wait_for_mail(ALICE)[0]
        head, body = mail.split("\n\n", 1)
        self.assertIn("Subject: hello", head)
        self.assertEqual(body, "Replaced.\nSecond line.\n")
        self.assertIn("hooktest2 end_of_data found=1", self.lines("session_end"))

    def test_hold_then_release(self):
        srv = self.server(hooktest='hold = "suspicious attachment";')
        code, text = self.send(srv)
        self.assertEqual(code, 250)
        qid = text.split()[-1]
        time.sleep(1.0)
        self.assertEqual(srv.mail_files(ALICE), [])   # not even directly
        listing = srv.queue_listing("held")
        self.assertIn(qid, listing)
        self.assertIn("(held: suspicious attachment)", listing)
        srv.cli("queue", "flush")                      # a flush does not free it
        time.sleep(1.0)
        self.assertEqual(srv.mail_files(ALICE), [])
        r = srv.cli("queue", "release", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("released " + qid, r.stdout)
        self.assertEqual(len(srv.wait_for_mail(ALICE)), 1)
        self.assertEqual(srv.cli("queue", "release", "0123456789ABCDEF0123").returncode, 1)

    def test_admin_hold_all_and_release_all(self):
        srv = self.server(hooktest='hold = "first";')
        ids = [self.send(srv)[1].split()[-1] for _ in range(2)]
        r = srv.cli("queue", "release", "ALL")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(srv.wait_for_mail(ALICE, 2)), 2)
        r = srv.cli("queue", "hold", ids[0], "again")   # gone: delivered
        self.assertEqual(r.returncode, 1)

    def test_admin_hold_stops_the_runner(self):
        # remote mail with no resolve module loaded is deferred (451):
        # each attempt counts in `queue list`
        srv = Server(extra_config='relay_networks = [ "127.0.0.0/8" ];')
        self.addCleanup(srv.cleanup)
        self.addCleanup(stopped_clean, self, srv)
        srv.start()
        qid = self.send(srv, rcpts=("someone@remote.test",))[1].split()[-1]
        self.assertIn("1 attempt(s)", srv.queue_listing("1 attempt(s)"))
        r = srv.cli("queue", "hold", qid, "checking it")
        self.assertEqual((r.returncode, r.stdout), (0, "held %s\n" % qid), r.stderr)
        srv.cli("queue", "flush")
        time.sleep(1.0)
        listing = srv.cli("queue", "list").stdout
        self.assertIn("1 attempt(s)", listing)          # not tried while held
        self.assertIn("(held: checking it)", listing)
        self.assertIn("held: checking it", srv.cli("queue", "show", qid).stdout)
        r = srv.cli("queue", "release", "ALL")
        self.assertEqual(r.returncode, 0, r.stderr)
        listing = srv.queue_listing("2 attempt(s)")
        self.assertIn("2 attempt(s)", listing)          # due at once again
        self.assertNotIn("held", listing)

    def test_discard(self):
        srv = self.server(hooktest="discard = true;")
        code, text = self.send(srv)
        self.assertEqual(code, 250)
        self.assertTrue(srv.wait_log("discarded by a filter"))
        time.sleep(0.5)
        self.assertEqual(srv.mail_files(ALICE), [])
        self.assertEqual(srv.queue_files(), [])


class LocalSubmission(unittest.TestCase):
    """sendmail by a user, through the maildrop pickup: end_of_headers,
    end_of_data and before_queue run, with no connection."""

    def server(self, settings):
        from test_sendmail import SendmailServer, is_root
        if not is_root():
            raise unittest.SkipTest("needs root (to become nobody)")
        srv = SendmailServer()
        self.addCleanup(srv.cleanup)
        self.addCleanup(stopped_clean, self, srv)
        self.hooklog = os.path.join(srv.state, "hooks.log")
        srv.modules["hooktest"] = "path = %s; log = %s; %s" % (
            quote(SO["hooktest"]), quote(self.hooklog), settings)
        srv.write_config()
        srv.add_user(ALICE)
        srv.start()
        return srv

    def test_filters_see_local_mail(self):
        srv = self.server('change_header = "Subject: filtered";')
        r = srv.run(ALICE, input="Subject: local\n\nfrom a user\n", user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Subject: filtered", srv.mails_with(ALICE, "from a user")[0])
        deadline = time.time() + 5
        while time.time() < deadline:
            with open(self.hooklog) as f:
                log = [l for l in f.read().splitlines() if "peer=-" in l]
            if any(" session_end " in l for l in log):
                break
            time.sleep(0.05)
        hooks = [l.split()[1] for l in log]
        self.assertEqual(hooks, ["end_of_headers", "end_of_data", "before_queue",
                                 "txn_end", "session_end"])
        for l in log:
            self.assertIn("auth=nobody sub=1", l)
        self.assertIn("sender=nobody@%s rcpts=%s qid=yes" % (DOMAIN, ALICE), log[1])

    def test_refused_local_mail_is_set_aside(self):
        srv = self.server('refuse_at = "end_of_data"; refuse_text = "no local";')
        r = srv.run(ALICE, input="Subject: local\n\nrefused\n", user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(srv.wait_log("a filter refused it: 550 5.7.1 no local"),
                        srv.log()[-2000:])
        self.assertEqual(srv.mail_files(ALICE), [])
        corrupt = os.listdir(os.path.join(srv.state, "corrupt"))
        self.assertTrue([n for n in corrupt if n.startswith("maildrop-d")], corrupt)


if __name__ == "__main__":
    unittest.main()
