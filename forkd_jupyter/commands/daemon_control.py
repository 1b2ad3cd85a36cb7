"""`daemon status` and `daemon stop`, beside `daemon` (= `daemon serve`).

The `daemon` subcommand itself is registered by forkd_jupyter.cli; this
module keeps its serving arguments and handler and adds an optional action
in front of them, so `forkd-jupyter daemon [--port ...]` serves exactly as
before. `status` exits 0 when a daemon answers and 3 when none does (the LSB
convention for "not running"); `stop` asks the daemon to shut down (its
sandboxes stop with it; snapshots saved to disk stay) and waits until it has."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import cli
from .common import CommandError, connect, handles_errors, print_json

EXIT_NOT_RUNNING = 3
STOP_TIMEOUT_S = 60.0
ACTIONS = ("serve", "status", "stop")
SERVE_ONLY = ("host", "port", "token", "max_sandboxes", "min_free_mib")


def _status(args: argparse.Namespace) -> int:
    from ..client import DaemonUnavailable

    controller = connect(autostart=False)
    address = controller.connection.describe()
    try:
        health = controller.health()
        sandboxes = controller.list_sandboxes()
        snapshots = controller.list_snapshots()
    except DaemonUnavailable as e:
        if args.json:
            print_json({"running": False, "url": address, "detail": e.detail})
        else:
            print(f"not running (nothing answers at {address})")
        return EXIT_NOT_RUNNING
    running = sum(1 for s in sandboxes if s["status"] == "running")
    if args.json:
        print_json(
            {
                "running": True,
                "url": address,
                **health,
                "sandboxes": len(sandboxes),
                "running_sandboxes": running,
                "snapshots": len(snapshots),
            }
        )
        return 0
    print(
        f"running: pid {health['pid']}, version {health['version']} (api {health['api']}), "
        f"up {health['uptime_s']:.1f} s"
    )
    print(f"address: {address}")
    print(f"sandboxes: {len(sandboxes)} ({running} running), snapshots: {len(snapshots)}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from ..client import DaemonUnavailable

    controller = connect(autostart=False)
    address = controller.connection.describe()
    try:
        pid = controller.health()["pid"]
        controller.shutdown_daemon()
    except DaemonUnavailable:
        if args.json:
            print_json({"stopped": False, "running": False, "url": address})
        else:
            print(f"not running (nothing answers at {address})")
        return 0
    finally:
        controller.close()
    local = controller.connection.socket is not None
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _answers() or (local and not _process_gone(pid)):
        if time.monotonic() > deadline:
            raise CommandError(f"the daemon (pid {pid}) is still running {STOP_TIMEOUT_S:.0f} s on")
        time.sleep(0.1)
    if args.json:
        print_json({"stopped": True, "running": False, "url": address, "pid": pid})
    else:
        print(f"stopped (pid {pid})")
    return 0


def _answers() -> bool:
    """Whether a daemon still answers; a fresh connection each time, as the
    stopping daemon may serve an open one to its end."""
    from ..client import DaemonUnavailable

    controller = connect(autostart=False)
    try:
        controller.health()
        return True
    except DaemonUnavailable:
        return False
    finally:
        controller.close()


def _process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        default="serve",
        help="serve (the default), status (exit 3 when not running) or stop",
    )
    parser.add_argument("--host", help="also listen on TCP at this address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="also listen on this TCP port (0: any free one)")
    parser.add_argument(
        "--token", help="bearer token clients must send (default: $FORKD_JUPYTER_TOKEN)"
    )
    parser.add_argument(
        "--max-branches", type=int, default=4, help="branches in flight at once (default 4)"
    )
    parser.add_argument(
        "--max-sandboxes",
        type=int,
        help="running sandboxes at most; more are refused with 503 (default 256)",
    )
    parser.add_argument(
        "--min-free-mib",
        type=int,
        help="host memory (MiB) the daemon leaves free: spawns and branches that would take "
        "it are refused with 503 (default: 1 GiB or 5%% of the host's memory, the larger)",
    )
    parser.add_argument(
        "--json", action="store_true", help="status and stop: print the result as JSON"
    )
    parser.set_defaults(parser=parser)


def _serve(args: argparse.Namespace) -> int:
    from ..daemon import serve

    if args.json:
        args.parser.error("--json applies to `daemon status` and `daemon stop`")
    from ..controller.limits import DEFAULT_MAX_SANDBOXES, Limits

    port = 0 if args.host and args.port is None else args.port
    if args.max_sandboxes is not None and args.max_sandboxes < 1:
        args.parser.error("--max-sandboxes must be at least 1")
    if args.min_free_mib is not None and args.min_free_mib < 0:
        args.parser.error("--min-free-mib cannot be negative")
    limits = Limits(args.max_sandboxes or DEFAULT_MAX_SANDBOXES, args.min_free_mib)
    return serve(args.host, port, args.token, args.max_branches, limits)


def _handler(args: argparse.Namespace) -> int:
    if args.action == "serve":
        return _serve(args)
    given = [f"--{name}" for name in SERVE_ONLY if getattr(args, name, None) is not None]
    if given:
        args.parser.error(f"{', '.join(given)}: only for serving (`daemon [serve]`)")
    return handles_errors(_status if args.action == "status" else _stop)(args)


cli.add_command(
    "daemon",
    "serve the REST API on the per-user socket (the SDK starts it when needed); "
    "`daemon status` / `daemon stop` query and stop it",
    _configure,
    _handler,
)
