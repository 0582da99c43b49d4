"""tests/e2e/harness.py - start a real merpatid on free loopback ports.

Server() writes a config into a fresh temp dir (state under it), starts
`core/merpatid -c CONF -f`, waits (bounded) for the SMTP port, and stops
the daemon by PID (SIGTERM, then SIGKILL) when the test ends. Every wait
is bounded in count and time.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MERPATID = os.path.join(REPO, "core", "merpatid")
MERPATI = os.path.join(REPO, "core", "merpati")
DOMAIN = "example.test"


def free_port(address="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_port(port, address="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def quote(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Server:
    """One merpatid with its own state dir and ports."""

    def __init__(self, extra_config="", modules=None, address="127.0.0.1",
                 hostname="mail.example.test", domains=(DOMAIN,), listeners=None):
        self.dir = tempfile.mkdtemp(prefix="merpati-e2e-")
        os.chmod(self.dir, 0o755)  # the daemon's user must reach var/
        self.state = os.path.join(self.dir, "var")
        self.address = address
        self.hostname = hostname
        self.port = free_port(address)
        self.ports = {"smtp": self.port}
        self.conf = os.path.join(self.dir, "merpati.conf")
        self.log_path = os.path.join(self.dir, "merpatid.log")
        self.proc = None
        self.domains = domains
        self.listeners = listeners or {}
        for name in self.listeners:
            self.ports[name] = free_port(address)
        self.modules = modules if modules is not None else {}
        self.extra = extra_config
        self.write_config()

    def listen_block(self):
        lines = ['  smtp = { address = %s; port = %d; };' % (quote(self.address), self.port)]
        for name, opts in self.listeners.items():
            lines.append('  %s = { address = %s; port = %d; %s };'
                         % (name, quote(self.address), self.ports[name], opts))
        return "\n".join(lines)

    def module_block(self):
        mods = {
            "auth_sqlite": 'database = %s;' % quote(os.path.join(self.state, "users.db")),
            "deliver_maildir": 'root = %s;' % quote(os.path.join(self.state, "mail")),
        }
        mods.update(self.modules)
        return "\n".join("  %s = { %s };" % (k, v) for k, v in mods.items() if v is not None)

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write("""server = { hostname = %s; state_dir = %s; module_dir = %s; user = "merpati"; };
domains = [ %s ];
listen = {
%s
};
limits = { message_size = 1048576; recipients = 100; };
%s
modules = {
%s
};
""" % (quote(self.hostname), quote(self.state), quote(os.path.join(REPO, "modules")),
                ", ".join(quote(d) for d in self.domains), self.listen_block(),
                self.extra, self.module_block()))

    # -- process control ----------------------------------------------------
    def start(self, *overrides, expect_fail=False):
        args = [MERPATID, "-c", self.conf, "-f"]
        for o in overrides:
            args += ["-o", o]
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        if expect_fail:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.stop()
                raise AssertionError("merpatid did not refuse to start")
            self.logf.close()
            return self.proc.returncode
        if not wait_port(self.port, self.address, 10.0, self.proc):
            self.stop()
            raise AssertionError("merpatid did not start:\n" + self.log()[-3000:])
        for name in self.listeners:
            wait_port(self.ports[name], self.address, 5.0, self.proc)
        return 0

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- helpers -------------------------------------------------------------
    def cli(self, *args, input=None, timeout=20):
        return subprocess.run([MERPATI, "-c", self.conf] + list(args), input=input,
                              capture_output=True, text=True, timeout=timeout)

    def add_user(self, address, password="secret"):
        r = self.cli("user", "add", address, input=password + "\n")
        if r.returncode != 0:
            raise AssertionError("user add failed: " + r.stderr)

    def maildir(self, address):
        local, domain = address.split("@")
        return os.path.join(self.state, "mail", domain.lower(), local.lower())

    def mail_files(self, address, sub="new"):
        d = os.path.join(self.maildir(address), sub)
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except OSError:
            return []

    def wait_for_mail(self, address, count=1, timeout=10.0, sub="new"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            files = self.mail_files(address, sub)
            if len(files) >= count:
                time.sleep(0.05)
                out = []
                for path in self.mail_files(address, sub):
                    with open(path, "rb") as f:
                        out.append(f.read().decode("utf-8", "replace"))
                return out
            time.sleep(0.05)
        raise AssertionError("%d message(s) for %s not delivered within %.0fs; have %d\n%s"
                             % (count, address, timeout, len(self.mail_files(address, sub)),
                                self.log()[-2000:]))

    def mails_with(self, address, text, timeout=20.0):
        """Delivered mails of address containing text, waiting (bounded)
        until there is at least one."""
        deadline = time.time() + timeout
        while True:
            found = []
            for path in self.mail_files(address):
                with open(path, errors="replace") as f:
                    body = f.read()
                if text in body:
                    found.append(body)
            if found or time.time() >= deadline:
                return found
            time.sleep(0.1)

    def queue_listing(self, text, timeout=5.0):
        """`merpati queue list` once it shows text (a message's status file
        is written just after its log line), bounded."""
        deadline = time.time() + timeout
        listing = self.cli("queue", "list").stdout
        while text not in listing and time.time() < deadline:
            time.sleep(0.1)
            listing = self.cli("queue", "list").stdout
        return listing

    def queue_files(self):
        q = os.path.join(self.state, "queue")
        try:
            return [n for n in os.listdir(q) if n != "tmp" and "." not in n]
        except OSError:
            return []

    def wait_log(self, text, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False


class Session:
    """A raw SMTP connection for what client libraries will not send."""

    def __init__(self, port, address="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((address, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """A whole (multi-line) reply: (code, [texts])."""
        texts = []
        while True:
            line = self.line()
            texts.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), texts

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
