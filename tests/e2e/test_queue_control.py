"""End to end (issue 22): queue control and per-destination control
against the real daemon. `queue hold/release/requeue` (a requeue after a
route change takes the new route), `queue delete` by sender/recipient
pattern, `queue list` filters and --json; a destination limited to 2
connections never sees a third (a slow SMTP sink on loopback counts
them); a destination that keeps failing is backed off for all its
messages at once. Destinations are reached through route_regex relay
rules naming a loopback port, as in test_outbound."""
import json
import re
import smtplib
import socket
import threading
import time
import unittest

from harness import DOMAIN, Server, free_port

ALICE = "alice@" + DOMAIN


class Sink:
    """A small SMTP server on 127.0.0.1 that accepts everything, counts
    the connections open at once (the most ever seen in `peak`) and the
    messages taken. `hold_data`: each end of DATA is answered only once
    `hold_data` connections are open (or after `data_wait` seconds), so
    a limit of 2 is filled deterministically before anything finishes.
    `slam`: close every connection at once (a broken destination)."""

    def __init__(self, hold_data=0, data_wait=3.0, slam=False):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.hold_data, self.data_wait, self.slam = hold_data, data_wait, slam
        self.lock = threading.Condition()
        self.open = self.peak = self.connections = 0
        self.rcpts = []
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with self.lock:
            self.connections += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
            self.lock.notify_all()
        counted = [True]  # still in self.open
        try:
            if not self.slam:
                conn.settimeout(20)
                self.session(conn.makefile("rb"), conn, counted)
        except OSError:
            pass
        finally:
            conn.close()
            self.leave(counted)

    def leave(self, counted):
        """One connection fewer open, once. At QUIT this comes before
        the 221: the client frees its slot only after the 221 and may
        connect again at once, before this thread would have closed."""
        with self.lock:
            if counted[0]:
                counted[0] = False
                self.open -= 1
                self.lock.notify_all()

    def session(self, rf, conn, counted):
        conn.sendall(b"220 sink.test ESMTP\r\n")
        rcpts = []
        while True:
            line = rf.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250-sink.test\r\n250 8BITMIME\r\n")
            elif verb == b"RCPT":
                rcpts.append(re.search(rb"<([^>]*)>", line).group(1).decode())
                conn.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go\r\n")
                while rf.readline() not in (b".\r\n", b""):
                    pass
                self.wait_for_company()
                with self.lock:
                    self.rcpts += rcpts
                    self.lock.notify_all()
                rcpts = []
                conn.sendall(b"250 taken\r\n")
            elif verb == b"QUIT":
                self.leave(counted)
                conn.sendall(b"221 bye\r\n")
                return
            else:  # MAIL, RSET, NOOP
                conn.sendall(b"250 ok\r\n")

    def wait_for_company(self):
        deadline = time.time() + self.data_wait
        with self.lock:
            while self.open < self.hold_data and time.time() < deadline:
                self.lock.wait(deadline - time.time())

    def wait_rcpts(self, count, timeout=30.0):
        deadline = time.time() + timeout
        with self.lock:
            while len(self.rcpts) < count and time.time() < deadline:
                self.lock.wait(max(0.05, deadline - time.time()))
            return list(self.rcpts)

    def stop(self):
        """shutdown() wakes the accept loop and it ends before the socket
        is closed: closed first, its descriptor number went to the next
        test's sink while this loop could still be entering accept() on
        it, and that loop then took the new sink's connections (seen: a
        flushed message "lost", in fact answered by the old sink)."""
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


def rules_for(routes):
    """route_regex rules relaying each domain to a loopback port."""
    return "rules = ( %s );" % ", ".join(
        '{ match = "@%s$"; action = "relay"; host = "127.0.0.1:%d"; }'
        % (domain.replace(".", "\\\\."), port) for domain, port in routes)


def send(srv, sender, rcpts, subject):
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=15) as s:
        s.ehlo("client.test")
        s.mail(sender)
        for r in rcpts:
            s.rcpt(r)
        code, text = s.data(("Subject: %s\r\n\r\nbody\r\n" % subject).encode())
    return re.search(r"queued as ([0-9A-F]+)", text.decode()).group(1)


def make_server(test, routes, outbound="", queue='retry_interval = "1h";'):
    srv = Server(extra_config='relay_networks = [ "127.0.0.0/8" ];\n'
                 'queue = { %s };\noutbound = { tls = "none"; connect_timeout = "2s"; %s };'
                 % (queue, outbound),
                 modules={"route_regex": rules_for(routes)})
    test.addCleanup(srv.cleanup)
    srv.add_user(ALICE)
    return srv


def queue_json(srv, *args):
    r = srv.cli("queue", "list", "--json", *args)
    if r.returncode != 0:
        raise AssertionError("queue list --json failed: " + r.stderr)
    return json.loads(r.stdout)


def wait_until(predicate, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


class QueueControl(unittest.TestCase):
    def tried(self, srv, qid, attempts):
        """The message's status shows `attempts` attempts (bounded wait)."""
        def check():
            r = srv.cli("queue", "show", qid, "--json")
            return r.returncode == 0 and json.loads(r.stdout)["attempts"] >= attempts
        return wait_until(check)

    def test_hold_release_requeue_takes_the_new_route(self):
        closed = free_port()  # nothing listens: every attempt is deferred
        sink = Sink()
        self.addCleanup(sink.stop)
        srv = make_server(self, [("moved.test", closed)])
        srv.start()
        qid = send(srv, ALICE, ["x@moved.test"], "moving")
        self.assertTrue(self.tried(srv, qid, 1), srv.log()[-2000:])

        r = srv.cli("queue", "hold", qid, "looking into it")
        self.assertEqual(r.returncode, 0, r.stderr)
        held = queue_json(srv, "--held")
        self.assertEqual([m["id"] for m in held], [qid])
        self.assertEqual(held[0]["hold_reason"], "looking into it")
        r = srv.cli("queue", "release", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        # released: due at once (retry_interval is 1h), the daemon notices
        self.assertTrue(self.tried(srv, qid, 2), srv.log()[-2000:])
        self.assertEqual(queue_json(srv, "--held"), [])

        # the route changes (merpati reload); the message keeps its old
        # route until it is requeued
        srv.modules["route_regex"] = rules_for([("moved.test", sink.port)])
        srv.write_config()
        r = srv.cli("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(srv.wait_log("in force for new sessions"), srv.log()[-2000:])
        srv.cli("queue", "flush")  # tried again now: still the old route
        self.assertTrue(self.tried(srv, qid, 3), srv.log()[-2000:])
        self.assertEqual(sink.rcpts, [])
        r = srv.cli("queue", "requeue", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("requeued " + qid, r.stdout)
        self.assertEqual(sink.wait_rcpts(1), ["x@moved.test"])
        self.assertTrue(srv.wait_log("requeued to=<x@moved.test> relay=127.0.0.1:%d"
                                     % sink.port))
        self.assertTrue(wait_until(lambda: queue_json(srv) == []))
        trace = srv.cli("trace", qid, srv.log_path).stdout  # docs/operations.md
        self.assertIn("requeued to=<x@moved.test>", trace)
        self.assertIn("127.0.0.1:%d" % sink.port, trace.split("requeued to=")[1])

    def test_requeue_unknown_id_fails(self):
        srv = make_server(self, [])
        r = srv.cli("queue", "requeue", "0123456789ABCDEF")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no such message", r.stderr)

    def test_list_filters_json_and_delete_by_pattern(self):
        closed = free_port()
        srv = make_server(self, [("hold.test", closed), ("other.test", closed)])
        srv.start()
        a = send(srv, ALICE, ["a@hold.test"], "one")
        b = send(srv, "bob@sender.test", ["b@hold.test"], "two")
        c = send(srv, ALICE, ["c@other.test", "d@other.test"], "three")
        for qid in (a, b, c):
            self.assertTrue(self.tried(srv, qid, 1), srv.log()[-2000:])

        everything = queue_json(srv)
        self.assertEqual(sorted(m["id"] for m in everything), sorted([a, b, c]))
        three = [m for m in everything if m["id"] == c][0]
        self.assertEqual([x["address"] for x in three["recipients"]],
                         ["c@other.test", "d@other.test"])
        self.assertEqual(three["sender"], ALICE)
        self.assertEqual(three["recipients"][0]["route"], "127.0.0.1:%d" % closed)
        self.assertIn("connect to", three["last_error"])
        self.assertFalse(three["held"])
        self.assertGreaterEqual(three["age"], 0)

        self.assertEqual(sorted(m["id"] for m in queue_json(srv, "--domain", "HOLD.test")),
                         sorted([a, b]))
        self.assertEqual(sorted(m["id"] for m in queue_json(srv, "--deferred")),
                         sorted([a, b, c]))
        self.assertEqual(queue_json(srv, "--older-than", "1h"), [])
        time.sleep(1.1)
        self.assertEqual(len(queue_json(srv, "--older-than", "1s")), 3)
        srv.cli("queue", "hold", b)
        self.assertEqual([m["id"] for m in queue_json(srv, "--held")], [b])
        self.assertEqual(sorted(m["id"] for m in queue_json(srv, "--deferred")),
                         sorted([a, c]))  # held mail is not "deferred"
        text = srv.cli("queue", "list", "--domain", "other.test").stdout
        self.assertIn(c, text)
        self.assertNotIn(a, text)
        shown = json.loads(srv.cli("queue", "show", b, "--json").stdout)
        self.assertEqual(shown["id"], b)
        self.assertTrue(shown["held"])

        bad = srv.cli("queue", "list", "--older-than", "soon")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("not a duration", bad.stderr)
        bad = srv.cli("queue", "list", "--bogus")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("unknown option --bogus", bad.stderr)
        bad = srv.cli("queue", "delete", "--sender")
        self.assertEqual((bad.returncode, bad.stderr.count("\n")), (2, 1), bad.stderr)
        self.assertIn("needs a value", bad.stderr)

        r = srv.cli("queue", "delete", "--sender", "BOB@*")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split("\n")[0], "deleted " + b)
        r = srv.cli("queue", "delete", "--recipient", "*@hold.test")
        self.assertEqual(r.stdout.split("\n")[0], "deleted " + a)
        r = srv.cli("queue", "delete", "--recipient", "*@nowhere.test")
        self.assertEqual(r.returncode, 1)
        self.assertEqual([m["id"] for m in queue_json(srv)], [c])
        r = srv.cli("queue", "delete", "--sender", ALICE, "--recipient", "d@*")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(queue_json(srv), [])


class Destinations(unittest.TestCase):
    def test_concurrency_two_never_sees_a_third_connection(self):
        sink = Sink(hold_data=2, data_wait=3.0)
        self.addCleanup(sink.stop)
        srv = make_server(self, [("slow.test", sink.port)],
                          outbound="destination_concurrency = 2;",
                          queue='retry_interval = "1h"; workers = 6;')
        srv.start()
        rcpts = ["u%d@slow.test" % i for i in range(6)]
        for r in rcpts:
            send(srv, ALICE, [r], "to " + r)
        got = sink.wait_rcpts(6, timeout=40)
        self.assertEqual(sorted(got), sorted(rcpts), srv.log()[-2000:])
        self.assertEqual(sink.peak, 2)  # filled, never exceeded

    def test_dead_destination_backs_off_all_its_messages(self):
        sink = Sink(slam=True)  # takes the connection, then drops it
        self.addCleanup(sink.stop)
        srv = make_server(self, [("dead.test", sink.port)],
                          outbound='destination_dead_after = 3; destination_backoff = "1h";',
                          queue='retry_interval = "1s"; give_up_after = "1h"; warn_after = "1h";')
        srv.start()
        ids = [send(srv, ALICE, ["m%d@dead.test" % i], "dead %d" % i) for i in range(5)]
        self.assertTrue(srv.wait_log("destination [127.0.0.1]:%d backed off" % sink.port, 20),
                        srv.log()[-3000:])

        def all_backed_off():
            msgs = queue_json(srv)
            return len(msgs) == 5 and all("backed off" in m["last_error"] for m in msgs)
        self.assertTrue(wait_until(all_backed_off, 20), srv.cli("queue", "list").stdout)
        self.assertEqual(sorted(m["id"] for m in queue_json(srv)), sorted(ids))
        # Three failed connections make it dead; attempts already past
        # the check when the third failed may still connect (at most one
        # per message), none after.
        tried = sink.connections
        self.assertTrue(3 <= tried <= 5, tried)
        time.sleep(2.5)  # retries every second: none of them connects
        self.assertEqual(sink.connections, tried)
        trace = srv.cli("trace", ids[4], srv.log_path).stdout
        self.assertIn("backed off until", trace)
        # The destination is repaired; a flush tries it again at once
        # (as postqueue -f forgets Postfix's dead destinations), well
        # before the hour of back-off is over.
        sink.slam = False
        self.assertEqual(srv.cli("queue", "flush").returncode, 0)
        self.assertTrue(wait_until(lambda: queue_json(srv) == [], 20),
                        srv.cli("queue", "list").stdout)
        self.assertEqual(sorted(sink.wait_rcpts(5, timeout=20)),
                         sorted("m%d@dead.test" % i for i in range(5)),
                         "ids %s; merpatid's log after the flush:\n%s" % (
                             ids, srv.log().split("flush requested")[-1][-6000:]))

    def test_bad_rate_is_a_config_error(self):
        srv = Server(extra_config='outbound = { destination_rate = "fast"; };')
        self.addCleanup(srv.cleanup)
        r = srv.cli("check-config")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("outbound.destination_rate", r.stdout + r.stderr)

    def test_rate_spaces_messages(self):
        sink = Sink()
        self.addCleanup(sink.stop)
        srv = make_server(self, [("rate.test", sink.port)],
                          outbound='destination_rate = "2/s";',
                          queue='retry_interval = "1h"; workers = 4;')
        srv.start()
        start = time.time()
        for i in range(4):
            send(srv, ALICE, ["r%d@rate.test" % i], "rate %d" % i)
        self.assertEqual(len(sink.wait_rcpts(4, timeout=20)), 4)
        # four messages at 2 per second: the last starts >= 1.5 s after the first
        self.assertGreaterEqual(time.time() - start, 1.5)


if __name__ == "__main__":
    unittest.main()
