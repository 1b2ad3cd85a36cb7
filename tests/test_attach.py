"""Attach mode through a real kernel and the test daemon: cells run in the
sandbox without `%%forkd` (values, Out[], execution counts, the guest's
traceback), a checkpoint precedes each one, `%forkd undo` and `%forkd
checkout` bring memory and files back (the abandoned future stays a
snapshot), the budget folds old checkpoints away, an interrupt stops a
cell, rich output is live, and a new kernel reattaches with the history
intact (docs/time-travel.md)."""

from __future__ import annotations

import re
import time

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from kernel_helpers import execute, reply_to
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = [pytest.mark.kvm, pytest.mark.usefixtures("daemon"), pytest.mark.timeout(600)]


class Cell:
    def __init__(self, count: int, status: str, msgs: list[tuple[float, dict]]) -> None:
        self.count, self.status, self.msgs = count, status, msgs

    def of(self, *kinds: str) -> list[dict]:
        return [m["content"] for _, m in self.msgs if m["msg_type"] in kinds]

    @property
    def text(self) -> str:
        parts = []
        for c in self.of("stream", "execute_result", "display_data", "error"):
            if "text" in c:
                parts.append(c["text"])
            elif "data" in c:
                parts.append(c["data"].get("text/plain", ""))
            else:
                parts.append(f"{c['ename']}: {c['evalue']}\n" + "\n".join(c["traceback"]))
        return re.sub(r"\x1b\[[0-9;]*m", "", "".join(parts))

    @property
    def out(self) -> str | None:
        [result] = self.of("execute_result") or [None]
        return None if result is None else result["data"]["text/plain"]


def run(kc, code: str, timeout: float = 120, **request) -> Cell:
    msgs = execute(kc, code, timeout, **request)
    msg_id = msgs[0][1]["parent_header"]["msg_id"]
    reply = reply_to(kc, msg_id, timeout)
    return Cell(reply["content"].get("execution_count"), reply["content"]["status"], msgs)


def ok(kc, code: str) -> Cell:
    cell = run(kc, code)
    assert cell.status == "ok", cell.text
    return cell


@pytest.fixture
def kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    ok(kc, "%load_ext forkd_jupyter")
    kc.manager = km
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_cells_run_in_the_sandbox_with_checkpoints_undo_and_checkout(kernel, daemon):
    kc = kernel
    attached = ok(kc, "%forkd attach tt --mem 512")
    assert "run in sandbox tt" in attached.text
    [sb] = [s for s in daemon.list_sandboxes() if s["name"] == "tt" and s["status"] == "running"]

    first = ok(kc, "import os\nx = 1\nf = open('/tmp/note.txt', 'w')\nf.write('one')\nf.flush()")
    # The cell ran in the guest, not in the kernel: the guest's pid 1 view.
    where = ok(kc, "os.getpid(), x")
    assert where.out is not None and where.out.endswith(", 1)")
    assert where.count == first.count + 1  # counts as in a plain kernel
    # Shell lines and script cells of an attached notebook run there too.
    shell = ok(kc, "!echo from $(id -un); cat /tmp/note.txt")
    assert shell.text == "from sandbox\none", shell.text
    assert ok(kc, "%%bash\necho $((6 * 7)) > /tmp/b; cat /tmp/b").text == "42\n"
    # Code run outside the history (the JupyterLab panel's requests) stays
    # in the kernel, where the magics are loaded and `x` is not defined.
    probe = "import sys\nprint('forkd_jupyter.magics' in sys.modules, 'x' in globals())"
    assert run(kc, probe, store_history=False).text == "True False\n"
    assert ok(kc, probe).text == "False True\n"
    ok(kc, "def gen():\n    yield from range(10)\ng = gen()\nnext(g)\nd = {'f': lambda v: v + 1}")
    second = ok(kc, "x += 1\nx")
    assert second.out == "2"
    ok(kc, "x *= 10\nwith open('/tmp/note.txt', 'a') as h:\n    h.write('two')\nnext(g)")

    # The guest's traceback, the cell failed, nothing changed in the kernel.
    failed = run(kc, "raise ValueError('boom')")
    assert failed.status == "error" and "ValueError" in failed.text and "boom" in failed.text

    hist = ok(kc, "%forkd history")
    assert f"before [{second.count}]" in hist.text and "x += 1" in hist.text

    undone = ok(kc, "%forkd undo 2")  # the failed cell and `x *= 10`
    assert "back to its state" in undone.text
    back = ok(kc, "x, open('/tmp/note.txt').read(), next(g), d['f'](1)")
    assert back.out == "(2, 'one', 1, 2)"

    moved = ok(kc, f"%forkd checkout {first.count}")
    assert f"after [{first.count}]" in moved.text
    future = re.search(r"snapshot (snap-\d+)", moved.text).group(1)
    assert ok(kc, "x").out == "1"
    # The state left behind is a snapshot in the tree, with its own state.
    [kept] = [s for s in daemon.list_snapshots() if s["id"] == future]
    assert kept["tag"].startswith("tt-future-of-")
    [child] = daemon.spawn_sandboxes(snapshot_id=future)
    assert daemon.run_cell(child["id"], "x, next(g)").result["text/plain"] == "(2, 2)"
    daemon.kill_sandbox(child["id"])

    # The checkpoints and futures are real snapshots of the tree.
    tree_ids = {n["id"] for n in daemon.tree()["nodes"]}
    assert future in tree_ids
    ok(kc, "%forkd detach")
    plain = run(kc, "x")
    assert plain.status == "error" and "NameError" in plain.text
    assert sb["id"] != [s for s in daemon.list_sandboxes() if s["name"] == "tt"][-1]["id"]


def test_the_budget_folds_old_checkpoints_and_undo_stays_exact(kernel, daemon):
    kc = kernel
    ok(kc, "%forkd attach budget --mem 512 --keep 3")
    ok(kc, "import numpy as np\nsteps = []\nbig = np.zeros(4 << 20, dtype=np.uint8)")
    for i in range(6):
        ok(kc, f"steps.append({i})\nbig[{i} << 16] = {i + 1}")
    deadline = time.monotonic() + 30
    while True:
        hist = ok(kc, "%forkd history").text
        kept = re.findall(r"before \[\d+\]", hist)
        if len(kept) <= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(kept) == 3, hist
    ok(kc, "%forkd undo 2")
    state = ok(kc, "steps, int(big.sum())")
    assert state.out == "([0, 1, 2, 3], 10)"


def test_interrupt_and_live_output_in_an_attached_cell(kernel):
    kc = kernel
    ok(kc, "%forkd attach live --mem 512")
    cell = ok(
        kc,
        "import time\nfrom IPython.display import display\n"
        "display({'text/plain': 'early'}, raw=True)\ntime.sleep(1.5)\n'late'",
    )
    [shown] = [t for t, m in cell.msgs if m["msg_type"] == "display_data"]
    [ended] = [t for t, m in cell.msgs if m["msg_type"] == "execute_result"]
    assert ended - shown > 1.0 and cell.out == "'late'"

    msg_id = kc.execute("while True:\n    pass")
    time.sleep(2)
    kc.manager.interrupt_kernel()  # the notebook's interrupt button
    reply = reply_to(kc, msg_id, 60)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] in ("KeyboardInterrupt", "GuestCellError")
    assert ok(kc, "6 * 7").out == "42"


def test_a_new_kernel_reattaches_with_its_history(daemon):
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        ok(kc, "%load_ext forkd_jupyter")
        ok(kc, "%forkd attach keeps --mem 512")
        ok(kc, "y = 5")
        ok(kc, "y += 1")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        ok(kc, "%load_ext forkd_jupyter")
        again = ok(kc, "%forkd attach keeps")
        assert "2 kept" in again.text
        assert ok(kc, "y").out == "6"
        ok(kc, "%forkd undo 2")  # `y` (this kernel's) and `y += 1`
        assert ok(kc, "y").out == "5"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_run_all_of_an_attached_notebook_through_nbclient():
    cells = [
        "%load_ext forkd_jupyter",
        "%forkd attach runall --mem 512",
        "a = [1]",
        "a.append(2)\na",
        "%forkd undo",
        "a",
        "raise RuntimeError('stop here')",
        "a.append('never')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with pytest.raises(CellExecutionError, match="stop here"):
        client.execute()
    counts = [c.get("execution_count") for c in nb.cells]
    assert counts == [1, 2, 3, 4, 5, 6, 7, None]  # Run all stops at the failed cell
    [out] = [o for o in nb.cells[3].outputs if o.output_type == "execute_result"]
    assert out.data["text/plain"] == "[1, 2]"
    [out] = [o for o in nb.cells[5].outputs if o.output_type == "execute_result"]
    assert out.data["text/plain"] == "[1]"
    [err] = [o for o in nb.cells[6].outputs if o.output_type == "error"]
    assert "RuntimeError" in "".join(err.traceback)
