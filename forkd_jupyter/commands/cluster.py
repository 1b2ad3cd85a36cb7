"""`cluster`: join a Ray cluster and list its nodes (docs/cluster.md)."""

from __future__ import annotations

import argparse

from ..client.text import cluster_rows
from .common import add_json_flag, connect, print_json, register, render_table


def _cluster_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "address",
        nargs="?",
        metavar="ADDRESS",
        help="join this Ray cluster first: auto, host:port or ray://host:port",
    )
    add_json_flag(parser)


def _cluster(args: argparse.Namespace) -> int:
    controller = connect()
    info = controller.join_cluster(args.address) if args.address else controller.cluster_info()
    if args.json:
        print_json(info)
        return 0
    if info["address"] is None:
        print("no cluster joined: `forkd-jupyter cluster auto` joins this machine's")
        return 0
    print(f"cluster {info['address']}")
    print(render_table(("NODE", "SANDBOXES", "FREE", "STATE"), cluster_rows(info)))
    return 0


register(
    "cluster", "join a Ray cluster and list the nodes branches spread over", _cluster_args, _cluster
)
