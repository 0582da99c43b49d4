"""End to end: the Debian package builds, installs, runs and purges.

Opt-in (MERPATI_PACKAGE_TEST=1): it builds the .debs from a copy of the
source tree with `dpkg-buildpackage -us -uc -b`, checks them with
lintian (no errors), bootstraps a fresh Debian 12 chroot (debootstrap
--variant=minbase with the package's run-time dependencies, from
MERPATI_DEBIAN_MIRROR, else the archive apt uses here), installs merpati and
merpati-dev there with dpkg -i, checks what the package set up (system
user, the merpatidrop group, conffile, modules, unit, headers), runs the
packaged merpatid in the chroot on the packaged config (there is no
systemd PID 1: the binary itself, listeners moved to loopback ports),
delivers one message over SMTP and, when the package has the setgid
merpati-postdrop, one that user nobody submits with sendmail, and purges
both packages. When debootstrap cannot reach the archive at all (a
machine without that network), the test says so and skips; any other
failure fails it. About two
minutes on 2 cores with a nearby mirror (docs/install.md), which is why
`make check` skips it unless asked.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import REPO
from installed import InstalledDaemon, wait_for_files

ENABLED = os.environ.get("MERPATI_PACKAGE_TEST") == "1"


def apt_mirror():
    """The Debian archive apt itself uses here (CI reaches only that),
    from deb822 .sources or one-line sources.list entries."""
    paths = sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) + ["/etc/apt/sources.list"] + \
        sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for m in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            if "security" not in m.group(1) and "debian" in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def apt_proxy_env():
    """apt's HTTP proxy, if it has one, for debootstrap (which reads the
    environment, not apt.conf)."""
    env = dict(os.environ)
    r = subprocess.run(["apt-config", "shell", "P", "Acquire::http::Proxy"],
                       capture_output=True, text=True)
    m = re.search(r"P='([^']+)'", r.stdout)
    if m and "http_proxy" not in env:
        env["http_proxy"] = m.group(1)
    return env


MIRROR = os.environ.get("MERPATI_DEBIAN_MIRROR") or apt_mirror()
# debootstrap's words for an archive it cannot reach (as opposed to a
# package that does not install)
UNREACHABLE = re.compile(r"Failed getting release file[^\n]*|Couldn't download[^\n]*|"
                         r"Temporary failure (?:in name )?resolving[^\n]*|"
                         r"Could not resolve[^\n]*|Network is unreachable[^\n]*|"
                         r"Connection refused[^\n]*|Connection timed out[^\n]*")
TOOLS = ("dpkg-buildpackage", "dh", "lintian", "debootstrap", "chroot")


def run(cmd, timeout, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode,
                                                       r.stdout[-3000:], r.stderr[-3000:]))
    return r


def source_copy(dest):
    """The worktree's files (committed or not, ignored ones left out)."""
    files = run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard"], 60).stdout.split("\0")
    for name in files:
        src = os.path.join(REPO, name)
        if not name or not os.path.lexists(src):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, name), follow_symlinks=False)


def depends_of(deb):
    text = run(["dpkg-deb", "-f", deb, "Depends"], 30).stdout
    return [re.split(r"[\s(]", d.strip())[0] for d in text.split(",") if d.strip()]


@unittest.skipUnless(ENABLED, "package test not run: set MERPATI_PACKAGE_TEST=1 (builds the "
                     ".debs and a Debian 12 chroot with debootstrap: about 2 minutes and "
                     "network access to a Debian mirror)")
class Package(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("MERPATI_PACKAGE_TEST=1 needs root (dpkg -i and chroot)")
        missing = [t for t in TOOLS if shutil.which(t) is None]
        self.assertEqual(missing, [], "install debhelper devscripts lintian debootstrap "
                         "(scripts/install-deps lists them)")
        self.tmp = tempfile.mkdtemp(prefix="merpati-package-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.times = {}

    def timed(self, name, fn, *args):
        start = time.time()
        out = fn(*args)
        self.times[name] = time.time() - start
        return out

    def build(self):
        src = os.path.join(self.tmp, "src", "merpati")
        source_copy(src)
        run(["dpkg-buildpackage", "-us", "-uc", "-b"], 1200, cwd=src)
        parent = os.path.dirname(src)
        debs = {n.split("_")[0]: os.path.join(parent, n) for n in os.listdir(parent)
                if n.endswith(".deb")}
        self.assertIn("merpati", debs)
        self.assertIn("merpati-dev", debs)
        changes = [os.path.join(parent, n) for n in os.listdir(parent) if n.endswith(".changes")]
        lint = subprocess.run(["lintian", "--no-tag-display-limit"] + changes,
                              capture_output=True, text=True, timeout=600)
        errors = [l for l in lint.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], lint.stdout)
        return debs

    def bootstrap(self, debs):
        root = os.path.join(self.tmp, "chroot")
        include = sorted(set(depends_of(debs["merpati"])) - {"${misc:Depends}"})
        cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(include),
               "bookworm", root, MIRROR]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200,
                           env=apt_proxy_env())
        out = r.stdout + r.stderr
        if r.returncode != 0 and UNREACHABLE.search(out):
            # the machine cannot fetch from the archive: not a package fault
            self.skipTest("package installed nowhere: debootstrap cannot reach %s (%s)"
                          % (MIRROR, UNREACHABLE.search(out).group(0)))
        if r.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode,
                                                          out[-3000:]))
        return root

    def install(self, root, debs):
        for name in ("merpati", "merpati-dev"):
            shutil.copy(debs[name], os.path.join(root, "tmp"))
        names = ["/tmp/" + os.path.basename(debs[n]) for n in ("merpati", "merpati-dev")]
        run(["chroot", root, "dpkg", "-i"] + names, 300)

    def check_installed(self, root):
        def at(p):
            return os.path.join(root, p.lstrip("/"))
        for p in ("/usr/sbin/merpatid", "/usr/bin/merpati", "/etc/merpati/merpati.conf",
                  "/usr/lib/merpati/modules/deliver_maildir/deliver_maildir.so",
                  "/lib/systemd/system/merpati.service", "/usr/include/merpati/module.h",
                  "/usr/share/pkgconfig/merpati.pc", "/usr/share/man/man8/merpatid.8.gz"):
            self.assertTrue(os.path.exists(at(p)), p)
        self.assertEqual(os.path.realpath(at("/usr/sbin/sendmail")), at("/usr/bin/merpati"))
        with open(at("/var/lib/dpkg/info/merpati.conffiles")) as f:
            self.assertIn("/etc/merpati/merpati.conf", f.read().split())
        run(["chroot", root, "getent", "passwd", "merpati"], 30)
        run(["chroot", root, "getent", "group", "merpatidrop"], 30)
        status = run(["chroot", root, "dpkg-query", "-W", "-f", "${Provides}", "merpati"], 30)
        self.assertIn("mail-transport-agent", status.stdout)
        if os.path.exists(at("/usr/sbin/merpati-postdrop")):
            st = os.stat(at("/usr/sbin/merpati-postdrop"))
            self.assertTrue(st.st_mode & 0o2000, "merpati-postdrop is not setgid")

    def deliver(self, root):
        d = InstalledDaemon(["chroot", root], "/usr/sbin/merpatid", "/usr/bin/merpati",
                            "/etc/merpati/merpati.conf", ['modules.dns_mx.nameserver="127.0.0.1:9"'],
                            os.path.join(self.tmp, "merpatid.log"), root=root)
        d.add_user("alice@localhost")
        new = os.path.join(root, "var/mail/vhosts/localhost/alice/new")
        try:
            self.assertTrue(d.start(), "packaged merpatid did not start:\n" + d.log())
            d.send("alice@localhost", "from the package")
            self.assertEqual(len(wait_for_files(new)), 1, d.log())
            if os.path.exists(os.path.join(root, "usr/sbin/merpati-postdrop")):
                self.submit_as_nobody(root)
                self.assertEqual(len(wait_for_files(new, count=2)), 2, d.log())
        finally:
            self.assertTrue(d.stop(), d.log())

    def submit_as_nobody(self, root):
        """An ordinary user's sendmail, through the setgid merpati-postdrop
        that postinst set up with dpkg-statoverride."""
        run(["chroot", root, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             "/usr/sbin/sendmail", "alice@localhost"], 60,
            input="Subject: from nobody\n\nhello\n")

    def purge(self, root):
        run(["chroot", root, "dpkg", "--purge", "merpati-dev", "merpati"], 300)
        for p in ("etc/merpati", "var/lib/merpati", "usr/sbin/merpatid"):
            self.assertFalse(os.path.exists(os.path.join(root, p)), p)

    def test_build_install_run_purge(self):
        debs = self.timed("build+lintian", self.build)
        root = self.timed("debootstrap", self.bootstrap, debs)
        self.timed("dpkg -i", self.install, root, debs)
        self.check_installed(root)
        self.timed("run+deliver", self.deliver, root)
        self.timed("purge", self.purge, root)
        print("# package test: " + ", ".join("%s %.0fs" % kv for kv in self.times.items()),
              flush=True)


if __name__ == "__main__":
    unittest.main()
