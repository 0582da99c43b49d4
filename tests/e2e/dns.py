"""tests/e2e/dns.py - a real DNS server (dnsmasq) on loopback for tests.

Only the records given are served (--no-resolv --no-hosts): nothing is
ever forwarded off the machine. Stopped by PID.
"""
import os
import signal
import subprocess
import time

from harness import free_port

DNSMASQ = "/usr/sbin/dnsmasq"


class Dnsmasq:
    def __init__(self, records, workdir):
        self.port = free_port()
        self.log_path = os.path.join(workdir, "dnsmasq.log")
        args = [DNSMASQ, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
                "--port=%d" % self.port, "--log-facility=" + self.log_path,
                "--user=root", "--pid-file=",
                # authoritative for *.test: NXDOMAIN and NODATA, not REFUSED
                "--auth-zone=test", "--auth-server=ns.test,127.0.0.1"]
        args += records
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq did not start: %s" % self.proc.stderr.read())

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
