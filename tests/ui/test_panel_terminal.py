"""A terminal inside a sandbox, opened from the panel, in real headless
chromium against a real JupyterLab and the real test daemon: the row's
terminal action opens JupyterLab's own terminal widget in a main-area tab,
what is typed runs in the sandbox's shell and its output shows on screen;
the tab closes when its sandbox is killed or its shell exits, and closing
the tab hangs the terminal up; the terminal takes the page's colours, in
the Dark theme and when the theme changes while it is open.

The terminal draws on a canvas; the tests read what it shows from its
accessibility tree, which the widget keeps when JupyterLab's terminal
setting screenReaderMode is on (the sandbox terminals follow that
setting): the fixture turns it on for these tests only."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from lab_helpers import screenshot
from playwright.sync_api import expect
from test_panel import PANEL, UI_TIMEOUT_MS, kill_new_sandboxes, open_panel, row  # noqa: F401
from themes import DARK, LIGHT, wait_for_theme

pytestmark = pytest.mark.kvm

TERMINAL_SETTINGS = "lab/api/settings/@jupyterlab/terminal-extension:plugin"
TAB = ".jp-MainAreaWidget.jp-forkd-terminal"


def terminal_tab(sandbox_id: str) -> str:
    return f'#jp-main-dock-panel {TAB}[data-sandbox-id="{sandbox_id}"]'


def put_terminal_settings(jupyter_lab, settings: dict) -> None:
    base_url, token = jupyter_lab
    request = urllib.request.Request(
        f"{base_url}/{TERMINAL_SETTINGS}",
        data=json.dumps({"raw": json.dumps(settings)}).encode(),
        method="PUT",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 204), response.status


@pytest.fixture
def readable_terminals(jupyter_lab):
    """JupyterLab's terminals keep an accessibility tree (the screen's rows
    as text) while the test runs."""
    put_terminal_settings(jupyter_lab, {"screenReaderMode": True})
    yield
    put_terminal_settings(jupyter_lab, {})


def screen_lines(page, tab: str) -> list[str]:
    return page.eval_on_selector_all(
        f"{tab} .xterm-accessibility-tree > div",
        "rows => rows.map(r => r.textContent.replace(/\\u00a0/g, ' ').trim())",
    )


def wait_for_line(page, tab: str, line: str, timeout_s: float = 30) -> list[str]:
    """The terminal's rows once one of them reads exactly ``line``."""
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = screen_lines(page, tab)
        if line in lines:
            return lines
        page.wait_for_timeout(200)
    raise AssertionError(f"no row reads {line!r}; the screen shows {lines}")


def open_terminal(page, sandbox_id: str) -> str:
    """Clicks the row's terminal action; the tab's selector, once its
    shell is set up (the terminal focused, its prompt on screen)."""
    page.hover(row("sandbox", sandbox_id))
    button = f'{row("sandbox", sandbox_id)} [data-action="terminal"]'
    assert page.get_attribute(button, "aria-label").startswith("Terminal")
    page.click(button)
    tab = terminal_tab(sandbox_id)
    page.wait_for_selector(f"{tab} .jp-Terminal .xterm", timeout=UI_TIMEOUT_MS)
    page.wait_for_function(
        "sel => document.activeElement === document.querySelector(sel)",
        arg=f"{tab} .xterm-helper-textarea",
        timeout=UI_TIMEOUT_MS,
    )
    # The shell has drawn its prompt: some row has text.
    page.wait_for_function(
        """sel => [...document.querySelectorAll(sel)].some(r => r.textContent.trim())""",
        arg=f"{tab} .xterm-accessibility-tree > div",
        timeout=UI_TIMEOUT_MS,
    )
    return tab


def test_terminal_runs_in_the_sandbox_and_closes_with_it(
    page, jupyter_lab, daemon, readable_terminals
):
    (sandbox,) = daemon.spawn_sandboxes(n=1, memory_limit_mib=256, name="terminal-ui")
    open_panel(page, jupyter_lab)
    page.wait_for_selector(row("sandbox", sandbox["id"]), timeout=UI_TIMEOUT_MS)

    tab = open_terminal(page, sandbox["id"])
    title = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    expect(title).to_have_text(re.compile(r"Terminal: terminal-ui"))
    (terminal,) = daemon.list_terminals(sandbox["id"])
    assert terminal["state"] == "running"
    assert page.get_attribute(tab, "data-terminal-id") == terminal["id"]

    page.keyboard.type("echo $((6*7))")
    page.keyboard.press("Enter")
    lines = wait_for_line(page, tab, "42")
    assert any("echo $((6*7))" in line for line in lines), lines
    screenshot(page, "panel-terminal")

    daemon.kill_sandbox(sandbox["id"])
    page.wait_for_selector(tab, state="detached", timeout=UI_TIMEOUT_MS)
    assert page.query_selector(f"#jp-main-dock-panel {TAB}") is None


def test_closing_the_tab_hangs_the_terminal_up(page, jupyter_lab, daemon, readable_terminals):
    (sandbox,) = daemon.spawn_sandboxes(n=1, memory_limit_mib=256)
    open_panel(page, jupyter_lab)
    page.wait_for_selector(row("sandbox", sandbox["id"]), timeout=UI_TIMEOUT_MS)
    tab = open_terminal(page, sandbox["id"])
    (terminal,) = daemon.list_terminals(sandbox["id"])

    page.click("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon")
    page.wait_for_selector(tab, state="detached", timeout=UI_TIMEOUT_MS)
    deadline = time.monotonic() + 30
    while daemon.get_process(sandbox["id"], terminal["id"])["state"] == "running":
        assert time.monotonic() < deadline, "the closed tab's terminal still runs"
        time.sleep(0.2)

    # A program that ends closes its tab by itself.
    tab = open_terminal(page, sandbox["id"])
    page.keyboard.type("exit")
    page.keyboard.press("Enter")
    page.wait_for_selector(tab, state="detached", timeout=UI_TIMEOUT_MS)
    assert daemon.get_sandbox(sandbox["id"])["status"] == "running"


@pytest.mark.parametrize("theme", [DARK], indirect=True, ids=["dark"])
def test_terminal_takes_the_dark_theme(page, jupyter_lab, daemon, readable_terminals, theme):
    (sandbox,) = daemon.spawn_sandboxes(n=1, memory_limit_mib=256)
    open_panel(page, jupyter_lab)
    wait_for_theme(page, theme)
    page.wait_for_selector(row("sandbox", sandbox["id"]), timeout=UI_TIMEOUT_MS)
    tab = open_terminal(page, sandbox["id"])
    assert page.get_attribute(f"{tab} .jp-Terminal", "data-term-theme") == "inherit"
    # Its background is the page's (dark) one, not the light theme's white.
    assert viewport_brightness(page, tab) < 80
    screenshot(page, "panel-terminal-dark")

    # Switched to Light with the terminal open: it follows.
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{LIGHT}$")).click()
    wait_for_theme(page, LIGHT)
    deadline = time.monotonic() + 30
    while viewport_brightness(page, tab) < 175:
        assert time.monotonic() < deadline, "the terminal kept the dark theme's colours"
        page.wait_for_timeout(200)


def viewport_brightness(page, tab: str) -> float:
    """The mean of the terminal's background channels (xterm paints its
    viewport in its theme's background)."""
    color = page.eval_on_selector(
        f"{tab} .xterm-viewport", "e => getComputedStyle(e).backgroundColor"
    )
    channels = [int(c) for c in re.findall(r"\d+", color)[:3]]
    assert len(channels) == 3 and "rgba(0, 0, 0, 0)" not in color, color
    return sum(channels) / 3
