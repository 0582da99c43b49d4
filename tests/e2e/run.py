"""tests/e2e/run.py - run the end-to-end tests, one TAP-like line each.

Discovers tests/e2e/test_*.py and prints "ok - name" or "not ok - name:
first line of the failure" (the traceback follows, indented with "# ").
argv[1], if given, keeps only tests whose name contains it. The summary
line is printed by tests/run. A test that skips (a tool it needs is
absent) prints "# skip - name: reason", counted as neither.
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def tests_of(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from tests_of(t)
        else:
            yield t


class LineResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.failed_any = False

    def _report(self, test, ok, err=None):
        name = test.id().replace("test_", "", 1)
        if ok:
            print("ok - %s" % test.id(), flush=True)
            return
        self.failed_any = True
        text = self._exc_info_to_string(err, test)
        first = [l for l in text.strip().splitlines() if l.strip()][-1]
        print("not ok - %s: %s" % (test.id(), first), flush=True)
        for l in text.rstrip().splitlines():
            print("# " + l)
        del name

    def addSuccess(self, test):
        self._report(test, True)

    def addFailure(self, test, err):
        self._report(test, False, err)

    def addError(self, test, err):
        self._report(test, False, err)

    def addSkip(self, test, reason):
        # Neither passed nor failed: a tool the test needs is absent (a
        # user's clone has no ../shared). tests/run counts these lines.
        print("# skip - %s: %s" % (test.id(), reason), flush=True)


def main():
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    selected = unittest.TestSuite(t for t in tests_of(suite) if pattern in t.id())
    result = LineResult()
    start = time.time()
    selected.run(result)
    print("# e2e: %d tests in %.1fs" % (selected.countTestCases(), time.time() - start))
    return 1 if result.failed_any else 0


if __name__ == "__main__":
    sys.exit(main())
