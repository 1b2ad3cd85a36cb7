"""The whole standard library's regression suite, natively and in a sandbox.

Every module regrtest finds (``test.libregrtest.findtests``) runs with the
same interpreter natively and in a fresh sandbox, through
tests/cpython/runner.py (resources such as the network are not enabled, so
tests that need them skip on both sides). Per module: tests passed natively,
passed in the sandbox, failed there for an allowed reason (needs processes,
no network), failed otherwise; a module that does not finish within the
timeout on either side is reported as such. Appends to stdlib.csv as it goes
(a long run can be stopped and resumed: done modules are skipped) and writes
STDLIB.md. Run by hand:

    python bench/conformance/bench_stdlib.py [--timeout 240] [MODULE ...]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from cpython.runs import GuestRunFailed, run_in_sandbox, run_native  # noqa: E402
from cpython.suites import NEEDS_PROCESSES, NO_NETWORK, allowed_reason  # noqa: E402

from forkd_jupyter.vmm.errors import SandboxError  # noqa: E402
from forkd_jupyter.vmm.guest_env import python_elf  # noqa: E402

CSV = HERE / "stdlib.csv"
FIELDS = [
    "module",
    "passed_natively",
    "passed_in_sandbox",
    "needs_processes",
    "no_network",
    "unexplained",
    "status",
    "first_unexplained",
]


def all_modules() -> list[str]:
    code = "from test.libregrtest.findtests import findtests; print(' '.join(findtests()))"
    out = subprocess.run([python_elf(), "-c", code], capture_output=True, text=True, check=True)
    return [name.removeprefix("test.") for name in out.stdout.split()]


def native(module: str, timeout: float) -> dict[str, str] | None:
    try:
        return run_native(module, timeout)
    except (subprocess.TimeoutExpired, ValueError):
        return None


def in_sandbox(module: str, timeout: float) -> tuple[dict[str, str] | None, str]:
    try:
        return run_in_sandbox(module, timeout), "ok"
    except (GuestRunFailed, SandboxError) as e:
        return None, str(e).split("\n", 1)[0][:200]


def measure(module: str, timeout: float) -> dict:
    row = {"module": module}
    nat = native(module, timeout)
    if nat is None:
        return row | {"status": "native run did not finish"}
    guest, status = in_sandbox(module, timeout)
    passed = [t for t, o in nat.items() if o == "ok"]
    if guest is None:
        return row | {
            "passed_natively": len(passed),
            "passed_in_sandbox": 0,
            "unexplained": len(passed),
            "status": status,
        }
    why = {
        t: "ok" if guest.get(t) == "ok" else (allowed_reason(guest.get(t, "")) or "unexplained")
        for t in passed
    }
    count = Counter(why.values())
    first = next(
        (f"{t}: {guest.get(t, 'missing')[-160:]}" for t, w in why.items() if w == "unexplained"), ""
    )
    return row | {
        "passed_natively": len(passed),
        "passed_in_sandbox": count["ok"],
        "needs_processes": count[NEEDS_PROCESSES],
        "no_network": count[NO_NETWORK],
        "unexplained": count["unexplained"],
        "status": "ok",
        "first_unexplained": first.replace("\n", " | "),
    }


def _import_refused_a_socket(row: dict) -> bool:
    """The module could not even be imported: it makes a socket as it is
    imported (no network, by design)."""
    return (row.get("status") or "").startswith("PermissionError: [Errno 13]")


def summary(rows: list[dict]) -> str:
    rows = [
        r | {"no_network": r.get("unexplained"), "unexplained": 0}
        if _import_refused_a_socket(r)
        else r
        for r in rows
    ]

    def total(key: str) -> int:
        return sum(int(r.get(key) or 0) for r in rows)

    passed, ok, procs = (
        total("passed_natively"),
        total("passed_in_sandbox"),
        total("needs_processes"),
    )
    worst = sorted(rows, key=lambda r: -int(r.get("unexplained") or 0))[:25]
    uncounted = sorted(r["module"] for r in rows if r.get("passed_natively") in (None, ""))
    lines = [
        "# The standard library's regression suite in a sandbox",
        "",
        f"{time.strftime('%Y-%m-%d')}; `python bench/conformance/bench_stdlib.py`; "
        f"{len(rows)} modules.",
        "",
        f"- passed natively: {passed}; passed in the sandbox: {ok} ({ok / max(1, passed):.1%})",
        f"- without the {procs} tests that start processes: {ok / max(1, passed - procs):.1%}",
        f"- no network (by design): {total('no_network')}; unexplained: {total('unexplained')}",
        f"- not counted (no native result): {', '.join(uncounted) or 'none'}",
        "",
        "Modules with the most unexplained differences:",
        "",
        "| module | passed natively | passed in sandbox | needs processes | unexplained "
        "| status | first |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    lines += [
        f"| {r['module']} | {r.get('passed_natively', '')} | {r.get('passed_in_sandbox', '')} | "
        f"{r.get('needs_processes', '')} | {r.get('unexplained', '')} | {r.get('status', '')} | "
        f"{(r.get('first_unexplained') or '')[:120]} |"
        for r in worst
        if int(r.get("unexplained") or 0)
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args()
    done = {}
    if CSV.exists():
        with open(CSV) as f:
            done = {r["module"]: r for r in csv.DictReader(f)}
    new_file = not CSV.exists()
    with open(CSV, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new_file:
            w.writeheader()
        for module in args.modules or all_modules():
            if module in done:
                continue
            row = measure(module, args.timeout)
            w.writerow(row)
            f.flush()
            done[module] = row
            print(row, flush=True)
    (HERE / "STDLIB.md").write_text(summary(list(done.values())))
    print(summary(list(done.values())))


if __name__ == "__main__":
    main()
