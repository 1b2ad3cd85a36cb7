"""Attach mode's checkpoints, checkout and overhead, on notebooks in the
style of Kishu's evaluation, through a real kernel and a private daemon.

Run by hand: ``python bench/time-travel/bench_time_travel.py [--rounds 3]
[--out bench/time-travel]`` (the scikit-learn notebook needs
``pip install scikit-learn``; without it that notebook is skipped).

For each notebook under ``notebooks/``, in one run, side by side:

- a *reference* pass (attached, checkpoints off) records a fingerprint of
  the user's variables after every cell;
- *timed* passes alternate checkpoints off and on (``--rounds`` each), each
  in a fresh sandbox: every cell's wall time as the kernel sees it
  (execute request to reply);
- in the last pass with checkpoints, the checkpoints' records give the
  pause (the guest's view: its vCPU stopped) and the branch call as the
  daemon saw it, and the memory each holds; then ``%forkd checkout`` to
  several earlier cells, timed (the kernel's view and the magic's own
  figure), each followed by the fingerprint, compared with the reference.

The overhead is (sum of per-cell medians with checkpoints) / (without) - 1,
and the same for the whole run (first request to last reply, each cell sent
when the previous one's reply is in, median over the passes): a checkpoint
taken after a cell's reply shows in the next cell's time only where that
cell waits for it.
Writes ``time-travel.csv`` (one row per cell and per checkout) and
``RESULTS.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import nbformat
from jupyter_client.manager import start_new_kernel
from private_daemon import start_daemon  # noqa: E402 - bench/private_daemon.py

from forkd_jupyter.client import ForkdError

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE / "notebooks"
NEEDS = {"sklearn_model": "sklearn"}
CSV_HEADER = [
    "notebook", "kind", "cell", "first_line", "off_ms", "on_ms", "pause_ms",
    "branch_ms", "checkpoint_mib", "kernel_ms", "magic_ms", "exact",
]  # fmt: skip

# The user's variables, summarised without changing them (a generator is
# not advanced; an open file is asked its position) and without importing
# anything the notebook did not (an import would dirty memory the next
# checkpoint or checkout then copies, which the notebook alone would not).
FINGERPRINT = r"""
def _forkd_fp():
    import hashlib, sys, types
    def one(v):
        pd, np = sys.modules.get('pandas'), sys.modules.get('numpy')  # never imported here
        if pd is not None and isinstance(v, (pd.DataFrame, pd.Series)):
            return ['pd', list(v.shape), int(pd.util.hash_pandas_object(v).sum())]
        if np is not None and isinstance(v, np.ndarray) and v.dtype == object:
            return ['np-objects', list(v.shape), [one(x) for x in v.flat]]  # by content
        if np is not None and isinstance(v, np.ndarray):
            data = v.data if v.flags.c_contiguous else v.tobytes()  # no copy of a big one
            return ['np', list(v.shape), hashlib.sha1(data).hexdigest()]
        if hasattr(v, 'tell') and hasattr(v, 'closed'):
            return ['file', None if v.closed else v.tell()]
        if isinstance(v, types.GeneratorType):
            return ['generator', v.gi_frame is not None and v.gi_frame.f_lineno]
        if isinstance(v, dict):
            return ['dict', sorted((str(k), one(x)) for k, x in v.items())]
        if isinstance(v, (int, float, str, bool, type(None))):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return [one(x) for x in v]
        if hasattr(v, 'locked'):
            return ['lock', v.locked()]
        if callable(v):
            return ['callable', getattr(v, '__name__', '')]
        return ['object', type(v).__name__]
    skip = {'In', 'Out', 'exit', 'quit', 'get_ipython', 'open'}
    return hashlib.sha1(repr(sorted(
        (k, one(v)) for k, v in globals().items()
        if not k.startswith('_') and k not in skip and not isinstance(v, types.ModuleType)
        and not isinstance(v, type)
    )).encode()).hexdigest()
print('FP', _forkd_fp())
del _forkd_fp
"""


class Kernel:
    """A real kernel (the notebook's), driven cell by cell."""

    def __init__(self) -> None:
        self.km, self.kc = start_new_kernel(kernel_name="python3")

    def run(self, code: str, timeout: float = 600) -> tuple[float, str, str, int]:
        """(wall ms, status, text output, execution count)."""
        started = time.perf_counter()
        msg_id = self.kc.execute(code)
        texts = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if msg["msg_type"] == "stream":
                texts.append(content["text"])
            elif msg["msg_type"] == "display_data":
                texts.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                texts.append(f"{content['ename']}: {content['evalue']}")
            elif msg["msg_type"] == "status" and content["execution_state"] == "idle":
                break
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        wall = (time.perf_counter() - started) * 1000
        c = reply["content"]
        return wall, c["status"], "".join(texts), c.get("execution_count") or 0

    def ok(self, code: str) -> tuple[float, str, int]:
        wall, status, text, count = self.run(code)
        if status != "ok":
            raise RuntimeError(f"cell failed: {code[:60]!r}: {text[-400:]}")
        return wall, text, count

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def fingerprint(k: Kernel) -> str:
    _, text, _ = k.ok(FINGERPRINT)
    return re.search(r"FP (\w+)", text).group(1)


def attached_pass(cells: list[str], name: str, mib: int, checkpoints: bool, prints: bool):
    """Runs the notebook attached, each cell sent once the previous one's
    reply is in (as "Run all" does); returns (kernel, per-cell ms, counts,
    fingerprints after each cell or None, the whole run's ms: first request
    to last reply)."""
    k = Kernel()
    k.ok("%load_ext forkd_jupyter")
    flag = "" if checkpoints else " --no-checkpoints"
    k.ok(f"%forkd attach {name} --mem {mib} --keep 1000 --max-mib 1000000{flag}")
    times, counts, prints_after = [], [], []
    started = time.perf_counter()
    for code in cells:
        wall, _, count = k.ok(code)
        times.append(wall)
        counts.append(count)
        if prints:
            prints_after.append(fingerprint(k))
    total = (time.perf_counter() - started) * 1000
    return k, times, counts, prints_after if prints else None, total


def finish(k: Kernel, controller, name: str) -> None:
    """Ends a pass: its sandboxes stop and its checkpoints go, so no pass
    runs with the memory of the ones before it."""
    k.ok("%forkd detach")
    k.close()
    mine = {s["id"] for s in controller.list_sandboxes() if s["name"] == name}
    for s in controller.list_sandboxes():
        if s["id"] in mine and s["status"] == "running":
            controller.kill_sandbox(s["id"])
    for snap in reversed(controller.list_snapshots()):
        if snap["source_id"] in mine:
            try:
                controller.delete_snapshot(snap["id"], cascade=True)
            except ForkdError:
                pass  # gone with an earlier cascade


def bench_notebook(path: Path, rounds: int, controller) -> dict:
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    mib = 2560 if path.stem == "big_state" else 1536
    stem = path.stem.replace("_", "-")
    k, _, _, reference, _ = attached_pass(cells, f"{stem}-ref", mib, False, True)
    finish(k, controller, f"{stem}-ref")
    off: list[list[float]] = []
    on: list[list[float]] = []
    whole = {"off": [], "on": []}
    for r in range(rounds):
        k, t_off, _, _, w_off = attached_pass(cells, f"{stem}-off{r}", mib, False, False)
        finish(k, controller, f"{stem}-off{r}")
        off.append(t_off)
        name = f"{stem}-on{r}"
        k, t_on, counts, _, w_on = attached_pass(cells, name, mib, True, False)
        on.append(t_on)
        whole["off"].append(w_off)
        whole["on"].append(w_on)
        if r < rounds - 1:
            finish(k, controller, name)
    # The last pass with checkpoints: its checkpoints and checkouts.
    [sb] = [
        s for s in controller.list_sandboxes() if s["name"] == name and s["status"] == "running"
    ]
    marks = sorted(
        (s for s in controller.list_snapshots() if s["source_id"] == sb["id"] and s["checkpoint"]),
        key=lambda s: s["created_at"],
    )
    checkouts = []
    targets = sorted({0, len(cells) // 2, len(cells) - 2} - {-1})
    for i in targets:
        wall, text, _ = k.ok(f"%forkd checkout {counts[i]}")
        said = float(re.search(r"\((\d+) ms\)", text).group(1))
        kept = re.search(r"snapshot (snap-\d+)", text)
        present = controller.get_snapshot(kept.group(1)) if kept else {}
        got = fingerprint(k)
        checkouts.append(
            {
                "after_cell": i + 1,
                "kernel_ms": wall,
                "magic_ms": said,
                # Saving the state left behind: a diff of what the last cell
                # (here: the fingerprint) wrote, paused for like a checkpoint.
                "present_pause_ms": present.get("pause_ms") or 0.0,
                "present_mib": (present.get("physical_bytes") or 0) / (1 << 20),
                "exact": got == reference[i],
            }
        )
    wall, text, _ = k.ok("%forkd undo")
    finish(k, controller, name)
    per_cell = []
    for i, code in enumerate(cells):
        m_off = statistics.median(t[i] for t in off)
        m_on = statistics.median(t[i] for t in on)
        mark = marks[i] if i < len(marks) else {}
        per_cell.append(
            {
                "cell": i + 1,
                "first_line": code.splitlines()[0][:50],
                "off_ms": m_off,
                "on_ms": m_on,
                "pause_ms": mark.get("pause_ms"),
                "branch_ms": mark.get("round_trip_ms"),
                "checkpoint_mib": (mark.get("physical_bytes") or 0) / (1 << 20),
            }
        )
    return {
        "notebook": path.stem,
        "cells": per_cell,
        "checkouts": checkouts,
        "whole_ms": {k: statistics.median(v) for k, v in whole.items()},
    }


def report(results: list[dict], out: Path | None) -> str:
    lines = ["# Time travel: checkpoints, checkout, overhead", ""]
    lines += [
        "| notebook | cells | cell time off / on (sum of medians) | overhead "
        "| whole run off / on (median) | overhead "
        "| checkpoint pause p50 / max | branch call p50 | memory per checkpoint p50 / total "
        "| checkout p50 (kernel / magic) | of which saving the present (pause, size) | exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells, outs = r["cells"], r["checkouts"]
        off = sum(c["off_ms"] for c in cells)
        on = sum(c["on_ms"] for c in cells)
        pauses = [c["pause_ms"] for c in cells if c["pause_ms"] is not None]
        branches = [c["branch_ms"] for c in cells if c["branch_ms"] is not None]
        sizes = [c["checkpoint_mib"] for c in cells]
        w_off, w_on = r["whole_ms"]["off"], r["whole_ms"]["on"]
        lines.append(
            f"| {r['notebook']} | {len(cells)} | {off:,.0f} / {on:,.0f} ms | {on / off - 1:+.1%} | "
            f"{w_off:,.0f} / {w_on:,.0f} ms | {w_on / w_off - 1:+.1%} | "
            f"{statistics.median(pauses):.2f} / {max(pauses):.1f} ms | "
            f"{statistics.median(branches):.1f} ms | "
            f"{statistics.median(sizes):.1f} / {sum(sizes):.0f} MiB | "
            f"{statistics.median(o['kernel_ms'] for o in outs):.0f} / "
            f"{statistics.median(o['magic_ms'] for o in outs):.0f} ms | "
            f"{statistics.median(o['present_pause_ms'] for o in outs):.1f} ms, "
            f"{statistics.median(o['present_mib'] for o in outs):.0f} MiB | "
            f"{sum(o['exact'] for o in outs)}/{len(outs)} |"
        )
    text = "\n".join(lines) + "\n"
    if out is not None:
        with (out / "time-travel.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for r in results:
                for c in r["cells"]:
                    w.writerow([r["notebook"], "cell", c["cell"], c["first_line"],
                                round(c["off_ms"], 2), round(c["on_ms"], 2), c["pause_ms"],
                                c["branch_ms"], round(c["checkpoint_mib"], 2), "", "",
                                ""])  # fmt: skip
                for o in r["checkouts"]:
                    # pause_ms and checkpoint_mib: the snapshot of the state left behind
                    w.writerow([r["notebook"], "checkout", o["after_cell"], "", "", "",
                                o["present_pause_ms"], "", round(o["present_mib"], 2),
                                round(o["kernel_ms"], 2), o["magic_ms"], o["exact"]])  # fmt: skip
        (out / "raw.json").write_text(json.dumps(results, indent=1))
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated notebook names")
    parser.add_argument("--out", type=Path, help="write time-travel.csv and raw.json here")
    args = parser.parse_args()
    import importlib.util

    from forkd_jupyter.client import Controller

    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.only:
        paths = [p for p in paths if p.stem in args.only.split(",")]
    state = Path(tempfile.mkdtemp(prefix="forkd-bench-"))
    daemon = start_daemon(state)
    results = []
    try:
        c = Controller(autostart=False)
        for path in paths:
            need = NEEDS.get(path.stem)
            if need and importlib.util.find_spec(need) is None:
                print(f"skipping {path.stem}: needs {need}")
                continue
            print(f"{path.stem} ...", flush=True)
            results.append(bench_notebook(path, args.rounds, c))
        print(report(results, args.out))
    finally:
        daemon.terminate()
        daemon.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
