"""What one checkpoint adds to a short cell, as attach mode pays it, through
a private daemon over HTTP (the client's view, not the daemon's).

Per round, side by side in one sandbox: a trivial cell alone; then the
checkpoint (a diff branch carrying the cell's mark, as ``%forkd attach``
takes before each cell) and the same cell after it. Printed as p50 over
``--cells`` rounds, after ``--held`` checkpoints already taken (the daemon
rewrites its state, which lists every checkpoint, on each one; attach mode
keeps up to 50 by default). Run by hand:

    python bench/time-travel/bench_checkpoint_call.py [--cells 40] [--held 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from private_daemon import start_daemon  # noqa: E402 - bench/private_daemon.py


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--held", type=int, default=0, help="checkpoints taken before measuring")
    ap.add_argument("--memory-mib", type=int, default=1536)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as state:
        daemon = start_daemon(Path(state))
        try:
            from forkd_jupyter.client.controller import Controller

            c = Controller()
            sb = c.spawn_sandboxes(memory_limit_mib=args.memory_mib)[0]["id"]
            c.run_cell(sb, "x = 0")

            def checkpoint(i: int) -> dict:
                mark = {"cell": i, "line": "x += 1", "after": i - 1 if i else None}
                return c.branch_sandbox(sb, mode="diff", checkpoint=mark)["snapshot"]

            for i in range(args.held):
                checkpoint(i)
            alone, call, after, pause = [], [], [], []
            for i in range(args.held, args.held + args.cells):
                alone.append(timed(lambda: c.run_cell(sb, "x += 1")))
                t = time.perf_counter()
                snap = checkpoint(i)
                call.append((time.perf_counter() - t) * 1000)
                pause.append(snap["pause_ms"])
                after.append(timed(lambda: c.run_cell(sb, "x += 1")))
        finally:
            daemon.terminate()
            daemon.wait()

    def p50(v: list[float]) -> str:
        return f"{statistics.median(v):.2f} ms"

    print(f"{args.cells} cells after {args.held} checkpoints held (p50):")
    print(f"  cell alone                  {p50(alone)}")
    print(f"  checkpoint call (HTTP)      {p50(call)}  (its pause {p50(pause)})")
    print(f"  the same cell after it      {p50(after)}")
    added = statistics.median(call) + statistics.median(after) - statistics.median(alone)
    print(f"  added per cell              {added:.2f} ms")


if __name__ == "__main__":
    main()
