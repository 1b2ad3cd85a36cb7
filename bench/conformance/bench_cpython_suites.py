"""Per-module counts of CPython's own regression tests, natively and in a
sandbox (the modules and allowed differences of tests/cpython/suites.py):
tests passed natively, passed in the sandbox, failed there for an allowed
reason (needs processes, no network) and failed otherwise. Writes
RESULTS.md next to this file. Run by hand:

    python bench/conformance/bench_cpython_suites.py
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from cpython.runs import run_in_sandbox, run_native  # noqa: E402
from cpython.suites import MODULES, NEEDS_PROCESSES, NO_NETWORK, allowed_reason  # noqa: E402


def main() -> None:
    rows = []
    for module in MODULES:
        native, guest = run_native(module), run_in_sandbox(module)
        passed = [t for t, o in native.items() if o == "ok"]
        why = Counter(
            "ok" if guest.get(t) == "ok" else (allowed_reason(guest.get(t, "")) or "unexplained")
            for t in passed
        )
        rows.append(
            (
                module,
                len(native),
                len(passed),
                why["ok"],
                why[NEEDS_PROCESSES],
                why[NO_NETWORK],
                why["unexplained"],
            )
        )
        print(rows[-1], flush=True)
    total = [sum(r[i] for r in rows) for i in range(1, 7)]
    lines = [
        "# CPython's regression tests: native and in a sandbox",
        "",
        f"{time.strftime('%Y-%m-%d')}; `python bench/conformance/bench_cpython_suites.py`; "
        "the same interpreter on both sides.",
        "",
        "| module | tests run | passed natively | passed in the sandbox | needs processes "
        "| no network | unexplained |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    lines.append("| **all** | " + " | ".join(str(x) for x in total) + " |")
    share = total[2] / total[1] if total[1] else 0
    lines += [
        "",
        f"Passed in the sandbox, of those passed natively: {share:.1%} "
        f"({total[2]} of {total[1]}); without the tests that start processes: "
        f"{total[2] / max(1, total[1] - total[3]):.1%}.",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
