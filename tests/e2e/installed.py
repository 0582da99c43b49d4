"""tests/e2e/installed.py - drive an installed merpati (a `make install
DESTDIR=` tree or a chroot with the .deb) from the tests.

InstalledDaemon runs the installed merpatid on the installed config with
every listener moved to a free loopback port by -o overrides (plus any
path overrides the caller gives, for a DESTDIR tree whose config names
the final paths), listens on a NOTIFY_SOCKET of its own to see READY=1
and STOPPING=1, delivers over SMTP with smtplib and stops by PID. Every
wait is bounded.
"""
import os
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

from harness import free_port, wait_port

LISTENERS = ("listen.smtp", "listen.submission", "listen.smtps",
             "modules.pop3.listen.plain", "modules.pop3.listen.tls",
             "modules.imap.listen.plain", "modules.imap.listen.tls")


def loopback_overrides():
    """-o settings putting every listener of the installed config on a
    free loopback port; returns (overrides, smtp_port)."""
    out, smtp = [], None
    for name in LISTENERS:
        port = free_port()
        smtp = smtp or port
        out += ['%s.address="127.0.0.1"' % name, "%s.port=%d" % (name, port)]
    return out, smtp


def as_args(overrides):
    args = []
    for o in overrides:
        args += ["-o", o]
    return args


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket;
    made under root (a chroot) when given, and seen_as is then its path
    inside."""

    def __init__(self, root=None):
        base = os.path.join(root, "run") if root else None
        self.dir = tempfile.mkdtemp(prefix="merpati-notify-", dir=base)
        os.chmod(self.dir, 0o755)  # reached after the drop as well
        self.path = os.path.join(self.dir, "notify")
        self.seen_as = "/" + os.path.relpath(self.path, root) if root else self.path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.seen = []

    def wait_for(self, state, timeout=15.0):
        deadline = time.time() + timeout
        while state not in self.seen and time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            self.seen += data.decode("ascii", "replace").split("\n")
        return state in self.seen

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


class InstalledDaemon:
    """prefix: the command prefix that runs an installed binary (e.g.
    ["chroot", DIR], then root=DIR); merpatid, merpati, conf: the
    installed binaries and config as that prefix sees them; extra:
    overrides."""

    def __init__(self, prefix, merpatid, merpati, conf, extra=(), log_path=None, root=None):
        self.root = root
        self.prefix, self.merpatid, self.merpati = list(prefix), merpatid, merpati
        self.conf = conf
        listen, self.port = loopback_overrides()
        self.overrides = list(extra) + listen
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="merpati-installed-", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        self.proc = None
        self.notify = None

    def cli(self, *args, input=None):
        return subprocess.run(self.prefix + [self.merpati, "-c", self.conf]
                              + as_args(self.overrides) + list(args), input=input,
                              capture_output=True, text=True, timeout=30)

    def add_user(self, address):
        """check-config must pass, then the user is added (password pw)."""
        for args, stdin in ((["check-config"], None), (["user", "add", address], "pw\n")):
            r = self.cli(*args, input=stdin)
            if r.returncode != 0:
                raise AssertionError("merpati %s: %s" % (" ".join(args), r.stderr))

    def run_once(self):
        """merpatid in the foreground, for a start that must fail."""
        return subprocess.run(self.prefix + [self.merpatid, "-c", self.conf, "-f"]
                              + as_args(self.overrides), capture_output=True, text=True,
                              timeout=30)

    def start(self):
        self.notify = NotifySocket(self.root)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.seen_as)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.prefix + [self.merpatid, "-c", self.conf, "-f"]
                                     + as_args(self.overrides), stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        return self.notify.wait_for("READY=1") and wait_port(self.port, timeout=5.0,
                                                             proc=self.proc)

    def send(self, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as s:
            s.sendmail("sender@example.org", [rcpt],
                       "From: sender@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\nhello\r\n"
                       % (rcpt, subject))

    def stop(self):
        """SIGTERM; True when STOPPING=1 came and the daemon exited 0."""
        if self.proc is None:
            return False
        self.proc.send_signal(signal.SIGTERM)
        stopping = self.notify.wait_for("STOPPING=1", 10.0)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=5)
        self.proc = None
        self.logf.close()
        self.notify.close()
        return stopping and rc == 0

    def log(self):
        return (open(self.log_path, errors="replace").read()
                if os.path.exists(self.log_path) else "")


def wait_for_files(directory, count=1, timeout=15.0):
    """The files in directory once there are count (bounded wait)."""
    deadline = time.time() + timeout
    names = []
    while time.time() < deadline:
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        if len(names) >= count:
            break
        time.sleep(0.05)
    return [os.path.join(directory, n) for n in names]
