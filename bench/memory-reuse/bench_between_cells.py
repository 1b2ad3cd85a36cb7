"""Memory a cell frees, reused by the next one: a notebook's cells sent
back to back (as Run All sends them) in a sandbox that keeps its spares
until it idles (the default, vmm/spares.py) against one that hands them
back when each request ends (as before 2026-12-06), beside the host.

Run by hand: ``python bench/memory-reuse/bench_between_cells.py
[--notebook pandas_exploration] [--rounds 3]``. In-process VMM (no
daemon): each round, alternating the ways, runs the notebook's cells in a
fresh child of a full snapshot (as a sandbox spawned from a warm base is)
and in a fresh host interpreter. Per cell: its time as the host sees the
run request (the sandbox) or the cell's own clock (the host), p50 over
the rounds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from notebook_cells import code_cells, parse_args, run_cell  # noqa: E402 - bench/notebook_cells.py

from forkd_jupyter import vmm
from forkd_jupyter.vmm.spares import SpareTrimmer

HOST_RUNNER = """
import json, sys, time
times = []
for code in json.load(sys.stdin):
    t = time.perf_counter()
    exec(compile(code, "<cell>", "exec"), globals())
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps(times))
"""


def sandbox_pass(base, cells: list[str], keep: bool) -> list[float]:
    keep_until_idle = SpareTrimmer.after_request
    if not keep:  # the way before: every request's end hands them back
        SpareTrimmer.after_request = SpareTrimmer.now
    try:
        (sb,) = base.spawn()
        try:
            return [run_cell(sb, code) for code in cells]
        finally:
            sb.close()
    finally:
        SpareTrimmer.after_request = keep_until_idle


def host_pass(cells: list[str]) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", HOST_RUNNER],
        input=json.dumps(cells),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    args = parse_args(__doc__)
    cells = code_cells(args.notebook)
    runs: dict[str, list[list[float]]] = {"handed back": [], "kept": [], "host": []}
    source = vmm.Sandbox.spawn(memory_mib=args.memory_mib)
    try:
        base = source.snapshot("full")
        for _ in range(args.rounds):
            runs["handed back"].append(sandbox_pass(base, cells, keep=False))
            runs["kept"].append(sandbox_pass(base, cells, keep=True))
            runs["host"].append(host_pass(cells))
    finally:
        source.close()
    p50 = {
        k: [statistics.median(r[i] for r in v) for i in range(len(cells))] for k, v in runs.items()
    }
    print(f"{args.notebook}, p50 of {args.rounds} rounds (ms)")
    print("| cell | spares handed back at each request's end | kept until idle | host |")
    print("|---|---:|---:|---:|")
    for i, code in enumerate(cells):
        first = code.splitlines()[0][:40].replace("|", "\\|")
        cols = [f"{p50[k][i]:.1f}" for k in ("handed back", "kept", "host")]
        print(f"| {i + 1} `{first}` | " + " | ".join(cols) + " |")
    total = {k: sum(v) for k, v in p50.items()}
    print(
        f"| all | {total['handed back']:.0f} | {total['kept']:.0f} | {total['host']:.0f} |\n"
        f"ratio to the host: handed back {total['handed back'] / total['host']:.2f}x, "
        f"kept {total['kept'] / total['host']:.2f}x"
    )


if __name__ == "__main__":
    main()
