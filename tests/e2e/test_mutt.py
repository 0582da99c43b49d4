"""End to end: mutt, a real IMAP client from Debian, reads a mailbox and
moves a message to another folder (issue 6). mutt needs a terminal, so it
runs inside a detached tmux session driven with send-keys; every wait is
bounded and the tmux session is killed by name at the end."""
import imaplib
import os
import smtplib
import subprocess
import time
import unittest

from harness import DOMAIN
from test_imap import imap_server

ALICE = "alice@" + DOMAIN


def screen(session):
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True).stdout


def wait_screen(session, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in screen(session):
            return True
        time.sleep(0.2)
    return False


class Mutt(unittest.TestCase):
    def test_mutt_reads_and_moves(self):
        srv = imap_server("deliver_maildir")
        self.addCleanup(srv.cleanup)
        srv.add_user(ALICE, "pw")
        srv.start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            for i in range(3):
                s.sendmail("b@x.test", [ALICE], "From: b@x.test\r\nSubject: mutt %d\r\n"
                           "Date: Mon, 2%d Nov 2026 10:00:00 +0000\r\n\r\nbody %d\r\n" % (i, i, i))
        srv.wait_for_mail(ALICE, 3)
        rc = os.path.join(srv.dir, "muttrc")
        with open(rc, "w") as f:
            f.write('set imap_user = "%s"\nset imap_pass = "pw"\n'
                    'set folder = "imap://127.0.0.1:%d/"\nset spoolfile = "+INBOX"\n'
                    "set ssl_starttls = no\nset ssl_force_tls = no\nset confirmappend = no\n"
                    "set confirmcreate = no\nset delete = yes\nset mail_check = 0\n"
                    'set sort = date\nset header_cache = ""\nset message_cachedir = ""\n'
                    % (ALICE, srv.imap_port))
        session = "merpati-mutt-%d" % os.getpid()
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                        "mutt -n -F %s" % rc], check=True)
        self.addCleanup(subprocess.run, ["tmux", "kill-session", "-t", session],
                        capture_output=True)
        self.assertTrue(wait_screen(session, "Msgs:3"), screen(session))
        self.assertTrue(wait_screen(session, "mutt 0"), screen(session))
        subprocess.run(["tmux", "send-keys", "-t", session, "s"])   # save (move) the first
        self.assertTrue(wait_screen(session, "Save to mailbox"), screen(session))
        subprocess.run(["tmux", "send-keys", "-t", session, "C-u", "=Archive", "Enter"])
        time.sleep(1)
        subprocess.run(["tmux", "send-keys", "-t", session, "$"])   # sync: expunge
        time.sleep(1)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"])
        deadline = time.time() + 10
        while time.time() < deadline and subprocess.run(
                ["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            time.sleep(0.2)
        m = imaplib.IMAP4("127.0.0.1", srv.imap_port, timeout=10)
        m.login(ALICE, "pw")
        self.assertEqual(m.select("Archive", readonly=True)[1][0], b"1")
        subject = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
        self.assertIn(b"Subject: mutt 0", subject)
        self.assertEqual(m.select("INBOX", readonly=True)[1][0], b"2")
        m.logout()


if __name__ == "__main__":
    unittest.main()
