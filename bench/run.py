#!/usr/bin/env python3
"""bench/run.py - merpati against Postfix and Dovecot on the same machine, same run.

    make bench            (or: python3 bench/run.py [--only smtp,outbound,imap,...] ...)

Installs Postfix (and Dovecot) from Debian when missing and runs them on
loopback only (Postfix on 127.0.0.1:2626, never port 25; Dovecot on free
ports of 127.0.0.1). Every server the script starts is stopped at the end.
Medians of several runs with the min-max spread go to bench/RESULTS.md,
with the targets of issue 16 ("met" / "not met") computed from the
like-for-like rows only. Like for like (issue 16): the same mailbox bytes
for both servers, Maildir names as a delivery agent writes them, the same
password hashes and login caching on both sides, SEARCH that must decode
on both, and each peer at its best documented throughput configuration.

smtp        SMTP inbound: smtp-source into each server, clock stopped when
            the last message is in the Maildir; smtp-source into one
            smtp-sink (no disk) as a reference, same sizes and sessions.
outbound    --outbound messages (4 KiB) relayed to an smtp-sink on loopback.
            Both servers relay to a port where nothing listens yet, so every
            message is deferred after one failed attempt and sits in the
            queue; then the sink is started, the queue flushed (`postqueue
            -f`, `merpati queue flush`) and the clock runs until the queue is
            empty. Same method for both; the sink's count is checked.
imap        IMAP, SEARCH and POP3 against Dovecot at its best (high-
            performance login processes, auth cache on; merpati's
            verify_cache on). IMAP: one Maildir of --mailbox messages shared
            by all clients (EXAMINE, read-only); a session is LOGIN, EXAMINE,
            FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), 20 random bodies,
            LOGOUT. SEARCH: LOGIN, EXAMINE, SEARCH TEXT for a word that only
            a decoding search finds in all its messages, LOGOUT. POP3: each
            client its own user and maildrop of --pop3-mailbox messages
            (merpati locks a maildrop, RFC 1939; Dovecot does not); a
            session is USER/PASS, STAT, UIDL, RETR x20, QUIT. Clients are
            processes with a raw socket client (imaplib and threads made the
            client the bottleneck); each runs sessions for --duration
            seconds (at least one). Sessions per second and p99 session
            latency; failed sessions are counted.
imap-stock  the same against stock Dovecot (a login process forked per
            connection, no auth cache; merpati's verify_cache off).
imaptest    Dovecot's imaptest in stress mode (built by
            ../shared/tools/imaptest/build.sh; skipped with the reason when
            that fails), fresh servers per run, commands per second; a run
            counts only with no "Error:" line on either side.
memory      PSS and USS growth of all the server's processes per idle
            session served: 1000 SMTP connections (merpati vs Postfix) and
            1000 logged-in IMAP sessions (merpati vs Dovecot).
pgsql       the IMAP and POP3 sessions of `imap`, merpati on store_pgsql (a
            private PostgreSQL 15 from tests/e2e/pg.py, fsync and
            synchronous_commit on, sized as its docs advise) against
            Dovecot at its best on Maildir; the mailboxes are the same
            generated Maildirs, moved in by `merpati mailbox migrate`.
pgsql-nodes the IMAP session on store_pgsql with every client on node A
            (127.0.0.2) against the clients split between A and B
            (127.0.0.3) on one database. On 2 cores both nodes share the
            CPUs with PostgreSQL: correctness and overhead, not scale-out.
"""
import argparse
import base64
import multiprocessing
import os
import pwd
import queue
import quopri
import random
import re
import resource
import select
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
import harness  # noqa: E402
from harness import Server, wait_port  # noqa: E402
import pg  # noqa: E402  (tests/e2e/pg.py: a private PostgreSQL 15)


def free_port(address="127.0.0.1", _given=set()):
    """A free port below the kernel's ephemeral range. A port from bind(0)
    is in that range, so one of the many client connections a run makes
    before the server binds it can take it (a run failed that way:
    "Address already in use"); the servers here listen on these instead,
    each handed out once per run."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(10000, max(low, 10001))
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise SystemExit("bench: no free port below %d" % low)


harness.free_port = free_port  # the Server()s the bench starts use it too

BENCH_USER = "benchuser"
POSTFIX_PORT = 2626
PARTS = ("smtp", "outbound", "imap", "imap-stock", "imaptest", "memory", "pgsql", "pgsql-nodes")
PG_PARTS = ("pgsql", "pgsql-nodes")
HASHES = {"merpati": "the ones `merpati user add` wrote (yescrypt: ~90 ms of CPU per uncached login "
                      "here, which bounds such logins at about 11 per second per core; --hash merpati)",
          "fast": "sha512-crypt with 1000 rounds (~1 ms per login), given to Dovecot as {CRYPT}"}
# The two Dovecot configurations the IMAP/POP3 parts compare against, and
# merpati's login cache set to match (issue 16: the peer at its best
# documented throughput configuration is the primary, like-for-like row).
DOVECOT_SETUPS = {
    "imap": {"perf_login": True, "auth_cache": True,
             "what": "with its defaults except process and connection limits, at its best "
                     "documented throughput configuration: high-performance login "
                     "processes (service_count = 0, process_min_avail = cores, for imap-login and "
                     "pop3-login) and its auth cache on (auth_cache_size = 10M, 1 hour), as "
                     "merpati's verify_cache (1 hour, its default) is on"},
    "imap-stock": {"perf_login": False, "auth_cache": False,
                   "what": "stock (its defaults except process and connection limits): its default "
                           "login processes (one forked per connection) and "
                           "no auth cache; merpati's verify_cache off too (0)"},
}
RARE = "zanzibar"  # in four messages of each mailbox, three encoded: what SEARCH TEXT looks for


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


LOAD_AT_START = loadavg()


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
    if {"imap", "imap-stock", "imaptest", "memory", "pgsql"} & set(parts) and not (
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
    """(RSS, PSS, USS) in KiB summed over pids, from smaps_rollup. RSS counts
    a shared library page once per process that maps it, so it overstates
    forking servers (Postfix, Dovecot); PSS splits shared pages between
    the processes sharing them and USS counts only private pages."""
    rss = pss = uss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key == "Rss":
                        rss += int(rest.split()[0])
                    elif key == "Pss":
                        pss += int(rest.split()[0])
                    elif key in ("Private_Clean", "Private_Dirty"):
                        uss += int(rest.split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return rss, pss, uss


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
    one) instead of deleting it, and drop its files from the page cache.
    On ext4 without a journal the inode allocator skips, reading each from
    the inode table, every inode freed in the last 60 s (300 s while its
    block is dirty): deleting 5000 files just before a timed run made that
    run pay for the benchmark's own cleanup (30% of merpatid's CPU in
    recently_deleted(), perf). Kept in the page cache, each run's files
    made the next run start with more memory in use and cost it more
    (see evict()). Deleted at the end."""
    if not os.path.isdir(path):
        return
    if not TRASH:
        TRASH.append(tempfile.mkdtemp(prefix="bench-trash-", dir="/var/tmp"))
    moved = os.path.join(TRASH[0], str(len(os.listdir(TRASH[0]))))
    os.rename(path, moved)
    evict(moved)


def evict(root):
    """POSIX_FADV_DONTNEED on every file under root: a finished run's
    mail leaves the page cache, so every timed run, either server's,
    starts with the same memory state. On this VM, 100 KiB x 10 into
    merpati cost 0.35 ms of CPU per message with each run's files evicted
    and 0.5-0.6 ms once earlier runs had left about 2 GB cached (the
    kernel's copy into newly allocated page-cache pages went from 2% to
    15% of merpatid's CPU, perf): the figures depended on how many runs
    came before, not on the server. The files were fsync()ed by the
    server that wrote them, so their pages are clean and simply dropped."""
    for d, _, files in os.walk(root):
        for f in files:
            try:
                fd = os.open(os.path.join(d, f), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


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


def sink_reference(messages, size_kib, sessions):
    """msg/s of smtp-source into one smtp-sink (no disk): what the load
    generator pushes through one single-threaded sink here, a reference
    for the SMTP rows and not a limit of either server."""
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
    """Rows (size, sessions, postfix, merpati, sink reference), msg/s per run."""
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
                pf, mp, sink = [], [], []
                for _ in range(a.runs):
                    set_aside(os.path.join(home, "Maildir"))
                    pf.append(timed_delivery(POSTFIX_PORT, a.messages, size, sessions,
                                             BENCH_USER + "@bench.test", pf_maildir, 0)[0])
                    set_aside(os.path.dirname(mp_maildir))
                    mp.append(timed_delivery(srv.port, a.messages, size, sessions,
                                             BENCH_USER + "@bench.test", mp_maildir, 0)[0])
                    sink.append(sink_reference(a.messages, size, sessions))
                rows.append((size, sessions, pf, mp, sink))
                print("%3d KiB x %2d sessions: postfix %s msg/s, merpati %s msg/s, smtp-sink reference %s msg/s"
                      % (size, sessions, fmt(pf), fmt(mp), fmt(sink)), flush=True)
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
LOREM_LATIN1 = ("Déjà vu à la gare: le garçon mangea une crème brûlée, très épicée,\n"
                "puis paya quatre-vingt-dix-neuf euros à l'hôtel près du château.\n")
HOSTNAME = "mx1.bench.test"  # the host part of the Maildir names, as a delivery agent's


def b64_lines(data):
    """base64 in 76-character lines (RFC 2045 6.8)."""
    text = base64.b64encode(data).decode()
    return "".join(text[i:i + 76] + "\n" for i in range(0, len(text), 76))


def qp_lines(text, hit):
    """quoted-printable (RFC 2045 6.7) of ISO-8859-1 text; when hit, the rare
    word is cut by a soft line break, so only a decoder finds it."""
    body = quopri.encodestring(text.encode("latin-1")).decode()
    if hit:
        body += "Ne pas oublier: %s=\n%s.\n" % (RARE.capitalize()[:4], RARE[4:])
    return body


def message(i, rng, hit):
    """Message i of a generated mailbox: 2-8 KiB of text, one kind in ten
    base64 (UTF-8), one quoted-printable (ISO-8859-1), one with an RFC 2047
    encoded Subject, the rest plain ASCII. When hit, RARE is in it where
    only a search that decodes that kind finds it."""
    kind = i % 10
    text = LOREM * rng.randint(14, 58)
    subject = "message %d" % i
    head = ("From: Sender %d <s%d@x.test>\nTo: %s@bench.test\n"
            "Date: %s\nMessage-ID: <%d.%d@x.test>\n"
            % (i % 50, i % 50, BENCH_USER,
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1700000000 + i * 300)),
               i, rng.randint(0, 1 << 30)))
    if kind == 7:
        plain = ("Grüße aus der Ferne, " + (RARE.capitalize() + " " if hit else "") + "bis bald.\n"
                 + text)
        return (head + "Subject: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: base64\n\n" % subject + b64_lines(plain.encode()))
    if kind == 8:
        return (head + "Subject: %s\nMIME-Version: 1.0\n"
                "Content-Type: text/plain; charset=iso-8859-1\n"
                "Content-Transfer-Encoding: quoted-printable\n\n" % subject
                + qp_lines(LOREM_LATIN1 * rng.randint(12, 50), hit))
    if kind == 9:
        words = "Réunion %s à %d h" % (RARE.upper() if hit else "prévue", i % 24)
        enc = "=?UTF-8?B?%s?=" % base64.b64encode(words.encode()).decode()
        return head + "Subject: %s\nMIME-Version: 1.0\n\n%s" % (enc, text)
    return head + "Subject: %s\n\n%s%s" % (subject, text, RARE + " ahead\n" if hit else "")


def rare_hits(count):
    """The 1-based message numbers that contain RARE: one of each kind (plain,
    base64 body, quoted-printable body, encoded-word Subject), so SEARCH TEXT
    finds all of them only when it decodes as Dovecot does."""
    if count < 20:
        return set()
    mid = count // 2 - count // 2 % 10
    return {mid + 1, mid + 8, mid + 9, mid + 10}  # kinds 0, 7, 8, 9 (i = n - 1)


def maildir_names(count, rng):
    """count Maildir file names as a delivery agent writes them (merpati's
    deliver_maildir, Dovecot's and Postfix's local(8) alike): delivery time,
    microseconds, the pid of the delivering process (one process delivers a
    run of messages, counted by Q) and the host name. Names like
    "%d.M%dP1.bench" with (t+i, i) hash into a tenth as many values in
    Dovecot's string hash (issue 16), a cost no real mailbox has."""
    t, pid, q = 1700000000, rng.randint(1000, 4000000), 0
    for _ in range(count):
        if rng.random() < 0.05:
            pid, q = rng.randint(1000, 4000000), 0
        t += rng.randint(1, 600)
        yield t, "%d.M%06dP%dQ%d.%s" % (t, rng.randint(0, 999999), pid, q, HOSTNAME)
        q += 1


def fill_maildir(path, count):
    """count messages in path/cur (see message()), named and dated as
    delivered (the file's mtime is its INTERNALDATE), four in ten seen."""
    rng = random.Random(count)
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    hits = rare_hits(count)
    for i, (t, base) in enumerate(maildir_names(count, random.Random(count + 1))):
        data = message(i, rng, i + 1 in hits).encode("utf-8")
        name = os.path.join(path, "cur", "%s,S=%d,W=%d:2,%s" % (
            base, len(data), len(data) + data.count(b"\n"), "S" if rng.random() < 0.4 else ""))
        with open(name, "wb") as f:
            f.write(data)
        os.utime(name, (t, t))


def write_mbox(path, count):
    """The first count messages of a generated mailbox as an mbox file: what
    imaptest APPENDs, the same on both servers."""
    rng = random.Random(count)
    hits = rare_hits(count)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            f.write("From s%d@x.test Mon Nov  2 10:00:00 2026\n%s\n"
                    % (i % 50, message(i, rng, i + 1 in hits)))


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


LISTEN = 'plaintext_auth = true; listen = { plain = { address = "%s"; port = %d; }; };'


class MailPeers:
    """merpati (imap and pop3 modules) and Dovecot with the same users,
    password hashes and mailboxes: one IMAP user with imap_count messages,
    pop3_users POP3 users with pop3_count messages each. Login caches are
    on or off on both: merpati's verify_cache (1 hour) and Dovecot's
    auth_cache; perf_login is Dovecot's high-performance login mode."""

    def __init__(self, imap_count, pop3_users, pop3_count, fast_hash=False, perf_login=False,
                 auth_cache=True):
        self.run = tempfile.mkdtemp(prefix="bench-dovecot-")
        os.chmod(self.run, 0o755)
        self.ports = {k: free_port() for k in ("dimap", "dpop3")}
        self.srv = self.merpati_server()
        self.conf = None
        self.fast_hash = fast_hash
        self.perf_login = perf_login
        self.auth_cache = auth_cache
        self.users = [(imap_user(), imap_count)] + [(pop3_user(i), pop3_count)
                                                    for i in range(pop3_users)]
        self.fill()

    def merpati_server(self):
        """merpati on 127.0.0.1 with its mail in Maildir (the default store);
        sets ports mimap and mpop3."""
        self.ports.update({k: free_port() for k in ("mimap", "mpop3")})
        return Server(domains=("bench.test",), modules={
            "imap": LISTEN % ("127.0.0.1", self.ports["mimap"]),
            "pop3": LISTEN % ("127.0.0.1", self.ports["mpop3"])})

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
                                  self.auth_cache)
        no_cache = () if self.auth_cache else ("modules.auth_sqlite.verify_cache=\"0\"",)
        self.srv.start("limits.connections_per_ip=2000", "limits.connections=3000", *no_cache,
                       *self.merpati_overrides)

    merpati_overrides = ()  # -o settings the merpati server starts with

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
        """port: a port of 127.0.0.1, or an (address, port) pair."""
        address = port if isinstance(port, tuple) else ("127.0.0.1", port)
        self.sock = socket.create_connection(address, timeout=timeout)
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


def imap_examine(w, user):
    """Greeting, LOGIN and EXAMINE INBOX: how both session kinds begin."""
    w.line(b"* OK")
    imap_cmd(w, b"a1", b"LOGIN %s pw" % user.encode())
    imap_cmd(w, b"a2", b"EXAMINE INBOX")


def imap_session(port, user, count, rng, timeout):
    start = time.time()
    w = Wire(port, timeout)
    try:
        imap_examine(w, user)
        listing = imap_cmd(w, b"a3", b"FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)")
        if listing.count(b" FETCH (") != count:
            raise Failed("FETCH 1:* gave %d of %d messages" % (listing.count(b" FETCH ("), count))
        for i, n in enumerate(rng.sample(range(1, count + 1), min(20, count))):
            imap_cmd(w, b"b%d" % i, b"FETCH %d (BODY.PEEK[])" % n)
        imap_cmd(w, b"a5", b"LOGOUT")
    finally:
        w.close()
    return time.time() - start


def search_session(port, user, count, rng, timeout):
    """LOGIN, EXAMINE, SEARCH TEXT for RARE, LOGOUT: the search row. Fails
    unless it finds every message that holds RARE, encoded ones included
    (rare_hits()), so a server that matched raw bytes could not pass."""
    start = time.time()
    w = Wire(port, timeout)
    try:
        imap_examine(w, user)
        found = re.search(rb"\* SEARCH([ \d]*)\r\n", imap_cmd(w, b"a3", b"SEARCH TEXT " + RARE.encode()))
        got = len(found.group(1).split()) if found else 0
        if got != len(rare_hits(count)):
            raise Failed("SEARCH TEXT %s found %d of %d messages" % (RARE, got, len(rare_hits(count))))
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
    not done within limit seconds is killed and counted as failed. port
    may be a list of servers (Wire's port or (address, port)): client i
    then goes to port[i % len(port)], the clients split evenly."""
    ports = port if isinstance(port, list) else [port]
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
    procs = [ctx.Process(target=client, args=(fn, ports[i % len(ports)], users[i % len(users)],
                                              count, seed + i,
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


def imap_pop3(a, part="imap"):
    """Rows (proto, clients, dovecot runs, merpati runs) against the Dovecot
    setup of part (DOVECOT_SETUPS); a run is load()'s dict."""
    setup = DOVECOT_SETUPS[part]
    clients = ints(a.clients if part == "imap" else a.stock_clients)
    runs = a.imap_runs if part == "imap" else a.stock_runs
    peers = MailPeers(a.mailbox, max(clients), a.pop3_mailbox, a.hash == "fast",
                      setup["perf_login"], setup["auth_cache"])
    rows = []
    try:
        peers.start()
        protos = (("IMAP", imap_session, [imap_user()], a.mailbox, "dimap", "mimap"),
                  ("SEARCH", search_session, [imap_user()], a.mailbox, "dimap", "mimap"),
                  ("POP3", pop3_session, [pop3_user(i) for i in range(max(clients))],
                   a.pop3_mailbox, "dpop3", "mpop3"))
        for proto, fn, users, count, dport, mport in protos:
            for port in (peers.ports[dport], peers.ports[mport]):
                warm_up(proto, fn, port, users, count, a.limit)
        for n in clients:
            for proto, fn, users, count, dport, mport in protos:
                dv, mp = [], []
                for r in range(runs):
                    dv.append(load(fn, peers.ports[dport], users, count, n, a.duration, a.limit, r))
                    mp.append(load(fn, peers.ports[mport], users, count, n, a.duration, a.limit, r))
                rows.append((proto, n, dv, mp))
                print_cell(proto, n, dv, mp)
    finally:
        peers.cleanup()
    return rows


def imap_pop3_stock(a):
    return imap_pop3(a, "imap-stock")


def print_cell(proto, n, dv, mp, names=("dovecot", "merpati")):
    for name, runs in zip(names, (dv, mp)):
        print("%s x %2d clients, %s: %s sessions/s, p99 %.2f s, %d sessions, %d failed%s"
              % (proto, n, name, fmt([r["rate"] for r in runs], 1), med(runs, "p99"),
                 sum(r["sessions"] for r in runs), failures(runs),
                 (" (" + runs[0]["errors"][0] + ")") if failures(runs) else ""), flush=True)


def failures(runs):
    return sum(len(r["errors"]) for r in runs)


def med(runs, key):
    return statistics.median(r[key] for r in runs)


# -- store_pgsql: IMAP and POP3 against Dovecot, one node against two ---------------

PG_NODES = ("127.0.0.2", "127.0.0.3")  # node A (every pgsql row) and node B
PG_MODULE = os.path.join(REPO, "modules", "store_pgsql", "store_pgsql.so")
# The settings the report prints, as PostgreSQL reports them (SHOW).
PG_SHOWN = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
            "shared_buffers", "effective_cache_size", "max_connections")


def memory_mb():
    with open("/proc/meminfo") as f:
        return int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1)) // 1024


def pg_settings():
    """What the private cluster runs with, set by ALTER SYSTEM after initdb.
    tests/e2e/pg.py turns durability off for the tests' speed; here it is
    PostgreSQL's default, on. shared_buffers is a quarter of the memory,
    as its documentation advises for a server with 1 GB or more (Resource
    Consumption); effective_cache_size, a planner hint, half of it (the
    PostgreSQL wiki's "Tuning Your PostgreSQL Server": half is a
    conservative setting); everything else is PostgreSQL 15's default."""
    mb = memory_mb()
    return {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
            "shared_buffers": "%dMB" % (mb // 4), "effective_cache_size": "%dMB" % (mb // 2)}


def start_bench_pg():
    """A private PostgreSQL 15 (tests/e2e/pg.py) made durable and sized by
    pg_settings(); restarted once for shared_buffers. Returns it and what
    SHOW says of PG_SHOWN (what the report prints, read back, not assumed)."""
    db = pg.PgServer(port=free_port())  # below the ephemeral range, as the servers' ports
    try:
        db.start()
        for name, value in pg_settings().items():
            db.psql("ALTER SYSTEM SET %s = '%s'" % (name, value), db="postgres")
        db.restart()
        shown = {name: db.psql("SHOW %s" % name, db="postgres").strip() for name in PG_SHOWN}
    except Exception:
        db.cleanup()
        raise
    if shown["fsync"] != "on" or shown["synchronous_commit"] != "on":
        db.cleanup()
        raise SystemExit("bench: PostgreSQL did not take fsync/synchronous_commit = on: %s" % shown)
    return db, shown


def pg_node(db, address, users=()):
    """A merpatid on address with server.mailstore = store_pgsql on db
    (pool_size: its default), IMAP and POP3 on address, its own users.db
    (auth_sqlite, as the Maildir rows) with users (password "pw"). Not
    started; its ports are srv.imap and srv.pop3, (address, port) pairs."""
    imap, pop3 = free_port(address), free_port(address)
    srv = Server(address=address, domains=("bench.test",), modules={
        "imap": LISTEN % (address, imap), "pop3": LISTEN % (address, pop3),
        "store_pgsql": 'conninfo = "%s";' % db.conninfo})
    srv.imap, srv.pop3 = (address, imap), (address, pop3)
    for user in users:
        srv.add_user(user, "pw")
    return srv


PG_START = ("limits.connections_per_ip=2000", "limits.connections=3000",
            'server.mailstore="store_pgsql"')


class PgPeers(MailPeers):
    """MailPeers with merpati's mail in PostgreSQL: merpati is node A
    (PG_NODES[0]) on db. The generated Maildirs are written for merpati
    too, as for the Maildir rows, then copied into db by `merpati mailbox
    migrate --from deliver_maildir --to store_pgsql` (UIDs, flags and
    dates kept) and set aside, so nothing can be served from them."""

    merpati_overrides = ('server.mailstore="store_pgsql"',)

    def __init__(self, db, *args, **kw):
        self.db = db
        super().__init__(*args, **kw)

    def merpati_server(self):
        srv = pg_node(self.db, PG_NODES[0])
        self.ports.update(mimap=srv.imap, mpop3=srv.pop3)
        return srv

    def fill(self):
        super().fill()
        started = time.time()
        migrate(self.srv, [user for user, _ in self.users])
        set_aside(os.path.join(self.srv.state, "mail"))
        print("pgsql: %d mailboxes migrated into PostgreSQL in %.0f s"
              % (len(self.users), time.time() - started), flush=True)


def migrate(srv, users):
    """Copy users' Maildirs into store_pgsql. The load is setup, not a
    measured row: its transactions commit with synchronous_commit = off
    (libpq's PGOPTIONS, this command's connections only; a crash during
    the load could lose its last commits, nothing else changes)."""
    env = dict(os.environ, PGOPTIONS="-c synchronous_commit=off")
    r = subprocess.run([harness.MERPATI, "-c", srv.conf, "-o", 'server.mailstore="deliver_maildir"',
                        "mailbox", "migrate", "--from", "deliver_maildir", "--to", "store_pgsql"]
                       + list(users), env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise SystemExit("bench: mailbox migrate failed (%d): %s" % (r.returncode, r.stderr[-500:]))


def warm_up(proto, fn, port, users, count, limit):
    """One session per user: first logins build the servers' indexes and caches."""
    warm = load(fn, port, users, count, len(users), 0, limit)
    print("%s warm-up on %s: %d sessions, %.1f s p99, %d failed%s"
          % (proto, port, warm["sessions"], warm["p99"], len(warm["errors"]),
             " (%s)" % warm["errors"][0] if warm["errors"] else ""), flush=True)


PG_WAL = {}  # part -> WAL written during its timed runs (WalMeter.text())


class WalMeter:
    """WAL PostgreSQL writes from now on: what the timed, read-only
    sessions commit (a check that they are read-only, as said)."""

    def __init__(self, db):
        self.db = db
        self.start = self.lsn()

    def lsn(self):
        return self.db.psql("SELECT pg_current_wal_lsn()", db="postgres").strip()

    def text(self):
        end = self.lsn()
        size = int(float(self.db.psql("SELECT pg_wal_lsn_diff('%s', '%s')" % (end, self.start),
                                      db="postgres").strip()))
        return "%.1f MiB" % (size / 1048576)


def pgsql_rows(a, db):
    """IMAP and POP3 (the imap part's sessions) against Dovecot at its
    best: rows (proto, clients, dovecot runs, merpati runs) as imap_pop3's."""
    setup, clients = DOVECOT_SETUPS["imap"], ints(a.pg_clients)
    peers = PgPeers(db, a.mailbox, max(clients), a.pop3_mailbox, a.hash == "fast",
                    setup["perf_login"], setup["auth_cache"])
    rows = []
    try:
        peers.start()
        protos = (("IMAP", imap_session, [imap_user()], a.mailbox, "dimap", "mimap"),
                  ("POP3", pop3_session, [pop3_user(i) for i in range(max(clients))],
                   a.pop3_mailbox, "dpop3", "mpop3"))
        for proto, fn, users, count, dport, mport in protos:
            for port in (peers.ports[dport], peers.ports[mport]):
                warm_up(proto, fn, port, users, count, a.limit)
        wal = WalMeter(db)
        for n in clients:
            for proto, fn, users, count, dport, mport in protos:
                dv, mp = [], []
                for r in range(a.pg_runs):
                    dv.append(load(fn, peers.ports[dport], users, count, n, a.duration, a.limit, r))
                    mp.append(load(fn, peers.ports[mport], users, count, n, a.duration, a.limit, r))
                rows.append((proto, n, dv, mp))
                print_cell(proto + " (store_pgsql)", n, dv, mp)
        PG_WAL["pgsql"] = wal.text()
    finally:
        peers.cleanup()
    return rows


def nodes_rows(a, db):
    """The IMAP session with every client on node A, then with the clients
    split between A and B (both up all along, on the same database and
    mailbox); rows (clients, one-node runs, two-node runs)."""
    user, rows, nodes = imap_user(), [], []
    try:
        for address in PG_NODES:
            nodes.append(pg_node(db, address, [user]))
        hashed = fast_hash() if a.hash == "fast" else None
        for srv in nodes:
            if hashed:  # the same hash the Maildir rows give Dovecot and merpati
                with sqlite3.connect(os.path.join(srv.state, "users.db")) as udb:
                    udb.execute("UPDATE users SET password = ? WHERE address = ?", (hashed, user))
            chown_tree(srv.state, "merpati")
        mdir = nodes[0].maildir(user)
        fill_maildir(mdir, a.mailbox)
        chown_tree(nodes[0].state, "merpati")
        migrate(nodes[0], [user])
        set_aside(os.path.dirname(os.path.dirname(mdir)))
        for srv in nodes:
            srv.start(*PG_START)
            warm_up("IMAP", imap_session, srv.imap, [user], a.mailbox, a.limit)
        both, wal = [srv.imap for srv in nodes], WalMeter(db)
        for n in ints(a.pg_clients):
            one, two = [], []
            for r in range(a.pg_runs):
                one.append(load(imap_session, nodes[0].imap, [user], a.mailbox, n, a.duration, a.limit, r))
                two.append(load(imap_session, both, [user], a.mailbox, n, a.duration, a.limit, r))
            rows.append((n, one, two))
            print_cell("IMAP on store_pgsql", n, one, two, ("one node", "two nodes"))
        PG_WAL["pgsql-nodes"] = wal.text()
    finally:
        for srv in nodes:
            srv.cleanup()
    return rows


def pgsql_parts(a, parts):
    """The store_pgsql parts, each on a fresh private cluster: {"pgsql":
    rows, "pgsql-nodes": rows, "pg": the settings PostgreSQL reported}."""
    out = {}
    why = pg.skip_reason() or (None if os.path.exists(PG_MODULE) else
                               "store_pgsql not built (configure found no libpq)")
    for part, fn in (("pgsql", pgsql_rows), ("pgsql-nodes", nodes_rows)):
        if part not in parts:
            continue
        if why:
            print("%s: skipped: %s" % (part, why), flush=True)
            out[part], out["pg_skipped"] = [], why
            continue
        t = time.time()
        db, out["pg"] = start_bench_pg()
        try:
            out[part] = fn(a, db)
        finally:
            db.cleanup()
        print("-- %s took %.0f s" % (part, time.time() - t), flush=True)
    out["pg_wal"] = dict(PG_WAL)
    return out


# -- imaptest stress --------------------------------------------------------------

IMAPTEST_BUILD = os.path.normpath(os.path.join(REPO, "..", "shared", "tools", "imaptest", "build.sh"))


def find_imaptest():
    """(path of the imaptest binary, None) or (None, why not): build.sh
    builds it once (apt-get for its build dependencies) and reuses the
    build afterwards."""
    if not os.path.exists(IMAPTEST_BUILD):
        return None, "%s not found" % IMAPTEST_BUILD
    try:
        out = subprocess.run(["sh", IMAPTEST_BUILD], capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        return None, "build.sh took over 20 minutes"
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not os.access(path, os.X_OK):
        return None, "build.sh failed (exit %d): %s" % (out.returncode, out.stderr.strip()[-300:])
    return path, None


def imaptest_version():
    """The imaptest source build.sh builds, as its opening comment names it."""
    try:
        with open(IMAPTEST_BUILD) as f:
            m = re.search(r"(release-[\d.]+) branch at ([0-9a-f]+)", f.read())
        return "%s at %s" % m.groups() if m else "?"
    except OSError:
        return "-"


def imaptest_cmd(binary, port, mbox, clients, secs):
    return [binary, "host=127.0.0.1", "port=%d" % port, "user=%s" % imap_user(), "pass=pw",
            "mbox=%s" % mbox, "clients=%d" % clients, "secs=%d" % secs]


def parse_imaptest(text, secs):
    """{rate: commands/s, commands: {name: count}, errors: [Error: lines]}:
    the counts are the row under "Totals:" (one column per command, the
    header row names them; percentage rows in between are skipped)."""
    lines = text.splitlines()
    counts = {}
    if "Totals:" in lines:
        rest = lines[lines.index("Totals:") + 1:]
        names = rest[0].split() if rest else []
        for line in rest[1:]:
            fields = line.split()
            if len(fields) == len(names) and all(f.isdigit() for f in fields):
                counts = dict(zip(names, map(int, fields)))
                break
    errors = [l.strip() for l in lines if "Error:" in l]
    return {"rate": sum(counts.values()) / secs, "commands": counts, "errors": errors}


def imaptest_run(binary, port, mbox, clients, secs):
    try:
        out = subprocess.run(imaptest_cmd(binary, port, mbox, clients, secs), capture_output=True,
                             text=True, errors="replace", timeout=secs + 180)
        text = out.stdout + out.stderr
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace") + "\nError: imaptest did not end\n"
    res = parse_imaptest(text, secs)
    if not res["commands"]:
        res["errors"].append("Error: no Totals in imaptest's output: " + text.strip()[-200:])
    return res


def imaptest_part(a):
    """{"rows": [(clients, dovecot runs, merpati runs)], "skipped": why or None}.
    Each run gets fresh servers with an empty INBOX (imaptest creates,
    expunges and deletes mail), against the primary Dovecot setup."""
    binary, why = find_imaptest()
    if binary is None:
        print("imaptest: skipped: " + why, flush=True)
        return {"rows": [], "skipped": why}
    mbox = tempfile.NamedTemporaryFile(prefix="bench-imaptest-", suffix=".mbox", delete=False).name
    write_mbox(mbox, a.imaptest_mbox)
    os.chmod(mbox, 0o644)
    setup, rows = DOVECOT_SETUPS["imap"], []
    try:
        for n in ints(a.imaptest_clients):
            dv, mp = [], []
            for _ in range(a.imaptest_runs):
                peers = MailPeers(0, 0, 0, a.hash == "fast", setup["perf_login"], setup["auth_cache"])
                try:
                    peers.start()
                    dv.append(imaptest_run(binary, peers.ports["dimap"], mbox, n, a.imaptest_secs))
                    mp.append(imaptest_run(binary, peers.ports["mimap"], mbox, n, a.imaptest_secs))
                finally:
                    peers.cleanup()
            rows.append((n, dv, mp))
            for name, runs in (("dovecot", dv), ("merpati", mp)):
                print("imaptest x %2d clients, %s: %s commands/s, %d Error: lines%s"
                      % (n, name, fmt([r["rate"] for r in runs]), failures(runs),
                         " (" + runs[0]["errors"][0][:200] + ")" if runs[0]["errors"] else ""),
                      flush=True)
    finally:
        os.unlink(mbox)
    return {"rows": rows, "skipped": None, "binary": binary}


# -- memory ---------------------------------------------------------------------

def idle_smtp(port, pids_fn, count=1000):
    """Memory grown per SMTP session served (see growth_per_session): count
    connections opened, nothing sent; a session is served when its 220
    greeting came (Postfix leaves those beyond its process limit waiting
    in the listen queue, which costs it no memory)."""
    base = memory_of(pids_fn())
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(2)
    served = greeted(socks, 5)
    return growth_per_session(base, pids_fn, socks, served)


def greeted(socks, timeout):
    """How many of socks have received a 220 greeting within timeout
    (poll, not select: descriptors go past FD_SETSIZE)."""
    poller, waiting, got = select.poll(), {}, 0
    for s in socks:
        poller.register(s, select.POLLIN)
        waiting[s.fileno()] = b""
    deadline = time.time() + timeout
    while waiting and time.time() < deadline:
        for fd, _ in poller.poll(max(0, deadline - time.time()) * 1000):
            data = os.read(fd, 4096)
            waiting[fd] += data
            if not data or b"\r\n" in waiting[fd]:
                got += waiting.pop(fd).startswith(b"220")
                poller.unregister(fd)
    return got


def growth_per_session(base, pids_fn, conns, served):
    """Settle, then per session served: (RSS, PSS, USS) KiB grown since base,
    and the connections opened and the sessions served; closes conns."""
    time.sleep(2)
    used = memory_of(pids_fn())
    for c in conns:
        c.close()
    n = max(served, 1)
    return tuple((u - b) / n for u, b in zip(used, base)) + (len(conns), served)


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
    """As idle_smtp, but a session is served once its LOGIN is done. Logins
    go 16 at a time."""
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
    logged_in = [w for w in wires if w]
    return growth_per_session(base, pids_fn, logged_in, len(logged_in))


def memory(a):
    """Idle sessions against the primary (like-for-like) Dovecot setup."""
    out = {}
    setup = DOVECOT_SETUPS["imap"]
    peers = MailPeers(10, 0, 0, a.hash == "fast", setup["perf_login"], setup["auth_cache"])
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
        print("idle %s: %.1f KiB RSS, %.1f KiB PSS, %.1f KiB USS per session served, "
              "%d connections, %d served" % ((k,) + v), flush=True)
    return out


# -- results --------------------------------------------------------------------

def ints(text):
    return [int(x) for x in text.split(",")]


def fmt(values, digits=0):
    f = "%%.%df" % digits
    return (f + " (" + f + "-" + f + ")") % (statistics.median(values), min(values), max(values))


def verdict(ok):
    return "-" if ok is None else "met" if ok else "not met"


def ratio(a, b):
    return a / b if b else float("inf")


def smtp_targets(res):
    rows = []
    for size, sessions, pf, mp, _ in res.get("smtp", []):
        if sessions in (10, 50):
            r = ratio(statistics.median(mp), statistics.median(pf))
            rows.append(("SMTP inbound %d KiB x %d sessions >= 3x Postfix msg/s" % (size, sessions),
                         "%.2fx" % r, r >= 3))
    if "outbound" in res:
        pf, mp = res["outbound"]
        r = ratio(statistics.median(x[0] for x in mp), statistics.median(x[0] for x in pf))
        rows.append(("SMTP outbound >= 3x Postfix msg/s", "%.2fx" % r, r >= 3))
    return rows


def imap_targets(rows):
    """From the primary rows (Dovecot at its best) only; SEARCH has no target."""
    out = []
    for proto, n, dv, mp in rows:
        if n in (10, 50) and proto in ("IMAP", "POP3"):
            r = ratio(med(mp, "rate"), med(dv, "rate"))
            ok = r >= 3 and med(mp, "p99") <= med(dv, "p99") and not failures(mp)
            out.append(("%s %d clients >= 3x Dovecot sessions/s, p99 no worse" % (proto, n),
                        "%.2fx, p99 %.2f s vs %.2f s%s" % (
                            r, med(mp, "p99"), med(dv, "p99"),
                            ", %d failed" % failures(mp) if failures(mp) else ""), ok))
    return out


def imaptest_targets(res):
    out = []
    for n, dv, mp in res.get("rows", []):
        valid = [(d["rate"], m["rate"]) for d, m in zip(dv, mp) if not d["errors"] and not m["errors"]]
        name = "imaptest stress %d clients >= 3x Dovecot commands/s, 0 errors both" % n
        if not valid:
            out.append((name, "no run without errors (Error: lines, Dovecot / merpati: %d / %d)"
                        % (failures(dv), failures(mp)), False))
            continue
        r = ratio(statistics.median(m for _, m in valid), statistics.median(d for d, _ in valid))
        out.append((name, "%.2fx (%d of %d runs valid)" % (r, len(valid), len(dv)), r >= 3))
    if res.get("skipped"):
        out += [(name, "not run: " + res["skipped"], None) for name in ISSUE_TARGETS
                if name.startswith("imaptest")]
    return out


def memory_targets(mem):
    out = []
    for what, mp, peer, name in (("SMTP", "smtp_mp", "smtp_pf", "Postfix"),
                                 ("IMAP", "imap_mp", "imap_dv", "Dovecot")):
        r = ratio(mem[mp][1], mem[peer][1])
        out.append(("PSS per idle %s session <= 1/4 of %s's" % (what, name),
                    "%.3f (1/%.1f)" % (r, 1 / r if r else float("inf")), r <= 0.25))
    return out


def targets(res):
    """(target, measured, met) for the targets of issue 16, computed from
    the like-for-like rows only (imap-stock is never used here); met is
    None for a target this run did not measure (fewer parts or cells)."""
    rows = smtp_targets(res) + imap_targets(res.get("imap", []))
    if "imaptest" in res:
        rows += imaptest_targets(res["imaptest"])
    if "memory" in res:
        rows += memory_targets(res["memory"])
    by_key = {row[0].split(",")[0]: row for row in rows}
    return [by_key.get(name.split(",")[0], (name, "not measured in this run", None))
            for name in ISSUE_TARGETS]


# Every target of issue 16, as targets() names them.
ISSUE_TARGETS = (
    ["SMTP inbound %d KiB x %d sessions >= 3x Postfix msg/s" % (k, n) for k in (4, 100) for n in (10, 50)]
    + ["SMTP outbound >= 3x Postfix msg/s"]
    + ["%s %d clients >= 3x Dovecot sessions/s, p99 no worse" % (p, n)
       for p in ("IMAP", "POP3") for n in (10, 50)]
    + ["imaptest stress %d clients >= 3x Dovecot commands/s, 0 errors both" % n for n in (10, 50)]
    + ["PSS per idle %s session <= 1/4 of %s's" % w for w in (("SMTP", "Postfix"), ("IMAP", "Dovecot"))])


def filesystem(path):
    """device, type and options of the file system holding path, and whether
    the disk under it rotates."""
    out = sh("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "--target", path, check=False).stdout.split()
    if len(out) < 3:
        return "?"
    dev = out[0].rsplit("/", 1)[-1]
    rota = sh("cat", "/sys/block/%s/queue/rotational" % dev, check=False).stdout.strip()
    return "`%s` %s (%s; %s)" % (out[0], out[1], out[2],
                                 {"0": "not rotational", "1": "rotational"}.get(rota, "rotational: ?"))


def merpati_version():
    """The commit the binaries under test were built from: read when the
    run starts, since the tree may move on while it runs."""
    return "%s (%s)" % (
        sh("git", "-C", REPO, "describe", "--always", "--dirty", check=False).stdout.strip(),
        sh("git", "-C", REPO, "rev-parse", "HEAD", check=False).stdout.strip())


MERPATI_TESTED = []


def versions():
    return ("merpati %s, Postfix %s, Dovecot %s, imaptest %s (%s)" % (
        MERPATI_TESTED[0] if MERPATI_TESTED else merpati_version(),
        sh("postconf", "-d", "-h", "mail_version", check=False).stdout.strip(),
        dovecot_version(), imaptest_version(), os.path.relpath(os.path.dirname(IMAPTEST_BUILD), REPO)))


def dovecot_version():
    return sh("dovecot", "--version", check=False).stdout.strip() if shutil.which("dovecot") else "-"


def header(a, started, took):
    mem = sh("awk", "/MemTotal/ {print $2}", "/proc/meminfo").stdout.strip()
    return ["# Benchmark results", "",
            "Date: %s, %.0f minutes  " % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                                          took / 60),
            "Machine: %s, %d cores, %s kB memory, %s  " % (cpu_model(), os.cpu_count(), mem,
                                                          sh("uname", "-sr").stdout.strip()),
            "File systems: %s  " % "; ".join(
                "%s (%s): %s" % (path, what, filesystem(path)) for path, what in (
                    (tempfile.gettempdir(), "merpati's state and mail, Dovecot's mail"),
                    ("/var/tmp", "Postfix's Maildir"), ("/var/spool/postfix", "Postfix's queue"))),
            "Load average (1, 5, 15 min) before: %s; after: %s (other work on the machine skews "
            "figures)  " % (LOAD_AT_START, loadavg()),
            "Command: `python3 bench/run.py %s`  " % " ".join(sys.argv[1:]),
            "Effective: `%s`  " % " ".join("--%s %s" % (k.replace("_", "-"), v)
                                            for k, v in sorted(vars(a).items())),
            "Versions: %s" % versions(), "",
            "Every comparison is like for like unless its section says otherwise: the same "
            "machine and run, the same mailbox content (Maildir file names as a delivery agent "
            "writes them), the same password hashes and login caching on both sides, SEARCH with "
            "decoding on both sides, and each peer at its best documented throughput "
            "configuration (Postfix: stock; Dovecot: high-performance login processes and its "
            "auth cache). The targets below are computed from those rows only.", ""]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
    return m.group(1).strip() if m else "?"


def target_lines(res):
    out = ["## Targets (issue 16, like-for-like rows)", "", "| target | measured | |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % (t, m, verdict(ok)) for t, m, ok in targets(res)]
    return out + [""]


def durability_lines():
    return ["## Durability", "",
            "SMTP inbound: both acknowledge a message (250) only once it is on disk. Postfix "
            "(stock) fsyncs the queue file before its 250 and local(8) fsyncs the Maildir file "
            "before it removes the queue file. merpati (defaults, docs/config.md): "
            "queue.direct_delivery delivers local mail into the Maildir before the 250, and "
            "deliver_maildir.sync = \"group\" makes the file durable (fdatasync) before its name "
            "enters new/, then the name by an fsync() of new/ shared by the deliveries waiting "
            "at that moment (one flush for many messages), before the delivery counts as done. "
            "Outbound: both queue durably before "
            "the 250 (Postfix: fsync; merpati: queue.sync = \"group\"). IMAP/POP3 sessions are "
            "read-only (EXAMINE, RETR). imaptest writes (APPEND, STORE, EXPUNGE) with each "
            "server's defaults (Dovecot: mail_fsync = optimized, fsync where data would "
            "otherwise be lost; merpati: its Maildir store's defaults); that row does not "
            "compare durability.", ""]


def smtp_lines(a, rows):
    out = ["## SMTP inbound", "",
           "End to end into the Maildir (clock stops when the last message is there), Postfix "
           "stock (set: loopback only, the Maildir, and default_process_limit = 200 instead of "
           "100 for the memory part; no tuning) against merpati's defaults; durability "
           "above. Also the same smtp-source into one smtp-sink (no disk): a reference for "
           "what smtp-source pushes through one single-threaded sink on this machine, not a "
           "limit for either server. %d messages, medians of %d runs (min-max), messages per "
           "second." % (a.messages, a.runs),
           "", "    " + " ".join(source_cmd(0, a.messages, 0, 0, "benchuser@bench.test"))
           .replace("-l 0", "-l SIZE").replace("-s 0", "-s SESSIONS").replace(":0", ":PORT"),
           "    smtp-sink -u nobody -c 127.0.0.1:PORT 1000", "",
           "| size | sessions | Postfix | merpati | ratio | smtp-source into smtp-sink (reference) |",
           "|---|---|---|---|---|---|"]
    for size, sessions, pf, mp, sink in rows:
        out.append("| %d KiB | %d | %s | %s | %.2fx | %s |" % (
            size, sessions, fmt(pf), fmt(mp), ratio(statistics.median(mp), statistics.median(pf)),
            fmt(sink)))
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
               fmt(rate(pf)), fmt(rate(mp)), ratio(statistics.median(rate(mp)), statistics.median(rate(pf))),
               ",".join(str(x[1]) for x in pf), ",".join(str(x[1]) for x in mp))]
    return out + [""]


def mailbox_text(a):
    return ("The mailbox: Maildir files named as a delivery agent names them "
            "(`<time>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>:2,<flags>`, times, pids and "
            "microseconds varying, file mtime = delivery time), 2-8 KiB each; of every ten "
            "messages one has a base64 UTF-8 body, one a quoted-printable ISO-8859-1 body, one an "
            "RFC 2047 encoded Subject, seven are plain ASCII. Both servers get byte-identical "
            "files (their own copies).")


def imap_lines(a, rows, part):
    runs = a.imap_runs if part == "imap" else a.stock_runs
    title = ("## IMAP and POP3 against Dovecot at its best (like for like)" if part == "imap"
             else "## IMAP and POP3 against stock Dovecot (second row, not used for targets)")
    out = [title, "",
           "Dovecot %s %s. Both check the same password hashes, %s. %s IMAP: one Maildir of %d "
           "messages shared by all clients; a session is LOGIN, EXAMINE INBOX, FETCH 1:* (FLAGS "
           "RFC822.SIZE ENVELOPE), FETCH n (BODY.PEEK[]) for 20 random n, LOGOUT. SEARCH: LOGIN, "
           "EXAMINE INBOX, SEARCH TEXT %s, LOGOUT; the word is in %d messages (plain, in a base64 "
           "body, split by a quoted-printable soft line break, in an encoded-word Subject) and a "
           "session fails unless all are found, so both servers must decode. POP3: client i logs "
           "in as benchuser<i>, whose maildrop has %d messages (the same generator, hard links "
           "to one copy; merpati locks a maildrop per RFC 1939, Dovecot does not, so clients do "
           "not share one); a session is USER, PASS, STAT, UIDL, RETR x20, QUIT. Each client is "
           "a process with a raw socket client and runs sessions for %g s (at least one); one "
           "warm-up session per user first. Medians of %d runs (min-max); p99 is the median of "
           "the runs' p99 session latency; failed = sessions not ending in OK."
           % (dovecot_version(), DOVECOT_SETUPS[part]["what"], HASHES[a.hash], mailbox_text(a),
              a.mailbox, RARE, len(rare_hits(a.mailbox)), a.pop3_mailbox, a.duration, runs), "",
           "| protocol | clients | Dovecot sessions/s | merpati sessions/s | ratio | Dovecot p99 | "
           "merpati p99 | failed (Dovecot / merpati) |", "|---|---|---|---|---|---|---|---|"]
    for proto, n, dv, mp in rows:
        dr, mr = [r["rate"] for r in dv], [r["rate"] for r in mp]
        out.append("| %s | %d | %s | %s | %.2fx | %.2f s | %.2f s | %d / %d |" % (
            proto, n, fmt(dr, 1), fmt(mr, 1), ratio(statistics.median(mr), statistics.median(dr)),
            med(dv, "p99"), med(mp, "p99"), failures(dv), failures(mp)))
    errors = [e for _, _, dv, mp in rows for r in dv + mp for e in r["errors"]]
    if errors:
        out += ["", "First failures: " + "; ".join(sorted(set(errors))[:5])]
    if part == "imap":
        out += ["", SEARCH_NOTE]
    return out + [""]


SEARCH_NOTE = (
    "SEARCH semantics, what is equal and what is not: both servers undo base64 and "
    "quoted-printable, convert the charset to UTF-8 and decode RFC 2047 words in header "
    "fields before comparing (merpati since issue 14: modules/imap/imap_search.c, "
    "imap_decode.c). Dovecot compares in Unicode titlecase after decomposition (i;unicode-"
    "casemap over all of Unicode); merpati folds to the lower-case member of each titlecase "
    "class for Latin-1 and Latin Extended-A, Greek and Cyrillic plus a few compatibility "
    "characters (micro, Kelvin, Ohm, Angstrom signs, capital sharp s), leaves every other "
    "script as is and does not decompose (an \"e\" with a combining accent does not match a "
    "precomposed one). The search word here is ASCII, so both fold it the same way. "
    "merpati searches a plain (7-bit, ASCII or UTF-8, unencoded) message in place and decodes "
    "only the others; neither server has a full-text index here.")


def imaptest_lines(a, res):
    out = ["## imaptest stress", ""]
    if res.get("skipped"):
        return out + ["Not run: %s." % res["skipped"], ""]
    out += ["Dovecot's imaptest (%s) in stress mode against fresh servers (Dovecot at its best, "
            "as above; an empty INBOX, imaptest APPENDs from an mbox of the first %d messages of "
            "the generated mailbox, the same file for both), %d s per run, %d run(s) per cell. "
            "commands/s = the sum of the per-command counts imaptest prints under \"Totals:\", "
            "divided by the seconds. A run counts only when neither side printed an `Error:` "
            "line." % (imaptest_version(), a.imaptest_mbox, a.imaptest_secs, a.imaptest_runs), "",
            "    " + " ".join(imaptest_cmd("imaptest", 0, "MBOX", 0, a.imaptest_secs))
            .replace("port=0", "port=PORT").replace("clients=0", "clients=N"), "",
            "| clients | Dovecot commands/s | merpati commands/s | ratio | Error: lines (Dovecot / merpati) |",
            "|---|---|---|---|---|"]
    for n, dv, mp in res["rows"]:
        dr, mr = [r["rate"] for r in dv], [r["rate"] for r in mp]
        out.append("| %d | %s | %s | %.2fx | %d / %d |" % (
            n, fmt(dr), fmt(mr), ratio(statistics.median(mr), statistics.median(dr)),
            failures(dv), failures(mp)))
    errors = [e for _, dv, mp in res["rows"] for r in dv + mp for e in r["errors"]]
    if errors:
        out += ["", "First errors: " + "; ".join("`%s`" % e[:160] for e in sorted(set(errors))[:5])]
    return out + [""]


def memory_lines(a, mem):
    out = ["## Memory per idle session", "",
           "Growth of the memory of all the server's processes (summed from /proc/PID/smaps_rollup) "
           "with %d connections opened, divided by the sessions actually served. PSS splits "
           "each shared page between the processes mapping it; USS counts private pages only; "
           "RSS (extra column) counts a shared library once per process and so overstates the "
           "forking peers. SMTP: connected, nothing sent; a session is served once its 220 "
           "greeting came (Postfix runs at most default_process_limit = 200 smtpd at once, the "
           "others wait in the listen queue without a greeting or memory). IMAP: LOGIN done, "
           "then idle; Dovecot at its best as above (one imap process per session)." % a.idle, "",
           "| sessions | merpati KiB PSS / USS | peer KiB PSS / USS | ratio PSS (USS) | "
           "served of opened (merpati / peer) | RSS KiB (merpati / peer) |", "|---|---|---|---|---|---|"]
    for what, mp, peer, name in (("SMTP", "smtp_mp", "smtp_pf", "Postfix"),
                                 ("IMAP", "imap_mp", "imap_dv", "Dovecot")):
        m, p = mem[mp], mem[peer]
        out.append("| %s idle, vs %s | %.1f / %.1f | %.1f / %.1f | %.3f (%.3f) | %d of %d / %d of %d "
                   "| %.1f / %.1f |" % (what, name, m[1], m[2], p[1], p[2], ratio(m[1], p[1]),
                                        ratio(m[2], p[2]), m[4], m[3], p[4], p[3], m[0], p[0]))
    return out + [""]


def pg_config_text(res, part):
    shown = res.get("pg", {})
    return ("PostgreSQL %s, a private cluster on this machine (tests/e2e/pg.py's initdb, Unix "
            "socket), durable and sized as its documentation advises for a server of this size "
            "(shared_buffers a quarter of the memory, as its documentation advises for a "
            "server with 1 GB or more; effective_cache_size, a planner hint, half of it, the "
            "PostgreSQL wiki's conservative setting; "
            "everything else PostgreSQL's default); as it reported: %s. The mailbox is loaded "
            "by `merpati mailbox migrate --from deliver_maildir --to store_pgsql` from the same "
            "generated Maildir the other rows use (UIDs, flags and dates kept); that load, "
            "setup and not timed, commits with synchronous_commit = off (PGOPTIONS, its own "
            "connections only). Durability of what is timed: PostgreSQL returns a commit only "
            "once its WAL is flushed (fsync, synchronous_commit and full_page_writes on, its "
            "defaults), which is at least what Dovecot's Maildir gives by default "
            "(mail_fsync = optimized: a new message file is fsynced before it is renamed into "
            "place, its index files are not, they are rebuilt after a crash). The sessions "
            "are read-only (EXAMINE; RETR without DELE), so neither server's write path is "
            "timed; WAL written during the timed runs: %s."
            % (pg_version(), ", ".join("%s = %s" % kv for kv in sorted(shown.items())) or "-",
               res.get("pg_wal", {}).get(part, "-")))


def pg_version():
    out = sh(os.path.join(pg.PG_BIN, "postgres"), "--version", check=False).stdout
    found = re.search(r"\d+\.\d+", out)
    return found.group(0) if found else "?"


def pgsql_lines(a, res):
    out = ["## IMAP and POP3 on store_pgsql against Dovecot on Maildir", ""]
    if res.get("pg_skipped"):
        return out + ["Not run: %s." % res["pg_skipped"], ""]
    out += ["merpati (node A, %s) with `server.mailstore = \"store_pgsql\"` (pool_size: its "
            "default, 4) against Dovecot at its best on Maildir, as in the IMAP and POP3 "
            "section (same Dovecot setup, same hashes and login caches, same mailbox content, "
            "same clients and sessions: IMAP on a shared mailbox of %d messages, POP3 one "
            "maildrop of %d messages per client; no SEARCH row). %s Both servers build their "
            "caches in the warm-up session (Dovecot its index and dovecot.index.cache files, "
            "merpati its in-memory envelope cache, imap.envelope_cache). merpati's figures "
            "include PostgreSQL's work on the same %d cores. Medians of %d runs (min-max)."
            % (PG_NODES[0], a.mailbox, a.pop3_mailbox, pg_config_text(res, "pgsql"), os.cpu_count(),
               a.pg_runs), "",
            "| protocol | clients | Dovecot (Maildir) sessions/s | merpati (store_pgsql) sessions/s "
            "| ratio | Dovecot p99 | merpati p99 | failed (Dovecot / merpati) |",
            "|---|---|---|---|---|---|---|---|"]
    for proto, n, dv, mp in res["pgsql"]:
        out.append("| %s | %d | %s | %s | %s | %.2f s | %.2f s | %d / %d |" % (
            proto, n, fmt([r["rate"] for r in dv], 1), fmt([r["rate"] for r in mp], 1),
            ratio_unless_failed(dv, mp), med(dv, "p99"), med(mp, "p99"), failures(dv), failures(mp)))
    return out + first_failures([r for _, _, dv, mp in res["pgsql"] for r in dv + mp]) + [""]


def ratio_unless_failed(base, other):
    """other's median rate over base's, unless a session failed on either
    side: a client stops after its third failure, so the rate of a cell
    with failures is measured over fewer clients and a shorter time and
    is not a result."""
    if failures(base) or failures(other):
        return "none (sessions failed)"
    return "%.2fx" % ratio(med(other, "rate"), med(base, "rate"))


def first_failures(runs):
    errors = sorted(set(e for r in runs for e in r["errors"]))
    return ["", "First failures: " + "; ".join(errors[:5])] if errors else []


def nodes_lines(a, res):
    out = ["## One node against two nodes on one PostgreSQL (IMAP)", ""]
    if res.get("pg_skipped"):
        return out + ["Not run: %s." % res["pg_skipped"], ""]
    out += ["Two merpatid nodes, A on %s and B on %s, each with its own config, users.db "
            "(the same user and hash) and pool (pool_size 4, the default: two nodes hold twice "
            "the database connections), both with `server.mailstore = \"store_pgsql\"` on one "
            "database holding one mailbox of %d messages. The IMAP session of the sections "
            "above (LOGIN, EXAMINE, FETCH 1:* checked for all %d messages, 20 bodies, LOGOUT). "
            "One node: every client on A (B up and idle). Two nodes: client i on A when i is "
            "even, on B when odd. Each node warmed up once. %s Medians of %d runs (min-max)."
            % (PG_NODES[0], PG_NODES[1], a.mailbox, a.mailbox,
               ("PostgreSQL as in the section above (WAL written during these timed runs: %s)."
                % res.get("pg_wal", {}).get("pgsql-nodes", "-")) if "pgsql" in res
               else pg_config_text(res, "pgsql-nodes"), a.pg_runs), "",
            "**What this machine can show:** %d cores. Both nodes, PostgreSQL and the client "
            "processes share the same CPUs, so a second node adds no CPU: this row shows that "
            "clients split across two nodes on one database are served correctly (failed "
            "sessions are counted) and what running two nodes costs, not scale-out. Scaling "
            "out needs nodes on their own machines; it is then bounded by the database "
            "(each read is a query, each new message a transaction) and is for each site to "
            "measure on its own hardware." % os.cpu_count(), "",
            "| clients | one node sessions/s | two nodes sessions/s | two / one | one node p99 | "
            "two nodes p99 | failed (one / two) |", "|---|---|---|---|---|---|---|"]
    for n, one, two in res["pgsql-nodes"]:
        out.append("| %d | %s | %s | %s | %.2f s | %.2f s | %d / %d |" % (
            n, fmt([r["rate"] for r in one], 1), fmt([r["rate"] for r in two], 1),
            ratio_unless_failed(one, two),
            med(one, "p99"), med(two, "p99"), failures(one), failures(two)))
    return out + first_failures([r for _, one, two in res["pgsql-nodes"] for r in one + two]) + [""]


def write_results(a, res, started):
    out = header(a, started, time.time() - started) + target_lines(res) + durability_lines()
    if "smtp" in res:
        out += smtp_lines(a, res["smtp"])
    if "outbound" in res:
        out += outbound_lines(a, res["outbound"])
    for part in ("imap", "imap-stock"):
        if part in res:
            out += imap_lines(a, res[part], part)
    if "imaptest" in res:
        out += imaptest_lines(a, res["imaptest"])
    if "memory" in res:
        out += memory_lines(a, res["memory"])
    if "pgsql" in res:
        out += pgsql_lines(a, res)
    if "pgsql-nodes" in res:
        out += nodes_lines(a, res)
    with open(a.results, "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


def expected_minutes(a, parts):
    """A rough forecast from the default run's parts on 2 cores, scaled by
    the options. A cell runs past --duration by about one session: up to
    ~20 s for Dovecot's SEARCH at 50 clients. The per-part figures were
    taken on a busy machine; the default run took 17 minutes on 2 idle
    cores (2026-11-23) against 34 forecast, hence the halving."""
    smtp = a.messages * a.runs * len(ints(a.sizes)) * len(ints(a.sessions)) * 0.0067
    stock = len(ints(a.stock_clients)) * a.stock_runs
    est = {"smtp": smtp,
           "outbound": a.outbound * a.runs * 0.008,
           "imap": 60 + a.mailbox * 0.004 + 6 * len(ints(a.clients)) * a.imap_runs * (a.duration + 6),
           "imap-stock": 60 + a.mailbox * 0.004 + 6 * stock * (a.duration + 6),
           "imaptest": 10 + len(ints(a.imaptest_clients)) * a.imaptest_runs * 2 * (a.imaptest_secs + 12),
           "memory": 30 + a.idle * 0.12,
           "pgsql": 30 + (a.mailbox + max(ints(a.pg_clients)) * a.pop3_mailbox) * 0.004
           + 4 * len(ints(a.pg_clients)) * a.pg_runs * (a.duration + 6),
           "pgsql-nodes": 20 + a.mailbox * 0.004 + 2 * len(ints(a.pg_clients)) * a.pg_runs * (a.duration + 6)}
    return sum(est[p] for p in parts) / 60 / 2


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
    ap.add_argument("--clients", default="10,50", help="concurrent IMAP/POP3 clients (imap part)")
    ap.add_argument("--duration", type=float, default=10, help="seconds of load per IMAP/POP3 cell")
    ap.add_argument("--imap-runs", type=int, default=3, help="runs per IMAP/POP3 cell (imap part)")
    ap.add_argument("--stock-clients", default="10,50", help="clients of the imap-stock part")
    ap.add_argument("--stock-runs", type=int, default=1, help="runs per cell of the imap-stock part")
    ap.add_argument("--limit", type=int, default=300, help="seconds a client may take, then failed")
    ap.add_argument("--hash", choices=("merpati", "fast"), default="fast",
                    help="IMAP/POP3 password hashes, the same on both servers: sha512-crypt with "
                         "1000 rounds, or yescrypt as `merpati user add` writes it")
    ap.add_argument("--imaptest-clients", default="10,50", help="imaptest stress clients")
    ap.add_argument("--imaptest-secs", type=int, default=30, help="seconds per imaptest run")
    ap.add_argument("--imaptest-runs", type=int, default=3, help="imaptest runs per cell (median)")
    ap.add_argument("--imaptest-mbox", type=int, default=200,
                    help="messages in the mbox imaptest appends from")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for memory")
    ap.add_argument("--pg-clients", default="10,50", help="clients of the pgsql and pgsql-nodes parts")
    ap.add_argument("--pg-runs", type=int, default=2, help="runs per cell of the pgsql parts")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                    help="where the report goes (quick checks: elsewhere, not over the real one)")
    a = ap.parse_args()
    parts = a.only.split(",")
    if not set(parts) <= set(PARTS):
        ap.error("--only takes some of " + ",".join(PARTS))
    if os.geteuid() != 0:
        raise SystemExit("bench/run.py runs as root (it installs and starts Postfix and Dovecot)")
    print("bench: %s; expected to take about %.0f minutes on 2 idle cores"
          % (",".join(parts), expected_minutes(a, parts)), flush=True)
    started = time.time()
    MERPATI_TESTED.append(merpati_version())
    ensure_peers(parts)
    raise_fd_limit()
    res = {}
    try:
        for part, fn in (("smtp", smtp_inbound), ("outbound", outbound), ("imap", imap_pop3),
                         ("imap-stock", imap_pop3_stock), ("imaptest", imaptest_part),
                         ("memory", memory)):
            if part in parts:
                t = time.time()
                res[part] = fn(a)
                print("-- %s took %.0f s" % (part, time.time() - t), flush=True)
        if set(PG_PARTS) & set(parts):
            res.update(pgsql_parts(a, parts))
    finally:
        empty_trash()
    write_results(a, res, started)


if __name__ == "__main__":
    main()
