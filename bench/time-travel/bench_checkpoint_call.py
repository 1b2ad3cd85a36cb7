"""What one checkpoint adds to a short cell, as attach mode pays it, through
a private daemon over HTTP (the client's view, not the daemon's).

Per round, side by side in one sandbox, each cell run as attach mode runs
it (a background run whose events are followed):

- the trivial cell alone;
- the checkpoint in the cell's own run request (``run_cell(...,
  checkpoint=mark)``: what attach mode does), then the same cell alone
  again (it pays the first writes after the checkpoint's pause);
- the checkpoint as a branch request of its own (``branch_sandbox(...,
  checkpoint=mark)``), then the cell: the two requests attach mode made
  before, for comparison.

Printed as p50 over ``--cells`` rounds, after ``--held`` checkpoints
already taken (attach mode keeps up to 50 by default). Run by hand:

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

CELL = "x += 1"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--held", type=int, default=0, help="checkpoints taken before measuring")
    ap.add_argument("--memory-mib", type=int, default=1536)
    args = ap.parse_args()
    rows: dict[str, list[float]] = {
        k: [] for k in ("alone", "merged", "merged_after", "branch", "branch_run", "pause")
    }
    with tempfile.TemporaryDirectory() as state:
        daemon = start_daemon(Path(state))
        try:
            from forkd_jupyter.client.controller import Controller

            c = Controller()
            sb = c.spawn_sandboxes(memory_limit_mib=args.memory_mib)[0]["id"]
            c.run_cell(sb, "x = 0")
            pauses: list[float] = []

            def run(mark: dict | None = None) -> float:
                t = time.perf_counter()
                c.run_cell(
                    sb, CELL, on_output=lambda *_: None, checkpoint=mark,
                    on_checkpoint=lambda snap: pauses.append(snap["pause_ms"]),
                )  # fmt: skip
                return (time.perf_counter() - t) * 1000

            def mark(i: int) -> dict:
                return {"cell": i, "line": CELL, "after": i - 1 if i else None}

            for i in range(args.held):
                c.branch_sandbox(sb, mode="diff", checkpoint=mark(i))
            for i in range(args.held, args.held + args.cells):
                rows["alone"].append(run())
                rows["merged"].append(run(mark(2 * i)))
                rows["pause"].append(pauses[-1])
                rows["merged_after"].append(run())
                t = time.perf_counter()
                c.branch_sandbox(sb, mode="diff", checkpoint=mark(2 * i + 1))
                rows["branch"].append((time.perf_counter() - t) * 1000)
                rows["branch_run"].append(run())
        finally:
            daemon.terminate()
            daemon.wait()

    p50 = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{args.cells} rounds after {args.held} checkpoints held (p50, ms; `{CELL}`):")
    print(f"  cell alone                               {p50['alone']:.2f}")
    print(f"  cell with its checkpoint (one request)   {p50['merged']:.2f}"
          f"  (the pause {p50['pause']:.2f})")  # fmt: skip
    print(f"  the next cell alone                      {p50['merged_after']:.2f}")
    print(f"  checkpoint as a branch request           {p50['branch']:.2f}")
    print(f"  then the cell                            {p50['branch_run']:.2f}")
    merged = p50["merged"] - p50["alone"]
    separate = p50["branch"] + p50["branch_run"] - p50["alone"]
    print(f"  added per cell: one request {merged:.2f}, two requests {separate:.2f}")


if __name__ == "__main__":
    main()
