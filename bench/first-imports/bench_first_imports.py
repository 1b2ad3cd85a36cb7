"""A fresh sandbox's first ``import matplotlib.pyplot``, with the package
caches built in the warm base (the default) and without
(``FORKD_JUPYTER_BASE_CACHES=0``), beside the host: two private daemons,
their rounds alternated in one run, and a fresh host interpreter whose
matplotlib cache is warm (a user's machine after the first plot).

Run by hand: ``python bench/first-imports/bench_first_imports.py [--rounds 7]``.

Per round and daemon: ``spawn_sandboxes``, then a first cell that imports
``matplotlib.pyplot``: **guest** is the import as the guest's clock sees it,
**cell** the cell through the daemon as the client sees it. Also printed:
each daemon's base build time (once, the first spawn).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from private_daemon import start_daemon, stop_daemons  # noqa: E402 - bench/private_daemon.py

CELL = (
    "import time as _t\n_s = _t.perf_counter()\nimport matplotlib.pyplot\n"
    "print((_t.perf_counter() - _s) * 1000)"
)
HOST = CELL.replace("\n", "; ")


def in_sandbox(c) -> tuple[float, float]:
    [rec] = c.spawn_sandboxes()
    try:
        t = time.perf_counter()
        got = c.run_cell(rec["id"], CELL)
        cell = (time.perf_counter() - t) * 1000
        assert got.error is None, got.error
        return float(got.stdout.split()[-1]), cell
    finally:
        c.kill_sandbox(rec["id"])


def on_host() -> float:
    out = subprocess.run([sys.executable, "-c", HOST], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from forkd_jupyter.client import Controller

    daemons, controllers, build = {}, {}, {}
    for caches in ("built in the base", "not built"):
        os.environ["FORKD_JUPYTER_BASE_CACHES"] = "1" if caches == "built in the base" else "0"
        daemons[caches] = start_daemon(Path(tempfile.mkdtemp(prefix="forkd-bench-")))
        controllers[caches] = c = Controller(os.environ["FORKD_JUPYTER_URL"], autostart=False)
        c.kill_sandbox(c.spawn_sandboxes()[0]["id"])  # builds the base
        build[caches] = max(b["build_ms"] or 0 for b in c.list_bases())
    os.environ.pop("FORKD_JUPYTER_BASE_CACHES")
    try:
        on_host()  # the host's cache is warm from here on
        got = {k: [] for k in (*controllers, "host")}
        for n in range(args.rounds):
            for caches, c in controllers.items():
                got[caches].append(in_sandbox(c))
            got["host"].append((on_host(), float("nan")))
            print(f"round {n}: " + ", ".join(f"{k} {v[-1][0]:.0f} ms" for k, v in got.items()))
        host = statistics.median(g for g, _ in got["host"])
        print()
        print(
            "| matplotlib cache | first `import matplotlib.pyplot`, guest p50 | cell p50 "
            "| ratio to host | base build |"
        )
        print("|---|---:|---:|---:|---:|")
        for caches in controllers:
            guest = statistics.median(g for g, _ in got[caches])
            cell = statistics.median(c for _, c in got[caches])
            print(
                f"| {caches} | {guest:.0f} ms | {cell:.0f} ms | {guest / host:.2f}x "
                f"| {build[caches]:.0f} ms |"
            )
        print(f"| host, warm cache | {host:.0f} ms | - | 1.00x | - |")
    finally:
        stop_daemons(daemons.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
