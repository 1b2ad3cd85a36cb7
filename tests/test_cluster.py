"""Branches spread over a real 4-node Ray cluster on this machine (three
nodes with KVM, one without), through a real daemon over HTTP: placement,
cells on remote children with their output streamed back, shipping only
what a node lacks, errors that name the node, kill and delete across
nodes, and a node lost mid-run. The last test removes a node: keep it
last."""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from cluster_fixture import KVM_NODES
from test_magics import outputs, run_notebook, text_of

from forkd_jupyter.client import Conflict, ForkdError

pytestmark = [pytest.mark.kvm, pytest.mark.timeout(600)]

DATA_MIB = 48
SEED = 20261202


def expected_digests(n: int) -> list[str]:
    data = random.Random(SEED).randbytes(DATA_MIB << 20)
    step = len(data) // n
    return [hashlib.sha256(data[i * step : (i + 1) * step]).hexdigest() for i in range(n)]


@pytest.fixture(scope="module")
def source(ctl):
    """A 256 MiB sandbox holding DATA_MIB of random bytes (incompressible)."""
    [record] = ctl.spawn_sandboxes(memory_limit_mib=256, name="cluster-source")
    r = ctl.run_cell(
        record["id"],
        "import random, hashlib\n"
        f"data = bytearray(random.Random({SEED}).randbytes({DATA_MIB} << 20))\n"
        "len(data)",
    )
    assert r.error is None, r.error
    return record["id"]


@pytest.fixture(scope="module")
def first_branch(ctl, source):
    return ctl.branch_sandbox(source, mode="full", count=12)


def test_every_node_is_listed_and_the_one_without_kvm_is_skipped(ctl):
    nodes = ctl.cluster_info()["nodes"]
    assert len(nodes) == KVM_NODES + 1
    usable = [n for n in nodes if n["usable"]]
    skipped = [n for n in nodes if not n["usable"]]
    assert len(usable) == KVM_NODES
    assert sum(n["local"] for n in nodes) == 1  # the daemon's own node
    [off] = skipped
    assert "kvm" in off["reason"] and "/dev/kvm" in off["reason"]
    assert all(n["free_bytes"] > 0 for n in usable)


def test_twelve_children_spread_over_three_nodes_each_computing_its_part(ctl, first_branch):
    kids = first_branch["children"]
    assert len(kids) == 12
    per_node = Counter(k["node"] for k in kids)
    assert len(per_node) == KVM_NODES and set(per_node.values()) == {4}, per_node
    snapshot = first_branch["snapshot"]
    remote = [s for s in snapshot["shipped"] if s["error"] is None]
    assert len(remote) == KVM_NODES - 1
    # The random data cannot compress: at least its size went to each node.
    assert all(s["bytes"] >= DATA_MIB << 20 for s in remote)

    def part(i: int) -> str:
        part = f"data[{i} * step : ({i} + 1) * step]"
        code = f"step = len(data) // 12\nprint(hashlib.sha256({part}).hexdigest())"
        r = ctl.run_cell(kids[i]["id"], code)
        assert r.error is None, r.error
        return r.stdout.strip()

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(part, range(12)))
    assert answers == expected_digests(12)


def test_the_tree_and_records_name_each_childs_node(ctl, first_branch):
    tree = ctl.tree()
    by_id = {n["id"]: n for n in tree["nodes"]}
    for kid in first_branch["children"]:
        assert by_id[kid["id"]]["node"] == kid["node"] is not None
    labels = {n["label"] for n in ctl.cluster_info()["nodes"]}
    assert {k["node"] for k in first_branch["children"]} <= labels


def test_a_remote_childs_output_streams_back_while_it_runs(ctl, first_branch):
    local_node = next(n["label"] for n in ctl.cluster_info()["nodes"] if n["local"])
    kid = next(k for k in first_branch["children"] if k["node"] != local_node)
    seen: list[tuple[float, str]] = []
    code = (
        "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.4)\n"
    )
    ctl.run_cell(
        kid["id"], code, on_output=lambda name, text: seen.append((time.monotonic(), text))
    )
    ended = time.monotonic()
    ticks = [t for t, text in seen if "tick" in text]
    assert len(ticks) >= 2 and "".join(x for _, x in seen).count("tick") == 3
    assert ended - ticks[0] >= 0.6  # the first line arrived while the cell still slept


def test_a_second_branch_ships_only_what_changed(ctl, source, first_branch):
    first = {s["node"]: s["bytes"] for s in first_branch["snapshot"]["shipped"]}
    r = ctl.run_cell(source, "data[4096:4103] = b'changed'")  # in place: one page changes
    assert r.error is None
    second = ctl.branch_sandbox(source, mode="full", count=KVM_NODES)
    shipped = {s["node"]: s["bytes"] for s in second["snapshot"]["shipped"]}
    assert set(shipped) == set(first)
    for node, sent in shipped.items():
        assert sent < first[node] * 0.5, (node, sent, first[node])
    # ... and the children see the change.
    for kid in second["children"]:
        r = ctl.run_cell(kid["id"], "print(bytes(data[4096:4103]))")
        assert r.stdout.strip() == "b'changed'", kid


def test_guest_errors_and_interrupts_reach_remote_children(ctl, first_branch):
    local_node = next(n["label"] for n in ctl.cluster_info()["nodes"] if n["local"])
    target = next(k["id"] for k in reversed(first_branch["children"]) if k["node"] != local_node)
    r = ctl.run_cell(target, "1/0")
    assert r.error is not None and r.error.ename == "ZeroDivisionError"
    timer = threading.Timer(1.0, ctl.interrupt, args=(target,))
    timer.start()
    started = time.monotonic()
    r = ctl.run_cell(target, "while True: pass")
    assert r.error is not None and r.error.ename == "KeyboardInterrupt"
    assert time.monotonic() - started < 30
    assert ctl.run_cell(target, "print(6*7)").stdout.strip() == "42"


def test_what_stays_on_one_host_is_refused_with_the_node_named(ctl, first_branch, source):
    local_node = next(n["label"] for n in ctl.cluster_info()["nodes"] if n["local"])
    remote = next(k for k in first_branch["children"] if k["node"] != local_node)
    with pytest.raises(Conflict) as e:
        ctl.read_file(remote["id"], "/tmp")
    assert remote["node"] in e.value.detail and e.value.type.endswith(":remote-sandbox")
    with pytest.raises(Conflict) as e:
        ctl.branch_sandbox(remote["id"], mode="diff")
    assert remote["node"] in e.value.detail
    # push and pull do cross nodes.
    ctl.push(remote["id"], "shipped_value", {"a": [1, 2, 3]})
    assert ctl.pull(remote["id"], "shipped_value") == {"a": [1, 2, 3]}


def test_kill_and_delete_reach_other_nodes(ctl, source):
    out = ctl.branch_sandbox(source, mode="full", count=6)
    local_node = next(n["label"] for n in ctl.cluster_info()["nodes"] if n["local"])
    remote = [k for k in out["children"] if k["node"] != local_node]
    assert len(remote) == 4
    before = {n["label"]: n["remote_sandboxes"] for n in ctl.cluster_info()["nodes"]}
    ctl.kill_sandbox(remote[0]["id"])
    assert ctl.get_sandbox(remote[0]["id"])["status"] == "dead"
    after = {n["label"]: n["remote_sandboxes"] for n in ctl.cluster_info()["nodes"]}
    assert after[remote[0]["node"]] == before[remote[0]["node"]] - 1
    deleted = ctl.delete_snapshot(out["snapshot"]["id"], cascade=True)
    assert {k["id"] for k in out["children"][1:]} - {remote[0]["id"]} <= set(deleted)
    for kid in out["children"]:
        assert ctl.get_sandbox(kid["id"])["status"] == "dead"


def test_bad_addresses_and_spreads_without_a_cluster_are_refused(cluster_daemon, ctl, source):
    from forkd_jupyter.client import BadRequest, Controller

    with pytest.raises(BadRequest):
        ctl.join_cluster("local")
    with pytest.raises(Conflict):
        ctl.join_cluster("127.0.0.1:1")  # another cluster than the one joined
    with Controller(f"unix://{cluster_daemon.socket}") as plain:
        assert plain.cluster is None
        out = plain.branch_sandbox(source, mode="diff", count=1)
        assert out["children"][0]["node"] is None  # no spread unless asked
        plain.kill_sandbox(out["children"][0]["id"])


def test_a_notebook_branches_over_the_cluster_and_runs_in_each_child(
    ray_cluster, cluster_daemon, monkeypatch
):
    """`%forkd branch --cluster` and `%%forkd --each` in a real kernel."""
    monkeypatch.setenv("FORKD_JUPYTER_URL", f"unix://{cluster_daemon.socket}")
    cells = run_notebook(
        [
            "%load_ext forkd_jupyter",
            "%forkd spawn --mem 256 --name nb-cluster-source",
            "%%forkd\nbase = 1000",
            f"kids = %forkd branch -n 6 --mode full --cluster {ray_cluster.address}\n"
            "print(repr(kids))\nnames = ','.join(k.id for k in kids)",
            "%%forkd --each $names\nprint('child', base + 1)",
            "%forkd ls",
            "widget = %forkd tree\n"
            "print(sorted({n['node'] for n in widget.tree['nodes'] if n.get('node')}))",
        ]
    )
    for c in cells:
        assert not outputs(c, "error"), text_of(c)
    listed = text_of(cells[3])
    nodes = set(re.findall(r" on (\S+?)>", listed))
    assert len(nodes) == KVM_NODES, listed
    each = text_of(cells[4])
    assert each.count("child 1001") == 6, each
    table = text_of(cells[5])
    assert "NODE" in table and all(node in table for node in nodes), table
    assert set(eval(text_of(cells[6]))) >= nodes  # what the branch-tree widget draws


@pytest.fixture
def own_agent(ray_cluster):
    """A node agent of this test's own on a worker node (this process joins
    the cluster as a second driver), under a key the test knows."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from forkd_jupyter.cluster.node_agent import NodeAgent

    ray.init(address=ray_cluster.address, namespace="forkd-test", log_to_driver=False)
    node = ray_cluster.workers[-1].node_id
    strategy = NodeAffinitySchedulingStrategy(node, soft=False)
    key = b"test-cluster-key" * 2
    agent = ray.remote(NodeAgent).options(num_cpus=0, scheduling_strategy=strategy).remote(key)
    yield agent, key
    ray.kill(agent)
    ray.shutdown()


def test_a_node_loads_only_what_the_cluster_key_signed_and_the_hashes_name(own_agent):
    import ray

    from forkd_jupyter import vmm
    from forkd_jupyter.cluster.packing import Packed

    agent, key = own_agent
    with vmm.Sandbox.spawn(memory_mib=256) as sb:
        sb.run("x = 41")
        packed = Packed(sb.snapshot("full"))
    try:
        m = packed.manifest
        canonical, files = m.canonical(), packed.files

        def refused(call, match: str) -> None:
            with pytest.raises(Exception, match=match):  # the agent's ManifestError, via Ray
                ray.get(call)

        refused(agent.begin.remote(canonical, m.sign(b"another key" * 3), files), "authentication")
        tampered = {**files, "state": files["state"][:-1] + b"\0"}
        refused(agent.begin.remote(canonical, m.sign(key), tampered), "state does not match")
        session = ray.get(agent.begin.remote(canonical, m.sign(key), files))
        batches = list(packed.batches(session["wanted"]))
        # Blocks an earlier image brought (the interpreter's own pages) are not asked for.
        assert batches and 0 < len(session["wanted"]) <= len(m.hashes)
        index, buffer = batches[0]
        (h, *_), (_, *other) = index[0], index[1]  # block 0's name on block 1's bytes
        forged = ([(h, *other)], buffer)
        refused(agent.receive.remote(session["session"], forged), "does not match")
        refused(agent.finish.remote(session["session"]), "neither shipped nor cached")
        session = ray.get(agent.begin.remote(canonical, m.sign(key), files))
        for batch in batches:
            ray.get(agent.receive.remote(session["session"], batch))
        done = ray.get(agent.finish.remote(session["session"]))
        assert done["key"] == m.key and 0 < done["received_bytes"] <= m.data_bytes
        [child] = ray.get(agent.spawn.remote(m.key, 1, True))
        events = list(agent.run.remote(child["id"], "print(x + 1)", 60))
        kind, result = ray.get(events[-1])
        assert kind == "result" and result["stdout"].strip() == "42"
        # The same image again: nothing to ship.
        assert ray.get(agent.begin.remote(canonical, m.sign(key), files)) == {"loaded": m.key}
    finally:
        packed.close()


def test_a_node_lost_mid_run_kills_its_sandboxes_and_the_rest_carry_on(ray_cluster, ctl, source):
    out = ctl.branch_sandbox(source, mode="full", count=6)
    kids = out["children"]
    info = ctl.cluster_info()["nodes"]
    victim = ray_cluster.workers[0]
    victim_label = next(n["label"] for n in info if n["node_id"] == victim.node_id)
    doomed = [k for k in kids if k["node"] == victim_label]
    spared = [k for k in kids if k["node"] != victim_label]
    assert doomed and spared
    failure: list[BaseException] = []

    def long_cell() -> None:
        try:
            ctl.run_cell(doomed[0]["id"], "import time\nwhile True: time.sleep(0.1)")
        except BaseException as e:  # noqa: BLE001 - kept for the assertion
            failure.append(e)

    runner = threading.Thread(target=long_cell)
    runner.start()
    time.sleep(1.5)
    ray_cluster.remove(victim)
    runner.join(60)
    assert not runner.is_alive()
    assert failure and isinstance(failure[0], ForkdError)
    assert "lost" in failure[0].detail
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = [ctl.get_sandbox(k["id"]) for k in doomed]
        if all(r["status"] == "dead" for r in records):
            break
        time.sleep(0.5)
    for r in records:
        assert r["status"] == "dead" and victim_label in r["exit_reason"], r
    for k in spared:
        assert ctl.run_cell(k["id"], "print(len(data))").stdout.strip() == str(DATA_MIB << 20)
    lost = next(n for n in ctl.cluster_info()["nodes"] if n["label"] == victim_label)
    assert not lost["usable"] and "lost" in lost["reason"]
    # The next spread uses the nodes that are left.
    again = ctl.branch_sandbox(source, mode="diff", count=4)
    assert victim_label not in {k["node"] for k in again["children"]}
