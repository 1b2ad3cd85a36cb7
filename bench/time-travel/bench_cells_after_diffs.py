"""What per-cell checkpoints cost the cells themselves, at the VMM level (no
daemon, no kernel): a notebook's cells run in a child of a full snapshot
(as a notebook's sandbox is a child of its warm base), once with no
snapshot between cells and once with a diff after each cell, alternated,
each pass in a fresh child.

Per cell: its time as the host sees the run request, median over
``--rounds`` passes each way, their difference (what the cell pays for the
diff before it: the pages that diff re-armed, written again), and the
diff's own pause (the guest's view: its vCPU stopped) and size. Run by
hand, twice with two builds alternated to compare them:

    python bench/time-travel/bench_cells_after_diffs.py [--notebook pandas_exploration]
        [--rounds 3]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from notebook_cells import code_cells, parse_args, run_cell  # noqa: E402 - bench/notebook_cells.py

from forkd_jupyter import vmm


def one_pass(base, cells: list[str], diffs: bool) -> tuple[list[float], list[tuple]]:
    """Each cell's time (ms) and, with diffs, each diff's (pause ms, MiB)."""
    (sb,) = base.spawn()
    times, snaps = [], []
    try:
        if diffs:
            sb.snapshot("diff")
        for code in cells:
            times.append(run_cell(sb, code))
            if diffs:
                s = sb.snapshot("diff")
                snaps.append((s.pause_ms, s.dirty_bytes / (1 << 20)))
    finally:
        sb.close()
    return times, snaps


def main() -> None:
    args = parse_args(__doc__)
    cells = code_cells(args.notebook)
    source = vmm.Sandbox.spawn(memory_mib=args.memory_mib)
    try:
        base = source.snapshot("full")
        off, on, snaps = [], [], []
        for _ in range(args.rounds):
            off.append(one_pass(base, cells, diffs=False)[0])
            times, taken = one_pass(base, cells, diffs=True)
            on.append(times)
            snaps.append(taken)
    finally:
        source.close()
    m = statistics.median
    print(f"{args.notebook}, p50 of {args.rounds} passes each way (ms)")
    print("| cell | no diffs | a diff after each cell | difference | that diff's pause | size |")
    print("|---:|---:|---:|---:|---:|---:|")
    sums = [0.0, 0.0, 0.0]
    for i, code in enumerate(cells):
        a, b = m(t[i] for t in off), m(t[i] for t in on)
        pause, mib = m(s[i][0] for s in snaps), m(s[i][1] for s in snaps)
        sums = [sums[0] + a, sums[1] + b, sums[2] + pause]
        first = code.splitlines()[0][:40].replace("|", "\\|")
        cols = [f"{i + 1} `{first}`", f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}", f"{pause:.1f}"]
        print("| " + " | ".join(cols) + f" | {mib:.1f} MiB |")
    print(
        f"| all | {sums[0]:.0f} | {sums[1]:.0f} | {sums[1] - sums[0]:+.0f} "
        f"({(sums[1] / sums[0] - 1) * 100:+.1f} %) | {sums[2]:.0f} | |"
    )


if __name__ == "__main__":
    main()
