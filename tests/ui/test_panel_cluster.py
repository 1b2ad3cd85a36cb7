"""The JupyterLab panel shows the node each sandbox runs on, for children
spread over a real Ray cluster (the cluster fixtures of
tests/cluster_fixture.py; a JupyterLab of this test's own reaching the
cluster's daemon), in headless chromium."""

from __future__ import annotations

import pytest
from lab_helpers import open_lab, screenshot
from lab_server import running_jupyter_lab
from test_panel import PANEL, row

pytestmark = [pytest.mark.kvm, pytest.mark.timeout(600)]

UI_TIMEOUT_MS = 60_000


def test_the_panel_names_each_remote_childs_node(page, tmp_path, cluster_daemon, ctl):
    [source] = ctl.spawn_sandboxes(memory_limit_mib=256, name="panel-cluster-source")
    out = ctl.branch_sandbox(source["id"], mode="full", count=3)
    nodes = {k["id"]: k["node"] for k in out["children"]}
    assert len(set(nodes.values())) == 3
    env = {
        "FORKD_JUPYTER_STATE_DIR": str(cluster_daemon.state),
        "FORKD_JUPYTER_SOCKET": str(cluster_daemon.socket),
        "FORKD_JUPYTER_URL": f"unix://{cluster_daemon.socket}",
    }
    root = tmp_path / "root"
    root.mkdir()
    with running_jupyter_lab(root, tmp_path / "home", **env) as lab:
        open_lab(page, lab)
        page.click('.jp-SideBar [data-id="forkd-jupyter:panel"]')
        for kid, node in nodes.items():
            shown = page.wait_for_selector(row("sandbox", kid), timeout=UI_TIMEOUT_MS)
            assert f"on {node}" in shown.inner_text()
            assert shown.get_attribute("data-node") == node
            assert node in shown.get_attribute("title")
        # The source runs on the daemon's host: no node is named for it.
        source_row = page.wait_for_selector(row("sandbox", source["id"]), timeout=UI_TIMEOUT_MS)
        assert " on " not in source_row.inner_text()
        page.wait_for_selector(PANEL)
        screenshot(page, "panel-cluster-nodes")
