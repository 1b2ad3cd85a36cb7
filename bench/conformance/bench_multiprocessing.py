"""CPython's multiprocessing suite with the fork start method, natively and
in a sandbox, compared test by test.

The suite is what CPython's test_multiprocessing_fork runs: the tests of
test._test_multiprocessing installed for 'fork' (this interpreter's layout
may leave that small file out, so the module is built here the same way).
It runs with unittest in a fresh interpreter natively and as a cell of a
fresh sandbox, and each test's outcome is compared. The harness runs it in
a child of its own (os.fork in the runner, the parent only collects), so a
test whose forked child returns instead of exiting cannot run the suite
twice. Prints the counts and the tests that differ. Run by hand:

    python bench/conformance/bench_multiprocessing.py [--method fork] [--timeout 1500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from forkd_jupyter.vmm import Sandbox
from forkd_jupyter.vmm.guest_env import python_elf

SUITE = """
import io, json, os, sys, types, unittest
import test._test_multiprocessing as source

def outcomes(method):
    module = types.ModuleType(f"test_multiprocessing_{method}_here")
    sys.modules[module.__name__] = module  # where unittest finds setUpModule
    source.install_tests_in_module_dict(module.__dict__, method)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    me = os.getpid()
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    if os.getpid() != me:  # a forked child that came back here
        os._exit(0)
    out = {}
    for test, _ in result.failures + result.errors:
        out[test.id()] = "fail"
    for test, _ in result.skipped:
        out[test.id()] = "skip"
    return {"ran": result.testsRun, "not_ok": out}
"""


def native(method: str, timeout: float) -> dict:
    code = SUITE + f"\nprint('RESULT ' + json.dumps(outcomes({method!r})), flush=True)\n"
    out = subprocess.run(
        [python_elf(), "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd="/tmp",
    )
    return json.loads(out.stdout.rsplit("RESULT ", 1)[1].splitlines()[0])


def in_sandbox(method: str, timeout: float) -> dict:
    with Sandbox.spawn(memory_mib=2048) as sb:
        res = sb.run(SUITE + f"\n_result = json.dumps(outcomes({method!r}))", timeout=timeout)
        if res.error is not None:
            raise SystemExit(f"the suite failed in the sandbox: {res.error.evalue}")
        return json.loads(sb.pull("_result"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="fork")
    ap.add_argument("--timeout", type=float, default=1500)
    args = ap.parse_args()
    t0 = time.monotonic()
    nat = native(args.method, args.timeout)
    t1 = time.monotonic()
    box = in_sandbox(args.method, args.timeout)
    t2 = time.monotonic()
    skipped = {t for t, o in nat["not_ok"].items() if o == "skip"}
    nat_failed = {t for t, o in nat["not_ok"].items() if o == "fail"}
    box_failed = {t for t, o in box["not_ok"].items() if o == "fail"}
    passed_natively = nat["ran"] - len(skipped) - len(nat_failed)
    lost = sorted(box_failed - nat_failed - skipped)
    print(f"multiprocessing suite, start method {args.method!r}: {nat['ran']} tests")
    print("| | natively | in the sandbox |\n|---|---:|---:|")
    print(f"| passed | {passed_natively} | {passed_natively - len(lost)} of those |")
    print(f"| failed | {len(nat_failed)} | {len(box_failed)} |")
    print(f"| skipped | {len(skipped)} | {sum(o == 'skip' for o in box['not_ok'].values())} |")
    print(f"| time | {t1 - t0:.0f} s | {t2 - t1:.0f} s |")
    print("passing natively, not in the sandbox:", ", ".join(lost) or "none")
    print("failing natively, passing in the sandbox:", ", ".join(sorted(nat_failed - box_failed)))


if __name__ == "__main__":
    main()
