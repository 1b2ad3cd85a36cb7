"""`forkd-jupyter demo`: the product's main job in one command. It spawns a
sandbox, loads a dataset into it, branches it live into three children that
each try a different model on the same in-memory data, takes a diff and a
full branch for comparison, and prints the results, the tree and the pause
timings. Everything it creates is removed at the end unless ``--keep``."""

from __future__ import annotations

import argparse
import threading
import time

from ..client.text import render_tree, subtree
from .common import CommandError, connect, fmt_ms, print_json, progress, register, render_table
from .tree import glyphs_for_stdout

LOAD = """\
import numpy as np
rng = np.random.default_rng(7)
x = rng.uniform(-3.0, 3.0, {rows})
y = np.sin(x) + 0.3 * x + rng.normal(0.0, 0.1, x.size)
print(f"loaded {{x.size:,}} rows ({{(x.nbytes + y.nbytes) >> 20}} MiB) in the sandbox")
"""
EXPERIMENT = """\
degree = {degree}
coef = np.polyfit(x, y, degree)
rmse = float(np.sqrt(np.mean((np.polyval(coef, x) - y) ** 2)))
print(f"degree {{degree}}: rmse {{rmse:.4f}}")
rmse
"""
DEGREES = (1, 3, 7)


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=int, default=2_000_000, help="rows of the dataset (default 2,000,000)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes and snapshots")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _check(result, what: str) -> None:
    if result.error is not None:
        raise CommandError(f"{what} failed in the sandbox: {result.error}")


def _demo(args: argparse.Namespace) -> int:
    if args.rows < 1000:
        args.parser.error("--rows must be at least 1000")
    c = connect()
    started = time.monotonic()
    [source] = c.spawn_sandboxes(memory_limit_mib=2048)
    made: list[str] = []
    try:
        say = (lambda *a: None) if args.json else print
        say(f"spawned {source['id']} in {fmt_ms((time.monotonic() - started) * 1e3)} ms")
        loaded = c.run_cell(source["id"], LOAD.format(rows=args.rows))
        _check(loaded, "loading the data")
        say(loaded.stdout.rstrip())
        live = c.branch_sandbox(source["id"], mode="live", count=len(DEGREES), tag=None)
        made.append(live["snapshot"]["id"])
        say(
            f"branched live: paused {fmt_ms(live['snapshot']['pause_ms'])} ms, "
            f"{len(live['children'])} children"
        )
        results = _run_experiments(c, live["children"])
        for mode in ("diff", "full"):
            made.append(c.branch_sandbox(source["id"], mode=mode)["snapshot"]["id"])
        tree = subtree(c.tree(), source["id"])
        timings = [t for t in c.timings() if t["snapshot_id"] in made]
        report = {"source": source["id"], "results": results, "timings": timings, "tree": tree}
        if args.json:
            print_json(report)
        else:
            _print_report(report)
    finally:
        if not args.keep:
            for snap in reversed(made):
                c.delete_snapshot(snap, cascade=True)
            c.kill_sandbox(source["id"])
    return 0


def _run_experiments(c, children: list[dict]) -> list[dict]:
    """One experiment per child, all at once; the children share the
    source's dataset copy-on-write."""
    results: list[dict | None] = [None] * len(children)

    def run(i: int) -> None:
        r = c.run_cell(children[i]["id"], EXPERIMENT.format(degree=DEGREES[i]))
        results[i] = {
            "sandbox": children[i]["id"],
            "degree": DEGREES[i],
            "rmse": None if r.error else float(r.result["text/plain"]),
            "error": None if r.error is None else str(r.error),
        }

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(children))]
    with progress(len(threads), "experiments") as bar:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
            bar.update(1)
    return [r for r in results if r is not None]


def _print_report(report: dict) -> None:
    print("\nthe same data, three models, one child each:")
    rows = [
        (r["sandbox"], r["degree"], r["error"] or f"{r['rmse']:.4f}") for r in report["results"]
    ]
    print(render_table(("CHILD", "DEGREE", "RMSE"), rows))
    print("\nthe tree:")
    print(render_tree(report["tree"], glyphs_for_stdout()))
    print("\nhow long each branch paused the source (ms):")
    rows = [
        (t["mode"], fmt_ms(t["pause_ms"]), fmt_ms(t["round_trip_ms"]), fmt_ms(t["copy_ms"]))
        for t in report["timings"]
    ]
    print(render_table(("MODE", "PAUSE", "ROUND_TRIP", "COPY"), rows))


register(
    "demo",
    "spawn, load data, branch it live three ways, show the tree and the pause timings",
    _demo_args,
    _demo,
)
