"""Runs one of CPython's own test modules (``test.<name>``) with unittest
and returns each test's outcome: the same code runs natively and inside a
sandbox (its source is sent to the guest). Tests listed in EXCLUDED are not
run on either side; an outcome is "ok", "skip: ...", "fail: ..." or
"error: ..." (the end of the traceback)."""

from __future__ import annotations

import fnmatch
import importlib
import json
import sys
import types
import unittest


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


class _Outcomes(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.outcomes: dict[str, str] = {}

    def _tail(self, err, test) -> str:
        return self._exc_info_to_string(err, test)[-1200:]

    def addSuccess(self, test):
        self.outcomes[test.id()] = "ok"

    def addExpectedFailure(self, test, err):
        self.outcomes[test.id()] = "ok"

    def addFailure(self, test, err):
        self.outcomes[test.id()] = "fail: " + self._tail(err, test)

    def addError(self, test, err):
        self.outcomes[test.id()] = "error: " + self._tail(err, test)

    def addSkip(self, test, reason):
        self.outcomes[test.id()] = "skip: " + str(reason)[:200]

    def addUnexpectedSuccess(self, test):
        self.outcomes[test.id()] = "fail: unexpected success"


def _load(name: str):
    """test.<name>; or, for "<module>:<start method>", the suite CPython's
    test_multiprocessing_<method> builds from test.<module> (this layout of
    the interpreter may leave those small files out)."""
    if ":" not in name:
        return importlib.import_module("test." + name)
    base, method = name.split(":", 1)
    module = types.ModuleType(f"test.{base.lstrip('_')}_{method}")
    sys.modules[module.__name__] = module  # unittest finds its module fixtures there
    importlib.import_module("test." + base).install_tests_in_module_dict(module.__dict__, method)
    return module


def run_module(name: str, excluded: list[str]) -> dict[str, str]:
    module = _load(name)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    chosen = unittest.TestSuite()
    for test in _flatten(suite):
        if not any(fnmatch.fnmatchcase(test.id(), pattern) for pattern in excluded):
            chosen.addTest(test)
    result = _Outcomes()
    chosen.run(result)
    return result.outcomes


if __name__ == "__main__":
    outcomes = run_module(sys.argv[1], json.loads(sys.argv[2]))
    sys.stdout.write("\nOUTCOMES " + json.dumps(outcomes) + "\n")
