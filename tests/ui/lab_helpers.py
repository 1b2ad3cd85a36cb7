"""Steps the UI tests share: writing a notebook, loading JupyterLab or
Notebook 7, running its cells and saving screenshots."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from playwright.sync_api import TimeoutError as PlaywrightTimeout

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


PROMPTS = ".jp-Notebook .jp-Cell .jp-InputPrompt"
# The index of the first of the first ``count`` cells that is neither run
# nor queued (its prompt still ``[ ]:``), or -1.
_FIRST_IDLE = """([sel, count]) => {
    const prompts = Array.from(document.querySelectorAll(sel)).slice(0, count);
    return prompts.findIndex(p => /\\[\\s*\\]/.test(p.textContent));
}"""


def _menu(page, menu: str, item: str) -> None:
    """Clicks ``menu`` > ``item`` in the front end's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


# True once the server counts a kernel connection for every open notebook
# session and the front end's kernel status indicator reads "idle": the
# indicator also reads "idle" before any kernel exists, but not between the
# connection opening and the kernel's first reply (then "connecting",
# "unknown").
_KERNEL_READY = """async () => {
    const config = JSON.parse(document.getElementById('jupyter-config-data').textContent);
    const reply = await fetch(config.baseUrl + 'api/sessions', {credentials: 'same-origin'});
    const sessions = await reply.json();
    const connected = sessions.length > 0 && sessions.every(
        s => s.kernel && s.kernel.connections > 0 && s.kernel.execution_state === 'idle');
    const shown = document.querySelector('.jp-Notebook-ExecutionIndicator');
    return connected && shown !== null && shown.getAttribute('data-status') === 'idle';
}"""


def run_all_cells(page, count: int) -> None:
    """Runs the notebook's cells (all ``count`` of them), in order, through
    the front end's own Run > Run All Cells, once its kernel is connected
    and idle. Should the command still queue nothing (the first prompt stays
    ``[ ]:``) it is given again; once it queued the first cell, the others
    must follow (a cell given twice would run twice)."""
    page.wait_for_function(
        "([sel, count]) => document.querySelectorAll(sel).length >= count",
        arg=[PROMPTS, count],
        timeout=60_000,
    )
    page.wait_for_function(_KERNEL_READY, timeout=60_000, polling=250)
    for _ in range(30):
        _menu(page, "Run", "Run All Cells")
        try:
            page.wait_for_function(
                f"args => ({_FIRST_IDLE})(args) !== 0", arg=[PROMPTS, count], timeout=2_000
            )
        except PlaywrightTimeout:
            continue  # nothing queued: the kernel was not taking cells yet
        try:
            page.wait_for_function(
                f"args => ({_FIRST_IDLE})(args) < 0", arg=[PROMPTS, count], timeout=60_000
            )
        except PlaywrightTimeout:
            idle = page.evaluate(_FIRST_IDLE, [PROMPTS, count])
            raise AssertionError(f"cell {idle} was neither run nor queued") from None
        return
    raise AssertionError("the notebook's kernel never ran its cells")


def run_in_new_cell(page, code: str) -> None:
    """Adds a cell below the last one, types ``code`` into it and runs it."""
    page.click(".jp-Notebook .jp-Cell:last-child .jp-InputPrompt")
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
