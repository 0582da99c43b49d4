"""tests/e2e/pg.py - a private PostgreSQL 15 for the tests, from Debian's binaries.

PgServer() runs initdb in a fresh temp dir, starts `postgres` listening on
a Unix socket in that dir and on 127.0.0.1 at a free port (nothing else),
creates a role and a database, and gives a libpq conninfo for them. As
root it runs every PostgreSQL program as the unprivileged `merpati` user
(initdb and postgres refuse root) and gives that user the temp dir. stop()
ends the server by `pg_ctl stop -m fast`, then by its PID if that fails,
and cleanup() removes the dir. Every wait is bounded.

    with PgServer() as pg:          # or: pg = PgServer(); pg.start()
        pg.conninfo                 # "host=/tmp/merpati-pg-x/sock port=N dbname=mail user=mail"
        pg.psql("SELECT 1")         # run SQL as the superuser, returns stdout
        pg.restart()                # stop -m fast, start again (same data)
    attach(srv)                     # a harness Server gets modules.store_pgsql

When the binaries are absent, available() returns a reason string and
tests skip with it (skip_reason() for unittest.skipIf).

Command line, for manual runs (the server stops after SECONDS or ^C):
    python3 tests/e2e/pg.py [SECONDS] [PORT]
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = os.environ.get("MERPATI_PG_BIN", "/usr/lib/postgresql/15/bin")
RUN_AS = "merpati"  # the unprivileged user PostgreSQL runs as when we are root


def skip_reason():
    """None when PostgreSQL can be started here, else why not."""
    for prog in ("initdb", "postgres", "pg_ctl", "psql"):
        if not os.access(os.path.join(PG_BIN, prog), os.X_OK):
            return "PostgreSQL binaries absent (%s/%s)" % (PG_BIN, prog)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return "running as root and no user %r to run PostgreSQL as" % RUN_AS
    return None


def available():
    return skip_reason() is None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One private PostgreSQL cluster with one database and one login role."""

    def __init__(self, dbname="mail", user="mail", password=None, port=None):
        reason = skip_reason()
        if reason:
            raise RuntimeError(reason)
        self.dir = tempfile.mkdtemp(prefix="merpati-pg-")
        os.chmod(self.dir, 0o755)  # the mail daemon's user must reach sock/
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.port = port or _free_port()
        self.dbname = dbname
        self.user = user
        self.password = password
        self.pid = None
        self.as_user = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            self.as_user = RUN_AS
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._initialised = False

    # -- running PostgreSQL's programs as the right user --------------------
    def _cmd(self, prog, *args):
        argv = [os.path.join(PG_BIN, prog)] + list(args)
        if self.as_user:
            argv = ["runuser", "-u", self.as_user, "--"] + argv
        return argv

    def _run(self, prog, *args, input=None, timeout=60, check=True):
        r = subprocess.run(self._cmd(prog, *args), input=input, capture_output=True,
                           text=True, timeout=timeout, cwd=self.dir)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (prog, r.returncode, r.stdout, r.stderr))
        return r

    # -- lifecycle ----------------------------------------------------------
    @property
    def conninfo(self):
        """libpq conninfo for the test role over the Unix socket."""
        return "host=%s port=%d dbname=%s user=%s" % (self.sock, self.port, self.dbname, self.user)

    @property
    def tcp_conninfo(self):
        return "host=127.0.0.1 port=%d dbname=%s user=%s" % (self.port, self.dbname, self.user)

    def _initdb(self):
        os.mkdir(self.sock)
        if self.as_user:
            pw = pwd.getpwnam(self.as_user)
            os.chown(self.sock, pw.pw_uid, pw.pw_gid)
        os.chmod(self.sock, 0o755)
        auth = "scram-sha-256" if self.password else "trust"
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync", timeout=120)
        # Only the test role's login is checked when a password is asked for;
        # the superuser (used by psql() below) stays on trust.
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all postgres trust\n"
                    "host all postgres 127.0.0.1/32 trust\n"
                    "local all all %s\n"
                    "host all all 127.0.0.1/32 %s\n" % (auth, auth))
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nlisten_addresses = '127.0.0.1'\n"
                    "port = %d\n"
                    "unix_socket_directories = '%s'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\n"
                    "logging_collector = off\n" % (self.port, self.sock))

    def start(self, timeout=30.0):
        if not self._initialised:
            self._initdb()
        self._run("pg_ctl", "-D", self.data, "-l", self.log_path, "-w",
                  "-t", str(int(timeout)), "start", timeout=timeout + 10)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline().strip())
        if not self._initialised:
            self._initialised = True
            self._create_role_and_db()
        return self

    def _create_role_and_db(self):
        pw = (" PASSWORD '%s'" % self.password.replace("'", "''")) if self.password else ""
        self.psql('CREATE ROLE "%s" LOGIN%s' % (self.user, pw), db="postgres")
        self.psql('CREATE DATABASE "%s" OWNER "%s"' % (self.dbname, self.user), db="postgres")

    def psql(self, sql, db=None, user="postgres", timeout=60):
        """Run SQL as `user` (the superuser by default); returns stdout
        (unaligned, tuples only, '|' between columns)."""
        r = self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                      "-h", self.sock, "-p", str(self.port), "-U", user,
                      "-d", db or self.dbname, "-c", sql, timeout=timeout)
        return r.stdout

    def stop(self, timeout=30.0):
        if self.pid is None:
            return
        r = self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", str(int(timeout)),
                      "stop", timeout=timeout + 10, check=False)
        if r.returncode != 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # pg_ctl returns once postmaster.pid is gone, a moment before the
        # process itself has exited: wait for that (bounded).
        deadline = time.time() + 10
        while time.time() < deadline and self._alive():
            time.sleep(0.02)
        self.pid = None

    def _alive(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def attach(srv, **kw):
    """Give a harness Server a private PostgreSQL as modules.store_pgsql
    (started now, removed by srv.cleanup()); returns the PgServer."""
    pg = PgServer(**kw)
    try:
        pg.start()
    except Exception:
        pg.cleanup()
        raise
    srv.modules["store_pgsql"] = 'conninfo = "%s";' % pg.conninfo
    srv.write_config()
    srv.pg = pg
    server_cleanup = srv.cleanup

    def cleanup():
        try:
            server_cleanup()
        finally:
            pg.cleanup()
    srv.cleanup = cleanup
    return pg


def main(argv):
    reason = skip_reason()
    if reason:
        print("skip: " + reason)
        return 0
    seconds = float(argv[1]) if len(argv) > 1 else 3600.0
    port = int(argv[2]) if len(argv) > 2 else None
    pg = PgServer(port=port)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        pg.start()
        print("conninfo: %s" % pg.conninfo, flush=True)
        print("tcp: %s" % pg.tcp_conninfo, flush=True)
        print("dir: %s pid: %d (stops in %ds or on ^C)" % (pg.dir, pg.pid, seconds), flush=True)
        try:
            time.sleep(seconds)
        except KeyboardInterrupt:
            pass
    finally:
        pg.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
