#!/usr/bin/env python3
"""bench/run.py - merpati against Postfix and Dovecot on the same machine, same run.

    make bench            (or: python3 bench/run.py [--only smtp,outbound,imap,memory] ...)

Installs Postfix (and Dovecot) from Debian when missing and runs them on
loopback only (Postfix on 127.0.0.1:2626, never port 25; Dovecot on free
ports of 127.0.0.1). Every server the script starts is stopped at the end.
Medians of --runs runs with the min-max spread go to bench/RESULTS.md,
with a table of the targets of issue 8 ("met" / "not met").

smtp      SMTP inbound: smtp-source into each server, clock stopped when
          the last message is in the Maildir; the smtp-sink ceiling is
          smtp-source into smtp-sink (no disk), same sizes and sessions.
outbound  --outbound messages (4 KiB) relayed to an smtp-sink on loopback.
          Both servers relay to a port where nothing listens yet, so every
          message is deferred after one failed attempt and sits in the
          queue; then the sink is started, the queue flushed (`postqueue
          -f`, `merpati queue flush`) and the clock runs until the queue is
          empty. Same method for both; the sink's count is checked.
imap      IMAP and POP3 against Dovecot. IMAP: one Maildir of --mailbox
          messages shared by all clients (EXAMINE, read-only); a session
          is LOGIN, EXAMINE, FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), 20
          random bodies, SEARCH TEXT for a rare word, LOGOUT. POP3: each
          client its own user and maildrop of --pop3-mailbox messages
          (merpati locks a maildrop, RFC 1939; Dovecot does not), hard
          links to one generated Maildir; a session is USER/PASS, STAT,
          UIDL, RETR x20, QUIT. Clients are processes with a raw socket
          client (imaplib and threads made the client the bottleneck);
          each runs sessions for --duration seconds (at least one).
          Sessions per second and p99 session latency; failed sessions
          are counted.
memory    RSS of all the server's processes with 1000 idle SMTP
          connections (merpati vs Postfix) and 1000 idle authenticated
          IMAP sessions (merpati vs Dovecot), per connection.

Both IMAP servers check the same password hashes (the ones `merpati user
add` wrote, given to Dovecot's passwd-file as {CRYPT}), so a login costs
both the same; with --hash fast both get cheap sha512-crypt hashes, so
that sessions measure mail handling rather than yescrypt. See README.md.
"""
import argparse
import multiprocessing
import os
import pwd
import queue
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import Server, free_port, wait_port  # noqa: E402

BENCH_USER = "benchuser"
POSTFIX_PORT = 2626
PARTS = ("smtp", "outbound", "imap", "imap-bare", "memory")
HASHES = {"merpati": "the ones `merpati user add` wrote (yescrypt: ~90 ms of CPU per uncached login "
                      "here, which bounds such logins at about 11 per second per core)",
          "fast": "sha512-crypt with 1000 rounds (~1 ms per login; --hash fast)"}
AUTH_CACHES = {"default": "each with its default: merpati remembers a verified login for 1h "
                          "(auth_sqlite.verify_cache), Dovecot's auth_cache is off",
               "both": "both cache logins for 1h (merpati's verify_cache; Dovecot auth_cache_size = "
                       "10M, which keeps the stored hash and still verifies the password against "
                       "it at every login, so it saves the passdb lookup but not the hashing; "
                       "--auth-cache both)",
               "none": "neither remembers a login: every one pays the hash (merpati "
                       "verify_cache = 0; --auth-cache none)"}
LOGIN_MODES = {"security": "its default, one forked per connection",
               "performance": "its high-performance mode, service_count = 0 (--dovecot-login performance)"}
RARE = "zanzibar"
with open("/proc/loadavg") as _f:
    LOAD_AT_START = " ".join(_f.read().split()[:3])  # in exactly one message of each mailbox: what SEARCH TEXT looks for


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def apt_install(*pkgs):
    sh("apt-get", "install", "-y", "-qq", *pkgs, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def ensure_peers(parts):
    if shutil.which("smtp-source") is None or shutil.which("postfix") is None:
        subprocess.run("echo 'postfix postfix/main_mailer_type select No configuration' | "
                       "debconf-set-selections", shell=True, check=True)
        apt_install("postfix")
    # dovecot-core alone (installed for imaptest) has no imap/pop3 services
    if {"imap", "imap-bare", "memory"} & set(parts) and not (
            os.path.exists("/usr/lib/dovecot/imap") and os.path.exists("/usr/lib/dovecot/pop3")):
        apt_install("dovecot-imapd", "dovecot-pop3d")
    try:
        pwd.getpwnam(BENCH_USER)
    except KeyError:
        sh("useradd", "--create-home", "--home-dir", "/var/tmp/" + BENCH_USER, BENCH_USER)


def raise_fd_limit():
    # 1000 idle connections, and the servers we start inherit the limit;
    # merpatid refuses to start when its connection limits (per protocol,
    # 3000 each here: 2 descriptors per connection + 1024) need more than
    # it may open. As root the hard limit can be raised too, where allowed.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


# -- processes and memory -------------------------------------------------------

def descendants(root):
    """root and every process below it (Postfix and Dovecot fork per service)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def pid_from(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def memory_of(pids):
    """(RSS, PSS) in KiB summed over pids; PSS shares the libraries that
    RSS counts once per process, so both are reported."""
    rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


# -- Postfix --------------------------------------------------------------------

POSTFIX_MAIN = """compatibility_level = 3.6
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = bench.local
mydestination = bench.test
home_mailbox = Maildir/
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = /var/log/postfix-bench.log
default_process_limit = 200
"""
POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


def start_postfix(extra=""):
    with open("/etc/postfix/main.cf", "w") as f:
        f.write(POSTFIX_MAIN + extra)
    with open("/etc/postfix/master.cf") as f:
        lines = [l for l in f if not l.startswith("smtp      inet") and
                 not l.startswith("127.0.0.1:%d" % POSTFIX_PORT)]
    lines.insert(0, "127.0.0.1:%d inet n - n - - smtpd\n" % POSTFIX_PORT)
    with open("/etc/postfix/master.cf", "w") as f:
        f.writelines(lines)
    sh("postfix", "stop", check=False)
    sh("postfix", "start")
    if not wait_port(POSTFIX_PORT, timeout=20):
        raise SystemExit("postfix did not start")


def stop_postfix():
    sh("postfix", "stop", check=False)


def postfix_pids():
    master = pid_from("/var/spool/postfix/pid/master.pid")
    return descendants(master) if master else []


def postfix_queue(*names):
    """Files in Postfix's queue directories (deferred/ is hashed: walk)."""
    total = 0
    for name in names or POSTFIX_QUEUES:
        for _, _, files in os.walk(os.path.join("/var/spool/postfix", name)):
            total += len(files)
    return total


# -- SMTP inbound ---------------------------------------------------------------

def maildir_count(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


TRASH = []  # the directory holding what set_aside() moved, deleted at the end


def set_aside(path):
    """Move a finished run's Maildir out of the way (the server makes a new
    one) instead of deleting it. On ext4 without a journal the inode
    allocator skips, reading each from the inode table, every inode freed in
    the last 60 s (300 s while its block is dirty): deleting 5000 files just
    before a timed run made that run pay for the benchmark's own cleanup
    (30% of merpatid's CPU in recently_deleted(), perf). Deleted at the end."""
    if not os.path.isdir(path):
        return
    if not TRASH:
        TRASH.append(tempfile.mkdtemp(prefix="bench-trash-", dir="/var/tmp"))
    os.rename(path, os.path.join(TRASH[0], str(len(os.listdir(TRASH[0])))))


def empty_trash():
    while TRASH:
        shutil.rmtree(TRASH.pop(), ignore_errors=True)


def source_cmd(port, messages, size_kib, sessions, rcpt):
    return ["smtp-source", "-c", "-l", str(size_kib * 1024), "-m", str(messages),
            "-s", str(sessions), "-f", "bench@source.test", "-t", rcpt, "127.0.0.1:%d" % port]


def run_source(port, messages, size_kib, sessions, rcpt):
    return subprocess.run(source_cmd(port, messages, size_kib, sessions, rcpt),
                          capture_output=True, text=True, timeout=1800)


def timed_delivery(port, messages, size_kib, sessions, rcpt, maildir, before):
    start = time.time()
    run_source(port, messages, size_kib, sessions, rcpt)
    deadline = time.time() + 600
    while maildir_count(maildir) < before + messages and time.time() < deadline:
        time.sleep(0.01)
    elapsed = time.time() - start
    got = maildir_count(maildir) - before
    return got / elapsed if elapsed else 0.0, got


def start_sink(port):
    """smtp-sink on port; its -c counters ("mesg=N") go to a file. As root
    it insists on -u (it drops to that user after binding)."""
    out = tempfile.NamedTemporaryFile(prefix="bench-sink-", delete=False)
    proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", "127.0.0.1:%d" % port, "1000"],
                            stdout=out, stderr=subprocess.STDOUT)
    out.close()
    if not wait_port(port, timeout=10, proc=proc):
        stop_sink((proc, out.name))
        raise SystemExit("smtp-sink did not start")
    return proc, out.name


def stop_sink(sink):
    """Stops it; returns how many messages it received."""
    proc, path = sink
    time.sleep(0.2)  # the counter is written when a session ends
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    with open(path, errors="replace") as f:
        counts = re.findall(r"mesg=(\d+)", f.read())
    os.unlink(path)
    return int(counts[-1]) if counts else 0


def ceiling(messages, size_kib, sessions):
    port = free_port()
    sink = start_sink(port)
    try:
        start = time.time()
        run_source(port, messages, size_kib, sessions, "x@sink.test")
        elapsed = time.time() - start
    finally:
        got = stop_sink(sink)
    return got / elapsed


def smtp_inbound(a):
    """Rows (size, sessions, postfix, merpati, ceiling), msg/s per run."""
    home = pwd.getpwnam(BENCH_USER).pw_dir
    pf_maildir = os.path.join(home, "Maildir", "new")
    srv = Server(domains=("bench.test",))
    rows = []
    try:
        start_postfix()
        srv.add_user(BENCH_USER + "@bench.test", "pw")
        srv.start("limits.connections_per_ip=2000", "limits.connections=3000")
        mp_maildir = os.path.join(srv.maildir(BENCH_USER + "@bench.test"), "new")
        for size in ints(a.sizes):
            for sessions in ints(a.sessions):
                pf, mp, cl = [], [], []
                for _ in range(a.runs):
                    set_aside(os.path.join(home, "Maildir"))
                    pf.append(timed_delivery(POSTFIX_PORT, a.messages, size, sessions,
                                             BENCH_USER + "@bench.test", pf_maildir, 0)[0])
                    set_aside(os.path.dirname(mp_maildir))
                    mp.append(timed_delivery(srv.port, a.messages, size, sessions,
                                             BENCH_USER + "@bench.test", mp_maildir, 0)[0])
                    cl.append(ceiling(a.messages, size, sessions))
                rows.append((size, sessions, pf, mp, cl))
                print("%3d KiB x %2d sessions: postfix %s msg/s, merpati %s msg/s, sink %s msg/s"
                      % (size, sessions, fmt(pf), fmt(mp), fmt(cl)), flush=True)
    finally:
        srv.cleanup()
        stop_postfix()
        set_aside(os.path.join(home, "Maildir"))
    return rows


# -- SMTP outbound --------------------------------------------------------------

def wait_until(cond, timeout, step=0.02):
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        time.sleep(step)
    return cond()


def release(flush, queued, messages, sink_port):
    """Start the sink, flush, time until the queue is empty: (msg/s, sink count)."""
    sink = start_sink(sink_port)
    try:
        start = time.time()
        flush()
        wait_until(lambda: queued() == 0, 600, 0.05)
        elapsed = time.time() - start
    finally:
        got = stop_sink(sink)
    left = queued()
    return (messages - left) / elapsed, got


def outbound_postfix(messages, sink_port):
    sh("postsuper", "-d", "ALL", check=False)  # a stale queue would count as work
    run_source(POSTFIX_PORT, messages, 4, 10, "x@remote.test")
    # every message tried once against the closed port, now in deferred/
    if not wait_until(lambda: postfix_queue("deferred") >= messages and
                      postfix_queue("maildrop", "incoming", "active") == 0, 600, 0.2):
        raise SystemExit("postfix: %d of %d messages deferred" % (postfix_queue("deferred"), messages))
    return release(lambda: sh("postqueue", "-f"), postfix_queue, messages, sink_port)


def outbound_merpati(srv, messages, sink_port):
    before = srv.log().count(" deferred to=")
    run_source(srv.port, messages, 4, 10, "x@remote.test")
    if not wait_until(lambda: srv.log().count(" deferred to=") - before >= messages, 600, 0.2):
        raise SystemExit("merpati: %d of %d messages deferred" %
                         (srv.log().count(" deferred to=") - before, messages))
    return release(lambda: srv.cli("queue", "flush"), lambda: len(srv.queue_files()),
                   messages, sink_port)


def outbound(a):
    """(postfix, merpati): lists of (msg/s, sink count) per run."""
    sink_port = free_port()
    rules = ('rules = ( { match = "@remote\\\\.test$"; action = "relay"; host = "127.0.0.1:%d"; } );'
             % sink_port)
    srv = Server(domains=("bench.test",), extra_config='relay_networks = [ "127.0.0.0/8" ];',
                 modules={"route_regex": rules})
    pf, mp = [], []
    try:
        start_postfix("relayhost = [127.0.0.1]:%d\n" % sink_port)
        srv.start("limits.connections_per_ip=2000")
        for _ in range(a.runs):
            pf.append(outbound_postfix(a.outbound, sink_port))
            mp.append(outbound_merpati(srv, a.outbound, sink_port))
            print("outbound %d messages: postfix %.0f msg/s (sink got %d), merpati %.0f msg/s "
                  "(sink got %d)" % (a.outbound, pf[-1][0], pf[-1][1], mp[-1][0], mp[-1][1]), flush=True)
    finally:
        srv.cleanup()
        sh("postsuper", "-d", "ALL", check=False)
        stop_postfix()
    return pf, mp


# -- Dovecot --------------------------------------------------------------------

# Dovecot's defaults except what 1000 sessions of one user from one address
# need (process and client limits, mail_max_userip_connections).
DOVECOT_CONF = """protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
base_dir = {run}/base
log_path = {run}/dovecot.log
mail_location = maildir:~/Maildir
default_process_limit = 1200
default_client_limit = 5000
{auth_cache}passdb {{
  driver = passwd-file
  args = username_format=%u {run}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {run}/passwd
}}
protocol imap {{
  mail_max_userip_connections = 2000
}}
protocol pop3 {{
  mail_max_userip_connections = 2000
}}
service imap {{
  process_limit = 1200
}}
service anvil {{
  client_limit = 5000
}}
service imap-login {{
  process_limit = 1200{login}
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{{login}
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""
# Dovecot's "high-performance" login mode: login processes serve many
# connections instead of one fork per connection (its default).
DOVECOT_PERF_LOGIN = """
  service_count = 0
  process_min_avail = %d""" % (os.cpu_count() or 1)


DOVECOT_AUTH_CACHE = "auth_cache_size = 10M\nauth_cache_ttl = 1 hour\n"


def start_dovecot(run, imap, pop3, perf_login=False, auth_cache=False):
    os.makedirs(os.path.join(run, "base"), exist_ok=True)  # dovecot owns base_dir
    conf = os.path.join(run, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(run=run, imap=imap, pop3=pop3,
                                    login=DOVECOT_PERF_LOGIN if perf_login else "",
                                    auth_cache=DOVECOT_AUTH_CACHE if auth_cache else ""))
    # dovecot daemonises keeping inherited descriptors: no pipes to it
    subprocess.run(["dovecot", "-c", conf], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if not (wait_port(imap, timeout=15) and wait_port(pop3, timeout=15)):
        stop_dovecot(conf)
        raise SystemExit("dovecot did not start")
    return conf


def stop_dovecot(conf):
    pid = pid_from(os.path.join(os.path.dirname(conf), "base", "master.pid"))
    sh("doveadm", "-c", conf, "stop", check=False)
    if pid and not wait_until(lambda: not os.path.exists("/proc/%d" % pid), 10, 0.1):
        os.kill(pid, signal.SIGKILL)


# -- mailboxes ------------------------------------------------------------------

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\n"
         "tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim\n")


def fill_maildir(path, count):
    """count messages of 2-8 KiB in path/cur, RARE in the middle one."""
    rng = random.Random(count)
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i in range(count):
        name = os.path.join(path, "cur", "%d.M%dP1.bench:2," % (1700000000 + i, i))
        with open(name, "w") as f:
            f.write("From: Sender %d <s%d@x.test>\nTo: %s@bench.test\nSubject: message %d\n"
                    "Date: Mon, 02 Nov 2026 10:00:00 +0000\nMessage-ID: <%d@x.test>\n\n%s%s"
                    % (i % 50, i % 50, BENCH_USER, i, i, LOREM * rng.randint(14, 58),
                       RARE + "\n" if i == count // 2 else ""))


def link_maildir(src, dst):
    """dst as a copy of src made of hard links: 50 maildrops in a second."""
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(dst, sub), exist_ok=True)
    for name in os.listdir(os.path.join(src, "cur")):
        os.link(os.path.join(src, "cur", name), os.path.join(dst, "cur", name))


def chown_tree(path, user):
    sh("chown", "-R", "%s:%s" % (user, user), path)


def fast_hash():
    """sha512-crypt, 1000 rounds: ~1 ms where yescrypt takes ~90 ms, so that
    a session measures mail handling rather than the password hash."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt("pw", crypt.mksalt(crypt.METHOD_SHA512, rounds=1000))


def imap_user():
    return BENCH_USER + "@bench.test"


def pop3_user(i):
    return "%s%d@bench.test" % (BENCH_USER, i)


class MailPeers:
    """merpati (imap and pop3 modules) and Dovecot with the same users,
    password hashes and mailboxes: one IMAP user with imap_count messages,
    pop3_users POP3 users with pop3_count messages each."""

    def __init__(self, imap_count, pop3_users, pop3_count, fast_hash=False, perf_login=False,
                 auth_cache="default"):
        self.run = tempfile.mkdtemp(prefix="bench-dovecot-")
        os.chmod(self.run, 0o755)
        self.ports = {k: free_port() for k in ("dimap", "dpop3", "mimap", "mpop3")}
        listen = 'plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; port = %d; }; };'
        self.srv = Server(domains=("bench.test",), modules={
            "imap": listen % self.ports["mimap"], "pop3": listen % self.ports["mpop3"]})
        self.conf = None
        self.fast_hash = fast_hash
        self.perf_login = perf_login
        self.auth_cache = auth_cache
        self.users = [(imap_user(), imap_count)] + [(pop3_user(i), pop3_count)
                                                    for i in range(pop3_users)]
        self.fill()

    def home(self, user):
        return os.path.join(self.run, "home", user.split("@")[0])

    def fill(self):
        """Each server gets its own files (owned by its user); within a
        server, maildrops of equal size are hard links to the first."""
        for user, _ in self.users:
            self.srv.add_user(user, "pw")
        for maildir_of in (lambda u: os.path.join(self.home(u), "Maildir"), self.srv.maildir):
            first = {}
            for user, count in self.users:
                if count in first:
                    link_maildir(first[count], maildir_of(user))
                else:
                    first[count] = maildir_of(user)
                    fill_maildir(first[count], count)
        chown_tree(os.path.join(self.run, "home"), BENCH_USER)
        chown_tree(os.path.join(self.srv.state, "mail"), "merpati")
        self.write_passwd()

    def write_passwd(self):
        """Dovecot checks the very hashes merpati stored ({CRYPT}: libcrypt)."""
        db = sqlite3.connect(os.path.join(self.srv.state, "users.db"))
        if self.fast_hash:
            with db:
                db.executemany("UPDATE users SET password = ? WHERE address = ?",
                               [(fast_hash(), user) for user, _ in self.users])
        hashes = dict(db.execute("SELECT address, password FROM users"))
        db.close()
        pw = pwd.getpwnam(BENCH_USER)
        with open(os.path.join(self.run, "passwd"), "w") as f:
            for user, _ in self.users:
                f.write("%s:{CRYPT}%s:%d:%d::%s::\n" % (user, hashes[user], pw.pw_uid,
                                                        pw.pw_gid, self.home(user)))

    def start(self):
        self.conf = start_dovecot(self.run, self.ports["dimap"], self.ports["dpop3"], self.perf_login,
                                  self.auth_cache == "both")
        no_cache = ("modules.auth_sqlite.verify_cache=\"0\"",) if self.auth_cache == "none" else ()
        self.srv.start("limits.connections_per_ip=2000", "limits.connections=3000", *no_cache)

    def dovecot_pids(self):
        master = pid_from(os.path.join(self.run, "base", "master.pid"))
        return descendants(master) if master else []

    def merpati_pids(self):
        return descendants(self.srv.proc.pid) if self.srv.proc else []

    def cleanup(self):
        self.srv.cleanup()
        if self.conf:
            stop_dovecot(self.conf)
        shutil.rmtree(self.run, ignore_errors=True)


# -- raw IMAP and POP3 clients --------------------------------------------------

class Failed(Exception):
    pass


class Wire:
    """A client socket that reads up to a delimiter and parses nothing
    else: with 10,000 messages a parsing client is the bottleneck."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()

    def until(self, needle):
        """Everything up to and including needle; the rest stays buffered."""
        pos = 0
        while True:
            i = self.buf.find(needle, pos)
            if i >= 0:
                data = bytes(self.buf[:i + len(needle)])
                del self.buf[:i + len(needle)]
                return data
            pos = max(0, len(self.buf) - len(needle) + 1)
            chunk = self.sock.recv(262144)
            if not chunk:
                raise Failed("connection closed waiting for %r" % needle)
            self.buf += chunk

    def line(self, expect):
        line = self.until(b"\r\n")
        if not line.startswith(expect):
            raise Failed(line[:200].decode("latin-1"))
        return line

    def send(self, data):
        self.sock.sendall(data + b"\r\n")

    def close(self):
        self.sock.close()


def imap_cmd(w, tag, cmd):
    """Send cmd, return what came before the tagged reply; raise unless OK.
    The messages never contain "\\r\\nTAG " so literals need no counting."""
    w.send(tag + b" " + cmd)
    w.buf[0:0] = b"\r\n"  # the tagged line may be the first one
    data = w.until(b"\r\n" + tag + b" ")
    status = w.until(b"\r\n")
    if not status.startswith(b"OK"):
        raise Failed("%s: %s" % (cmd[:40].decode(), status[:200].decode("latin-1")))
    return data


def imap_session(port, user, count, rng, timeout):
    start = time.time()
    w = Wire(port, timeout)
    try:
        w.line(b"* OK")
        imap_cmd(w, b"a1", b"LOGIN %s pw" % user.encode())
        imap_cmd(w, b"a2", b"EXAMINE INBOX")
        listing = imap_cmd(w, b"a3", b"FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)")
        if listing.count(b" FETCH (") != count:
            raise Failed("FETCH 1:* gave %d of %d messages" % (listing.count(b" FETCH ("), count))
        for i, n in enumerate(rng.sample(range(1, count + 1), min(20, count))):
            imap_cmd(w, b"b%d" % i, b"FETCH %d (BODY.PEEK[])" % n)
        if not re.search(rb"\* SEARCH \d", imap_cmd(w, b"a4", b"SEARCH TEXT " + RARE.encode())):
            raise Failed("SEARCH TEXT found nothing")
        imap_cmd(w, b"a5", b"LOGOUT")
    finally:
        w.close()
    return time.time() - start


def pop3_cmd(w, cmd, multi=False):
    w.send(cmd)
    first = w.line(b"+OK")
    if not multi:
        return first
    w.buf[0:0] = b"\r\n"  # an empty listing is just ".\r\n"
    return w.until(b"\r\n.\r\n")


def pop3_session(port, user, count, rng, timeout):
    start = time.time()
    w = Wire(port, timeout)
    try:
        w.line(b"+OK")
        pop3_cmd(w, b"USER " + user.encode())
        pop3_cmd(w, b"PASS pw")
        if pop3_cmd(w, b"STAT").split()[1] != b"%d" % count:
            raise Failed("STAT does not say %d messages" % count)
        pop3_cmd(w, b"UIDL", True)
        for n in rng.sample(range(1, count + 1), min(20, count)):
            pop3_cmd(w, b"RETR %d" % n, True)
        pop3_cmd(w, b"QUIT")
    finally:
        w.close()
    return time.time() - start


# -- load: client processes -----------------------------------------------------

def client(fn, port, user, count, seed, duration, timeout, barrier, results):
    """One client process: sessions until duration is over (at least one)."""
    rng = random.Random(seed)
    lat, errors = [], []
    barrier.wait()
    start = time.time()
    while True:
        try:
            lat.append(fn(port, user, count, rng, timeout))
        except Exception as e:  # whatever went wrong, the session failed
            errors.append("%s: %s" % (type(e).__name__, e))
        if time.time() - start >= duration or len(errors) >= 3:
            break
    results.put((lat, errors, time.time()))


def load(fn, port, users, count, clients, duration, limit, seed=0):
    """clients processes at once; {rate, p99, sessions, errors}. A client
    not done within limit seconds is killed and counted as failed."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=client, args=(fn, port, users[i % len(users)], count, seed + i,
                                              duration, limit, barrier, results), daemon=True)
             for i in range(clients)]
    for p in procs:
        p.start()
    barrier.wait(60)
    start = time.time()
    lat, errors, end = [], [], start
    for _ in procs:
        try:
            l, e, t = results.get(timeout=max(1, start + limit - time.time()))
        except queue.Empty:
            errors.append("client not done within %ds" % limit)
            continue
        lat += l
        errors += e
        end = max(end, t)
    for p in procs:
        p.join(1)
        if p.is_alive():
            p.kill()
            p.join()
    lat.sort()
    return {"rate": len(lat) / max(end - start, 1e-6), "sessions": len(lat), "errors": errors,
            "p99": lat[max(0, -(-len(lat) * 99 // 100) - 1)] if lat else float("nan")}


def imap_pop3(a):
    """Rows (proto, clients, dovecot runs, merpati runs); a run is load()'s dict."""
    clients = ints(a.clients)
    peers = MailPeers(a.mailbox, max(clients), a.pop3_mailbox, a.hash == "fast", a.dovecot_login == "performance",
                      a.auth_cache)
    rows = []
    try:
        peers.start()
        protos = (("IMAP", imap_session, [imap_user()], a.mailbox, "dimap", "mimap"),
                  ("POP3", pop3_session, [pop3_user(i) for i in range(max(clients))],
                   a.pop3_mailbox, "dpop3", "mpop3"))
        for proto, fn, users, count, dport, mport in protos:
            for port in (peers.ports[dport], peers.ports[mport]):
                # first logins build the servers' indexes and caches
                warm = load(fn, port, users, count, len(users), 0, a.limit)
                print("%s warm-up on port %d: %d sessions, %.1f s p99, %d failed"
                      % (proto, port, warm["sessions"], warm["p99"], len(warm["errors"])), flush=True)
        for n in clients:
            for proto, fn, users, count, dport, mport in protos:
                dv, mp = [], []
                for r in range(a.imap_runs):
                    dv.append(load(fn, peers.ports[dport], users, count, n, a.duration, a.limit, r))
                    mp.append(load(fn, peers.ports[mport], users, count, n, a.duration, a.limit, r))
                rows.append((proto, n, dv, mp))
                print_cell(proto, n, dv, mp)
    finally:
        peers.cleanup()
    return rows


def bare(a):
    """The settings of the imap-bare part: the same sessions with equal and cheap login work on
    both sides, so the figures show the protocol and mailbox work rather than password hashing."""
    return argparse.Namespace(**dict(vars(a), hash="fast", auth_cache="none"))


def imap_pop3_bare(a):
    return imap_pop3(bare(a))


def print_cell(proto, n, dv, mp):
    for name, runs in (("dovecot", dv), ("merpati", mp)):
        print("%s x %2d clients, %s: %s sessions/s, p99 %.2f s, %d sessions, %d failed%s"
              % (proto, n, name, fmt([r["rate"] for r in runs], 1), med(runs, "p99"),
                 sum(r["sessions"] for r in runs), failures(runs),
                 (" (" + runs[0]["errors"][0] + ")") if failures(runs) else ""), flush=True)


def failures(runs):
    return sum(len(r["errors"]) for r in runs)


def med(runs, key):
    return statistics.median(r[key] for r in runs)


# -- memory ---------------------------------------------------------------------

def idle_smtp(port, pids_fn, count=1000):
    """Per connection (RSS KiB, PSS KiB) and the connections opened."""
    base = memory_of(pids_fn())
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    return growth_per_connection(base, pids_fn, socks)


def growth_per_connection(base, pids_fn, conns):
    """Settle, then (RSS KiB, PSS KiB) grown since base per open connection
    and how many were open; closes them."""
    time.sleep(2)
    used = memory_of(pids_fn())
    for c in conns:
        c.close()
    n = max(len(conns), 1)
    return (used[0] - base[0]) / n, (used[1] - base[1]) / n, len(conns)


def imap_login(port):
    w = Wire(port, 120)
    try:
        w.line(b"* OK")
        imap_cmd(w, b"a1", b"LOGIN %s pw" % imap_user().encode())
        return w
    except (OSError, Failed):
        w.close()
        return None


def idle_imap(port, pids_fn, count=1000):
    """As idle_smtp, but each connection has logged in. Logins go 16 at a
    time: the password hash makes each one cost ~0.1 s of CPU."""
    base = memory_of(pids_fn())
    wires, lock = [], threading.Lock()

    def opener(n):
        for _ in range(n):
            w = imap_login(port)
            with lock:
                wires.append(w)

    threads = [threading.Thread(target=opener, args=(count // 16 + (i < count % 16),))
               for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return growth_per_connection(base, pids_fn, [w for w in wires if w])


def memory(a):
    out = {}
    peers = MailPeers(10, 0, 0, a.hash == "fast", a.dovecot_login == "performance",
                      a.auth_cache)
    try:
        peers.start()
        out["smtp_mp"] = idle_smtp(peers.srv.port, peers.merpati_pids, a.idle)
        out["imap_mp"] = idle_imap(peers.ports["mimap"], peers.merpati_pids, a.idle)
        out["imap_dv"] = idle_imap(peers.ports["dimap"], peers.dovecot_pids, a.idle)
    finally:
        peers.cleanup()
    try:
        start_postfix()
        out["smtp_pf"] = idle_smtp(POSTFIX_PORT, postfix_pids, a.idle)
    finally:
        stop_postfix()
    for k, v in sorted(out.items()):
        print("idle %s: %.1f KiB RSS, %.1f KiB PSS per connection, %d connections" % ((k,) + v),
              flush=True)
    return out


# -- results --------------------------------------------------------------------

def ints(text):
    return [int(x) for x in text.split(",")]


def fmt(values, digits=0):
    f = "%%.%df" % digits
    return (f + " (" + f + "-" + f + ")") % (statistics.median(values), min(values), max(values))


def verdict(ok):
    return "met" if ok else "not met"


def imap_targets(rows, label):
    out = []
    for proto, n, dv, mp in rows:
        if n in (10, 50):
            r = med(mp, "rate") / med(dv, "rate") if med(dv, "rate") else 0
            ok = r >= 2 and med(mp, "p99") <= med(dv, "p99") and not failures(mp)
            out.append(("%s %d clients >= 2x Dovecot, p99 no worse%s" % (proto, n, label),
                        "%.2fx, p99 %.2f s vs %.2f s%s" % (r, med(mp, "p99"), med(dv, "p99"),
                                                          ", %d failed" % failures(mp) if failures(mp) else ""), ok))
    return out


def targets(res):
    """(target, measured, met) rows for the targets of issue 8."""
    rows = []
    for size, sessions, pf, mp, cl in res.get("smtp", []):
        if sessions == 10:
            r = statistics.median(mp) / statistics.median(pf)
            c = statistics.median(mp) / statistics.median(cl)
            rows.append(("SMTP inbound %d KiB x 10 sessions >= 3x Postfix" % size, "%.2fx" % r, r >= 3))
            rows.append(("SMTP inbound %d KiB x 10 sessions >= 60%% of smtp-sink ceiling" % size,
                         "%.0f%%" % (100 * c), c >= 0.6))
    if "outbound" in res:
        pf, mp = res["outbound"]
        r = statistics.median(x[0] for x in mp) / statistics.median(x[0] for x in pf)
        rows.append(("SMTP outbound >= 2x Postfix", "%.2fx" % r, r >= 2))
    for part, label in (("imap", ""), ("imap-bare", " (equal cheap logins, imap-bare)")):
        rows += imap_targets(res.get(part, []), label)
    mem = res.get("memory")
    if mem:
        for what, mp, peer, name in (("SMTP", "smtp_mp", "smtp_pf", "Postfix"),
                                     ("IMAP", "imap_mp", "imap_dv", "Dovecot")):
            r = mem[mp][0] / mem[peer][0] if mem[peer][0] else float("inf")
            rows.append(("RSS per idle %s connection <= 1/4 of %s's" % (what, name), "%.3f" % r, r <= 0.25))
    return rows


def header(a):
    mem = sh("awk", "/MemTotal/ {print $2}", "/proc/meminfo").stdout.strip()
    disk = sh("df", "-h", "/tmp", check=False).stdout.splitlines()[-1]
    dev = disk.split()[0].rsplit("/", 1)[-1]
    rota = sh("cat", "/sys/block/%s/queue/rotational" % dev, check=False).stdout.strip()
    return ["# Benchmark results", "",
            "Date: %s  " % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "Machine: %d cores (%s), %s kB memory, /tmp on `%s` (%s)  "
            % (os.cpu_count(), cpu_model(), mem, disk,
               {"0": "not rotational", "1": "rotational"}.get(rota, "rotational: unknown")),
            "Load average when the run started: %s (other work on the machine skews figures)  "
            % LOAD_AT_START,
            "Command: `python3 bench/run.py %s`  " % " ".join(sys.argv[1:]),
            "Effective: `%s`  " % " ".join("--%s %s" % (k.replace("_", "-"), v)
                                            for k, v in sorted(vars(a).items())),
            "Peers: Postfix %s, Dovecot %s; merpati at %s" % (
                sh("postconf", "-h", "mail_version", check=False).stdout.strip(),
                sh("dovecot", "--version", check=False).stdout.strip() if shutil.which("dovecot") else "-",
                sh("git", "-C", REPO, "describe", "--always", "--dirty", check=False).stdout.strip()),
            ""]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
    return m.group(1).strip() if m else "?"


def target_lines(res):
    out = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % (t, m, verdict(ok)) for t, m, ok in targets(res)]
    return out + [""]


def smtp_lines(a, rows):
    out = ["## SMTP inbound", "",
           "End to end into the Maildir (clock stops when the last message is there). Both "
           "with their default durability: Postfix fsyncs the queue file before its 250 and "
           "local(8) the Maildir file; merpati per queue.direct_delivery and "
           "deliver_maildir.sync (docs/config.md). Ceiling: the same smtp-source into smtp-sink "
           "(no disk). %d messages, medians of %d runs (min-max), messages per second." % (a.messages, a.runs),
           "", "    " + " ".join(source_cmd(0, a.messages, 0, 0, "benchuser@bench.test"))
           .replace("-l 0", "-l SIZE").replace("-s 0", "-s SESSIONS").replace(":0", ":PORT"),
           "    smtp-sink -u nobody -c 127.0.0.1:PORT 1000", "",
           "| size | sessions | Postfix | merpati | ratio | smtp-sink ceiling | merpati / ceiling |",
           "|---|---|---|---|---|---|---|"]
    for size, sessions, pf, mp, cl in rows:
        out.append("| %d KiB | %d | %s | %s | %.2fx | %s | %.0f%% |" % (
            size, sessions, fmt(pf), fmt(mp), statistics.median(mp) / statistics.median(pf),
            fmt(cl), 100 * statistics.median(mp) / statistics.median(cl)))
    return out + [""]


def outbound_lines(a, res):
    pf, mp = res
    rate = lambda runs: [x[0] for x in runs]  # noqa: E731
    out = ["## SMTP outbound", "",
           "%d messages of 4 KiB (smtp-source, 10 sessions, to x@remote.test) queued in each "
           "server while its relay target, 127.0.0.1:SINK, is closed: every message is tried once "
           "and deferred. Then `smtp-sink -u nobody -c 127.0.0.1:SINK 1000` is started, the queue "
           "flushed (`postqueue -f`; `merpati -c CONF queue flush`) and the clock runs until the "
           "queue is empty. Postfix: `relayhost = [127.0.0.1]:SINK`, default concurrency; merpati: "
           "route_regex `action = \"relay\"; host = \"127.0.0.1:SINK\"`, default queue.workers. "
           "Medians of %d runs (min-max), messages per second." % (a.outbound, a.runs), "",
           "| Postfix | merpati | ratio | sink received (Postfix / merpati, per run) |", "|---|---|---|---|",
           "| %s | %s | %.2fx | %s / %s |" % (
               fmt(rate(pf)), fmt(rate(mp)), statistics.median(rate(mp)) / statistics.median(rate(pf)),
               ",".join(str(x[1]) for x in pf), ",".join(str(x[1]) for x in mp))]
    return out + [""]


def imap_lines(a, rows, title="## IMAP and POP3"):
    out = [title, "",
           "Dovecot %s with its defaults except process/connection limits (login processes: %s); "
           "both check the same "
           "password hashes, %s; login caches: %s. IMAP: one Maildir of %d messages (2-8 KiB) shared by all clients; a "
           "session is LOGIN, EXAMINE INBOX, FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), FETCH n "
           "(BODY.PEEK[]) for 20 random n, SEARCH TEXT %s (one hit), LOGOUT. POP3: client i logs "
           "in as benchuser<i>, whose maildrop has %d messages (a smaller mailbox than IMAP's, hard "
           "links to one generated Maildir; merpati locks a maildrop per RFC 1939, Dovecot does not, "
           "so clients do not share one); a session is USER, PASS, STAT, UIDL, RETR x20, QUIT. "
           "Each client is a process with a raw socket client and runs sessions for %g s (at "
           "least one); one warm-up session per user first. Medians of %d runs (min-max); p99 "
           "is the median of the runs' p99 session latency; failed = sessions not ending in OK."
           % (sh("dovecot", "--version", check=False).stdout.strip(), LOGIN_MODES[a.dovecot_login],
              HASHES[a.hash], AUTH_CACHES[a.auth_cache], a.mailbox, RARE,
              a.pop3_mailbox, a.duration, a.imap_runs), "",
           "| protocol | clients | Dovecot sessions/s | merpati sessions/s | ratio | Dovecot p99 | "
           "merpati p99 | failed (Dovecot / merpati) |", "|---|---|---|---|---|---|---|---|"]
    for proto, n, dv, mp in rows:
        dr, mr = [r["rate"] for r in dv], [r["rate"] for r in mp]
        out.append("| %s | %d | %s | %s | %.2fx | %.2f s | %.2f s | %d / %d |" % (
            proto, n, fmt(dr, 1), fmt(mr, 1), statistics.median(mr) / statistics.median(dr)
            if statistics.median(dr) else 0, med(dv, "p99"), med(mp, "p99"), failures(dv), failures(mp)))
    errors = [e for _, _, dv, mp in rows for r in dv + mp for e in r["errors"]]
    if errors:
        out += ["", "First failures: " + "; ".join(sorted(set(errors))[:5])]
    return out + [""]


def memory_lines(a, mem):
    out = ["## Memory per idle connection", "",
           "Growth of the summed RSS (and PSS, which splits shared pages) of all the server's "
           "processes with %d connections open, divided by the connections opened. SMTP: "
           "connected, nothing sent. IMAP: LOGIN done, then idle. Postfix serves at most "
           "default_process_limit (200) SMTP sessions at once; the rest wait in the listen "
           "queue (no RSS) and connections stop when it is full. Dovecot: one imap process per "
           "session (service imap process_limit raised to 1200)." % a.idle, "",
           "| connections | merpati KiB RSS (PSS) | peer KiB RSS (PSS) | opened (merpati / peer) | ratio (RSS) |",
           "|---|---|---|---|---|"]
    for what, mp, peer, name in (("SMTP", "smtp_mp", "smtp_pf", "Postfix"),
                                 ("IMAP", "imap_mp", "imap_dv", "Dovecot")):
        m, p = mem[mp], mem[peer]
        out.append("| %s idle, vs %s | %.1f (%.1f) | %.1f (%.1f) | %d / %d | %.3f |" % (
            what, name, m[0], m[1], p[0], p[1], m[2], p[2], m[0] / p[0] if p[0] else 0))
    return out + [""]


def write_results(a, res):
    out = header(a) + target_lines(res)
    if "smtp" in res:
        out += smtp_lines(a, res["smtp"])
    if "outbound" in res:
        out += outbound_lines(a, res["outbound"])
    if "imap" in res:
        out += imap_lines(a, res["imap"])
    if "imap-bare" in res:
        out += imap_lines(bare(a), res["imap-bare"], "## IMAP and POP3 with equal cheap logins (imap-bare)")
    if "memory" in res:
        out += memory_lines(a, res["memory"])
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(PARTS), help="some of " + ",".join(PARTS))
    ap.add_argument("--runs", type=int, default=3, help="runs per SMTP cell (median, min-max)")
    ap.add_argument("--messages", type=int, default=5000, help="SMTP inbound messages per run")
    ap.add_argument("--sessions", default="1,10,50", help="SMTP inbound sessions")
    ap.add_argument("--sizes", default="4,100", help="SMTP inbound sizes, KiB")
    ap.add_argument("--outbound", type=int, default=5000, help="queued messages to relay")
    ap.add_argument("--mailbox", type=int, default=10000, help="IMAP mailbox size")
    ap.add_argument("--pop3-mailbox", type=int, default=1000, help="POP3 maildrop size (per user)")
    ap.add_argument("--clients", default="1,10,50", help="concurrent IMAP/POP3 clients")
    ap.add_argument("--duration", type=float, default=10, help="seconds of load per IMAP/POP3 cell")
    ap.add_argument("--imap-runs", type=int, default=3, help="runs per IMAP/POP3 cell")
    ap.add_argument("--limit", type=int, default=300, help="seconds a client may take, then failed")
    ap.add_argument("--hash", choices=("merpati", "fast"), default="merpati",
                    help="IMAP/POP3 password hashes: as `merpati user add` writes them, or "
                         "sha512-crypt with 1000 rounds; both servers get the same")
    ap.add_argument("--dovecot-login", choices=("security", "performance"), default="security",
                    help="Dovecot login processes: one per connection (its default) or "
                         "its high-performance mode (service_count = 0)")
    ap.add_argument("--auth-cache", choices=tuple(AUTH_CACHES), default="default",
                    help="login caches: each server's default, both on, or both off")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for memory")
    a = ap.parse_args()
    parts = a.only.split(",")
    if not set(parts) <= set(PARTS):
        ap.error("--only takes some of " + ",".join(PARTS))
    if os.geteuid() != 0:
        raise SystemExit("bench/run.py runs as root (it installs and starts Postfix and Dovecot)")
    ensure_peers(parts)
    raise_fd_limit()
    res = {}
    try:
        for part, fn in (("smtp", smtp_inbound), ("outbound", outbound), ("imap", imap_pop3),
                         ("imap-bare", imap_pop3_bare), ("memory", memory)):
            if part in parts:
                t = time.time()
                res[part] = fn(a)
                print("-- %s took %.0f s" % (part, time.time() - t), flush=True)
    finally:
        empty_trash()
    write_results(a, res)


if __name__ == "__main__":
    main()
