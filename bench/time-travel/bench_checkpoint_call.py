"""What one checkpoint adds to a short cell, as attach mode pays it, through
a private daemon over HTTP (the client's view, not the daemon's).

Per round, side by side in one sandbox, each cell run as attach mode runs
it (a background run whose events are followed), each cell sent as soon as
the previous one's result is in (the tightest "Run all"):

- a block of ``--block`` trivial cells alone;
- a block of as many cells with their checkpoints (``run_cell(...,
  checkpoint=mark)``: what attach mode does). The first one's checkpoint is
  taken in its request (the sandbox ran a cell without checkpoints just
  before, so the one taken ahead does not hold its state); every later
  one's was taken ahead, when the cell before ended (docs/time-travel.md);
- the checkpoint as a branch request of its own, then the cell: the two
  requests attach mode once made, for comparison.

Printed as p50 over the rounds, after ``--held`` checkpoints already taken
(attach mode keeps up to 50 by default). Run by hand:

    python bench/time-travel/bench_checkpoint_call.py [--rounds 15] [--block 4] [--held 10]
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
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block", type=int, default=4, help="cells in a row of each kind")
    ap.add_argument("--held", type=int, default=0, help="checkpoints taken before measuring")
    ap.add_argument("--memory-mib", type=int, default=1536)
    args = ap.parse_args()
    rows: dict[str, list[float]] = {
        k: [] for k in ("alone", "in_request", "ahead", "ahead_pause", "branch", "branch_run")
    }
    taken_ahead = 0
    with tempfile.TemporaryDirectory() as state:
        daemon = start_daemon(Path(state))
        try:
            from forkd_jupyter.client.controller import Controller

            c = Controller()
            sb = c.spawn_sandboxes(memory_limit_mib=args.memory_mib)[0]["id"]
            c.run_cell(sb, "x = 0")
            marks = iter(range(1 << 30))
            seen: list[dict] = []

            def run(checkpoint: bool = False) -> float:
                i = next(marks)
                mark = {"cell": i, "line": CELL, "after": i - 1} if checkpoint else None
                t = time.perf_counter()
                c.run_cell(sb, CELL, on_output=lambda *_: None, checkpoint=mark,
                           on_checkpoint=seen.append)  # fmt: skip
                return (time.perf_counter() - t) * 1000

            for _ in range(args.held):
                c.branch_sandbox(sb, mode="diff", checkpoint={"cell": next(marks), "line": ""})
            for _ in range(args.rounds):
                rows["alone"] += [run() for _ in range(args.block)]
                rows["in_request"].append(run(True))
                for _ in range(args.block - 1):
                    sent = time.time()
                    rows["ahead"].append(run(True))
                    rows["ahead_pause"].append(seen[-1]["pause_ms"])
                    taken_ahead += seen[-1]["created_at"] < sent
                t = time.perf_counter()
                c.branch_sandbox(sb, mode="diff", checkpoint={"cell": next(marks), "line": ""})
                rows["branch"].append((time.perf_counter() - t) * 1000)
                rows["branch_run"].append(run())
        finally:
            daemon.terminate()
            daemon.wait()

    p50 = {k: statistics.median(v) for k, v in rows.items()}
    n_ahead = len(rows["ahead"])
    print(f"{args.rounds} rounds of {args.block} cells after {args.held} checkpoints held "
          f"(p50, ms; `{CELL}`, each sent when the one before had its result):")  # fmt: skip
    print(f"  cell alone                                  {p50['alone']:.2f}")
    print(f"  cell, its checkpoint taken in the request   {p50['in_request']:.2f}")
    print(f"  cell, its checkpoint taken ahead            {p50['ahead']:.2f}"
          f"  (the pause {p50['ahead_pause']:.2f};"
          f" {taken_ahead}/{n_ahead} taken before the request)")  # fmt: skip
    print(f"  checkpoint as a branch request              {p50['branch']:.2f}")
    print(f"  then the cell                               {p50['branch_run']:.2f}")
    separate = p50["branch"] + p50["branch_run"] - p50["alone"]
    print(
        f"  added per cell: taken ahead {p50['ahead'] - p50['alone']:.2f}, "
        f"in the request {p50['in_request'] - p50['alone']:.2f}, two requests {separate:.2f}"
    )


if __name__ == "__main__":
    main()
