"""A page that runs an older panel bundle than the server extension says
so. The stale bundle is real: a copy of the built labextension whose
compiled BUNDLE_VERSION is an older one, found first on JUPYTER_PATH by a
JupyterLab of this test's own (what a page left over from before an
upgrade, or an old labextension earlier on the path, looks like)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lab_helpers import screenshot
from lab_server import running_jupyter_lab
from test_panel import PANEL, UI_TIMEOUT_MS, open_panel

import forkd_jupyter

pytestmark = pytest.mark.kvm

STATIC = Path(forkd_jupyter.__file__).resolve().parent / "labext" / "static"
OLD = "0.0.1"


def test_a_stale_bundle_says_so(page, daemon, tmp_path):
    data = tmp_path / "data"
    copy = data / "labextensions" / "forkd-jupyter"
    shutil.copytree(STATIC, copy)
    current = f"BUNDLE_VERSION = '{forkd_jupyter.__version__}'"
    [chunk] = [p for p in (copy / "static").glob("*.js") if current in p.read_text()]
    chunk.write_text(chunk.read_text().replace(current, f"BUNDLE_VERSION = '{OLD}'"))
    (tmp_path / "root").mkdir()
    with running_jupyter_lab(tmp_path / "root", tmp_path, JUPYTER_PATH=str(data)) as lab:
        open_panel(page, lab)
        banner = page.wait_for_selector(f"{PANEL} .jp-forkd-stale-bundle", timeout=UI_TIMEOUT_MS)
        text = banner.inner_text()
        assert OLD in text and forkd_jupyter.__version__ in text and "reload" in text
        screenshot(page, "panel-stale-bundle")
