"""`branch`, `snapshots` and `rm`: taking, listing and deleting snapshots."""

from __future__ import annotations

import argparse

from ..modes import BRANCH_MODES
from .common import (
    CommandError,
    add_json_flag,
    connect,
    fmt_bytes,
    fmt_ms,
    print_json,
    progress,
    register,
    render_table,
)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


# ---------------------------------------------------------------- branch
def _branch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sandbox", metavar="SANDBOX", help="the source: id or name")
    parser.add_argument(
        "-n",
        "--count",
        type=non_negative_int,
        default=0,
        help="children to spawn from the snapshot (default 0)",
    )
    parser.add_argument(
        "--mode",
        choices=BRANCH_MODES,
        help="live (default for live-fork sandboxes), diff or full",
    )
    parser.add_argument("--tag", help="a unique name for the snapshot")
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="live or diff: return while the image is still writing (children follow when ready)",
    )
    parser.add_argument(
        "--measure-diff",
        action="store_true",
        help="record the bytes written since the source's previous snapshot",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="spread the children over a Ray cluster (auto, host:port, ray://host:port)",
    )
    add_json_flag(parser)


def _branch(args: argparse.Namespace) -> int:
    controller = connect()
    options = {"tag": args.tag, "mode": args.mode, "measure_diff": args.measure_diff}
    if args.cluster:
        if args.count == 0:
            raise CommandError("--cluster spreads children: give their number with -n")
        controller.join_cluster(args.cluster)
        with progress(1, "branching over the cluster"):
            outcome = controller.branch_sandbox(
                args.sandbox, wait=args.wait, count=args.count, spread=True, **options
            )
    elif not args.wait or args.count == 0:
        # Without waiting, only the daemon knows when the image is ready to spawn from.
        outcome = controller.branch_sandbox(
            args.sandbox, wait=args.wait, count=args.count, **options
        )
    else:
        outcome = _branch_then_spawn(controller, args.sandbox, args.count, options)
    snapshot = outcome["snapshot"]
    if args.json:
        print_json(outcome)
    else:
        print(
            f"{snapshot['id']} ({snapshot['mode']}, {snapshot['status']}): paused the source "
            f"{fmt_ms(snapshot['pause_ms'])} ms (longest stall {fmt_ms(snapshot.get('stall_ms'))} "
            f"ms), round trip {fmt_ms(snapshot['round_trip_ms'])} ms"
        )
        if outcome["children"]:
            print("children: " + " ".join(_child_label(c) for c in outcome["children"]))
        for shipment in snapshot.get("shipped") or []:
            outcome_text = shipment["error"] or (
                f"{fmt_bytes(shipment['bytes'])} shipped "
                f"({fmt_bytes(shipment['compressed_bytes'])} compressed) "
                f"in {fmt_ms(shipment['ms'])} ms"
            )
            print(f"to {shipment['node']}: {outcome_text}")
    if snapshot["status"] == "failed":
        raise CommandError(f"snapshot {snapshot['id']} failed: {snapshot.get('error')}")
    return 0


def _child_label(record: dict) -> str:
    return f"{record['id']}@{record['node']}" if record.get("node") else record["id"]


def _branch_then_spawn(controller, sandbox: str, count: int, options: dict) -> dict:
    """The snapshot, then its children one by one, so a bar can follow them
    and a failure half-way still names the children that exist."""
    children: list[dict] = []
    with progress(1 + count, "branching") as bar:
        snapshot = controller.branch_sandbox(sandbox, wait=True, count=0, **options)["snapshot"]
        bar.update(1)
        if snapshot["status"] != "ready":
            return {"snapshot": snapshot, "children": []}
        try:
            for _ in range(count):
                children += controller.spawn_sandboxes(1, snapshot_id=snapshot["id"])
                bar.update(1)
        except Exception as e:
            made = ", ".join(c["id"] for c in children) or "none"
            detail = getattr(e, "detail", "") or str(e)
            raise CommandError(
                f"{detail} (snapshot {snapshot['id']} was taken; children spawned: {made})"
            ) from None
    return {"snapshot": controller.get_snapshot(snapshot["id"]), "children": children}


# ------------------------------------------------------------- snapshots
def _snapshots_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "snapshot", nargs="?", metavar="SNAPSHOT", help="show only this one (id or tag)"
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="write SNAPSHOT to disk first, so it survives daemon restarts",
    )
    add_json_flag(parser)


def _snapshots(args: argparse.Namespace) -> int:
    controller = connect()
    if args.save and args.snapshot is None:
        raise CommandError("--save needs the SNAPSHOT to save")
    if args.snapshot is not None:
        if args.save:
            with progress(1, "saving"):
                controller.save_snapshot(args.snapshot)
        record = controller.get_snapshot(args.snapshot)
        if args.json:
            print_json(record)
        else:
            width = max(len(k) for k in record)
            for key, value in record.items():
                print(f"{key.ljust(width)}  {'-' if value is None else value}")
        return 0
    records = controller.list_snapshots()
    if args.json:
        print_json(records)
        return 0
    if not records:
        print("no snapshots")
        return 0
    rows = [
        (
            s["id"],
            s["tag"] or "",
            s["mode"],
            s["status"],
            s["source_id"],
            s["parent"] or "",
            len(s["children"]),
            fmt_ms(s["pause_ms"]),
            fmt_ms(s.get("stall_ms")),
            fmt_ms(s["round_trip_ms"]),
            fmt_bytes(s["physical_bytes"]),
            "yes" if s["saved_path"] else "",
        )
        for s in records
    ]
    headers = (
        "ID",
        "TAG",
        "MODE",
        "STATUS",
        "SOURCE",
        "PARENT",
        "CHILDREN",
        "PAUSE_MS",
        "STALL_MS",
        "ROUND_TRIP_MS",
        "SIZE",
        "SAVED",
    )
    print(render_table(headers, rows))
    return 0


# -------------------------------------------------------------------- rm
def _rm_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snapshots", nargs="+", metavar="SNAPSHOT", help="ids or tags")
    parser.add_argument(
        "--cascade",
        action="store_true",
        help="also kill the children and delete the snapshots built on it",
    )
    add_json_flag(parser)


def _rm(args: argparse.Namespace) -> int:
    from ..client import Conflict, DaemonUnavailable, ForkdError

    controller = connect()
    deleted: list[str] = []
    failures: list[str] = []
    # Every snapshot asked for is tried; a refusal for one does not spare the others.
    for key in args.snapshots:
        try:
            deleted += controller.delete_snapshot(key, cascade=args.cascade)
        except DaemonUnavailable:
            raise
        except Conflict as e:
            if not e.dependents:
                failures.append(e.detail)
                continue
            failures.append(
                f"snapshot {key} has dependents: {', '.join(e.dependents)} "
                "(--cascade kills and deletes them too)"
            )
        except ForkdError as e:
            failures.append(e.detail or e.title)
    if args.json:
        print_json({"deleted": deleted})
    else:
        for item in deleted:
            print(item)
    if failures:
        raise CommandError("; ".join(failures))
    return 0


register("branch", "snapshot a sandbox and optionally spawn children", _branch_args, _branch)
register("snapshots", "list snapshots, or show one", _snapshots_args, _snapshots)
register("rm", "delete snapshots (refused while children use them)", _rm_args, _rm)
