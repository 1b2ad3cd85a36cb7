"""A real multi-node Ray cluster on this machine (``ray.cluster_utils``),
every node's agent using this machine's KVM, and a daemon of the test's
own joined to it. One node is started with /dev/kvm hidden from its agent
(as on a machine without KVM), to be skipped with the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from daemon_private import PrivateDaemon

from forkd_jupyter.client import Controller
from forkd_jupyter.cluster.node_agent import HIDE_KVM_ENV

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 256 << 20}
KVM_NODES = 3  # the head (where the daemon is) and two more


class RayCluster:
    def __init__(self, state: Path) -> None:
        from ray.cluster_utils import Cluster

        self.state = state
        self.cluster = Cluster(initialize_head=True, head_node_args=dict(NODE_ARGS))
        self.workers = [self.cluster.add_node(**NODE_ARGS) for _ in range(KVM_NODES - 1)]
        self.no_kvm = self.cluster.add_node(**NODE_ARGS, env_vars={HIDE_KVM_ENV: "1"})
        self.address = self.cluster.address

    def remove(self, node) -> None:
        self.cluster.remove_node(node)

    def shutdown(self) -> None:
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="clusters need the test extras (Ray)")
    state = tmp_path_factory.mktemp("cluster-state")
    old = os.environ.get("FORKD_JUPYTER_STATE_DIR")
    os.environ["FORKD_JUPYTER_STATE_DIR"] = str(state)  # the node agents' chunk caches
    try:
        cluster = RayCluster(state)
    finally:
        if old is None:
            os.environ.pop("FORKD_JUPYTER_STATE_DIR", None)
        else:
            os.environ["FORKD_JUPYTER_STATE_DIR"] = old
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def cluster_daemon(ray_cluster, tmp_path_factory):
    daemon = PrivateDaemon(tmp_path_factory.mktemp("cluster-daemon")).start()
    yield daemon
    daemon.proc.terminate()
    daemon.proc.wait(60)


@pytest.fixture(scope="module")
def ctl(cluster_daemon, ray_cluster):
    with Controller(f"unix://{cluster_daemon.socket}", cluster=ray_cluster.address) as c:
        yield c
