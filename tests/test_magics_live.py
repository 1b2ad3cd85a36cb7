"""A `%%forkd` cell's rich output reaches the notebook while the cell runs,
through a real kernel: displays arrive before the cell ends (timestamped),
update_display replaces the display it names, clear_output(wait=True)
clears, and a plot shows as in a plain cell."""

from __future__ import annotations

import pytest
from jupyter_client.manager import start_new_kernel
from kernel_helpers import execute

pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("daemon"), pytest.mark.timeout(300)]

CELL = """%%forkd
import time
from IPython.display import display, update_display, clear_output
display({"text/plain": "first"}, raw=True)
h = display({"text/plain": "bar 0%"}, raw=True, display_id=True)
time.sleep(1.0)
update_display({"text/plain": "bar 100%"}, raw=True, display_id=h.display_id)
time.sleep(0.3)
clear_output(wait=True)
display({"text/plain": "last"}, raw=True)
"""


def test_displays_update_and_clear_live_in_the_notebook():
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        execute(kc, "%load_ext forkd_jupyter")
        execute(kc, "sb = %forkd spawn --mem 512")
        msgs = execute(kc, CELL)
        ended = msgs[-1][0]
        shown = [
            (t, m["msg_type"], m["content"])
            for t, m in msgs
            if m["msg_type"] in ("display_data", "update_display_data", "clear_output")
        ]
        kinds = [k for _, k, _ in shown]
        assert kinds == [
            "display_data",
            "display_data",
            "update_display_data",
            "clear_output",
            "display_data",
        ], kinds
        texts = [c.get("data", {}).get("text/plain") for _, _, c in shown]
        assert texts == ["first", "bar 0%", "bar 100%", None, "last"]
        bar_id = shown[1][2]["transient"]["display_id"]
        assert shown[2][2]["transient"]["display_id"] == bar_id
        assert shown[3][2]["wait"] is True
        # The first display reached the notebook while the cell still ran.
        assert ended - shown[0][0] > 1.0
        # Nothing is shown twice at the end.
        assert texts.count("last") == 1
        # A spawn shows a progress bar while it runs, then removes it.
        msgs = execute(kc, "pair = %forkd spawn -n 2 --mem 256")
        shown = [m for _, m in msgs if m["msg_type"] in ("display_data", "update_display_data")]
        first, last = shown[0], shown[-1]
        assert first["msg_type"] == "display_data"
        assert "application/vnd.jupyter.widget-view+json" in first["content"]["data"]
        assert "spawning" in first["content"]["data"]["text/plain"]
        assert last["msg_type"] == "update_display_data"
        assert last["content"]["data"] == {"text/plain": ""}
        bar_id = first["content"]["transient"]["display_id"]
        assert last["content"]["transient"]["display_id"] == bar_id
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
