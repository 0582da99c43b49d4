"""End to end: Dovecot's imaptest, a compliance and stress tester nobody
here wrote, against a real merpatid on both stores (issue 14).

- Scripted tests: every group in imaptest's tests/ directory; the run
  must report 0 failed groups and 0 failed commands (base protocol and
  extensions). A group whose capability merpati does not announce is
  counted by imaptest as passed with 0 commands.
- Stress mode: 10 and 50 clients on one mailbox for STRESS_SECONDS each
  (APPEND, FETCH, STORE, EXPUNGE, ... at once, imaptest checking that a
  UID keeps its content and flags stay consistent); any "Error:" line
  fails.

imaptest is built from ../shared/tools/imaptest (build.sh, reused when
already built). A clone without ../shared skips these tests and says why.
"""
import os
import re
import subprocess
import unittest

from harness import REPO
from test_imap import imap_server

TOOL_DIR = os.path.join(os.path.dirname(REPO), "shared", "tools", "imaptest")
BUILD_DIR = os.environ.get("IMAPTEST_BUILD", "/tmp/imaptest-build")
USER, PASSWORD = "alice@example.test", "pw"
STRESS_SECONDS = int(os.environ.get("IMAPTEST_STRESS_SECONDS", "30"))
_binary = []


def imaptest_binary():
    """The imaptest binary, built once per run; SkipTest without ../shared."""
    if _binary:
        return _binary[0]
    build = os.path.join(TOOL_DIR, "build.sh")
    if not os.path.isfile(build):
        raise unittest.SkipTest("imaptest not run: %s is absent (only CI and the "
                                "developers' checkout have ../shared)" % build)
    r = subprocess.run(["sh", build, BUILD_DIR], capture_output=True, text=True, timeout=900)
    path = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not os.access(path, os.X_OK):
        raise AssertionError("building imaptest failed:\n" + (r.stdout + r.stderr)[-3000:])
    _binary.append(path)
    return path


def started_server(store):
    srv = imap_server(store)
    srv.add_user(USER, PASSWORD)
    # imaptest's 50 stress clients all come from 127.0.0.1
    srv.start('server.mailstore="%s"' % store, "limits.connections_per_ip=200")
    return srv


def run_imaptest(srv, args, timeout):
    binary = imaptest_binary()
    cmd = [binary, "host=127.0.0.1", "port=%d" % srv.imap_port, "user=" + USER,
           "pass=" + PASSWORD] + args
    try:
        r = subprocess.run(cmd, cwd=os.path.dirname(binary), capture_output=True,
                           text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError("imaptest did not finish within %ds (a hung group?); last output:\n%s"
                             % (timeout, out[-3000:]))
    return r.stdout + r.stderr


def summary(out):
    """(groups, failed groups, [(failed, total) base, extensions]) from a
    scripted run's last lines."""
    g = re.search(r"^(\d+) test groups: (\d+) failed", out, re.M)
    cmds = re.findall(r"^(?:base protocol|extensions): (\d+)/(\d+) individual commands failed",
                      out, re.M)
    if g is None or len(cmds) != 2:
        raise AssertionError("no imaptest summary in its output:\n" + out[-3000:])
    return int(g.group(1)), int(g.group(2)), [(int(a), int(b)) for a, b in cmds]


def stress_totals(out):
    """The per-command totals line of a stress run (the last line of digits)."""
    lines = [l for l in out.splitlines() if re.fullmatch(r"\s*\d+(\s+\d+)+\s*", l)]
    if not lines:
        raise AssertionError("no stress totals in imaptest output:\n" + out[-3000:])
    return [int(x) for x in lines[-1].split()]


class ImaptestMaildir(unittest.TestCase):
    store = "deliver_maildir"

    def setUp(self):
        imaptest_binary()  # skip early, before a server starts
        self.srv = started_server(self.store)
        self.addCleanup(self.srv.cleanup)

    def alive(self):
        self.assertIsNone(self.srv.proc.poll(), "merpatid died:\n" + self.srv.log()[-3000:])

    def test_scripted_groups(self):
        tests = os.path.join(os.path.dirname(imaptest_binary()), "tests")
        out = run_imaptest(self.srv, ["test=" + tests], timeout=300)
        groups, failed_groups, cmds = summary(out)
        failed = sorted(set(re.findall(r"^\*\*\* Test (\S+) command", out, re.M)))
        self.assertGreaterEqual(groups, 60, out[-2000:])
        self.assertEqual((failed_groups, cmds[0][0], cmds[1][0]), (0, 0, 0),
                         "%d of %d groups failed (%s); commands failed: base %d/%d, "
                         "extensions %d/%d\n%s" % (failed_groups, groups, " ".join(failed),
                                                   cmds[0][0], cmds[0][1], cmds[1][0],
                                                   cmds[1][1], out[-6000:]))
        self.alive()

    def stress(self, clients):
        mbox = os.path.join(os.path.dirname(imaptest_binary()), "tests", "default.mbox")
        out = run_imaptest(self.srv, ["mbox=" + mbox, "clients=%d" % clients,
                                      "secs=%d" % STRESS_SECONDS], timeout=STRESS_SECONDS + 120)
        errors = [l for l in out.splitlines() if l.startswith("Error:")]
        self.assertEqual(errors, [], "%d Error: lines at %d clients, first ones:\n%s"
                         % (len(errors), clients, "\n".join(errors[:20])))
        totals = stress_totals(out)
        self.assertGreater(sum(totals), clients * 10, "stress did almost nothing:\n" + out[-2000:])
        self.alive()

    def test_stress_10_clients(self):
        self.stress(10)

    def test_stress_50_clients(self):
        self.stress(50)


class ImaptestSqlite(ImaptestMaildir):
    store = "store_sqlite"


if __name__ == "__main__":
    unittest.main()
