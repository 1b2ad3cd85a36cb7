"""`bench`: branch latency through the daemon, as a user of the SDK sees it.

A source sandbox is spawned and writes ``--mib`` MiB; then each iteration
branches it once in each mode (live, diff, full, interleaved so a slow
phase of the machine hits every mode alike) and records the daemon's
``pause_ms`` and the round trip of the branch call measured here. Each
iteration's snapshots are deleted before the next one (newest first, as a
diff builds on the iteration's live snapshot), so memory stays bounded; the
source is killed at the end, also on failure or Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time

from .common import (
    CommandError,
    add_json_flag,
    connect,
    fmt_ms,
    print_json,
    progress,
    register,
    render_table,
)
from .sandboxes import positive_int

BENCH_MODES = ("live", "diff", "full")
DAEMON_DEFAULT_MEMORY_MIB = 2048
HEADROOM_MIB = 1024  # for the interpreter and the touched buffer's neighbours
TOUCH_CODE = "_forkd_bench_buffer = bytearray(b'\\x01') * ({mib} << 20)\nNone"


def _bench_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mib", type=positive_int, default=256, help="MiB the source writes first (default 256)"
    )
    parser.add_argument(
        "-n",
        "--iterations",
        type=positive_int,
        default=5,
        help="branches per mode (default 5)",
    )
    parser.add_argument(
        "--memory",
        type=positive_int,
        metavar="MIB",
        help=f"the source's guest memory (default: {DAEMON_DEFAULT_MEMORY_MIB}, "
        f"or MIB + {HEADROOM_MIB} when that is more)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every scenario a user feels (spawn, branch, a child's reads, imports, system "
        "calls), each beside the host or a published anchor, in one table",
    )
    parser.add_argument(
        "--readme",
        metavar="PATH",
        help="with --all: also write the table into PATH between its bench markers",
    )
    add_json_flag(parser)


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between the closest ranks (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * p / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(samples: list[dict]) -> dict:
    summary = {}
    for mode in BENCH_MODES:
        rows = [s for s in samples if s["mode"] == mode]
        if not rows:
            continue
        summary[mode] = {"runs": len(rows)}
        for metric in ("pause_ms", "round_trip_ms", "daemon_round_trip_ms"):
            values = [s[metric] for s in rows if s[metric] is not None]
            summary[mode][metric] = (
                {"p50": percentile(values, 50), "p90": percentile(values, 90)} if values else None
            )
    return summary


def _bench_all(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import bench_all

    controller = connect()
    steps = bench_all.scenarios(args.iterations, args.mib)
    rows: list[dict] = []
    with progress(len(steps), "bench --all") as bar:
        for name, run in steps:
            bar.set_postfix_str(name)
            rows.extend(run(controller))
            bar.update(1)
    report = {"machine": bench_all.machine(), "mib": args.mib, "rows": rows}
    if args.json:
        print_json(report)
    else:
        headers = ("SCENARIO", "SANDBOX", "REFERENCE", "OF", "RATIO")
        print(render_table(headers, bench_all.render_rows(report)))
    if args.readme:
        bench_all.update_readme(Path(args.readme), bench_all.render_markdown(report))
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.readme and not args.all:
        args.parser.error("--readme goes with --all")
    if args.all:
        return _bench_all(args)
    controller = connect()
    memory = args.memory or max(DAEMON_DEFAULT_MEMORY_MIB, args.mib + HEADROOM_MIB)
    source = None
    taken: list[str] = []
    samples: list[dict] = []
    try:
        with progress(2 + args.iterations * len(BENCH_MODES), "bench") as bar:
            bar.set_postfix_str("spawning the source")
            source = controller.spawn_sandboxes(1, live_fork=True, memory_limit_mib=memory)[0]
            bar.update(1)
            bar.set_postfix_str(f"writing {args.mib} MiB")
            started = time.perf_counter()
            result = controller.run_cell(source["id"], TOUCH_CODE.format(mib=args.mib))
            touch_ms = (time.perf_counter() - started) * 1000
            if result.error is not None:
                raise CommandError(f"the source could not write {args.mib} MiB: {result.error}")
            bar.update(1)
            for iteration in range(args.iterations):
                for mode in BENCH_MODES:
                    bar.set_postfix_str(f"{mode} #{iteration + 1}")
                    samples.append(_branch_once(controller, source["id"], mode, iteration, taken))
                    bar.update(1)
                _delete_newest_first(controller, taken)
    finally:
        _clean_up(controller, source, taken)
    report = {
        "source": source["id"],
        "mib": args.mib,
        "memory_mib": memory,
        "iterations": args.iterations,
        "touch_ms": touch_ms,
        "summary": summarise(samples),
        "samples": samples,
    }
    if args.json:
        print_json(report)
    else:
        print(_render(report))
    failed = [s["snapshot_id"] for s in samples if s["status"] != "ready"]
    if failed:
        raise CommandError(f"snapshots did not become ready: {', '.join(failed)}")
    return 0


def _branch_once(controller, source_id: str, mode: str, iteration: int, taken: list) -> dict:
    started = time.perf_counter()
    snapshot = controller.branch_sandbox(source_id, mode=mode, wait=True)["snapshot"]
    round_trip_ms = (time.perf_counter() - started) * 1000
    taken.append(snapshot["id"])
    return {
        "mode": mode,
        "iteration": iteration,
        "snapshot_id": snapshot["id"],
        "status": snapshot["status"],
        "pause_ms": snapshot["pause_ms"],
        "round_trip_ms": round_trip_ms,
        "daemon_round_trip_ms": snapshot["round_trip_ms"],
        "physical_bytes": snapshot["physical_bytes"],
    }


def _delete_newest_first(controller, taken: list[str]) -> None:
    while taken:
        controller.delete_snapshot(taken[-1], cascade=True)
        taken.pop()


def _clean_up(controller, source: dict | None, taken: list[str]) -> None:
    """Best effort: the bench's own snapshots and source never outlive it."""
    from ..client import ForkdError

    try:
        _delete_newest_first(controller, taken)
    except ForkdError as e:
        print(f"forkd-jupyter: could not delete bench snapshots: {e.detail}", file=sys.stderr)
    if source is not None:
        try:
            controller.kill_sandbox(source["id"])
        except ForkdError as e:
            print(f"forkd-jupyter: could not kill {source['id']}: {e.detail}", file=sys.stderr)


def _render(report: dict) -> str:
    def cell(summary: dict, metric: str, p: str) -> str:
        values = summary[metric]
        return "-" if values is None else fmt_ms(values[p])

    rows = [
        (
            mode,
            s["runs"],
            cell(s, "pause_ms", "p50"),
            cell(s, "pause_ms", "p90"),
            cell(s, "round_trip_ms", "p50"),
            cell(s, "round_trip_ms", "p90"),
        )
        for mode, s in report["summary"].items()
    ]
    headers = ("MODE", "RUNS", "PAUSE_P50", "PAUSE_P90", "ROUND_TRIP_P50", "ROUND_TRIP_P90")
    head = (
        f"source {report['source']} ({report['memory_mib']} MiB) wrote {report['mib']} MiB "
        f"in {fmt_ms(report['touch_ms'])} ms; {report['iterations']} branch(es) per mode; "
        "times in ms"
    )
    return head + "\n" + render_table(headers, rows)


register("bench", "measure branch pause and round trip per mode", _bench_args, _bench)
