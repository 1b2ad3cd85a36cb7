"""A real JupyterLab server and a real headless chromium for the UI tests.

``jupyter_lab`` -> (base_url, token): one ``jupyter lab`` subprocess per
session, serving ``jupyter_lab_root`` and reaching the test daemon (it
inherits the environment the ``daemon`` fixture exported). ``page``: a fresh
browser page per test; its screenshot is saved under tests/artifacts/ when
the test ends. ``lab_helpers.open_lab`` loads JupyterLab in it;
``lab_server.running_jupyter_lab`` runs another server (other environment)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lab_server import running_jupyter_lab
from themes import LIGHT, use_theme

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def jupyter_lab_root(tmp_path_factory) -> Path:
    """The directory JupyterLab serves (put notebooks here)."""
    return tmp_path_factory.mktemp("lab-root")


@pytest.fixture(scope="session")
def jupyter_lab(daemon, jupyter_lab_root, tmp_path_factory):
    """(base_url, token) of a running JupyterLab with this package's server
    extension and labextension, talking to the test daemon."""
    with running_jupyter_lab(jupyter_lab_root, tmp_path_factory.mktemp("lab-home")) as lab:
        yield lab


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install.sh as root")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def theme(request, jupyter_lab):
    """Parametrized (indirect) with a theme name: JupyterLab uses it for the
    test, then goes back to Light."""
    use_theme(jupyter_lab, request.param)
    yield request.param
    use_theme(jupyter_lab, LIGHT)


@pytest.fixture
def page(browser, request):
    """A fresh page (its own cookies and storage); screenshot on teardown."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"))
    finally:
        context.close()
