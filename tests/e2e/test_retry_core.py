"""End to end: the queue's retry schedule, delay warning and bounce
with the core's own schedule (no retry module), durations shrunk to
seconds; sendmail -t; queue list showing the last error (issue 4)."""
import re
import smtplib
import time
import unittest

from harness import DOMAIN, Server

ALICE = "alice@" + DOMAIN


class Schedule(unittest.TestCase):
    def relaying_server(self, warn, give_up):
        """No resolve module: remote mail can only be deferred, which is
        exactly what exercises the schedule (shrunk to seconds)."""
        srv = Server(extra_config='relay_networks = [ "127.0.0.0/8" ];\n'
                     'queue = { retry_interval = "1s"; warn_after = "%s"; give_up_after = "%s"; };'
                     % (warn, give_up))
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.start()
        return srv

    def test_warning_then_bounce_then_gone(self):
        srv = self.relaying_server("2s", "5s")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("c")
            s.mail(ALICE)
            s.rcpt("far@remote.test")
            code, text = s.data(b"Subject: will bounce\r\nMessage-ID: <orig@x>\r\n\r\nbody\r\n")
        qid = re.search(r"queued as ([0-9A-F]+)", text.decode()).group(1)
        self.assertTrue(srv.wait_log(qid + ": deferred to=<far@remote.test>"))
        listing = srv.queue_listing("4.4.0")
        self.assertIn(qid, listing)
        self.assertIn("far@remote.test", listing)
        self.assertIn("4.4.0", listing)  # the last error is shown
        warnings = srv.mails_with(ALICE, "Subject: Delayed Mail")
        self.assertEqual(len(warnings), 1)
        self.assertIn("Action: delayed", warnings[0])
        self.assertIn("Final-Recipient: rfc822; far@remote.test", warnings[0])
        bounces = srv.mails_with(ALICE, "Subject: Undelivered Mail Returned to Sender")
        self.assertEqual(len(bounces), 1)
        self.assertIn("Action: failed", bounces[0])
        self.assertIn("Subject: will bounce", bounces[0])  # original headers quoted
        self.assertIn("Return-Path: <>", bounces[0])       # from the null sender
        deadline = time.time() + 10
        while qid in srv.queue_files() and time.time() < deadline:
            time.sleep(0.1)
        self.assertNotIn(qid, srv.queue_files())
        time.sleep(2)
        self.assertEqual(len(srv.mails_with(ALICE, "Subject: Delayed Mail")), 1)
        self.assertEqual(len(srv.mails_with(ALICE, "Subject: Undelivered Mail")), 1)

    def test_bounce_to_null_sender_is_not_bounced(self):
        srv = self.relaying_server("1s", "2s")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("<>", ["far@remote.test"], "Subject: from null\r\n\r\nx\r\n")
        deadline = time.time() + 15
        while srv.queue_files() and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(srv.queue_files(), [])
        self.assertIn("no non-delivery notification (null sender)", srv.log())

    def test_notify_never(self):
        srv = self.relaying_server("1s", "2s")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("c")
            s.mail(ALICE)
            s.rcpt("far@remote.test", ["NOTIFY=NEVER"])
            s.data(b"Subject: quiet\r\n\r\nx\r\n")
        deadline = time.time() + 15
        while srv.queue_files() and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(srv.queue_files(), [])
        time.sleep(0.5)
        self.assertEqual(srv.mail_files(ALICE), [])


class Sendmail(unittest.TestCase):
    def test_sendmail_t(self):
        srv = Server()
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE)
        srv.add_user("bob@" + DOMAIN)
        srv.start()
        r = srv.cli("sendmail", "-t", "-f", "cron@y.test",
                    input="To: Alice <%s>\nBcc: bob@%s\nSubject: from -t\n\nhello\n.\nnot read\n"
                    % (ALICE, DOMAIN))
        self.assertEqual(r.returncode, 0, r.stderr)
        a = srv.wait_for_mail(ALICE)[0]
        b = srv.wait_for_mail("bob@" + DOMAIN)[0]
        self.assertIn("Subject: from -t", a)
        self.assertIn("Subject: from -t", b)
        self.assertNotIn("not read", a)  # a lone "." ends the input without -i
        self.assertNotIn("Bcc:", a)
        self.assertNotIn("Bcc:", b)
        self.assertIn("Message-ID: <", a)
        self.assertIn("Date: ", a)


if __name__ == "__main__":
    unittest.main()
