"""Steps the UI tests share: writing a notebook, loading JupyterLab or
Notebook 7 and saving screenshots."""

from __future__ import annotations

from pathlib import Path

import nbformat

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def open_lab(page, jupyter_lab, path: str = "") -> None:
    """Loads JupyterLab (``path``: a file under the served root to open,
    e.g. ``"demo.ipynb"``) and waits until its shell is on screen."""
    base_url, token = jupyter_lab
    target = f"{base_url}/lab/tree/{path}" if path else f"{base_url}/lab"
    page.goto(f"{target}?token={token}&reset")
    page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)
    page.wait_for_selector(".jp-LabShell:not(.jp-mod-loading)", timeout=60_000)


def open_notebook7(page, jupyter_lab, path: str) -> None:
    """Opens a notebook in Notebook 7 (served by the same server) and waits
    until its cells are on screen."""
    base_url, token = jupyter_lab
    page.goto(f"{base_url}/notebooks/{path}?token={token}")
    page.wait_for_selector("#main-panel .jp-Notebook .jp-Cell", state="visible", timeout=60_000)


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of these code cells, for the python3 kernel, at ``path``."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def is_disabled(page, selector: str) -> bool:
    """Disabled, for native controls and for JupyterLab's toolkit buttons
    (``jp-button``, which say it with ``aria-disabled``)."""
    return page.eval_on_selector(
        selector, "e => e.disabled === true || e.getAttribute('aria-disabled') === 'true'"
    )
