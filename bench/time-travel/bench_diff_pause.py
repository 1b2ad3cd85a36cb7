"""A diff checkpoint at the VMM level (no daemon, no HTTP): what a short
cell pays for the checkpoint before it, and what an idle sandbox pays.

Busy: per round, the cell alone, a diff, the same cell again (the guest's
view: the first writes after the pause), p50 of ``--rounds``, and the mean
and the longest (a diff that re-arms the pages kept writable makes the
next cell pay for them: it shows in those, not in the p50). Idle: after
the busy rounds, ``--idle`` diffs with nothing run in between (the host's
view: the pause), each listed, then the cell after them. Run by hand:

    python bench/time-travel/bench_diff_pause.py [--rounds 40] [--idle 10]
        [--cell "x += 1"] [--fresh]

``--fresh``: in a sandbox that owns its RAM; else in a child of a full
snapshot (as a notebook's sandbox is a child of its warm base). Busy
diffs are taken as attach mode takes them, returning as the guest resumes
(``wait=False``); a staged one (docs/snapshots.md, "Staged diffs") is then
compared and written while the next cell runs: the call's return and the
diff's readiness are printed beside the pause, and how many were staged.
A cell that keeps new data each round, e.g. 40 MiB:

    --cell "data = np.arange(5 << 20, dtype=np.float64) + x; x += 1"
"""

from __future__ import annotations

import argparse
import statistics
import time

from forkd_jupyter import vmm


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--cell", default="x += 1")
    ap.add_argument("--memory-mib", type=int, default=1536)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    source = vmm.Sandbox.spawn(memory_mib=args.memory_mib)
    sb = source if args.fresh else source.snapshot("full").spawn()[0]
    try:
        sb.run("x = 0\nkeep = []\nimport numpy as np")
        sb.snapshot("diff")
        alone, after, pause, pages, back, ready, staged = [], [], [], [], [], [], 0
        for _ in range(args.rounds):
            alone.append(timed(lambda: sb.run(args.cell)))
            started = time.perf_counter()
            snap = sb.snapshot("diff", wait=False)
            back.append((time.perf_counter() - started) * 1000)
            after.append(timed(lambda: sb.run(args.cell)))
            snap.wait()
            ready.append((time.perf_counter() - started) * 1000)
            pause.append(snap.pause_ms)
            pages.append(snap.dirty_bytes // 4096)
            staged += snap.staged
        idle = [sb.snapshot("diff") for _ in range(args.idle)]
        after_idle = timed(lambda: sb.run(args.cell))
    finally:
        if sb is not source:
            sb.close()
        source.close()
    m = statistics.median
    print(f"busy, `{args.cell}`, p50 of {args.rounds} rounds:")
    print(f"  cell alone                   {m(alone):.2f} ms")
    print(f"  the same cell after a diff   {m(after):.2f} ms"
          f" (mean {statistics.mean(after):.2f}, longest {max(after):.2f})")  # fmt: skip
    print(f"  the diff's pause             {m(pause):.2f} ms ({m(pages):.0f} pages held)")
    print(f"  the call, back at resume     {m(back):.2f} ms (ready {m(ready):.2f} ms after it,")
    print(f"                               the cell after it run meanwhile; {staged} staged)")
    print(f"idle, {args.idle} diffs in a row after those (pause, ms):")
    print("  " + " ".join(f"{s.pause_ms:.2f}" for s in idle))
    print(f"  the cell after them          {after_idle:.2f} ms")


if __name__ == "__main__":
    main()
