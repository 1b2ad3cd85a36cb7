"""fork() in a branch's child, beside a sandbox of its own and the host.

A branch's child (a copy-on-write view of a live snapshot, as every sandbox
spawned from a warm base is) holds MIB MiB its origin wrote and writes one
page in two of them again, as a large import writes its pages in scattered
runs (``import torch``: ~600 MiB), then forks REPEATS + 1 times, writing a
page between forks.
Reported: the time os.fork() takes in the parent (the guest's own clock),
the first fork and the later ones, and fork until the child's exit is seen
by waitpid; the same script in a fresh sandbox and natively.

Writes child-forks.csv and CHILD_FORKS.md next to this file. Run by hand:

    python bench/processes/bench_child_forks.py [--repeats 15] [--mib 512]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

from bench_processes import FORKS, _result, on_host

from forkd_jupyter.vmm import Sandbox

HERE = Path(__file__).parent
# Before the branch (in the source; elsewhere in the same process first):
# MIB MiB written, so the origin holds them.
SETUP = """
data = bytearray(MIB << 20)
for i in range(0, len(data), 4096):
    data[i] = 1
"""
# After it: one page in two written again (a diff in one-page runs), then
# the forks (bench_processes.FORKS).
REWRITE = """
for i in range(0, len(data), 8192):
    data[i] = 3
"""


def run(sb: Sandbox, code: str) -> str:
    out = sb.run(code, timeout=600)
    if out.error is not None:
        raise RuntimeError(f"{out.error.ename}: {out.error.evalue}")
    return out.stdout


def in_sandbox(setup: str, forks: str, mib: int) -> dict:
    with Sandbox.spawn(memory_mib=max(1024, mib + 512)) as sb:
        run(sb, setup)
        return _result(run(sb, forks))


def in_child(setup: str, forks: str, mib: int) -> dict:
    with Sandbox.spawn(memory_mib=max(1024, mib + 512)) as source:
        run(source, setup)
        snap = source.snapshot("live")
        child = snap.spawn(1)[0]
        try:
            return _result(run(child, forks))
        finally:
            child.close()
            snap.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--mib", type=int, default=512)
    args = ap.parse_args()
    setup = SETUP.replace("MIB", str(args.mib))
    forks = REWRITE + FORKS.replace("REPEATS", str(args.repeats)).replace("SKIP", "4096")
    ways = {
        "branch's child": in_child(setup, forks, args.mib),
        "sandbox of its own": in_sandbox(setup, forks, args.mib),
        "host": on_host(setup + forks),
    }
    header = ("where", "first fork() ms", "later fork() ms (p50)", "fork + waitpid ms (p50)")
    table = [header]
    for where, r in ways.items():
        table.append(
            (
                where,
                f"{r['first']:.2f}",
                f"{statistics.median(r['later']):.2f}",
                f"{statistics.median(r['child']):.2f}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    with open(HERE / "child-forks.csv", "w", newline="") as f:
        csv.writer(f).writerows(table)
    md = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|"]
    md += ["| " + " | ".join(r) + " |" for r in table[1:]]
    (HERE / "CHILD_FORKS.md").write_text(
        "# fork() in a branch's child\n\n"
        f"`python bench/processes/bench_child_forks.py --repeats {args.repeats} --mib {args.mib}`,"
        f" {sys.platform}, one run. The process holds {args.mib} MiB (in the child: written by"
        " its origin) and writes one page in two of them before its first fork, a page"
        " between later forks. Times are the guest's"
        " own clock around the call (the parent's view).\n\n" + "\n".join(md) + "\n"
    )


if __name__ == "__main__":
    main()
