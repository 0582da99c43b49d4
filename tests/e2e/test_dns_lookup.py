"""tests/e2e/test_dns_lookup.py - dns_mx's generic lookup (what modules
get from the host's dns_lookup) against a real dnsmasq on loopback.

dnsmasq serves TXT records (one with several strings, joined per RFC
7208 3.3), PTR records (from --host-record in its authoritative reverse
zone), a TLSA record (--dns-rr) and addresses; names that do not exist
must come back NXDOMAIN and names without the type NODATA. The lookups
run through tests/tools/dns_tool, which loads the module's code with a
mock host and prints each answer.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from dns import DNSMASQ, Dnsmasq

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tests", "tools", "dns_tool")

A, PTR, MX, TXT, AAAA, TLSA = 1, 12, 15, 16, 28, 52
FOUND, NXDOMAIN, NODATA, TEMPFAIL, PERMFAIL = range(5)

TLSA_DATA = "0301" + "01" + "aa" * 32  # DANE-EE, SPKI, SHA-256


class Answer:
    def __init__(self, line):
        fields = line.split("\t")
        (self.status, self.count, self.truncated, self.authenticated,
         self.ttl) = map(int, fields[0].split())
        self.records = [bytes.fromhex(f) for f in fields[1:]]


@unittest.skipUnless(os.path.exists(DNSMASQ), "dnsmasq is not installed")
class DnsLookup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="merpati-dnslookup-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.dns = Dnsmasq([
            # reverse zones for 127/8 and ::1, answered from host records
            "--auth-zone=test,127.0.0.0/8,::1/128",
            "--txt-record=spf.example.test,v=spf1 ip4:192.0.2.0/24, include:_spf.example.test, -all",
            "--txt-record=one.example.test,hello",
            "--txt-record=two.example.test,first",
            "--txt-record=two.example.test,second",
            "--host-record=Mail.Example.test,127.0.0.2,::1",
            "--dns-rr=_25._tcp.mail.example.test,52," + TLSA_DATA,
            "--mx-host=example.test,mail.example.test,10",
        ], cls.dir)
        cls.addClassCleanup(cls.dns.stop)

    def lookup(self, *pairs, bufsize=4096):
        args = [TOOL, self.dns.address, str(bufsize)]
        for rtype, name in pairs:
            args += [str(rtype), name]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
        answers = [Answer(line) for line in out.stdout.splitlines()]
        self.assertEqual(len(answers), len(pairs), out.stdout)
        return answers

    def test_txt_multi_string_joined(self):
        (a,) = self.lookup((TXT, "spf.example.test"))
        self.assertEqual((a.status, a.count), (FOUND, 1))
        self.assertEqual(a.records[0], b"v=spf1 ip4:192.0.2.0/24 include:_spf.example.test -all")
        self.assertGreater(a.ttl, 0)

    def test_txt_two_records(self):
        (a,) = self.lookup((TXT, "two.example.test"))
        self.assertEqual(a.status, FOUND)
        self.assertEqual(sorted(a.records), [b"first", b"second"])

    def test_ptr_ipv4_and_ipv6_lower_case(self):
        v6name = ".".join("0" * 31 + "1")[::-1] + ".ip6.arpa"  # ::1 reversed
        v4, v6 = self.lookup((PTR, "2.0.0.127.in-addr.arpa"), (PTR, v6name))
        self.assertEqual((v4.status, v4.records), (FOUND, [b"mail.example.test"]))
        self.assertEqual((v6.status, v6.records), (FOUND, [b"mail.example.test"]))

    def test_tlsa(self):
        (a,) = self.lookup((TLSA, "_25._tcp.mail.example.test"))
        self.assertEqual(a.status, FOUND)
        self.assertEqual(a.records, [bytes.fromhex(TLSA_DATA)])
        usage, selector, matching = a.records[0][:3]
        self.assertEqual((usage, selector, matching), (3, 1, 1))

    def test_addresses_and_mx(self):
        a4, a6, mx = self.lookup((A, "mail.example.test"), (AAAA, "mail.example.test"),
                                 (MX, "example.test"))
        self.assertEqual(a4.records, [bytes([127, 0, 0, 2])])
        self.assertEqual(a6.records, [bytes(15) + b"\x01"])
        self.assertEqual(mx.records, [b"\x00\x0amail.example.test"])

    def test_nxdomain_and_nodata_told_apart(self):
        nx, nodata, nxptr = self.lookup((TXT, "nothing.example.test"),
                                        (TLSA, "one.example.test"),
                                        (PTR, "9.0.0.127.in-addr.arpa"))
        self.assertEqual((nx.status, nx.count), (NXDOMAIN, 0))
        self.assertEqual((nodata.status, nodata.count), (NODATA, 0))
        self.assertEqual(nxptr.status, NXDOMAIN)
        self.assertGreater(nx.ttl, 0)  # negative answers are cached too

    def test_cached_answer_is_the_same(self):
        first, again = self.lookup((TXT, "one.example.test"), (TXT, "one.example.test"))
        self.assertEqual(first.records, again.records)
        self.assertEqual(again.records, [b"hello"])
        self.assertLessEqual(again.ttl, first.ttl)

    def test_small_buffer_truncates(self):
        (a,) = self.lookup((TXT, "two.example.test"), bufsize=9)
        self.assertEqual((a.status, a.truncated, a.count), (FOUND, 1, 1))
        self.assertIn(a.records[0], (b"first", b"second"))

    def test_no_server_is_tempfail(self):
        args = [TOOL, "127.0.0.1:9", "512", str(TXT), "one.example.test"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
        self.assertEqual(Answer(out.stdout.strip()).status, TEMPFAIL)


if __name__ == "__main__":
    unittest.main()
