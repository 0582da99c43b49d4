#!/usr/bin/env python3
"""bench/run.py - merpati against Postfix on the same machine, same run.

    make bench            (or: python3 bench/run.py [--messages N] [--runs R])

Installs Postfix from Debian when missing, runs it on loopback only
(127.0.0.1:2626, never port 25), and drives both servers with Postfix's
own smtp-source; the clock stops when the last message is in the
Maildir. Also measures the protocol ceiling (smtp-source into smtp-sink,
no disk) and the memory of 1000 idle SMTP connections. Medians of R runs
with the min-max spread go to bench/RESULTS.md.

With --imap it also installs Dovecot, copies one Maildir of --mailbox
messages to both servers, and runs N concurrent IMAP clients (LOGIN,
SELECT, FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), 20 random bodies,
SEARCH TEXT for a rare word, LOGOUT) and POP3 clients (USER/PASS, STAT,
UIDL, RETR 20, QUIT): sessions per second and p99 session latency.

Not measured yet (see the issue): outbound relaying.
"""
import argparse
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import Server, free_port, wait_port  # noqa: E402

BENCH_USER = "benchuser"
POSTFIX_PORT = 2626


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


def ensure_peers():
    if shutil.which("smtp-source") is None or shutil.which("postfix") is None:
        subprocess.run("echo 'postfix postfix/main_mailer_type select No configuration' | "
                       "debconf-set-selections", shell=True, check=True)
        sh("apt-get", "install", "-y", "-qq", "postfix",
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    try:
        pwd.getpwnam(BENCH_USER)
    except KeyError:
        sh("useradd", "--create-home", "--home-dir", "/var/tmp/" + BENCH_USER, BENCH_USER)


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


def start_postfix():
    with open("/etc/postfix/main.cf", "w") as f:
        f.write(POSTFIX_MAIN)
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


def maildir_count(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def clear(path):
    shutil.rmtree(path, ignore_errors=True)


def run_source(port, messages, size_kib, sessions, rcpt):
    return subprocess.run(["smtp-source", "-c", "-l", str(size_kib * 1024), "-m", str(messages),
                           "-s", str(sessions), "-f", "bench@source.test", "-t", rcpt,
                           "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=1800)


def timed_delivery(port, messages, size_kib, sessions, rcpt, maildir, before):
    start = time.time()
    run_source(port, messages, size_kib, sessions, rcpt)
    deadline = time.time() + 600
    while maildir_count(maildir) < before + messages and time.time() < deadline:
        time.sleep(0.01)
    elapsed = time.time() - start
    got = maildir_count(maildir) - before
    return got / elapsed if elapsed else 0.0, got


def ceiling(messages, size_kib, sessions):
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-c", "127.0.0.1:%d" % port, "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        start = time.time()
        run_source(port, messages, size_kib, sessions, "x@sink.test")
        return messages / (time.time() - start)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(5)


def rss_of(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def pids_of(name):
    r = sh("pgrep", "-x", name, check=False)
    return [int(p) for p in r.stdout.split()]


def idle_memory(port, pids_fn, count=1000):
    base = rss_of(pids_fn())
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(2)
    used = rss_of(pids_fn()) - base
    for s in socks:
        s.close()
    return used / max(len(socks), 1), len(socks)


def postfix_pids():
    return pids_of("master") + pids_of("smtpd") + pids_of("qmgr") + pids_of("pickup") + \
        pids_of("local") + pids_of("cleanup") + pids_of("trivial-rewrite")


DOVECOT_CONF = """protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
base_dir = {run}/base
log_path = {run}/dovecot.log
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {run}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={home}
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""


def start_dovecot(run, home, imap, pop3):
    if shutil.which("dovecot") is None:
        sh("apt-get", "install", "-y", "-qq", "dovecot-imapd", "dovecot-pop3d",
           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    os.makedirs(os.path.join(run, "base"), exist_ok=True)  # dovecot owns base_dir
    with open(os.path.join(run, "passwd"), "w") as f:
        f.write("%s@bench.test:{PLAIN}pw\n" % BENCH_USER)
    conf = os.path.join(run, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(run=run, user=BENCH_USER, home=home, imap=imap, pop3=pop3))
    # dovecot daemonises keeping inherited descriptors: no pipes to it
    subprocess.run(["dovecot", "-c", conf], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wait_port(imap, timeout=15)
    wait_port(pop3, timeout=15)
    return conf


def stop_dovecot(conf):
    sh("doveadm", "-c", conf, "stop", check=False)


def fill_maildir(path, count):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i in range(count):
        name = os.path.join(path, "cur", "%d.M%dP1.bench:2," % (1700000000 + i, i))
        with open(name, "w") as f:
            f.write("From: Sender %d <s%d@x.test>\nTo: %s@bench.test\nSubject: message %d\n"
                    "Date: Mon, 02 Nov 2026 10:00:00 +0000\nMessage-ID: <%d@x.test>\n\n%s\n"
                    % (i % 50, i % 50, BENCH_USER, i, i,
                       ("lorem ipsum dolor sit amet " * 40 + "\n") * 4 +
                       ("zanzibar\n" if i == count // 2 else "")))


def imap_session(port, count, rng):
    import imaplib
    start = time.time()
    m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    m.login(BENCH_USER + "@bench.test", "pw")
    m.select("INBOX", readonly=True)
    m.fetch("1:*", "(FLAGS RFC822.SIZE ENVELOPE)")
    for n in rng.sample(range(1, count + 1), 20):
        m.fetch(str(n), "(BODY.PEEK[])")
    m.search(None, "TEXT", "zanzibar")
    m.logout()
    return time.time() - start


def pop3_session(port, count, rng):
    import poplib
    start = time.time()
    p = poplib.POP3("127.0.0.1", port, timeout=60)
    p.user(BENCH_USER + "@bench.test")
    p.pass_("pw")
    p.stat()
    p.uidl()
    for n in rng.sample(range(1, count + 1), 20):
        p.retr(n)
    p.quit()
    return time.time() - start


def load(fn, port, count, clients, sessions_each):
    import random
    import threading
    lat, lock = [], threading.Lock()

    def worker(seed):
        rng = random.Random(seed)
        for _ in range(sessions_each):
            try:
                t = fn(port, count, rng)
            except Exception:  # a refused session (POP3 IN-USE) counts as not done
                continue
            with lock:
                lat.append(t)

    start = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - start
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0
    return len(lat) / wall, p99


def chown_tree(path, user):
    sh("chown", "-R", "%s:%s" % (user, user), path)


def imap_bench(a):
    """IMAP and POP3, merpati against Dovecot over the same Maildir."""
    home = pwd.getpwnam(BENCH_USER).pw_dir
    run = tempfile.mkdtemp(prefix="bench-dovecot-")
    os.chmod(run, 0o755)
    clear(os.path.join(home, "Maildir"))
    fill_maildir(os.path.join(home, "Maildir"), a.mailbox)
    chown_tree(os.path.join(home, "Maildir"), BENCH_USER)
    ports = {k: free_port() for k in ("dimap", "dpop3", "mimap", "mpop3")}
    srv = Server(domains=("bench.test",), modules={
        "imap": 'plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; port = %d; }; };'
                % ports["mimap"],
        "pop3": 'plaintext_auth = true; listen = { plain = { address = "127.0.0.1"; port = %d; }; };'
                % ports["mpop3"]})
    srv.add_user(BENCH_USER + "@bench.test", "pw")
    md = srv.maildir(BENCH_USER + "@bench.test")
    fill_maildir(md, a.mailbox)
    chown_tree(os.path.join(srv.state, "mail"), "merpati")
    conf = start_dovecot(run, home, ports["dimap"], ports["dpop3"])
    srv.start("limits.connections_per_ip=2000")
    rows = []
    try:
        for clients in [int(x) for x in a.clients.split(",")]:
            each = max(1, 30 // clients)
            for proto, fn, dport, mport in (("IMAP", imap_session, ports["dimap"], ports["mimap"]),
                                            ("POP3", pop3_session, ports["dpop3"], ports["mpop3"])):
                if proto == "POP3" and clients > 1:
                    continue  # one maildrop: merpati locks it per RFC 1939 8
                fn(dport, a.mailbox, __import__("random").Random(0))  # warm caches
                fn(mport, a.mailbox, __import__("random").Random(0))
                dv = load(fn, dport, a.mailbox, clients, each)
                mp = load(fn, mport, a.mailbox, clients, each)
                rows.append((proto, clients, dv, mp))
                print("%s x %2d clients: dovecot %.1f sessions/s p99 %.2fs, merpati %.1f sessions/s "
                      "p99 %.2fs" % (proto, clients, dv[0], dv[1], mp[0], mp[1]), flush=True)
    finally:
        srv.cleanup()
        stop_dovecot(conf)
        shutil.rmtree(run, ignore_errors=True)
    return rows


def fmt(values):
    return "%.0f (%.0f-%.0f)" % (statistics.median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sessions", default="1,10,50")
    ap.add_argument("--sizes", default="4,100")
    ap.add_argument("--imap", action="store_true", help="also IMAP/POP3 against Dovecot")
    ap.add_argument("--mailbox", type=int, default=2000)
    ap.add_argument("--clients", default="1,10,50")
    ap.add_argument("--imap-only", action="store_true", help="only the IMAP/POP3 part")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/run.py runs as root (it installs and starts Postfix)")
    ensure_peers()
    if a.imap_only:
        write_imap_results(a, imap_bench(a))
        return
    home = pwd.getpwnam(BENCH_USER).pw_dir
    pf_maildir = os.path.join(home, "Maildir", "new")
    start_postfix()
    srv = Server(domains=("bench.test",))
    srv.add_user(BENCH_USER + "@bench.test", "pw")
    srv.start("limits.connections_per_ip=2000", "limits.connections=5000")
    mp_maildir = os.path.join(srv.maildir(BENCH_USER + "@bench.test"), "new")
    rows = []
    try:
        for size in [int(x) for x in a.sizes.split(",")]:
            for sessions in [int(x) for x in a.sessions.split(",")]:
                pf, mp, cl = [], [], []
                for _ in range(a.runs):
                    clear(os.path.join(home, "Maildir"))
                    pf.append(timed_delivery(POSTFIX_PORT, a.messages, size, sessions,
                                             BENCH_USER + "@bench.test", pf_maildir, 0)[0])
                    before = maildir_count(mp_maildir)
                    mp.append(timed_delivery(srv.port, a.messages, size, sessions,
                                             BENCH_USER + "@bench.test", mp_maildir, before)[0])
                    cl.append(ceiling(a.messages, size, sessions))
                rows.append((size, sessions, pf, mp, cl))
                print("%3d KiB x %2d sessions: postfix %s msg/s, merpati %s msg/s, sink %s msg/s"
                      % (size, sessions, fmt(pf), fmt(mp), fmt(cl)), flush=True)
        mem_mp = idle_memory(srv.port, lambda: [srv.proc.pid])
        mem_pf = idle_memory(POSTFIX_PORT, postfix_pids)
    finally:
        srv.cleanup()
        stop_postfix()
    write_results(a, rows, mem_mp, mem_pf)
    if a.imap:
        write_imap_results(a, imap_bench(a))


def write_imap_results(a, rows):
    out = ["", "## IMAP and POP3 against Dovecot (%s)" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "", "One Maildir of %d messages copied to both; Dovecot %s with its defaults (plain "
           "passwd-file). A session: IMAP LOGIN, SELECT, FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), "
           "20 random bodies, SEARCH TEXT, LOGOUT; POP3 USER/PASS, STAT, UIDL, RETR x20, QUIT. "
           "Command: `python3 bench/run.py --imap-only --mailbox %d --clients %s`"
           % (a.mailbox, sh("dovecot", "--version", check=False).stdout.strip(), a.mailbox, a.clients),
           "", "| protocol | clients | Dovecot sessions/s | merpati sessions/s | ratio | Dovecot p99 | merpati p99 |",
           "|---|---|---|---|---|---|---|"]
    for proto, clients, dv, mp in rows:
        out.append("| %s | %d | %.1f | %.1f | %.2fx | %.2f s | %.2f s |" % (
            proto, clients, dv[0], mp[0], mp[0] / dv[0] if dv[0] else 0, dv[1], mp[1]))
    out.append("")
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("\n".join(out))
    print("\n".join(out))


def write_results(a, rows, mem_mp, mem_pf):
    mem = sh("awk", "/MemTotal/ {print $2}", "/proc/meminfo").stdout.strip()
    disk = sh("df", "-h", "/tmp", check=False).stdout.splitlines()[-1]
    out = ["# Benchmark results", "",
           "Date: %s  " % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "Machine: %d cores, %s kB memory, /tmp on `%s`  " % (os.cpu_count(), mem, disk),
           "Command: `python3 bench/run.py --messages %d --runs %d --sessions %s --sizes %s`"
           % (a.messages, a.runs, a.sessions, a.sizes), "",
           "SMTP inbound to Maildir, end to end (clock stops when the last message is in the "
           "Maildir). Postfix %s with its default fsync behaviour; merpati fsyncs the queue "
           "file and the Maildir file before acknowledging/finishing. Medians of %d runs "
           "(min-max), messages per second:" % (sh("postconf", "-h", "mail_version",
                                                 check=False).stdout.strip(), a.runs), "",
           "| size | sessions | Postfix | merpati | ratio | smtp-sink ceiling | merpati / ceiling |",
           "|---|---|---|---|---|---|---|"]
    for size, sessions, pf, mp, cl in rows:
        out.append("| %d KiB | %d | %s | %s | %.2fx | %s | %.0f%% |" % (
            size, sessions, fmt(pf), fmt(mp), statistics.median(mp) / statistics.median(pf),
            fmt(cl), 100 * statistics.median(mp) / statistics.median(cl)))
    out += ["", "Memory per idle SMTP connection (RSS of all server processes, %d / %d "
            "connections opened): merpati %.1f KiB, Postfix %.1f KiB (ratio %.2f)."
            % (mem_mp[1], mem_pf[1], mem_mp[0], mem_pf[0], mem_mp[0] / mem_pf[0] if mem_pf[0] else 0),
            "", "Postfix serves at most default_process_limit (200) sessions at once; the "
            "rest wait in the listen queue, which costs no RSS.", ""]
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
